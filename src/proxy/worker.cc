#include "proxy/worker.h"

#include "proxy/mirror.h"
#include "proxy/endpoint_picker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "core/log.h"
#include "core/sockaddr.h"
#include "proxy/session.h"

namespace ingressd {

// ---------------- UpstreamConn ----------------

UpstreamConn::UpstreamConn(Worker& w, int fd_, const routing::EndpointAddr& ep)
    : worker(w), fd(fd_), key(EndpointKey::of(ep)) {
  addr_text = ep.text;
}

UpstreamConn::~UpstreamConn() {
  if (fd >= 0) ::close(fd);
}

void UpstreamConn::on_io(uint32_t events) {
  if (fd < 0) return;  // closed earlier in this loop iteration
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) can_read = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) can_write = true;
  if (connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int e = 0;
    socklen_t len = sizeof e;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = errno;
    if (e != 0) error = e;
    else {
      connecting = false;
      can_write = true;
      progress = worker.now_ms();
    }
  }
  if (!owner) {
    // Idle in the pool: the upstream closed it, or sent bytes nobody asked for.
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) worker.close_upstream(this);
    return;
  }
  owner->on_upstream_event();
}

// ---------------- Worker ----------------

Worker::Worker(int index, const ProxyConfig& c, TablePublisher& pub)
    : cfg(c), index_(index), pub_(pub), req_scratch_(std::make_unique<http1::RequestHead>()),
      resp_scratch_(std::make_unique<http1::ResponseHead>()) {
  listener_.w = this;
  tls_listener_.w = this;
  tls_listener_.tls = true;
  rng_state_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               (static_cast<uint64_t>(index_ + 1) << 56) ^ reinterpret_cast<uintptr_t>(this);
  log_buf_.reserve(64 * 1024);
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  register_fd(wake_fd_, &wake_);
  update_clock();
}

Worker::~Worker() {
  flush_log();
  while (!clients_.empty()) close_client(clients_.back());  // closes the upstreams they own
  for (MirrorRequest* m : std::vector<MirrorRequest*>(mirrors_)) m->expire(INT64_MAX);
  for (MirrorRequest* m : mirror_graveyard_) delete m;

  for (auto& [_, v] : idle_)
    for (UpstreamConn* u : v) delete u;
  for (auto* u : graveyard_) delete u;
  for (auto* c : client_graveyard_) delete c;
  if (current_) delete current_;
  for (TableRef* t : retired_) delete t;
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (tls_listen_fd_ >= 0) ::close(tls_listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epfd_ >= 0) ::close(epfd_);
}

void Worker::register_fd(int fd, IoHandler* h) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = h;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

bool Worker::listen(std::string& err) {
  if (!open_listener(cfg.http_port, listen_fd_, &listener_, err)) return false;
  if (tls_ && cfg.https_port && !open_listener(cfg.https_port, tls_listen_fd_, &tls_listener_, err)) return false;
  return true;
}

bool Worker::open_listener(uint16_t port, int& fd, IoHandler* h, std::string& err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!parse_sockaddr(cfg.bind, port, ss, len)) {
    err = "invalid --bind address " + cfg.bind;
    return false;
  }
  int one = 1;
  if (index_ == 0) {
    // SO_REUSEPORT would let us share the port with a stale process of the
    // same user without a word; bind once without it to find out.
    int probe = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = ::bind(probe, reinterpret_cast<sockaddr*>(&ss), len);
    int e = errno;
    ::close(probe);
    if (r != 0) {
      err = std::string("cannot listen on ") + cfg.bind + ":" + std::to_string(port) + ": " + std::strerror(e);
      return false;
    }
  }
  fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    err = std::string("cannot listen on ") + cfg.bind + ":" + std::to_string(port) + ": " + std::strerror(errno);
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = h;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  return true;
}

void Worker::update_clock() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  now_ = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
  timespec rt;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &rt);
  if (rt.tv_sec != last_date_sec_) {
    last_date_sec_ = rt.tv_sec;
    std::tm tm{};
    ::gmtime_r(&rt.tv_sec, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date_.assign(buf, n);
  }
}

void Worker::refresh_table() {
  uint64_t g = pub_.generation();
  if (g == gen_) return;
  auto t = pub_.current(&gen_);
  if (!t) return;
  auto* next = new TableRef();
  next->table = std::move(t);
  next->rr.assign(next->table->backends().size(), static_cast<uint32_t>(index_));
  next->backend_inflight.assign(next->table->backends().size(), 0);
  next->n_stats = next->table->stat_labels().size();
  next->stats = std::make_unique<std::atomic<RouteCounters*>[]>(next->n_stats);
  std::lock_guard<std::mutex> g_(metrics_mu_);
  if (current_) {
    if (current_->inflight == 0) retire_metrics(current_);
    else {
      current_->retired = true;
      retired_.push_back(current_);
    }
  }
  current_ = next;
}

// Folds a table's counters into the archive and frees it (metrics_mu_ held).
void Worker::retire_metrics(TableRef* t) {
  const auto& labels = t->table->stat_labels();
  for (size_t i = 0; i < t->n_stats; ++i)
    if (RouteCounters* c = t->stats[i].load(std::memory_order_relaxed)) archive_[labels[i]].add(*c);
  delete t;
}

RouteCounters& Worker::route_counters(TableRef* t, uint32_t id) {
  if (id >= t->n_stats) id = 0;
  RouteCounters* c = t->stats[id].load(std::memory_order_acquire);
  if (c) return *c;
  std::lock_guard<std::mutex> g(metrics_mu_);
  c = new RouteCounters();
  t->stats[id].store(c, std::memory_order_release);
  return *c;
}

void Worker::collect_metrics(std::map<std::string, RouteTotals>& out) {
  std::lock_guard<std::mutex> g(metrics_mu_);
  for (auto& [k, v] : archive_) out[k].add(v);
  auto add = [&](TableRef* t) {
    const auto& labels = t->table->stat_labels();
    for (size_t i = 0; i < t->n_stats; ++i)
      if (RouteCounters* c = t->stats[i].load(std::memory_order_acquire)) out[labels[i]].add(*c);
  };
  if (current_) add(current_);
  for (TableRef* t : retired_) add(t);
}

void Worker::flush_log() {
  if (log_buf_.empty() || !access_log_) return;
  access_log_->submit(std::move(log_buf_));
  log_buf_ = std::string();
  log_buf_.reserve(64 * 1024);
}

uint64_t Worker::next_random() {
  // splitmix64
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void Worker::release_table(TableRef* t) {
  if (!t) return;
  if (--t->inflight == 0 && t->retired) {
    std::lock_guard<std::mutex> g(metrics_mu_);
    for (size_t i = 0; i < retired_.size(); ++i) {
      if (retired_[i] == t) {
        retired_[i] = retired_.back();
        retired_.pop_back();
        break;
      }
    }
    retire_metrics(t);
  }
}

void Worker::accept_all(bool tls) {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd = ::accept4(tls ? tls_listen_fd_ : listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) log_warn("worker {}: out of file descriptors; connection refused", index_);
      return;
    }
    if (cfg.max_connections > 0 && connections_ &&
        connections_->load(std::memory_order_relaxed) >= cfg.max_connections) {
      // Refused cleanly: a short answer instead of a reset, then close.
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\n"
          "503 too many connections";
      if (!tls) [[maybe_unused]] ssize_t w = ::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      stats_.connections_refused.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL* ssl = nullptr;
    if (tls) {
      ssl = tls_->new_ssl(fd);
      if (!ssl) {
        ::close(fd);
        stats_.tls_handshake_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    auto* c = new ClientConn(*this, fd, peer, ssl);
    c->list_index = clients_.size();
    clients_.push_back(c);
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    if (tls) stats_.accepted_tls.fetch_add(1, std::memory_order_relaxed);
    stats_.active_connections.fetch_add(1, std::memory_order_relaxed);
    if (connections_) connections_->fetch_add(1, std::memory_order_relaxed);
    register_fd(fd, c);
    timers_.arm(c, c->next_deadline());
  }
}

UpstreamConn* Worker::acquire_upstream(const routing::EndpointAddr& ep, int& err, bool fresh) {
  EndpointKey key = EndpointKey::of(ep);
  auto it = fresh ? idle_.end() : idle_.find(key);
  if (it != idle_.end() && !it->second.empty()) {
    UpstreamConn* u = it->second.back();
    it->second.pop_back();
    stats_.pool_idle.fetch_sub(1, std::memory_order_relaxed);
    stats_.pool_active.fetch_add(1, std::memory_order_relaxed);
    u->reused = true;
    u->deadline = 0;
    return u;
  }
  int fd = ::socket(ep.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = errno;
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&ep.sa), ep.len);
  if (r != 0 && errno != EINPROGRESS) {
    err = errno;
    ::close(fd);
    return nullptr;
  }
  auto* u = new UpstreamConn(*this, fd, ep);
  stats_.pool_active.fetch_add(1, std::memory_order_relaxed);
  u->connecting = r != 0;
  u->can_write = r == 0;
  register_fd(fd, u);
  return u;
}

void Worker::remove_idle(UpstreamConn* u) {
  auto it = idle_.find(u->key);
  if (it == idle_.end()) return;
  // Erased in place: each list stays in release order, oldest (first to
  // expire) in front, which is what expire_idle_upstreams() relies on.
  auto& v = it->second;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == u) {
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
}

void Worker::release_upstream(UpstreamConn* u, bool reusable) {
  if (!u) return;
  auto& v = idle_[u->key];
  if (!reusable || stopping() || static_cast<int>(v.size()) >= cfg.upstream_max_idle_per_endpoint) {
    close_upstream(u);
    return;
  }
  u->owner = nullptr;
  stats_.pool_active.fetch_sub(1, std::memory_order_relaxed);
  stats_.pool_idle.fetch_add(1, std::memory_order_relaxed);
  u->deadline = now_ + cfg.upstream_idle_timeout_ms;
  u->in.release_if_empty();
  u->out.release_if_empty();
  v.push_back(u);
}

void Worker::close_upstream(UpstreamConn* u) {
  if (u->fd < 0) return;
  if (!u->owner) {
    remove_idle(u);
    stats_.pool_idle.fetch_sub(1, std::memory_order_relaxed);
  } else {
    stats_.pool_active.fetch_sub(1, std::memory_order_relaxed);
  }
  u->owner = nullptr;
  ::close(u->fd);  // also removes it from epoll
  u->fd = -1;
  graveyard_.push_back(u);
}

void Worker::close_client(ClientConn* c) {
  size_t i = c->list_index;
  if (i >= clients_.size() || clients_[i] != c) return;  // already closed
  // Off the list first: detaching an HTTP/2 connection closes its streams.
  clients_[i] = clients_.back();
  clients_[i]->list_index = i;
  clients_.pop_back();
  c->list_index = SIZE_MAX;
  timers_.cancel(c);
  if (c->queued) {
    for (size_t k = 0; k < redrive_.size(); ++k)
      if (redrive_[k] == c) {
        redrive_[k] = redrive_.back();
        redrive_.pop_back();
        break;
      }
    c->queued = false;
  }
  if (!c->is_stream()) {
    stats_.active_connections.fetch_sub(1, std::memory_order_relaxed);
    if (connections_) connections_->fetch_sub(1, std::memory_order_relaxed);
  }
  client_graveyard_.push_back(c);
  c->detach();
}

ClientConn* Worker::add_h2_stream(ClientConn& parent, H2Session* h2, int32_t id) {
  auto* c = new ClientConn(*this, parent, h2, id);
  c->list_index = clients_.size();
  clients_.push_back(c);
  timers_.arm(c, c->next_deadline());
  return c;
}

bool Worker::endpoint_ejected(const routing::EndpointAddr& ep) const {
  if (health_.empty()) return false;  // the usual case costs one test
  auto it = health_.find(EndpointKey::of(ep));
  return it != health_.end() && it->second.ejected_until > now_;
}

void Worker::endpoint_failed(const routing::EndpointAddr& ep) {
  Health& h = health_[EndpointKey::of(ep)];
  if (h.ejected_until > now_) return;
  if (++h.failures >= cfg.eject_after_failures && cfg.eject_after_failures > 0) {
    h.ejected_until = now_ + cfg.eject_ms;
    h.failures = 0;
    stats_.endpoint_ejections.fetch_add(1, std::memory_order_relaxed);
    count_upstream(nullptr, &ep, kEjection);
    log_warn("worker {}: endpoint {} ejected for {} ms after {} failures in a row", index_, ep.text, cfg.eject_ms,
             cfg.eject_after_failures);
  }
}

void Worker::count_upstream(const routing::Backend* b, const routing::EndpointAddr* ep, UpstreamEvent ev) {
  std::lock_guard<std::mutex> g(metrics_mu_);
  auto& counts = upstream_events_[{b ? b->namespace_ + "/" + b->service : std::string(), ep ? ep->text : std::string()}];
  ++counts[ev];
}

void Worker::collect_upstream_events(UpstreamEventCounts& out) {
  std::lock_guard<std::mutex> g(metrics_mu_);
  for (auto& [k, v] : upstream_events_) {
    auto& dst = out[k];
    for (int i = 0; i < kUpstreamEvents; ++i) dst[i] += v[i];
  }
}

void Worker::endpoint_ok(const routing::EndpointAddr& ep) {
  if (health_.empty()) return;
  auto it = health_.find(EndpointKey::of(ep));
  if (it != health_.end() && it->second.ejected_until <= now_) health_.erase(it);
}

void Worker::redrive_later(ClientConn* c) {
  if (c->queued) return;
  c->queued = true;
  redrive_.push_back(c);
}

void Worker::arm_timer(ClientConn* c, int64_t at) { timers_.arm(c, at); }

void Worker::run_timers() {
  // Only the connections that are due; each is armed again for its next
  // deadline (on_timer may close it, or others, meanwhile).
  while (ClientConn* c = timers_.pop_due(now_)) {
    c->on_timer(now_);
    if (c->list_index != SIZE_MAX && c->timer_index == SIZE_MAX)
      timers_.arm(c, std::max(c->next_deadline(), now_ + 1));
  }
}

void Worker::expire_idle_upstreams() {
  // Each endpoint's idle list is in release order (the oldest in front) and
  // every connection in it got the same idle timeout, so the expired ones
  // are a prefix: the cost is per endpoint, not per idle connection.
  std::vector<UpstreamConn*> expired;
  for (auto& [_, v] : idle_) {
    size_t k = 0;
    while (k < v.size() && v[k]->deadline && now_ >= v[k]->deadline) expired.push_back(v[k++]);
  }
  for (UpstreamConn* u : expired) close_upstream(u);
}

void Worker::start_mirror(const routing::Backend& backend, TableRef* t, std::string_view head,
                          const std::string_view* body, bool is_head) {
  if (!body || backend.endpoints.empty() || mirrors_.size() >= kMaxMirrors || stopping()) {
    stats_.mirrors_skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const routing::EndpointAddr& ep = backend.endpoints[first_endpoint(backend, t->rr[backend.id], WorkerHealth{*this})];
  auto* m = new MirrorRequest(*this);
  m->index = mirrors_.size();
  mirrors_.push_back(m);
  const int64_t deadline = now_ + cfg.upstream_connect_timeout_ms + cfg.upstream_read_timeout_ms;
  if (!m->start(ep, head, *body, is_head, deadline) && !m->done()) {
    // No socket at all (refused at once on loopback): a failed mirror.
    m->expire(INT64_MAX);
  }
}

void Worker::mirror_done(MirrorRequest* m) {
  size_t i = m->index;
  if (i < mirrors_.size() && mirrors_[i] == m) {
    mirrors_[i] = mirrors_.back();
    mirrors_[i]->index = i;
    mirrors_.pop_back();
  }
  mirror_graveyard_.push_back(m);
}

void Worker::expire_mirrors() {
  for (size_t i = mirrors_.size(); i-- > 0;)
    if (i < mirrors_.size()) mirrors_[i]->expire(now_);
}

void Worker::stop() {
  stopping_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, sizeof one);
}

void Worker::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int64_t stop_deadline = 0;
  for (;;) {
    int timeout = 0;
    if (redrive_.empty()) {
      // Until the next connection deadline, and at least every 250 ms for the
      // housekeeping (log flush, buffer cache, idle upstreams).
      const int64_t next = std::min(timers_.next(), next_sweep_);
      timeout = next <= now_ ? 0 : static_cast<int>(std::min<int64_t>(next - now_, 250));
    }
    int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout);
    update_clock();
    refresh_table();
    for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
    if (!redrive_.empty()) {
      std::vector<ClientConn*> batch;
      batch.swap(redrive_);
      for (ClientConn* c : batch) {
        c->queued = false;
        if (c->list_index != SIZE_MAX) c->resume();
      }
    }
    run_timers();
    if (now_ >= next_sweep_) {
      next_sweep_ = now_ + 250;
      flush_log();
      expire_idle_upstreams();
      expire_mirrors();
      BlockCache::sweep();
    }
    for (MirrorRequest* m : mirror_graveyard_) delete m;
    mirror_graveyard_.clear();
    for (UpstreamConn* u : graveyard_) delete u;
    graveyard_.clear();
    for (ClientConn* c : client_graveyard_) delete c;
    client_graveyard_.clear();
    if (stopping()) {
      if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        if (tls_listen_fd_ >= 0) ::close(tls_listen_fd_);
        tls_listen_fd_ = -1;
        stop_deadline = now_ + cfg.shutdown_grace_ms;
      }
      // Idle keep-alive connections close now; busy ones after their response.
      std::vector<ClientConn*> snapshot = clients_;
      for (ClientConn* c : snapshot) {
        if (c->list_index == SIZE_MAX) continue;
        if (!c->idle()) c->begin_shutdown();
        else if (c->close_when_idle()) close_client(c);
      }
      for (ClientConn* c : client_graveyard_) delete c;
      client_graveyard_.clear();
      if (clients_.empty() || now_ >= stop_deadline) break;
    }
  }
}

}  // namespace ingressd
