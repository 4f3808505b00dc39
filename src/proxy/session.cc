// A client connection: the socket and TLS, the drive loop, tunnels, timers
// and HTTP/2 hosting. The exchange itself is in exchange.cc.
#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <cstring>

#include "proxy/socket_io.h"
#include "tls/tls_server.h"

namespace ingressd {

ClientConn::ClientConn(Worker& w, int fd, const sockaddr_storage& peer, SSL* ssl)
    : w_(w), fd_(fd), ssl_(ssl), hs_done_(ssl == nullptr), secure_(ssl != nullptr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, buf, sizeof buf);
  } else if (peer.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, buf, sizeof buf);
  }
  peer_ip_ = buf;
  if (peer.ss_family == AF_INET) {
    client_addr_.family = 4;
    std::memcpy(client_addr_.bytes, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      client_addr_.family = 4;
      std::memcpy(client_addr_.bytes, a6->s6_addr + 12, 4);
    } else {
      client_addr_.family = 6;
      std::memcpy(client_addr_.bytes, a6->s6_addr, 16);
    }
  }
  client_progress_ = head_started_ = w_.now_ms();
  if (ssl_) tls::TlsServer::watch_raw_reads(ssl_, &ssl_raw_short_read_);
}

ClientConn::ClientConn(Worker& w, ClientConn& parent, H2Session* h2, int32_t stream_id)
    : w_(w), fd_(-1), peer_ip_(parent.peer_ip_), client_addr_(parent.client_addr_), secure_(parent.secure_),
      h2_parent_(h2), stream_id_(stream_id) {
  can_read_ = false;  // its request is handed over by the session
  client_progress_ = head_started_ = w_.now_ms();
}

void ClientConn::wake() {
  if (dead_) return;
  if (in_drive_) again_ = true;
  else w_.redrive_later(this);
}

ClientConn::~ClientConn() {
  h2_.reset();  // its stream connections are closed by detach()
  release_exchange();
  delete ex_;  // one still active (not in the pool)
  if (ssl_) {
    if (hs_done_ && !dead_reset_) SSL_shutdown(ssl_);  // close_notify, best effort (non-blocking)
    SSL_free(ssl_);
  }
  if (fd_ >= 0) ::close(fd_);
}

void ClientConn::on_io(uint32_t events) {
  if (dead_) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) can_read_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    can_write_ = true;
    if (ssl_read_wants_write_) {
      ssl_read_wants_write_ = false;
      can_read_ = true;
    }
  }
  drive();
}

bool ClientConn::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    hs_done_ = true;
    client_progress_ = head_started_ = w_.now_ms();
    WorkerStats& st = w_.mutable_stats();
    st.tls_handshakes[SSL_version(ssl_) == TLS1_3_VERSION ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
    if (SSL_session_reused(ssl_)) st.tls_resumed.fetch_add(1, std::memory_order_relaxed);
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0) start_h2();
    return true;
  }
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      can_read_ = false;
      return true;
    case SSL_ERROR_WANT_WRITE:
      can_write_ = false;
      return true;
    default:
      // Not a TLS client, no common protocol or cipher, a reset mid-way.
      w_.mutable_stats().tls_handshake_errors.fetch_add(1, std::memory_order_relaxed);
      ERR_clear_error();
      dead_reset_ = true;
      return false;
  }
}

void ClientConn::on_upstream_event() {
  if (dead_) return;
  drive();
}

void ClientConn::drive() {
  if (in_drive_) {
    again_ = true;
    return;
  }
  in_drive_ = true;
  int rounds = 0;
  if (!hs_done_) {
    if (!handshake()) dead_ = true;
    if (!hs_done_) {
      in_drive_ = false;
      if (dead_) w_.close_client(this);
      return;
    }
  }
  do {
    again_ = false;
    // A request head may be larger than the flow-control mark: it must fit whole.
    const size_t limit = phase_ == Phase::Head ? std::max(kHigh, w_.cfg.limits.max_head_bytes + 1) : kHigh;
    if (can_read_ && !read_eof_ && in_.size() < limit) {
      size_t before = in_.size();
      if (ssl_ ? !tls_read_into(ssl_, fd_, in_, can_read_, read_eof_, limit, ssl_read_wants_write_,
                                ssl_raw_short_read_, peer_closed_)
               : !read_into(fd_, in_, can_read_, read_eof_, limit, peer_closed_)) {
        dead_reset_ = true;
        dead_ = true;  // reset by peer
        break;
      }
      if (in_.size() != before) {
        client_progress_ = w_.now_ms();
        if (before == 0 && phase_ == Phase::Head) head_started_ = client_progress_;
      }
      else if (before == 0) in_.release_if_empty();  // nothing came: an idle connection holds no buffer
    }
    switch (phase_) {
      case Phase::Head: {
        if (closing_) break;
        if (in_.empty()) {
          if (read_eof_) closing_ = true;
          break;
        }
        if (w_.cfg.h2c && !ssl_ && !is_stream() && sent_total_ == 0 && requests_ == 0 && in_.size() >= 3 &&
            std::memcmp(in_.data(), "PRI", 3) == 0 &&
            std::string_view("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").starts_with(in_.view().substr(0, 24))) {
          if (in_.size() < 24) break;  // the rest of the preface is on its way
          start_h2();  // h2c with prior knowledge (the session reads the preface)
          again_ = true;
          break;
        }
        if (!start_exchange()) break;
        again_ = true;
        break;
      }
      case Phase::Exchange:
        pump_request_body();
        if (phase_ != Phase::Exchange || dead_) break;
        flush_upstream();
        if (phase_ != Phase::Exchange || dead_) break;
        pump_response();
        break;
      case Phase::Tunnel:
        pump_tunnel();
        break;
      case Phase::H2:
        pump_h2();
        break;
    }
    if (dead_) break;
    // Reading stopped at the limit with bytes still in the socket: no new edge
    // will come for them, so go round again once the phase has taken some.
    if (can_read_ && !read_eof_ && !is_stream() && in_.size() < limit) again_ = true;
    size_t before = out_.size();
    flush();
    if (before >= kHigh && out_.size() < kHigh) again_ = true;  // room again for the response
    if (closing_ && out_.empty()) dead_ = true;
  } while (again_ && !dead_ && ++rounds < 64);
  if (again_ && !dead_) w_.redrive_later(this);  // bounded work per event; the rest after this batch
  in_drive_ = false;
  if (dead_) w_.close_client(this);
  else w_.arm_timer(this, next_deadline());
}

void ClientConn::flush() {
  if (is_stream()) {
    // A stream connection writes into its HTTP/2 stream.
    if (!h2_parent_) {
      out_.consume(out_.size());  // the stream is gone
      return;
    }
    size_t before = out_.size();
    if (before == 0 && !ex().active) return;
    h2_parent_->stream_output(stream_id_, out_, can_write_);
    if (out_.size() != before) {
      client_progress_ = w_.now_ms();
      sent_total_ += before - out_.size();
    }
    return;
  }
  if (out_.empty() || !can_write_) return;
  size_t before = out_.size();
  if (ssl_ ? !tls_write_from(ssl_, out_, can_write_, can_read_) : !write_from(fd_, out_, can_write_)) {
    dead_ = true;
    dead_reset_ = true;
    return;
  }
  if (out_.size() != before) {
    client_progress_ = w_.now_ms();
    sent_total_ += before - out_.size();
  }
  if (out_.empty() && phase_ == Phase::Head) {
    out_.release_if_empty();
    if (in_.empty()) {  // idle: hold no buffer and no exchange
      in_.release_if_empty();
      release_exchange();
    }
  }
}

void ClientConn::pump_tunnel() {
  UpstreamConn* u = ex().up;
  if (!u) {
    closing_ = true;
    return;
  }
  if (!in_.empty() && u->out.size() < kHigh) {
    size_t take = std::min(in_.size(), kHigh - u->out.size());
    u->out.append(in_.data(), take);
    in_.consume(take);
  }
  if (!u->out.empty() && u->can_write) {
    size_t before = u->out.size();
    if (!write_from(u->fd, u->out, u->can_write)) u->error = errno;
    if (u->out.size() < before && !in_.empty()) again_ = true;
  }
  if (u->can_read && !u->eof && out_.size() < kHigh) {
    if (!read_into(u->fd, u->in, u->can_read, u->eof, kHigh, u->peer_closed)) u->error = errno ? errno : ECONNRESET;
  }
  if (!u->in.empty()) {
    out_.append(u->in.data(), u->in.size());
    u->in.clear();
  }
  if ((u->can_read && out_.size() < kHigh) || (can_read_ && !read_eof_ && in_.size() < kHigh)) again_ = true;
  // Either side closing ends the tunnel once what it sent is delivered.
  if (u->error || (u->eof && u->in.empty()) || (read_eof_ && in_.empty() && u->out.empty())) {
    abort_exchange();
    closing_ = true;
  }
}

void ClientConn::detach() {
  abort_exchange();
  dead_ = true;
  if (h2_) h2_->close_all();  // its streams go with it
  if (h2_parent_) {
    H2Session* p = h2_parent_;
    h2_parent_ = nullptr;
    p->stream_detached(stream_id_);
  }
}

// When on_timer() may next have something to do: the deadline of what this
// connection waits on now (the same cases as on_timer, in the same order).
// Early is harmless (on_timer finds nothing due and the timer is armed
// again); late would not be. States that on_timer watches by polling (a
// client that does not read, HTTP/2 streams) are looked at every kPollMs.
int64_t ClientConn::next_deadline() const {
  constexpr int64_t kPollMs = 250;
  const ProxyConfig& c = w_.cfg;
  const int64_t now = w_.now_ms();
  if (dead_) return kNoDeadline;
  if (!hs_done_) return head_started_ + c.client_header_timeout_ms;
  if (out_.size() >= kHigh || (!out_.empty() && (!can_write_ || closing_))) return now + kPollMs;
  switch (phase_) {
    case Phase::H2:
      if (h2_->open_streams() > 0 || !out_.empty()) return now + kPollMs;
      return client_progress_ + c.client_idle_timeout_ms;
    case Phase::Head:
      if (closing_) return now;
      if (!in_.empty()) return head_started_ + c.client_header_timeout_ms;
      if (!out_.empty()) return now + kPollMs;
      return client_progress_ + c.client_idle_timeout_ms;
    case Phase::Tunnel:
      return kNoDeadline;  // a tunnel lives as long as both ends keep it
    case Phase::Exchange:
      break;
  }
  const UpstreamConn* u = ex_ ? ex_->up : nullptr;
  if (u && u->connecting) return u->progress + connect_timeout_ms();
  if (!ex_->req_done && in_.empty() && (!u || u->out.empty())) return client_progress_ + c.client_body_timeout_ms;
  if (u) return u->progress + read_timeout_ms();
  return now + kPollMs;
}

int ClientConn::connect_timeout_ms() const {
  const routing::RouteAction* a = ex_ ? ex_->action : nullptr;
  return a && a->connect_timeout_ms > 0 ? a->connect_timeout_ms : w_.cfg.upstream_connect_timeout_ms;
}

int ClientConn::read_timeout_ms() const {
  const routing::RouteAction* a = ex_ ? ex_->action : nullptr;
  if (!a) return w_.cfg.upstream_read_timeout_ms;
  const int read = a->read_timeout_ms > 0 ? a->read_timeout_ms : w_.cfg.upstream_read_timeout_ms;
  return std::max(read, a->send_timeout_ms);
}

// Timeouts are measured from the last progress of whichever side we wait
// on, so a slow upload or a slow reader is never blamed on the upstream.
void ClientConn::on_timer(int64_t now) {
  if (dead_) return;
  const ProxyConfig& c = w_.cfg;
  auto kill = [&] {
    abort_exchange();
    dead_ = true;
    w_.close_client(this);
  };
  if (!hs_done_) {
    // The TLS handshake counts as part of the request head.
    if (now - head_started_ >= c.client_header_timeout_ms) {
      dead_reset_ = true;
      kill();
    }
    return;
  }
  const bool client_blocked = out_.size() >= kHigh || (!out_.empty() && !can_write_);
  if (client_blocked || (closing_ && !out_.empty())) {
    // We cannot write: does the client still read? The socket reports
    // writable only once a large part of its send buffer is free, so a client
    // that reads slowly can go long without an event: the bytes still queued
    // in the kernel tell whether it took any since the last look.
    int unsent = 0;
    if (fd_ >= 0 && ::ioctl(fd_, SIOCOUTQ, &unsent) == 0) {
      if (unsent < last_outq_) client_progress_ = now;
      last_outq_ = unsent;
    }
    if (now - client_progress_ >= c.client_send_timeout_ms) kill();
    return;
  }
  last_outq_ = INT32_MAX;
  switch (phase_) {
    case Phase::H2:
      // Streams time themselves (a response the client will not take is reset
      // after the send timeout); the connection closes when idle.
      h2_->sweep(now, c.client_send_timeout_ms);
      if (h2_->open_streams() == 0 && out_.empty() && now - client_progress_ >= c.client_idle_timeout_ms) kill();
      return;
    case Phase::Head:
      if (closing_) return kill();
      if (in_.empty()) {
        if (out_.empty() && now - client_progress_ >= c.client_idle_timeout_ms) kill();  // idle keep-alive
      } else if (now - head_started_ >= c.client_header_timeout_ms) {
        send_error(408, "the request head did not arrive in time", true);
        drive();
      }
      return;
    case Phase::Tunnel:
      return;  // a tunnel lives as long as both ends keep it
    case Phase::Exchange:
      break;
  }
  UpstreamConn* u = ex().up;
  if (u && u->connecting) {
    if (now - u->progress >= connect_timeout_ms()) {
      upstream_failed("timed out connecting to the backend", true);
      drive();
    }
    return;
  }
  if (!ex().req_done && in_.empty() && (!u || u->out.empty())) {
    // Waiting for the rest of the request body.
    if (now - client_progress_ >= c.client_body_timeout_ms) {
      if (!ex().resp_started) send_error(408, "the request body did not arrive in time", true);
      else kill();
      if (!dead_) drive();
    }
    return;
  }
  // Waiting on the upstream only when everything it sent has been taken:
  // bytes held back for a slow client are the client's delay (covered by the
  // send timeout above), not the upstream's.
  if (u && (!u->in.empty() || u->can_read)) {
    u->progress = now;
    return;
  }
  if (u && now - u->progress >= read_timeout_ms()) {
    upstream_failed("the backend did not answer in time", true);
    drive();
  }
}

void ClientConn::start_h2() {
  release_exchange();  // the connection itself serves no exchange from now on
  H2Limits lim;
  lim.max_header_list_bytes = w_.cfg.limits.max_head_bytes;
  lim.max_concurrent_streams = w_.cfg.h2_max_concurrent_streams;
  h2_ = std::make_unique<H2Session>(w_, *this, lim);
  phase_ = Phase::H2;
  client_progress_ = w_.now_ms();
}

// The HTTP/2 connection: client bytes into the session, its frames out.
void ClientConn::pump_h2() {
  if (!in_.empty()) {
    client_progress_ = w_.now_ms();
    if (!h2_->on_input(in_)) closing_ = true;  // GOAWAY is queued; close once it is out
  }
  if (dead_) return;
  if (w_.stopping() && !goaway_sent_) {
    goaway_sent_ = true;
    h2_->shutdown();
  }
  h2_->produce(out_, kHigh);
  if (h2_->wants_output() && out_.size() < kHigh) again_ = true;
  if (h2_->finished() || (read_eof_ && in_.empty())) closing_ = true;
  if (out_.size() >= kHigh && can_write_) again_ = true;  // flush, then produce more
}

void ClientConn::begin_shutdown() {
  if (phase_ != Phase::H2 || goaway_sent_) return;
  goaway_sent_ = true;  // no new streams; those in progress finish
  h2_->shutdown();
  wake();
}

bool ClientConn::close_when_idle() {
  if (phase_ != Phase::H2) return true;
  if (!goaway_sent_) {
    goaway_sent_ = true;
    h2_->shutdown();
    closing_ = true;  // once the GOAWAY is out
    wake();
  }
  return false;
}

void ClientConn::resume() {
  if (!dead_) drive();
}

}  // namespace ingressd
