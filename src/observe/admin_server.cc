#include "observe/admin_server.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "core/sockaddr.h"
#include "proxy/http1/parser.h"
#include "proxy/responses.h"

namespace ingressd {

AdminServer::~AdminServer() { stop(); }

bool AdminServer::start(const std::string& bind, uint16_t port, std::string& err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!parse_sockaddr(bind, port, ss, len)) {
    err = "invalid admin bind address " + bind;
    return false;
  }
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 64) != 0) {
    err = fmt::format("cannot listen on admin address {}:{}: {}", bind, port, std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  thread_ = std::thread([this] { loop(); });
  return true;
}

void AdminServer::stop() {
  stop_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void AdminServer::loop() {
  while (!stop_) {
    // Blocking accept: stop() shuts the socket down to wake it.
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) break;
      continue;
    }
    timeval tv{2, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    serve_one(c);
    ::close(c);
  }
}

void AdminServer::serve_one(int fd) {
  std::string buf;
  auto req = std::make_unique<http1::RequestHead>();
  http1::ParseError err;
  long n = 0;
  while (n == 0) {
    char tmp[4096];
    ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) return;
    buf.append(tmp, static_cast<size_t>(r));
    http1::Limits lim;
    lim.max_head_bytes = 16384;
    n = http1::parse_request_head(buf.data(), buf.size(), *req, err, lim);
  }
  AdminResponse resp;
  if (n < 0) {
    resp = {err.status, "text/plain; charset=utf-8", std::string(err.reason) + "\n"};
  } else if (req->method != "GET" && req->method != "HEAD") {
    resp = {405, "text/plain; charset=utf-8", "only GET\n"};
  } else {
    std::string path(req->path), query(req->query.empty() ? "" : req->query.substr(1));
    auto it = handlers_.find(path);
    if (it == handlers_.end()) resp = {404, "text/plain; charset=utf-8", "not found\n"};
    else resp = it->second(path, query);
  }
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                resp.status, status_reason(resp.status), resp.content_type, resp.body.size());
  if (n > 0 && req->method != "HEAD") out += resp.body;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t w = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

}  // namespace ingressd
