#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <cstring>
#include <strings.h>

#include "core/strings.h"
#include "observe/metrics.h"

#include <fmt/format.h>
#include <ctime>
#include "proxy/responses.h"
#include "tls/tls_server.h"
#include "routing/path.h"

namespace ingressd {
namespace {

int64_t mono_us() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// Stop reading a side whose output is this far behind: bounds the memory of a
// busy connection (about 2 × 64 KiB per direction) while keeping the pipe full.
constexpr size_t kHigh = 64 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

// Reads until EAGAIN, EOF or a short read (which in edge-triggered mode
// means the socket is drained: a later arrival raises a new edge).
// Returns false on a hard error.
// When the peer has closed its side (EPOLLRDHUP), data and FIN may come in
// one edge: then read on until read() says 0.
bool read_into(int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool peer_closed) {
  while (can_read && b.size() < limit) {
    char* p = b.prepare(kReadChunk);
    size_t room = b.tail_room();
    ssize_t n = ::read(fd, p, room);
    if (n > 0) {
      b.commit(static_cast<size_t>(n));
      if (static_cast<size_t>(n) < room && !peer_closed) can_read = false;
      continue;
    }
    if (n == 0) {
      eof = true;
      can_read = false;
      return true;
    }
    if (errno == EINTR) continue;
    can_read = false;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    eof = true;
    return false;
  }
  return true;
}

// Writes what it can. Returns false on a hard error.
bool write_from(int fd, Buffer& b, bool& can_write) {
  while (!b.empty() && can_write) {
    ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bool partial = static_cast<size_t>(n) < b.size();
      b.consume(static_cast<size_t>(n));
      if (partial) can_write = false;  // the socket buffer is full; EPOLLOUT will tell
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      can_write = false;
      return true;
    }
    return false;
  }
  return true;
}

// The same over TLS. SSL_read returns one record at a time, so "short read
// means drained" holds only for OpenSSL's own raw reads (read-ahead on): the
// socket BIO's callback sets `raw_short` (TlsServer::watch_raw_reads). Once
// OpenSSL holds nothing more and its last raw read was short, the socket is
// drained, as in read_into(): one read() per request, not three.
//
// OpenSSL frees its 16 KiB read buffer (SSL_MODE_RELEASE_BUFFERS) once a
// record is consumed, but allocates it again for a read that then finds the
// socket empty. So when OpenSSL holds nothing and cannot tell, ask the socket
// (MSG_PEEK) instead: an idle TLS connection then holds no OpenSSL buffer.
bool tls_read_into(SSL* ssl, int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool& wants_write,
                   bool& raw_short, bool peer_closed) {
  while (can_read && b.size() < limit) {
    char* p = b.prepare(kReadChunk);
    size_t room = b.tail_room();
    ERR_clear_error();
    raw_short = false;
    int n = SSL_read(ssl, p, static_cast<int>(std::min<size_t>(room, 1 << 30)));
    if (n > 0) {
      b.commit(static_cast<size_t>(n));
      if (!SSL_has_pending(ssl)) {
        if (raw_short && !peer_closed) {
          can_read = false;
          return true;
        }
        char c;
        ssize_t r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          can_read = false;
          return true;
        }
      }
      continue;
    }
    switch (SSL_get_error(ssl, n)) {
      case SSL_ERROR_WANT_READ:
        can_read = false;
        return true;
      case SSL_ERROR_WANT_WRITE:
        can_read = false;
        wants_write = true;
        return true;
      case SSL_ERROR_ZERO_RETURN:  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
        eof = true;
        can_read = false;
        return true;
      default:
        eof = true;
        can_read = false;
        return false;
    }
  }
  return true;
}

bool tls_write_from(SSL* ssl, Buffer& b, bool& can_write, bool& can_read) {
  while (!b.empty() && can_write) {
    ERR_clear_error();
    int n = SSL_write(ssl, b.data(), static_cast<int>(std::min<size_t>(b.size(), 1 << 30)));
    if (n > 0) {
      b.consume(static_cast<size_t>(n));
      continue;
    }
    switch (SSL_get_error(ssl, n)) {
      case SSL_ERROR_WANT_WRITE:
        can_write = false;
        return true;
      case SSL_ERROR_WANT_READ:
        can_read = true;  // rare (a TLS 1.3 post-handshake message): the next read makes progress
        return true;
      default:
        return false;
    }
  }
  return true;
}

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

void append_chunk(Buffer& out, const char* p, size_t n) {
  char hdr[24];
  size_t h = http1::chunk_header(hdr, n);
  char* dst = out.prepare(h + n + 2);
  std::memcpy(dst, hdr, h);
  std::memcpy(dst + h, p, n);
  dst[h + n] = '\r';
  dst[h + n + 1] = '\n';
  out.commit(h + n + 2);
}

}  // namespace

namespace {
// Exchanges no connection uses, per thread (each worker is one thread).
struct ExchangePool {
  std::vector<ClientConn::Exchange*> free;
  ~ExchangePool() {
    for (auto* e : free) delete e;
  }
};
thread_local ExchangePool t_exchanges;
constexpr size_t kMaxPooledExchanges = 1024;
}  // namespace

ClientConn::Exchange* ClientConn::take_exchange() {
  auto& f = t_exchanges.free;
  if (f.empty()) return new Exchange();
  Exchange* e = f.back();
  f.pop_back();
  return e;
}

void ClientConn::release_exchange() {
  if (!ex_ || ex_->active) return;
  auto& f = t_exchanges.free;
  if (f.size() < kMaxPooledExchanges && ex_->head.capacity() <= 16 * 1024) {
    // Back to a fresh state, keeping the strings' capacity.
    Exchange& e = *ex_;
    static_cast<ExchangeState&>(e) = ExchangeState();
    for (std::string* str : {&e.head, &e.request_id, &e.log_method, &e.log_host, &e.log_target, &e.host, &e.norm_path})
      str->clear();
    f.push_back(ex_);
  } else {
    delete ex_;
  }
  ex_ = nullptr;
}

ClientConn::ClientConn(Worker& w, int fd, const sockaddr_storage& peer, SSL* ssl)
    : w_(w), fd_(fd), ssl_(ssl), hs_done_(ssl == nullptr), secure_(ssl != nullptr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, buf, sizeof buf);
  } else if (peer.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, buf, sizeof buf);
  }
  peer_ip_ = buf;
  client_progress_ = head_started_ = w_.now_ms();
  if (ssl_) tls::TlsServer::watch_raw_reads(ssl_, &ssl_raw_short_read_);
}

ClientConn::ClientConn(Worker& w, ClientConn& parent, H2Session* h2, int32_t stream_id)
    : w_(w), fd_(-1), peer_ip_(parent.peer_ip_), secure_(parent.secure_), h2_parent_(h2), stream_id_(stream_id) {
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

// Parses the next request head in `in_` and starts its exchange. Returns
// false when more bytes are needed or the connection is closing.
bool ClientConn::start_exchange() {
  http1::RequestHead& req = w_.scratch_request();
  http1::ParseError err;
  ex().is_head = false;  // an error before the head is parsed answers with a body
  ex().recorded = false;
  ex().stats_id = 0;
  ex().route = nullptr;
  ex().ingress = {};
  ex().method = kOtherMethod;
  ex().upstream_us = -1;
  ex().interim = 0;
  ex().start_us = mono_us();
  ex().out_mark = sent_total_ + out_.size();
  ex().bytes_in = 0;
  ex().request_id.clear();
  ex().backend = nullptr;
  ex().endpoint = nullptr;
  ex().log_method.clear();
  ex().log_host.clear();
  ex().log_target.clear();
  // Only re-parse when a new line ending arrived since the last attempt.
  if (head_scan_ > 0 && head_scan_ <= in_.size() &&
      !std::memchr(in_.data() + head_scan_, '\n', in_.size() - head_scan_)) {
    if (in_.size() > w_.cfg.limits.max_head_bytes) {
      send_error(431, "request header section too large", true);
      return false;
    }
    if (read_eof_) closing_ = true;
    return false;
  }
  long n = http1::parse_request_head(in_.data(), in_.size(), req, err, w_.cfg.limits);
  if (n < 0) {
    send_error(err.status, err.reason, true);
    return false;
  }
  if (n == 0) {
    head_scan_ = in_.size();
    if (read_eof_) closing_ = true;  // the client gave up mid-head
    return false;
  }
  head_scan_ = 0;
  ++requests_;
  w_.mutable_stats().requests.fetch_add(1, std::memory_order_relaxed);
  ex().method = method_index(req.method);
  ex().bytes_in = static_cast<uint64_t>(n);
  if (!req.request_id.empty()) ex().request_id.assign(req.request_id);
  if (w_.access_log() && w_.access_log()->enabled()) {
    ex().log_method.assign(req.method);
    ex().log_host.assign(req.authority.empty() ? req.host : req.authority);
    ex().log_target.assign(req.target);
  }
  const bool has_body = req.framing != http1::Framing::None;
  ex().is_head = req.is_head;
  ex().client_minor = req.minor;
  ex().client_keep_alive = req.keep_alive;

  std::string_view host_src = req.authority.empty() ? req.host : req.authority;
  if (!routing::normalize_host(host_src, ex().host)) {
    in_.consume(static_cast<size_t>(n));
    send_error(400, "invalid Host", true);
    return false;
  }
  std::string_view path = req.path;
  if (path == "*") {
    if (req.method != "OPTIONS") {
      in_.consume(static_cast<size_t>(n));
      send_error(400, "invalid request target", true);
      return false;
    }
    path = "/";
  } else {
    switch (routing::normalize_path(req.path, ex().norm_path)) {
      case routing::PathVerdict::Unchanged: break;
      case routing::PathVerdict::Ok: path = ex().norm_path; break;
      case routing::PathVerdict::EncodedSlash:
        in_.consume(static_cast<size_t>(n));
        send_error(400, "encoded slash or backslash in path", true);
        return false;
      default:
        in_.consume(static_cast<size_t>(n));
        send_error(400, "invalid path", true);
        return false;
    }
  }
  TableRef* t = w_.table();
  if (!t) {
    in_.consume(static_cast<size_t>(n));
    send_error(503, "no configuration loaded yet", has_body || !req.keep_alive);
    return false;
  }
  routing::Match m = t->table->match(ex().host, path);
  ex().stats_id = m.stats_id;
  ex().backend = m.backend;  // for the log and metrics, also when it has no endpoint
  ex().route = m.route;
  ex().ingress = m.route ? std::string_view(m.route->ingress)
                : m.kind == routing::MatchKind::HostDefault ? std::string_view(m.vhost->default_source)
                : m.kind == routing::MatchKind::GlobalDefault ? std::string_view(t->table->global_default_source())
                                                              : std::string_view();
  if (!secure_ && w_.cfg.ssl_redirect && w_.tls() && t->table->has_tls_hosts() && t->table->tls_host(ex().host) &&
      !path.starts_with("/.well-known/acme-challenge/")) {
    redirect_to_https(req, static_cast<size_t>(n));
    return false;
  }
  if (!m.backend) {
    in_.consume(static_cast<size_t>(n));
    send_error(404, "no route matches this request", has_body || !req.keep_alive);
    return false;
  }
  if (m.backend->endpoints.empty()) {
    in_.consume(static_cast<size_t>(n));
    send_error(503, "the backend service has no ready endpoint", has_body || !req.keep_alive);
    return false;
  }
  if (w_.cfg.max_body_bytes && req.framing == http1::Framing::Length && req.content_length > w_.cfg.max_body_bytes) {
    in_.consume(static_cast<size_t>(n));
    send_error(413, "the request body is larger than allowed", true);
    return false;
  }
  if (w_.cfg.max_requests_per_backend > 0 &&
      t->backend_inflight[m.backend->id] >= static_cast<uint32_t>(w_.cfg.max_requests_per_backend)) {
    in_.consume(static_cast<size_t>(n));
    send_error(503, "too many requests in progress for this backend", has_body || !req.keep_alive);
    return false;
  }
  ex().active = true;
  ex().table = t;
  ++t->inflight;
  ++t->backend_inflight[m.backend->id];
  ex().backend = m.backend;
  ex().req_body_bytes = 0;
  ex().attempts = 0;
  ex().retried_stale = false;
  ex().idempotent = is_idempotent(req.method);
  ex().websocket = req.websocket;
  ex().req_framing = req.framing;
  ex().req_remaining = req.content_length;
  ex().req_chunked.reset();
  ex().req_done = !has_body;
  ex().req_body_forwarded = false;
  ex().resp_head_done = ex().resp_any = ex().resp_started = ex().resp_done = false;
  ex().status = 0;
  write_upstream_head(req, path);
  in_.consume(static_cast<size_t>(n));  // `req` views die here
  phase_ = Phase::Exchange;
  uint32_t& rr = t->rr[m.backend->id];
  const size_t neps = m.backend->endpoints.size();
  ex().next_endpoint = rr++ % neps;
  // Skip ejected endpoints; when all are ejected, use them anyway (better a
  // chance than a certain 503).
  for (size_t k = 0; k < neps && w_.endpoint_ejected(m.backend->endpoints[ex().next_endpoint]); ++k)
    ex().next_endpoint = (ex().next_endpoint + 1) % neps;
  connect_upstream();
  return true;
}

void ClientConn::write_upstream_head(const http1::RequestHead& req, std::string_view path) {
  std::string& h = ex().head;
  h.clear();
  h.append(req.method);
  h += ' ';
  if (req.target == "*") h += '*';
  else h.append(path);
  h.append(req.query);
  h.append(" HTTP/1.1\r\n");
  // Host passes unchanged; an HTTP/1.0 request without one gets the authority or nothing.
  if (req.has_host) {
    h.append("Host: ").append(req.host).append("\r\n");
  } else if (!req.authority.empty()) {
    h.append("Host: ").append(req.authority).append("\r\n");
  } else {
    h.append("Host: \r\n");  // RFC 9112 §3.2: no authority → an empty Host
  }
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& f = req.headers[i];
    if (f.flags & (http1::kHopByHop | http1::kXForwarded | http1::kHost)) continue;
    h.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  // X-Forwarded-For is appended to; the others describe this hop and are set by us
  // (a client must not be able to claim it came over https).
  h.append("X-Forwarded-For: ");
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& f = req.headers[i];
    if ((f.flags & http1::kXForwardedFor) && !f.value.empty()) h.append(f.value).append(", ");
  }
  h.append(peer_ip_).append("\r\nX-Real-IP: ").append(peer_ip_);
  h.append(secure_ ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
      .append(host_src_or(req));
  h.append("\r\nX-Forwarded-Port: ")
      .append(fmt::format_int(secure_ ? w_.cfg.https_port : w_.cfg.http_port).c_str())
      .append("\r\n");
  if (ex().request_id.empty()) {
    // X-Request-ID: passed through when the client sent one, else ours.
    static const char* hex = "0123456789abcdef";
    uint64_t a = w_.next_random(), b = w_.next_random();
    ex().request_id.resize(32);
    for (int i = 0; i < 16; ++i) {
      ex().request_id[i] = hex[(a >> (4 * i)) & 15];
      ex().request_id[16 + i] = hex[(b >> (4 * i)) & 15];
    }
    h.append("X-Request-ID: ").append(ex().request_id).append("\r\n");
  }
  switch (req.framing) {
    case http1::Framing::Length:
      h.append("Content-Length: ").append(fmt::format_int(req.content_length).c_str()).append("\r\n");
      break;
    case http1::Framing::Chunked:
      h.append("Transfer-Encoding: chunked\r\n");
      break;
    default:
      if (req.has_content_length) h.append("Content-Length: 0\r\n");
      break;
  }
  if (req.websocket) h.append("Connection: Upgrade\r\nUpgrade: ").append(req.upgrade).append("\r\n");
  h.append("\r\n");
}

std::string_view ClientConn::host_src_or(const http1::RequestHead& req) const {
  if (req.has_host) return req.host;
  return req.authority;
}

void ClientConn::connect_upstream(bool fresh) {
  const auto& eps = ex().backend->endpoints;
  const routing::EndpointAddr& ep = eps[ex().next_endpoint % eps.size()];
  ++ex().attempts;
  ex().endpoint = &ep;
  int err = 0;
  UpstreamConn* u = w_.acquire_upstream(ep, err, fresh);
  if (!u) {
    // Immediate failure (e.g. refused on loopback): same as a failed connect.
    w_.mutable_stats().upstream_connect_errors.fetch_add(1, std::memory_order_relaxed);
    w_.count_upstream(ex().backend, &ep, Worker::kConnectError);
    w_.endpoint_failed(ep);
    if (ex().attempts < std::min<int>(w_.cfg.max_connect_attempts, static_cast<int>(eps.size()))) {
      ex().next_endpoint = (ex().next_endpoint + 1) % eps.size();
      again_ = true;
      return connect_upstream();
    }
    send_error(502, "could not connect to any endpoint of the backend", !ex().req_done || !ex().client_keep_alive);
    return;
  }
  u->owner = this;
  ex().up = u;
  u->progress = w_.now_ms();
  u->out.append(ex().head);
  ex().upstream_start_us = mono_us();
  again_ = true;  // a pooled connection is writable now: no event will say so
}

void ClientConn::upstream_failed(const char* why, bool timeout) {
  UpstreamConn* u = ex().up;
  bool was_connecting = u && u->connecting;
  bool reused = u && u->reused;
  if (u) {
    w_.close_upstream(u);
    ex().up = nullptr;
  }
  if (was_connecting && !timeout) {
    w_.mutable_stats().upstream_connect_errors.fetch_add(1, std::memory_order_relaxed);
    w_.count_upstream(ex().backend, ex().endpoint, Worker::kConnectError);
  }
  if (timeout) {
    w_.mutable_stats().upstream_timeouts.fetch_add(1, std::memory_order_relaxed);
    w_.count_upstream(ex().backend, ex().endpoint, Worker::kTimeout);
  }
  if (!was_connecting && !timeout && !ex().resp_any) {
    w_.mutable_stats().upstream_resets.fetch_add(1, std::memory_order_relaxed);
    w_.count_upstream(ex().backend, ex().endpoint, Worker::kReset);
  }
  // A stale pooled connection says nothing about the endpoint's health.
  if (ex().endpoint && !ex().resp_any && (was_connecting || !reused)) w_.endpoint_failed(*ex().endpoint);
  if (!ex().resp_any && !ex().req_body_forwarded) {
    const size_t n = ex().backend->endpoints.size();
    if (was_connecting && ex().attempts < std::min<int>(w_.cfg.max_connect_attempts, static_cast<int>(n))) {
      // Nothing reached the upstream: try the next endpoint.
      ex().next_endpoint = (ex().next_endpoint + 1) % n;
      w_.mutable_stats().upstream_retries.fetch_add(1, std::memory_order_relaxed);
      w_.count_upstream(ex().backend, ex().endpoint, Worker::kRetry);
      connect_upstream();
      return;
    }
    if (!was_connecting && !timeout && ex().idempotent && !ex().retried_stale) {
      // Reset before any response byte: an idempotent request without a body
      // goes once more, on a fresh connection (another endpoint when the
      // connection was fresh, so it is the endpoint that failed).
      ex().retried_stale = true;
      --ex().attempts;
      if (!reused && n > 1) ex().next_endpoint = (ex().next_endpoint + 1) % n;
      w_.mutable_stats().upstream_retries.fetch_add(1, std::memory_order_relaxed);
      w_.count_upstream(ex().backend, ex().endpoint, Worker::kRetry);
      connect_upstream(/*fresh=*/true);
      return;
    }
  }
  if (!ex().resp_started) {
    send_error(timeout ? 504 : 502, why, true);
  } else {
    abort_exchange();
    dead_ = true;  // the response is cut short: closing is the only honest signal
  }
}

void ClientConn::pump_request_body() {
  UpstreamConn* u = ex().up;
  if (ex().req_done || !u || u->connecting) return;
  bool consumed = false;
  while (!in_.empty() && !ex().req_done && u->out.size() < kHigh) {
    if (ex().req_framing == http1::Framing::Length) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(ex().req_remaining, in_.size()));
      u->out.append(in_.data(), take);
      in_.consume(take);
      ex().bytes_in += take;
      ex().req_remaining -= take;
      if (ex().req_remaining == 0) ex().req_done = true;
    } else {
      auto r = ex().req_chunked.feed(in_.data(), in_.size());
      if (r.status == http1::ChunkedDecoder::Status::Error) {
        if (!ex().resp_started) send_error(400, ex().req_chunked.error(), true);
        else {
          abort_exchange();
          dead_ = true;
        }
        return;
      }
      if (r.status == http1::ChunkedDecoder::Status::Data) {
        ex().req_body_bytes += r.data_len;
        if (w_.cfg.max_body_bytes && ex().req_body_bytes > w_.cfg.max_body_bytes) {
          if (!ex().resp_started) send_error(413, "the request body is larger than allowed", true);
          else {
            abort_exchange();
            dead_ = true;
          }
          return;
        }
        append_chunk(u->out, r.data, r.data_len);
      }
      if (r.status == http1::ChunkedDecoder::Status::Done) {
        u->out.append("0\r\n\r\n", 5);
        ex().req_done = true;
      }
      in_.consume(r.consumed);
      ex().bytes_in += r.consumed;
      if (r.status == http1::ChunkedDecoder::Status::NeedMore) break;
    }
    consumed = true;
    ex().req_body_forwarded = true;
  }
  if (consumed && can_read_) again_ = true;
  if (!ex().req_done && read_eof_ && in_.empty()) {
    // The client went away in the middle of its body.
    abort_exchange();
    dead_ = true;
  }
}

void ClientConn::flush_upstream() {
  UpstreamConn* u = ex().up;
  if (!u) return;
  if (u->connecting) {
    if (u->error) upstream_failed("could not connect to the backend", false);
    return;
  }
  if (u->out.empty() || !u->can_write) return;
  size_t before = u->out.size();
  if (!write_from(u->fd, u->out, u->can_write)) {
    u->error = errno;
    upstream_failed("the connection to the backend failed", false);
    return;
  }
  if (u->out.size() != before) u->progress = w_.now_ms();
  if (u->out.size() < kHigh && !in_.empty() && !ex().req_done) again_ = true;
}

void ClientConn::pump_response() {
  UpstreamConn* u = ex().up;
  if (!u || u->connecting) return;
  if (u->can_read && !u->eof && u->in.size() < kHigh) {
    size_t before = u->in.size();
    if (!read_into(u->fd, u->in, u->can_read, u->eof, kHigh, u->peer_closed)) u->error = errno ? errno : ECONNRESET;
    if (u->in.size() != before) u->progress = w_.now_ms();
  }
  while (!ex().resp_head_done) {
    if (u->in.empty()) {
      if (u->eof || u->error) upstream_failed("the backend closed the connection without responding", false);
      return;
    }
    ex().resp_any = true;
    http1::ResponseHead& resp = w_.scratch_response();
    http1::ParseError err;
    long n = http1::parse_response_head(u->in.data(), u->in.size(), ex().is_head, resp, err, w_.cfg.limits);
    if (n < 0) {
      upstream_failed("the backend sent an invalid response", false);
      return;
    }
    if (n == 0) {
      if (u->eof || u->error) upstream_failed("the backend sent an incomplete response", false);
      return;
    }
    if (!handle_response_head(n)) return;
    if (phase_ != Phase::Exchange) return;
  }
  // Body.
  while (!ex().resp_done && out_.size() < kHigh) {
    if (ex().resp_framing == http1::Framing::None) {
      ex().resp_done = true;
      break;
    }
    if (ex().resp_framing == http1::Framing::Length) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(ex().resp_remaining, u->in.size()));
      if (take == 0) break;
      out_.append(u->in.data(), take);
      u->in.consume(take);
      ex().resp_remaining -= take;
      if (ex().resp_remaining == 0) ex().resp_done = true;
    } else if (ex().resp_framing == http1::Framing::Chunked) {
      if (u->in.empty()) break;
      auto r = ex().resp_chunked.feed(u->in.data(), u->in.size());
      if (r.status == http1::ChunkedDecoder::Status::Error) {
        if (sent_total_ <= ex().resp_mark) {
          // Nothing of this response reached the client yet: take it back and say 502.
          out_.truncate(static_cast<size_t>(ex().resp_mark - sent_total_));
          ex().status = 502;
          send_error(502, "the backend sent an invalid chunked body", true);
          return;
        }
        abort_exchange();
        dead_ = true;
        return;
      }
      if (r.status == http1::ChunkedDecoder::Status::Data) {
        if (ex().resp_chunk_out) append_chunk(out_, r.data, r.data_len);
        else out_.append(r.data, r.data_len);
      }
      if (r.status == http1::ChunkedDecoder::Status::Done) {
        if (ex().resp_chunk_out) out_.append("0\r\n\r\n", 5);
        ex().resp_done = true;
      }
      u->in.consume(r.consumed);
      if (r.status == http1::ChunkedDecoder::Status::NeedMore) break;
    } else {  // UntilClose
      if (!u->in.empty()) {
        if (ex().resp_chunk_out) append_chunk(out_, u->in.data(), u->in.size());
        else out_.append(u->in.data(), u->in.size());
        u->in.clear();
      }
      if (u->error) {
        // A reset is not an end: the client must not take a partial body for a whole one.
        abort_exchange();
        closing_ = true;
        return;
      }
      if (u->eof) {
        if (ex().resp_chunk_out) out_.append("0\r\n\r\n", 5);
        ex().resp_done = true;
      }
      break;
    }
  }
  if (u->can_read && u->in.size() < kHigh && !ex().resp_done) again_ = true;
  if (ex().resp_done) {
    finish_exchange();
    return;
  }
  if ((u->eof || u->error) && u->in.empty() && ex().resp_framing != http1::Framing::UntilClose) {
    // Truncated response: pass on what we have, then close.
    abort_exchange();
    closing_ = true;
  }
}

// Handles the response head at the front of the upstream buffer. Returns false
// when the caller must stop (error or tunnel).
bool ClientConn::handle_response_head(long n) {
  UpstreamConn* u = ex().up;
  const http1::ResponseHead& resp = w_.scratch_response();
  const bool upgrade = resp.status == 101;
  if (resp.status < 200 && !upgrade) {
    if (++ex().interim > 8) {
      upstream_failed("the backend sent too many interim responses", false);
      return false;
    }
    // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only.
    if (ex().client_minor >= 1) {
      out_.append("HTTP/1.1 ");
      out_.append(fmt::format_int(resp.status).c_str());
      out_.append(" ");
      out_.append(resp.reason);
      out_.append("\r\n");
      for (int i = 0; i < resp.n_headers; ++i) {
        const auto& f = resp.headers[i];
        if (f.flags & http1::kHopByHop) continue;
        out_.append(f.name);
        out_.append(": ");
        out_.append(f.value);
        out_.append("\r\n");
      }
      out_.append("\r\n");
    }
    u->in.consume(static_cast<size_t>(n));
    return true;
  }
  if (upgrade && !ex().websocket) {
    upstream_failed("the backend switched protocols unasked", false);
    return false;
  }
  ex().status = resp.status;
  ex().resp_head_done = true;
  if (ex().endpoint) w_.endpoint_ok(*ex().endpoint);
  ex().upstream_us = mono_us() - ex().upstream_start_us;
  ex().resp_framing = resp.framing;
  ex().resp_remaining = resp.content_length;
  ex().resp_chunked.reset();
  ex().resp_keep_alive = resp.keep_alive && resp.framing != http1::Framing::UntilClose;
  const bool streamed = resp.framing == http1::Framing::Chunked || resp.framing == http1::Framing::UntilClose;
  ex().resp_chunk_out = streamed && ex().client_minor >= 1;
  if (streamed && ex().client_minor == 0) ex().client_keep_alive = false;  // HTTP/1.0: the close marks the end
  if (!ex().req_done) ex().client_keep_alive = false;  // answered before the body ended: we cannot find the next request
  if (w_.stopping()) ex().client_keep_alive = false;

  ex().resp_mark = sent_total_ + out_.size();
  Buffer& o = out_;
  {
    char* p = o.prepare(13);
    std::memcpy(p, "HTTP/1.1 ", 9);
    p[9] = static_cast<char>('0' + resp.status / 100);
    p[10] = static_cast<char>('0' + resp.status / 10 % 10);
    p[11] = static_cast<char>('0' + resp.status % 10);
    p[12] = ' ';
    o.commit(13);
  }
  o.append(resp.reason);
  o.append("\r\n", 2);
  for (int i = 0; i < resp.n_headers; ++i) {
    const auto& f = resp.headers[i];
    if (f.flags & http1::kHopByHop) continue;
    o.append(f.name);
    o.append(": ", 2);
    o.append(f.value);
    o.append("\r\n", 2);
  }
  if (upgrade) {
    o.append("Connection: Upgrade\r\nUpgrade: ");
    o.append(resp.upgrade);
    o.append("\r\n");
  } else {
    switch (resp.framing) {
      case http1::Framing::Length:
        o.append("Content-Length: ");
        o.append(fmt::format_int(resp.content_length).c_str());
        o.append("\r\n");
        break;
      case http1::Framing::None:
        // RFC 9110 §8.6: never a Content-Length in a 204; HEAD and 304 keep the
        // length of the representation when the upstream gave one.
        if (resp.status == 204) break;
        if (resp.has_content_length) {
          o.append("Content-Length: ");
          o.append(fmt::format_int(resp.content_length).c_str());
          o.append("\r\n");
        } else if (!ex().is_head && resp.status != 304) {
          o.append("Content-Length: 0\r\n");
        }
        break;
      default:
        if (ex().resp_chunk_out) o.append("Transfer-Encoding: chunked\r\n");
        break;
    }
    if (!ex().client_keep_alive) o.append("Connection: close\r\n");
    else if (ex().client_minor == 0) o.append("Connection: keep-alive\r\n");
  }
  bool upstream_hsts = false;
  if (secure_ && !w_.cfg.hsts.empty())
    for (int i = 0; i < resp.n_headers; ++i)
      if (resp.headers[i].name.size() == 25 && strncasecmp(resp.headers[i].name.data(), "strict-transport-security", 25) == 0)
        upstream_hsts = true;  // the application's own policy stands
  if (secure_ && !w_.cfg.hsts.empty() && !upstream_hsts) {
    o.append("Strict-Transport-Security: ");
    o.append(w_.cfg.hsts);
    o.append("\r\n", 2);
  }
  if (!resp.has_date) o.append(w_.date_header());
  if (!resp.has_server) o.append("Server: ingressd\r\n");
  o.append("\r\n", 2);
  u->in.consume(static_cast<size_t>(n));
  ex().resp_started = true;
  unsigned cls = static_cast<unsigned>(resp.status / 100);
  if (cls < 6) w_.mutable_stats().responses_by_class[cls].fetch_add(1, std::memory_order_relaxed);
  if (upgrade) {
    phase_ = Phase::Tunnel;
    w_.mutable_stats().websockets_active.fetch_add(1, std::memory_order_relaxed);
    w_.mutable_stats().websockets_total.fetch_add(1, std::memory_order_relaxed);
    again_ = true;
    return false;
  }
  return true;
}

void ClientConn::finish_exchange() {
  UpstreamConn* u = ex().up;
  // Not after HEAD: an upstream that wrongly sends a body to HEAD would
  // desynchronise the connection for the next request.
  bool reusable = ex().req_done && ex().resp_keep_alive && !ex().is_head && !u->eof && !u->error && u->in.empty() &&
                  u->out.empty();
  w_.release_upstream(u, reusable);
  ex().up = nullptr;
  if (!ex().client_keep_alive || is_stream()) closing_ = true;  // one exchange per HTTP/2 stream
  record(ex().status);
  end_accounting();
  phase_ = Phase::Head;
  head_started_ = client_progress_ = w_.now_ms();
  again_ = true;
}

void ClientConn::abort_exchange() {
  if (!ex_ || !ex_->active) return;
  if (phase_ == Phase::Tunnel) w_.mutable_stats().websockets_active.fetch_sub(1, std::memory_order_relaxed);
  if (!ex().recorded) record(ex().resp_started ? ex().status : 0);  // 0: no response (cut short)
  if (ex().up) {
    w_.close_upstream(ex().up);
    ex().up = nullptr;
  }
  end_accounting();
}

void ClientConn::end_accounting() {
  --ex().table->backend_inflight[ex().backend->id];
  w_.release_table(ex().table);
  ex().table = nullptr;
  ex().backend = nullptr;
  ex().endpoint = nullptr;
  ex().active = false;
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

// 308 (method and body kept) to the same host and target over https, as
// ingress-nginx does for hosts with TLS. A request with a body is answered
// and the connection closed (the body is not read).
void ClientConn::redirect_to_https(const http1::RequestHead& req, size_t head_len) {
  const bool has_body = req.framing != http1::Framing::None;
  const bool close = has_body || !req.keep_alive;
  uint16_t port = w_.cfg.redirect_https_port ? w_.cfg.redirect_https_port : w_.cfg.https_port;
  std::string& loc = w_.scratch_string();
  loc.assign("Location: https://");
  loc.append(ex().host);
  if (port != 443) loc.append(":").append(fmt::format_int(port).c_str());
  loc.append(req.path.empty() || req.path[0] != '/' ? "/" : "").append(req.path).append(req.query).append("\r\n");
  in_.consume(head_len);  // `req` views die here
  append_error_response(out_, 308, "this host is served over https", close, ex().is_head, w_.date_header(), loc);  // plain HTTP: no HSTS
  record(308);
  abort_exchange();
  w_.mutable_stats().responses_by_class[3].fetch_add(1, std::memory_order_relaxed);
  phase_ = Phase::Head;
  head_started_ = client_progress_ = w_.now_ms();
  if (close) closing_ = true;
  else again_ = true;
}

void ClientConn::send_error(int status, const char* detail, bool close) {
  bool head_only = ex().is_head;
  // The error response is the answer to this request: appended first, so
  // that record() counts its bytes.
  std::string_view extra;
  std::string hsts;
  if (secure_ && !w_.cfg.hsts.empty()) {
    hsts = "Strict-Transport-Security: " + w_.cfg.hsts + "\r\n";
    extra = hsts;
  }
  append_error_response(out_, status, detail, close, head_only, w_.date_header(), extra);
  record(status);
  abort_exchange();
  unsigned cls = static_cast<unsigned>(status / 100);
  if (cls < 6) w_.mutable_stats().responses_by_class[cls].fetch_add(1, std::memory_order_relaxed);
  phase_ = Phase::Head;
  head_started_ = client_progress_ = w_.now_ms();
  if (close || is_stream()) closing_ = true;
  else again_ = true;
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

void ClientConn::record(int status) {
  if (ex().recorded) return;
  ex().recorded = true;
  TableRef* t = ex().table ? ex().table : w_.table();
  if (!t) return;
  AccessLog* log = w_.access_log();
  const bool logging = log && log->enabled();
  if (!w_.cfg.request_metrics && !logging) return;
  const int64_t now = mono_us();
  const int64_t dur = now - ex().start_us;
  const uint64_t bytes_out = sent_total_ + out_.size() - ex().out_mark;
  if (w_.cfg.request_metrics) {
    RouteCounters& c = w_.route_counters(t, ex().stats_id);
    int cls = status / 100;
    if (cls < 0 || cls > 5) cls = 0;
    c.requests[ex().method][cls].add(1);
    c.bytes_in.add(ex().bytes_in);
    c.bytes_out.add(bytes_out);
    c.duration.observe(dur);
    if (ex().upstream_us >= 0) c.upstream.observe(ex().upstream_us);
  }
  if (!logging) return;
  if (log->sample() > 1 && w_.next_random() % static_cast<uint64_t>(log->sample()) != 0) return;
  std::string& b = w_.log_buffer();
  std::string_view upstream = ex().endpoint ? std::string_view(ex().endpoint->text) : std::string_view();
  std::string_view host_rule = ex().route ? std::string_view(ex().route->host) : std::string_view();
  std::string_view path_rule = ex().route ? std::string_view(ex().route->path) : std::string_view();
  char when[40];
  {
    // The second's text is cached by the worker; only the milliseconds change.
    timespec rt;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &rt);
    const char* sec = w_.iso_second(rt.tv_sec);
    size_t k = std::strlen(sec);
    std::memcpy(when, sec, k);
    long ms = rt.tv_nsec / 1'000'000;
    when[k] = '.';
    when[k + 1] = static_cast<char>('0' + ms / 100);
    when[k + 2] = static_cast<char>('0' + ms / 10 % 10);
    when[k + 3] = static_cast<char>('0' + ms % 10);
    when[k + 4] = 'Z';
    when[k + 5] = 0;
  }
  // The line is written straight into the worker's buffer through a pointer,
  // with room reserved for the worst case (every request byte escaped):
  // small appends to a std::string cost more than the formatting itself.
  const bool json = log->format() == AccessLogFormat::Json;
  const routing::Backend* be = ex().backend;
  const std::string_view request_fields[] = {peer_ip_,  ex().log_method, ex().log_host, ex().log_target,
                                             upstream,  ex().ingress,    host_rule,     path_rule,
                                             ex().request_id, be ? std::string_view(be->namespace_) : std::string_view(),
                                             be ? std::string_view(be->service) : std::string_view(),
                                             be ? std::string_view(be->port) : std::string_view()};
  size_t room = 512;
  for (auto v : request_fields) room += v.size() * 6;
  const size_t start = b.size();
  b.resize(start + room);
  char* p = b.data() + start;
  auto lit = [&](std::string_view v) {
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  };
  auto esc = [&](std::string_view v) { p = json ? json_escape_to(p, v) : text_escape_to(p, v); };
  auto num = [&](uint64_t v) {
    fmt::format_int f(v);
    lit(std::string_view(f.data(), f.size()));
  };
  // Milliseconds with three decimals from integer microseconds (no floating point).
  auto ms3 = [&](int64_t us) {
    if (us < 0) return lit("-1.000");
    num(static_cast<uint64_t>(us / 1000));
    *p++ = '.';
    *p++ = static_cast<char>('0' + us % 1000 / 100);
    *p++ = static_cast<char>('0' + us % 100 / 10);
    *p++ = static_cast<char>('0' + us % 10);
  };
  auto service = [&] {
    esc(be->namespace_);
    *p++ = '/';
    esc(be->service);
    *p++ = ':';
    esc(be->port);
  };
  const std::string_view proto = is_stream() ? "HTTP/2.0" : ex().client_minor ? "HTTP/1.1" : "HTTP/1.0";
  if (json) {
    auto field = [&](std::string_view name, std::string_view v) {
      lit(name);  // ,"name":"
      esc(v);
      *p++ = '"';
    };
    lit("{\"time\":\"");
    lit(when);
    *p++ = '"';
    field(",\"client\":\"", peer_ip_);
    field(",\"method\":\"", ex().log_method);
    field(",\"host\":\"", ex().log_host);
    field(",\"path\":\"", ex().log_target);
    lit(",\"protocol\":\"");
    lit(proto);
    lit("\",\"status\":");
    num(static_cast<uint64_t>(status));
    lit(",\"bytes_in\":");
    num(ex().bytes_in);
    lit(",\"bytes_out\":");
    num(bytes_out);
    lit(",\"duration_ms\":");
    ms3(dur);
    field(",\"upstream\":\"", upstream);
    lit(",\"upstream_ms\":");
    ms3(ex().upstream_us);
    field(",\"ingress\":\"", ex().ingress);
    field(",\"rule_host\":\"", host_rule);
    field(",\"rule_path\":\"", path_rule);
    lit(",\"service\":\"");
    if (be) service();
    field("\",\"request_id\":\"", ex().request_id);
    lit("}\n");
  } else {
    // Text: time client "method host path protocol" status bytes_in bytes_out duration_ms upstream upstream_ms
    //       ingress service request_id   (request-derived fields escaped as \xHH; "-" when empty)
    auto field = [&](std::string_view v) {
      if (v.empty()) *p++ = '-';
      else esc(v);
    };
    lit(when);
    *p++ = ' ';
    lit(peer_ip_);
    lit(" \"");
    field(ex().log_method);
    *p++ = ' ';
    field(ex().log_host);
    *p++ = ' ';
    field(ex().log_target);
    *p++ = ' ';
    lit(proto);
    lit("\" ");
    num(static_cast<uint64_t>(status));
    *p++ = ' ';
    num(ex().bytes_in);
    *p++ = ' ';
    num(bytes_out);
    *p++ = ' ';
    ms3(dur);
    *p++ = ' ';
    field(upstream);
    *p++ = ' ';
    ms3(ex().upstream_us);
    *p++ = ' ';
    field(ex().ingress);
    *p++ = ' ';
    if (be) service();
    else *p++ = '-';
    *p++ = ' ';
    field(ex().request_id);
    *p++ = '\n';
  }
  b.resize(static_cast<size_t>(p - b.data()));
  if (b.size() >= 64 * 1024) w_.flush_log();
  ex().log_method.clear();
  ex().log_host.clear();
  ex().log_target.clear();
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
    if (now - u->progress >= c.upstream_connect_timeout_ms) {
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
  if (u && now - u->progress >= c.upstream_read_timeout_ms) {
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
