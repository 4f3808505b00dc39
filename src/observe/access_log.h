// The access log: one structured line per request. Workers append to their own
// buffer and hand full buffers over; a writer thread does the blocking write,
// so a slow log destination never stalls the data plane (lines are dropped and
// counted instead when the writer falls far behind).
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace ingressd {

enum class AccessLogFormat { Json, Text };

class AccessLog {
 public:
  // `path`: "-" for stdout, "off" for none, else a file (appended to).
  bool open(const std::string& path, AccessLogFormat format, int sample, std::string& err);
  ~AccessLog();
  bool enabled() const { return fd_ >= 0; }
  AccessLogFormat format() const { return format_; }
  int sample() const { return sample_; }
  // Takes a buffer of complete lines.
  void submit(std::string&& lines);
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  void stop();

 private:
  void run();
  int fd_ = -1;
  bool own_fd_ = false;
  AccessLogFormat format_ = AccessLogFormat::Json;
  int sample_ = 1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool stop_ = false;
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace ingressd
