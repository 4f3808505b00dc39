// HTTPS to the Kubernetes API server with libcurl: certificate verification,
// bearer tokens (re-fetched after a 401), client certificates, keep-alive
// (one connection per session), and streamed responses for WATCH.
// This is the control plane: calls block; each informer has its own thread
// and its own session.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "sources/kube/kube_config.h"

namespace ingressd::kube {

struct HttpResult {
  long status = 0;    // HTTP status; 0 = no response (transport error, see `error`)
  std::string body;   // for a stream: the body only when the status is not 200
  std::string error;  // transport error or why the request was cut
  bool ok() const { return status >= 200 && status < 300; }
};

// What every session shares: where the server is and the credentials.
class KubeClient {
 public:
  explicit KubeClient(KubeConfig cfg);
  const KubeConfig& config() const { return cfg_; }
  Credentials& credentials() { return creds_; }
  std::string describe() const;  // "https://host:port (context x)"

 private:
  KubeConfig cfg_;
  Credentials creds_;
};

// One curl handle: not thread-safe; one per thread.
class KubeSession {
 public:
  explicit KubeSession(KubeClient& client);
  ~KubeSession();
  KubeSession(const KubeSession&) = delete;
  KubeSession& operator=(const KubeSession&) = delete;

  // A request with a JSON (or patch) body. `path` starts with "/" and
  // includes the query. Retries once after a 401 with fresh credentials.
  HttpResult request(std::string_view method, const std::string& path, const std::string& body = {},
                     const std::string& content_type = "application/json", int timeout_ms = 30000);

  // A streamed GET (a WATCH): calls on_line for each newline-terminated line
  // of a 200 response; returns when the server ends the stream, on_line
  // returns false, `stop` becomes true (within about a second), or nothing
  // at all arrives for idle_timeout_s.
  HttpResult stream_lines(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                          const std::atomic<bool>& stop, int idle_timeout_s);

  // While *stop is true, requests end within about a second ("stopped"), so
  // that a hung server cannot hold up shutdown. nullptr = never.
  void set_stop_flag(const std::atomic<bool>* stop) { stop_ = stop; }

 private:
  void setup(const std::string& path, int timeout_ms, std::string& auth_header, std::string& err);
  KubeClient& client_;
  void* curl_ = nullptr;
  const std::atomic<bool>* stop_ = nullptr;
};

}  // namespace ingressd::kube
