// The admin port: health, readiness and the configuration in force, served
// from its own thread so the data plane never waits on it.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace ingressd {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  using Handler = std::function<AdminResponse(const std::string& path, const std::string& query)>;
  ~AdminServer();
  void handle(const std::string& path, Handler h) { handlers_[path] = std::move(h); }
  bool start(const std::string& bind, uint16_t port, std::string& err);
  void stop();

 private:
  void loop();
  void serve_one(int fd);
  std::map<std::string, Handler> handlers_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ingressd
