#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace ingressd {

namespace {
constexpr size_t kMaxQueued = 64 << 20;  // beyond this, lines are dropped and counted
}

bool AccessLog::open(const std::string& path, AccessLogFormat format, int sample, std::string& err) {
  format_ = format;
  sample_ = sample < 1 ? 1 : sample;
  if (path == "off" || path.empty()) return true;
  if (path == "-") {
    fd_ = 1;
  } else {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      err = "cannot open access log " + path + ": " + std::strerror(errno);
      return false;
    }
    own_fd_ = true;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

AccessLog::~AccessLog() { stop(); }

void AccessLog::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (own_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void AccessLog::submit(std::string&& lines) {
  if (lines.empty()) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (queued_bytes_ + lines.size() > kMaxQueued) {
      size_t n = 0;
      for (char c : lines) n += c == '\n';
      dropped_.fetch_add(n, std::memory_order_relaxed);
      lines.clear();
      return;
    }
    queued_bytes_ += lines.size();
    queue_.push_back(std::move(lines));
  }
  cv_.notify_one();
}

void AccessLog::run() {
  for (;;) {
    std::string chunk;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      chunk = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= chunk.size();
    }
    size_t off = 0;
    while (off < chunk.size()) {
      ssize_t n = ::write(fd_, chunk.data() + off, chunk.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
}

}  // namespace ingressd
