#include "sources/kube/kube_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <mutex>

#include "core/log.h"

namespace ingressd::kube {
namespace {

std::once_flag g_curl_init;

struct Transfer {
  std::string body;
  // streaming
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::atomic<bool>* stop = nullptr;
  CURL* curl = nullptr;
  std::string pending;  // an incomplete line
  bool cut_by_callback = false;
  long status = 0;
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->on_line) {
    t->body.append(data, len);
    return len;
  }
  if (t->status == 0) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
  if (t->status != 200) {
    if (t->body.size() < (1 << 20)) t->body.append(data, len);
    return len;
  }
  t->pending.append(data, len);
  size_t start = 0;
  for (;;) {
    size_t nl = t->pending.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(t->pending.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && !(*t->on_line)(line)) {
      t->cut_by_callback = true;
      return 0;  // aborts the transfer
    }
  }
  t->pending.erase(0, start);
  if (t->pending.size() > (64u << 20)) {  // one event larger than 64 MiB: something is wrong
    t->cut_by_callback = true;
    return 0;
  }
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->stop && t->stop->load() ? 1 : 0;
}

}  // namespace

KubeClient::KubeClient(KubeConfig cfg) : cfg_(std::move(cfg)), creds_(cfg_) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (cfg_.insecure_skip_tls_verify)
    log_warn("kube: insecure-skip-tls-verify is set for {}: the API server's certificate is NOT verified", cfg_.server);
  if (cfg_.server.rfind("http://", 0) == 0)
    log_warn("kube: the API server {} is plain http: credentials and objects travel unencrypted", cfg_.server);
  if (!cfg_.tls_server_name.empty())
    log_warn("kube: tls-server-name is not supported; the certificate is checked against the server's host name");
}

std::string KubeClient::describe() const { return fmt::format("{} (context {})", cfg_.server, cfg_.context); }

KubeSession::KubeSession(KubeClient& client) : client_(client) { curl_ = curl_easy_init(); }

KubeSession::~KubeSession() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

void KubeSession::setup(const std::string& path, int timeout_ms, std::string& auth_header, std::string& err) {
  CURL* c = static_cast<CURL*>(curl_);
  const KubeConfig& cfg = client_.config();
  curl_easy_reset(c);  // keeps the connection cache: keep-alive survives
  std::string url = cfg.server + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  // A watch on a connection that died silently (a partition dropping packets)
  // is noticed within about a minute, not the kernel's default of ~10.
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
  if (cfg.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    if (!cfg.ca_pem.empty()) {
      curl_blob b{const_cast<char*>(cfg.ca_pem.data()), cfg.ca_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    } else if (!cfg.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, cfg.ca_file.c_str());
    }
  }
  if (!cfg.client_cert_pem.empty()) {
    curl_blob b{const_cast<char*>(cfg.client_cert_pem.data()), cfg.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!cfg.client_cert_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, cfg.client_cert_file.c_str());
  }
  if (!cfg.client_key_pem.empty()) {
    curl_blob b{const_cast<char*>(cfg.client_key_pem.data()), cfg.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!cfg.client_key_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEY, cfg.client_key_file.c_str());
  }
  std::string token = client_.credentials().bearer(err);
  auth_header = token.empty() ? std::string() : "Authorization: Bearer " + token;
}

HttpResult KubeSession::request(std::string_view method, const std::string& path, const std::string& body,
                                const std::string& content_type, int timeout_ms) {
  HttpResult r;
  if (!curl_) {
    r.error = "curl_easy_init failed";
    return r;
  }
  CURL* c = static_cast<CURL*>(curl_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string auth, cred_err;
    setup(path, timeout_ms, auth, cred_err);
    if (!cred_err.empty()) log_warn("kube: credentials: {}", cred_err);
    Transfer t;
    std::string m(method);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    if (m != "GET" && m != "DELETE") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_slist* hdrs = nullptr;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "User-Agent: ingressd/" INGRESSD_VERSION);
    if (!body.empty() || (m != "GET" && m != "DELETE")) hdrs = curl_slist_append(hdrs, ("Content-Type: " + content_type).c_str());
    if (!auth.empty()) hdrs = curl_slist_append(hdrs, auth.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    if (stop_) {
      t.stop = stop_;
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    r = HttpResult{};
    if (rc != CURLE_OK) {
      r.error = rc == CURLE_ABORTED_BY_CALLBACK ? "stopped" : curl_easy_strerror(rc);
      return r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = std::move(t.body);
    if (r.status != 401) break;
    client_.credentials().invalidate();
  }
  return r;
}

HttpResult KubeSession::stream_lines(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                                     const std::atomic<bool>& stop, int idle_timeout_s) {
  HttpResult r;
  if (!curl_) {
    r.error = "curl_easy_init failed";
    return r;
  }
  CURL* c = static_cast<CURL*>(curl_);
  std::string auth, cred_err;
  setup(path, 0, auth, cred_err);
  if (!cred_err.empty()) log_warn("kube: credentials: {}", cred_err);
  Transfer t;
  t.on_line = &on_line;
  t.stop = &stop;
  t.curl = c;
  curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  hdrs = curl_slist_append(hdrs, "User-Agent: ingressd/" INGRESSD_VERSION);
  if (!auth.empty()) hdrs = curl_slist_append(hdrs, auth.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  // A dead connection (no bytes at all, not even a bookmark) is given up.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(idle_timeout_s));
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(hdrs);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status == 401) client_.credentials().invalidate();
  r.body = std::move(t.body);
  if (rc == CURLE_OK) {
    if (!t.pending.empty() && r.status == 200) r.error = "stream ended inside an event";
  } else if (t.cut_by_callback) {
    r.error = "cut by the reader";
  } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
    r.error = "stopped";
  } else {
    r.error = curl_easy_strerror(rc);
  }
  return r;
}

}  // namespace ingressd::kube
