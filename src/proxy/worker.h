// One worker: an edge-triggered epoll loop on its own thread with its own
// SO_REUSEPORT listener, its own connections, upstream pools and counters.
// Nothing here is shared with other workers except the TablePublisher.
#pragma once
#include <sys/epoll.h>

#include <array>
#include <atomic>
#include <cstring>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "observe/access_log.h"
#include "observe/metrics.h"
#include "proxy/buffer.h"
#include "proxy/config.h"
#include "proxy/endpoint_picker.h"
#include "proxy/http1/chunked.h"
#include "proxy/http1/parser.h"
#include "proxy/table_publisher.h"
#include "proxy/timer_heap.h"
#include "tls/tls_server.h"

namespace ingressd {

class Worker;
class ClientConn;
class H2Session;
class MirrorRequest;

// Anything registered with epoll.
struct IoHandler {
  virtual ~IoHandler() = default;
  virtual void on_io(uint32_t events) = 0;
};

// A table as one worker holds it, with the requests that started on it.
struct TableRef {
  std::shared_ptr<const routing::RouteTable> table;
  std::vector<uint32_t> rr;        // round-robin cursor per backend id
  std::vector<uint32_t> backend_inflight;  // requests in progress per backend id (this worker)
  // Request metrics per route target (RouteTable::stat_labels), allocated on
  // first use. Written by the worker, read by the scraper under metrics_mu_.
  std::unique_ptr<std::atomic<RouteCounters*>[]> stats;
  size_t n_stats = 0;
  int inflight = 0;
  bool retired = false;
  ~TableRef() {
    for (size_t i = 0; i < n_stats; ++i) delete stats[i].load(std::memory_order_relaxed);
  }
};

struct EndpointKey {
  sockaddr_storage sa;
  socklen_t len;
  // The key of an endpoint: its address bytes, the rest of the storage zeroed.
  static EndpointKey of(const routing::EndpointAddr& ep) {
    EndpointKey k;
    std::memset(&k.sa, 0, sizeof k.sa);
    std::memcpy(&k.sa, &ep.sa, ep.len);
    k.len = ep.len;
    return k;
  }
  bool operator==(const EndpointKey& o) const { return len == o.len && std::memcmp(&sa, &o.sa, len) == 0; }
};
struct EndpointKeyHash {
  size_t operator()(const EndpointKey& k) const {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k.sa), k.len));
  }
};

// Whoever an upstream connection works for: told when the connection has
// news (connected, readable, writable, failed). A client exchange today; a
// mirrored request or an auth sub-request can own one the same way.
class UpstreamOwner {
 public:
  virtual void on_upstream_event() = 0;

 protected:
  ~UpstreamOwner() = default;
};

class UpstreamConn final : public IoHandler {
 public:
  UpstreamConn(Worker& w, int fd, const routing::EndpointAddr& ep);
  ~UpstreamConn() override;
  void on_io(uint32_t events) override;

  Worker& worker;
  int fd;
  EndpointKey key;
  std::string addr_text;
  Buffer in, out;
  UpstreamOwner* owner = nullptr;  // null while idle in the pool
  bool connecting = true;
  bool can_read = false;
  bool can_write = false;
  bool eof = false;
  bool peer_closed = false;  // EPOLLRDHUP seen while owned
  bool reused = false;  // has served a request before
  int error = 0;        // errno of a failure
  int64_t deadline = 0;  // idle in the pool: close at this time (ms)
  int64_t progress = 0;  // owned: last connect start, read or write (ms)
  size_t pool_index = 0;
};

struct WorkerStats {
  std::atomic<uint64_t> accepted{0}, requests{0}, active_connections{0};
  std::atomic<uint64_t> responses_by_class[6] = {};  // index status/100
  std::atomic<uint64_t> upstream_connect_errors{0}, upstream_timeouts{0};
  std::atomic<uint64_t> upstream_resets{0}, upstream_retries{0}, endpoint_ejections{0}, connections_refused{0};
  std::atomic<uint64_t> websockets_active{0}, websockets_total{0};
  std::atomic<uint64_t> pool_active{0}, pool_idle{0};  // upstream connections in use / idle in the pools
  // TLS: handshakes completed by version (index: 0 TLS 1.2, 1 TLS 1.3), failed
  // handshakes, and resumed sessions. Connections by protocol after ALPN.
  std::atomic<uint64_t> accepted_tls{0}, tls_handshakes[2] = {}, tls_handshake_errors{0}, tls_resumed{0};
  std::atomic<uint64_t> http2_connections_active{0}, http2_connections_total{0}, http2_streams_total{0};
  std::atomic<uint64_t> http2_resets_refused{0};
  // Mirrored requests (mirror.h): answered by the mirror backend, failed or
  // timed out, and not sent (body not at hand, no endpoint, too many in flight).
  std::atomic<uint64_t> mirrors_sent{0}, mirrors_failed{0}, mirrors_skipped{0};  // streams refused or connections closed for abuse (rapid reset, floods)
};

class Worker {
 public:
  Worker(int index, const ProxyConfig& cfg, TablePublisher& pub);
  ~Worker();
  // Opens the listener; false with `err` set on failure.
  bool listen(std::string& err);
  // TLS: the context for the HTTPS listener (set before listen()).
  void set_tls(tls::TlsServer* t) { tls_ = t; }
  tls::TlsServer* tls() { return tls_; }
  void run();        // until stop() and drained
  void stop();       // from any thread: begin graceful shutdown
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  const WorkerStats& stats() const { return stats_; }

  // ---- used by connections ----
  const ProxyConfig& cfg;
  int64_t now_ms() const { return now_; }
  TableRef* table() { return current_; }
  void release_table(TableRef* t);
  // A pooled connection to `ep`, or a new one (always new when `fresh`).
  UpstreamConn* acquire_upstream(const routing::EndpointAddr& ep, int& err, bool fresh = false);
  void redrive_later(ClientConn* c);
  // Arms (or moves earlier) the connection's timer; see timer_heap.h.
  void arm_timer(ClientConn* c, int64_t at);
  // Shared with the other workers: the process-wide connection count (for
  // --max-connections; touched on accept and close only) and the access log.
  void set_shared(std::atomic<int>* connections, AccessLog* log) {
    connections_ = connections;
    access_log_ = log;
  }
  RouteCounters& route_counters(TableRef* t, uint32_t id);
  // Sums this worker's request metrics by label set (admin thread).
  void collect_metrics(std::map<std::string, RouteTotals>& out);
  AccessLog* access_log() { return access_log_; }
  // Appends one access-log line (complete, with its newline).
  std::string& log_buffer() { return log_buf_; }
  void flush_log();
  uint64_t next_random();  // per-worker, not cryptographic (request ids)
  // Passive health, per worker: an endpoint that fails `eject_after_failures`
  // times in a row gets no requests for `eject_ms`.
  bool endpoint_ejected(const routing::EndpointAddr& ep) const;
  void endpoint_failed(const routing::EndpointAddr& ep);
  void endpoint_ok(const routing::EndpointAddr& ep);
  // Upstream failures by service and endpoint (only on the failure path).
  enum UpstreamEvent { kConnectError, kTimeout, kReset, kRetry, kEjection, kUpstreamEvents };
  void count_upstream(const routing::Backend* b, const routing::EndpointAddr* ep, UpstreamEvent ev);
  using UpstreamEventCounts = std::map<std::pair<std::string, std::string>, std::array<uint64_t, kUpstreamEvents>>;
  void collect_upstream_events(UpstreamEventCounts& out);
  void release_upstream(UpstreamConn* u, bool reusable);
  void close_upstream(UpstreamConn* u);
  void close_client(ClientConn* c);
  // Sends a copy of a request to `mirror`'s backend (see mirror.h); `body`
  // is the whole request body, or null when it is not at hand (then the
  // request is not mirrored).
  void start_mirror(const routing::Backend& backend, TableRef* t, std::string_view head, const std::string_view* body,
                    bool is_head);
  void mirror_done(MirrorRequest* m);  // from the mirror itself
  static constexpr size_t kMaxMirrors = 1024;  // in flight per worker; more are skipped
  // A stream connection for HTTP/2 stream `id` of `parent` (see h2_session.h).
  ClientConn* add_h2_stream(ClientConn& parent, H2Session* h2, int32_t id);
  http1::RequestHead& scratch_request() { return *req_scratch_; }
  http1::ResponseHead& scratch_response() { return *resp_scratch_; }
  std::string& scratch_string() { return scratch_str_; }
  WorkerStats& mutable_stats() { return stats_; }
  const std::string& date_header() const { return date_; }  // "Date: ...\r\n"
  // The current second as "YYYY-MM-DDTHH:MM:SS" (UTC), for access-log lines.
  const char* iso_second(int64_t sec) {
    if (sec != iso_sec_) {
      iso_sec_ = sec;
      std::tm tm{};
      time_t t = static_cast<time_t>(sec);
      ::gmtime_r(&t, &tm);
      std::strftime(iso_, sizeof iso_, "%Y-%m-%dT%H:%M:%S", &tm);
    }
    return iso_;
  }
  void register_fd(int fd, IoHandler* h);

 private:
  void accept_all(bool tls);
  bool open_listener(uint16_t port, int& fd, IoHandler* h, std::string& err);
  void refresh_table();
  void run_timers();
  void expire_idle_upstreams();
  void update_clock();
  void remove_idle(UpstreamConn* u);

  struct ListenerHandler final : IoHandler {
    Worker* w;
    bool tls = false;
    void on_io(uint32_t) override { w->accept_all(tls); }
  };

  int index_;
  TablePublisher& pub_;
  int epfd_ = -1;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd to interrupt epoll_wait on stop()
  ListenerHandler listener_;
  int tls_listen_fd_ = -1;
  ListenerHandler tls_listener_;
  tls::TlsServer* tls_ = nullptr;
  struct WakeHandler final : IoHandler {
    void on_io(uint32_t) override {}
  } wake_;
  std::atomic<bool> stopping_{false};
  int64_t now_ = 0;
  int64_t next_sweep_ = 0;
  int64_t last_date_sec_ = -1;
  int64_t iso_sec_ = -1;
  char iso_[32] = {};
  std::string date_;
  uint64_t gen_ = ~0ull;
  TableRef* current_ = nullptr;
  std::vector<TableRef*> retired_;
  std::vector<ClientConn*> clients_;  // all open client connections (index stored in the conn)
  TimerHeap<ClientConn> timers_;      // their deadlines
  std::unordered_map<EndpointKey, std::vector<UpstreamConn*>, EndpointKeyHash> idle_;
  std::vector<UpstreamConn*> graveyard_;  // closed during this iteration, freed after it
  std::vector<ClientConn*> client_graveyard_;
  std::vector<MirrorRequest*> mirrors_;  // in flight
  std::vector<MirrorRequest*> mirror_graveyard_;  // finished in this iteration, freed after it
  void expire_mirrors();
  std::vector<ClientConn*> redrive_;
  struct Health {
    int failures = 0;
    int64_t ejected_until = 0;
  };
  std::unordered_map<EndpointKey, Health, EndpointKeyHash> health_;  // only endpoints with recent failures
  std::atomic<int>* connections_ = nullptr;
  AccessLog* access_log_ = nullptr;
  std::string log_buf_;
  uint64_t rng_state_ = 0;
  std::mutex metrics_mu_;  // current_/retired_ changes, counter allocation, archive_
  std::map<std::string, RouteTotals> archive_;  // metrics of tables no longer in use
  UpstreamEventCounts upstream_events_;
  void retire_metrics(TableRef* t);
  std::unique_ptr<http1::RequestHead> req_scratch_;
  std::unique_ptr<http1::ResponseHead> resp_scratch_;
  std::string scratch_str_;
  WorkerStats stats_;
  friend class ClientConn;
};

// The worker's passive health, as the endpoint picker sees it.
struct WorkerHealth final : EndpointHealth {
  explicit WorkerHealth(const Worker& worker) : w(worker) {}
  bool ejected(const routing::EndpointAddr& ep) const override { return w.endpoint_ejected(ep); }
  const Worker& w;
};

}  // namespace ingressd
