#include "app/webhook.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>

#include "core/log.h"
#include "core/sockaddr.h"
#include "model/decode.h"
#include "proxy/http1/parser.h"
#include "proxy/responses.h"

namespace ingressd {
namespace {

std::string jstr(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A diagnostic as `check` prints it, without the file and line: the object
// came from the API server, and kubectl names the file itself.
std::string plain(Diagnostic d) {
  d.file.clear();
  d.line = 0;
  return d.str();
}

std::string identity(const Diagnostic& d) {
  return fmt::format("{}|{}|{}|{}", severity_name(d.severity), d.object, d.reason, d.message);
}

// Whether `d` (about the object under review, `self`) says it takes or
// would take requests another Ingress serves today: a path already claimed,
// or a same-match-set path that displaces another Ingress's.
bool is_conflict(const Diagnostic& d, const std::string& self) {
  if (d.reason == "Conflict") return true;
  if (d.reason == "Shadowed") {
    // "... takes precedence over /api (Prefix) of Ingress NS/NAME": another
    // Ingress's route stops being served; the object's own paths are fine.
    size_t at = d.message.rfind(" of Ingress ");
    return at != std::string::npos && "Ingress " + d.message.substr(at + 12) != self;
  }
  return false;
}

}  // namespace

AdmissionVerdict review_admission(const nlohmann::json& request, const Snapshot& live,
                                  const routing::CompileOptions& opts) {
  AdmissionVerdict v;
  const std::string op = jstr(request, "operation");
  if (op != "CREATE" && op != "UPDATE") return v;  // DELETE, CONNECT: nothing to check
  const nlohmann::json& gvk = request.contains("kind") ? request["kind"] : nlohmann::json();
  const std::string group = jstr(gvk, "group"), version = jstr(gvk, "version"), kind = jstr(gvk, "kind");
  const nlohmann::json& obj = request.contains("object") ? request["object"] : nlohmann::json();
  if (kind.empty() || version.empty() || !obj.is_object()) {
    v.allowed = false;
    v.message = "the AdmissionRequest carries no kind or no object";
    return v;
  }
  const std::string api_version = group.empty() ? version : group + "/" + version;
  model::DecodedObject d = model::decode_api_object(obj, api_version, kind, "admission");
  if (!d.object) {
    v.allowed = false;
    for (const auto& e : d.errors) v.message += (v.message.empty() ? "" : "\n") + plain(e);
    return v;
  }
  const model::ObjectKey key = model::object_key(*d.object);
  if (key.kind != model::Kind::Ingress) return v;  // decoded and validated: what the webhook can say of the others

  Snapshot candidate = live;
  candidate.objects[key] = StoredObject{*d.object, d.pos};
  const auto& ing = std::get<model::Ingress>(candidate.objects[key].object);
  std::string why;
  if (!routing::ingress_is_ours(candidate, ing, opts, routing::have_default_class(candidate, opts), why)) return v;
  if (!opts.watch_namespaces.empty() && !opts.watch_namespaces.count(key.namespace_)) return v;

  // What this change makes worse: diagnostics the live objects do not have
  // today. An UPDATE of an Ingress that already loses a path is not refused
  // for that (its old conflict is a warning), only for new trouble.
  std::set<std::string> before;
  for (const auto& x : routing::compile(live, opts).diagnostics) before.insert(identity(x));
  const std::string self = key.str();
  std::vector<std::string> denials;
  for (const auto& x : routing::compile(candidate, opts).diagnostics) {
    const bool known = before.count(identity(x)) > 0;
    if (x.object == self) {
      if (!known && (x.severity == Severity::Error || is_conflict(x, self))) denials.push_back(plain(x));
      else if (x.severity != Severity::Info)
        v.warnings.push_back(plain(x));
    } else if (!known && x.severity != Severity::Info && x.reason == "Conflict") {
      // Another Ingress loses a path to this one.
      denials.push_back(fmt::format("{} would take requests from it: {}", self, plain(x)));
    }
  }
  if (!denials.empty()) {
    v.allowed = false;
    for (const auto& m : denials) v.message += (v.message.empty() ? "" : "\n") + m;
  }
  return v;
}

std::optional<nlohmann::json> answer_admission_review(const nlohmann::json& review, const Snapshot& live,
                                                      const routing::CompileOptions& opts, std::string& err) {
  if (!review.is_object() || jstr(review, "kind") != "AdmissionReview" || !review.contains("request") ||
      !review["request"].is_object()) {
    err = "the body is not an AdmissionReview with a request";
    return std::nullopt;
  }
  const nlohmann::json& req = review["request"];
  AdmissionVerdict v = review_admission(req, live, opts);
  nlohmann::json resp{{"uid", jstr(req, "uid")}, {"allowed", v.allowed}};
  if (!v.allowed)
    resp["status"] = {{"status", "Failure"}, {"code", 400}, {"reason", "BadRequest"}, {"message", v.message}};
  if (!v.warnings.empty()) resp["warnings"] = v.warnings;
  std::string api_version = jstr(review, "apiVersion");
  if (api_version.empty()) api_version = "admission.k8s.io/v1";
  return nlohmann::json{{"apiVersion", api_version}, {"kind", "AdmissionReview"}, {"response", std::move(resp)}};
}

struct WebhookServer::Tls {
  SSL_CTX* ctx = nullptr;
  ~Tls() { SSL_CTX_free(ctx); }
};

namespace {

int64_t mtime_ns(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return e ? buf : "unknown error";
}

}  // namespace

WebhookServer::~WebhookServer() { stop(); }

bool WebhookServer::load_certificate(std::string& err) {
  auto t = std::make_shared<Tls>();
  t->ctx = SSL_CTX_new(TLS_server_method());
  if (!t->ctx) {
    err = "webhook: cannot make a TLS context: " + openssl_error();
    return false;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  int64_t cm = mtime_ns(cert_file_), km = mtime_ns(key_file_);
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file_.c_str()) != 1) {
    err = fmt::format("webhook: cannot read the certificate {}: {}", cert_file_, openssl_error());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file_.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(t->ctx) != 1) {
    err = fmt::format("webhook: cannot use the key {} with {}: {}", key_file_, cert_file_, openssl_error());
    return false;
  }
  std::lock_guard<std::mutex> g(mu_);
  tls_ = std::move(t);
  cert_mtime_ = cm;
  key_mtime_ = km;
  return true;
}

std::shared_ptr<WebhookServer::Tls> WebhookServer::current_tls() {
  {
    std::lock_guard<std::mutex> g(mu_);
    int64_t now = now_ms();
    if (now - checked_ms_ < 2000) return tls_;
    checked_ms_ = now;
    if (mtime_ns(cert_file_) == cert_mtime_ && mtime_ns(key_file_) == key_mtime_) return tls_;
  }
  // A rotated Secret: both files are swapped at once by the kubelet (a
  // symlink flip); a half-written pair fails to load and the old one stays.
  std::string err;
  if (load_certificate(err)) log_info("webhook: certificate {} read again", cert_file_);
  else log_error("{}; the previous certificate stays in use", err);
  std::lock_guard<std::mutex> g(mu_);
  return tls_;
}

bool WebhookServer::start(const std::string& bind, uint16_t port, const std::string& cert_file,
                          const std::string& key_file, LiveFn live, std::string& err) {
  cert_file_ = cert_file;
  key_file_ = key_file;
  live_ = std::move(live);
  if (!load_certificate(err)) return false;
  checked_ms_ = now_ms();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!parse_sockaddr(bind, port, ss, len)) {
    err = "invalid webhook bind address " + bind;
    return false;
  }
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 64) != 0) {
    err = fmt::format("cannot listen on webhook address {}:{}: {}", bind, port, std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  thread_ = std::thread([this] { loop(); });
  return true;
}

void WebhookServer::stop() {
  stop_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  // Connection threads end within their socket timeouts.
  for (int i = 0; i < 1000 && connections_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void WebhookServer::loop() {
  while (!stop_) {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) break;
      continue;
    }
    if (connections_.load() >= kMaxConnections) {
      ::close(c);
      ++failures_;
      continue;
    }
    ++connections_;
    std::thread([this, c] {
      serve(c);
      ::close(c);
      --connections_;
    }).detach();
  }
}

void WebhookServer::serve(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::shared_ptr<Tls> tls = current_tls();
  SSL* ssl = SSL_new(tls->ctx);
  if (!ssl) return;
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {
    log_debug("webhook: TLS handshake failed: {}", openssl_error());
    ++failures_;
    SSL_free(ssl);
    return;
  }
  // The API server keeps connections open between reviews.
  constexpr size_t kMaxBody = 8u << 20;  // an object and its old version, each at most etcd's 1.5 MiB, as JSON
  std::string buf;
  for (int served = 0; served < 1000 && !stop_; ++served) {
    auto req = std::make_unique<http1::RequestHead>();
    http1::ParseError perr;
    http1::Limits lim;
    lim.max_head_bytes = 16384;
    long head = 0;
    auto fill = [&]() {
      char tmp[16384];
      int r = SSL_read(ssl, tmp, sizeof tmp);
      if (r <= 0) return false;
      buf.append(tmp, static_cast<size_t>(r));
      return true;
    };
    while ((head = http1::parse_request_head(buf.data(), buf.size(), *req, perr, lim)) == 0)
      if (!fill()) {
        SSL_free(ssl);
        return;
      }
    int status = 200;
    std::string body, ctype = "application/json";
    bool keep = head > 0 && req->keep_alive;
    if (head < 0) {
      status = perr.status;
      body = std::string(perr.reason) + "\n";
      ctype = "text/plain; charset=utf-8";
      keep = false;
    } else if (req->framing == http1::Framing::Chunked || req->content_length > kMaxBody) {
      status = req->framing == http1::Framing::Chunked ? 411 : 413;
      body = status == 411 ? "a Content-Length is needed\n" : "the AdmissionReview is too large\n";
      ctype = "text/plain; charset=utf-8";
      keep = false;
    } else {
      const size_t need = static_cast<size_t>(head) + req->content_length;
      std::string method(req->method);
      // `req` points into buf: copy what is needed before reading on.
      while (buf.size() < need)
        if (!fill()) {
          SSL_free(ssl);
          return;
        }
      if (method != "POST") {
        status = 405;
        body = "POST an AdmissionReview\n";
        ctype = "text/plain; charset=utf-8";
      } else {
        nlohmann::json review = nlohmann::json::parse(buf.begin() + head, buf.begin() + static_cast<long>(need),
                                                      nullptr, false);
        auto [snap, opts] = live_();
        std::string err;
        std::optional<nlohmann::json> answer;
        if (!review.is_discarded() && snap) answer = answer_admission_review(review, *snap, opts, err);
        else err = snap ? "the body is not JSON" : "no configuration loaded yet";
        if (answer) {
          body = answer->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          const nlohmann::json& r = (*answer)["response"];
          bool ok = r.value("allowed", false);
          ++(ok ? allowed_ : denied_);
          if (!ok)
            log_info("webhook: denied {} {}: {}", review["request"].value("operation", ""),
                     review["request"].value("name", ""), r["status"].value("message", ""));
        } else {
          status = snap ? 400 : 503;
          body = err + "\n";
          ctype = "text/plain; charset=utf-8";
          ++failures_;
        }
      }
      buf.erase(0, need);
    }
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n", status,
                                  status_reason(status), ctype, body.size(), keep ? "" : "Connection: close\r\n");
    out += body;
    if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) <= 0 || !keep) break;
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
}

}  // namespace ingressd
