// A client connection and the exchange (request → response) in progress on
// it. One request at a time; pipelined requests wait in the input buffer and
// are answered in order.
//
// ClientConn keeps the I/O: the socket and TLS, the drive loop, the body
// pumps, tunnels and timers (session.cc), and the exchange's plumbing
// (exchange.cc). The request's policy lives in sans-I/O phases it calls:
// decide.h (what to do with the request), upstream_request.h (the head sent
// upstream), endpoint_picker.h (which endpoint), response_head.h (the head
// sent back), and observe/access_line.h (the access-log line).
#pragma once
#include <memory>
#include <string>

#include "proxy/decide.h"
#include "proxy/h2_session.h"
#include "proxy/worker.h"

namespace ingressd {

class ClientConn final : public IoHandler, public UpstreamOwner {
 public:
  // `ssl`: a server-side TLS session on `fd` whose handshake is still to do
  // (null for plain HTTP). The connection owns it.
  ClientConn(Worker& w, int fd, const sockaddr_storage& peer, SSL* ssl = nullptr);
  // A stream connection: one HTTP/2 stream of `parent`, served as an HTTP/1.1
  // exchange (see h2_session.h). No socket of its own.
  ClientConn(Worker& w, ClientConn& parent, H2Session* h2, int32_t stream_id);
  ~ClientConn() override;
  void on_io(uint32_t events) override;
  // Called by the upstream connection this exchange owns.
  void on_upstream_event() override;
  void on_timer(int64_t now);
  // When on_timer() may next have work (kNoDeadline: never), for the worker's TimerHeap.
  int64_t next_deadline() const;
  int64_t timer_at = kNoDeadline;
  size_t timer_index = SIZE_MAX;
  bool idle() const {
    if (phase_ == Phase::H2) return h2_ && h2_->open_streams() == 0 && out_.empty();
    return phase_ == Phase::Head && in_.empty() && out_.empty() && (!ex_ || !ex_->active);
  }
  // Shutdown of an idle connection: true when it can be closed now; an
  // HTTP/2 connection first sends GOAWAY and closes itself once it is out.
  bool close_when_idle();
  // Shutdown of a busy connection: an HTTP/2 one sends GOAWAY at once.
  void begin_shutdown();
  bool is_stream() const { return h2_parent_ != nullptr || stream_id_ != 0; }
  // Drive again soon (from the same event batch); safe from anywhere.
  void wake();
  // ---- HTTP/2 plumbing (h2_session.cc) ----
  Buffer& h2_input() { return in_; }  // a stream connection's request bytes
  void h2_feed() { drive(); }         // new request bytes arrived
  void h2_orphan() { h2_parent_ = nullptr; }  // the stream is gone: do not report back
  void h2_writable() {                // the stream has room for more response bytes
    can_write_ = true;
    wake();
  }
  void h2_idle() { client_progress_ = w_.now_ms(); }  // the last stream ended: the idle timer starts
  void resume();  // continue work left after the per-event round limit
  bool queued = false;  // in Worker's re-drive list
  void begin_close() { closing_ = true; }
  // The worker closes this connection: let go of the upstream side now.
  void detach();

  size_t list_index = 0;  // position in Worker::clients_

 private:
  enum class Phase { Head, Exchange, Tunnel, H2 };

 public:
  // The state of one request → response. Taken from a per-thread pool when a
  // request starts and given back when the connection goes idle, so that an
  // idle keep-alive connection holds none of it (nor its strings' memory) and
  // a busy one allocates nothing per request.
  // Everything but the strings: reset whole when the exchange goes back to the pool.
  struct ExchangeState {
    bool active = false;
    TableRef* table = nullptr;
    const routing::Backend* backend = nullptr;
    const routing::RouteAction* action = nullptr;  // what the route asks (response header edits)
    const routing::ConnLimit* conn_slot = nullptr;  // a limit-connections slot held until the exchange ends
    const routing::EndpointAddr* endpoint = nullptr;  // the one being tried
    uint64_t req_body_bytes = 0;
    // metrics and access log
    const routing::Route* route = nullptr;
    std::string_view ingress;  // the Ingress that routed it (a view into the pinned table)
    uint32_t stats_id = 0;
    int method = 0;
    int64_t start_us = 0;
    int64_t upstream_start_us = 0;
    int64_t upstream_us = -1;
    uint64_t bytes_in = 0;
    uint64_t out_mark = 0;  // sent_total_ + out_.size() when the request started
    bool recorded = false;
    uint64_t resp_mark = 0;  // sent_total_ + out_.size() before the response head was queued
    int interim = 0;  // 1xx responses passed on
    size_t next_endpoint = 0;  // index into backend->endpoints
    uint64_t affinity = 0;  // the session-affinity key the client's cookie named and we kept to (0: none)
    int attempts = 0;
    bool retried_stale = false;
    UpstreamConn* up = nullptr;
    // request side
    bool is_head = false;
    bool idempotent = false;
    bool websocket = false;
    int client_minor = 1;
    bool client_keep_alive = true;
    http1::Framing req_framing = http1::Framing::None;
    uint64_t req_remaining = 0;
    http1::ChunkedDecoder req_chunked;
    bool req_done = false;
    bool req_body_forwarded = false;  // some body bytes went upstream
    // response side
    bool resp_head_done = false;
    bool resp_any = false;      // any response byte arrived from upstream
    bool resp_started = false;  // any response byte went to the client
    http1::Framing resp_framing = http1::Framing::None;
    bool resp_chunk_out = false;   // re-encode the body as chunked towards the client
    bool resp_keep_alive = true;   // upstream keeps the connection
    uint64_t resp_remaining = 0;
    http1::ChunkedDecoder resp_chunked;
    bool resp_done = false;
    int status = 0;
  };
  struct Exchange : ExchangeState {
    // Strings keep their capacity in the pool (no allocation per request).
    std::string request_id;
    std::string log_method, log_host, log_target;  // copies for the access log (only when it is on)
    std::string head;  // the request head as sent upstream (kept for a retry)
    DecideScratch decided;  // normalised Host and path, a redirect's Location
    std::string rewritten_path;  // the path sent upstream, when the route rewrites it
    std::string set_cookie;  // a session-affinity Set-Cookie line
  };


 private:
  Exchange& ex() {
    if (!ex_) ex_ = take_exchange();
    return *ex_;
  }
  static Exchange* take_exchange();
  void release_exchange();  // back to the pool (idle connection)

  void drive();
  bool handshake();  // false: close the connection
  void start_h2();
  void pump_h2();
  void flush();
  bool start_exchange();
  void connect_upstream(bool fresh = false);
  void start_mirrors(const routing::RouteAction& a, const http1::RequestHead& req, size_t head_len);
  void upstream_failed(const char* why, bool timeout);
  void pump_request_body();
  void flush_upstream();
  void pump_response();
  bool handle_response_head(long head_len);
  void finish_exchange();
  void pump_tunnel();
  // Our own answer to the current request; `extra`: header lines to add (a Location).
  void send_error(int status, const char* detail, bool close, std::string_view extra = {});
  void abort_exchange();
  void end_accounting();  // the per-backend in-flight count and the table pin
  void record(int status);  // metrics and access log for the current request, once
  void new_request_id();
  // The upstream timeouts in force: the route's (annotations), else the flags.
  int connect_timeout_ms() const;
  int read_timeout_ms() const;

  Worker& w_;
  int fd_;
  SSL* ssl_ = nullptr;
  bool hs_done_ = true;           // TLS handshake finished (always, for plain HTTP)
  bool ssl_raw_short_read_ = false;  // OpenSSL's last raw read was short: the socket is drained
  bool ssl_read_wants_write_ = false;  // SSL_read needs the socket writable (TLS 1.3 key update)
  std::string peer_ip_;
  routing::ClientAddr client_addr_;  // the same, for source-address rules
  bool secure_ = false;  // came over TLS (X-Forwarded-Proto, HSTS, no redirect)
  std::unique_ptr<H2Session> h2_;  // an HTTP/2 client connection
  H2Session* h2_parent_ = nullptr;  // a stream connection: its session (null once orphaned)
  int32_t stream_id_ = 0;
  Buffer in_, out_;
  Phase phase_ = Phase::Head;
  bool can_read_ = true;
  bool can_write_ = true;
  bool read_eof_ = false;
  bool peer_closed_ = false;  // EPOLLRDHUP seen: read until EOF
  bool closing_ = false;  // close once `out_` is flushed
  bool dead_ = false;
  bool dead_reset_ = false;  // the connection failed: no TLS close_notify
  bool goaway_sent_ = false;  // HTTP/2: GOAWAY is queued (shutdown or idle close)
  bool in_drive_ = false;
  bool again_ = false;
  size_t head_scan_ = 0;  // bytes of `in_` already known to hold no complete head
  uint64_t sent_total_ = 0;  // bytes written to the client
  uint32_t requests_ = 0;  // request heads parsed on this connection
  int last_outq_ = INT32_MAX;  // bytes unsent in the socket at the last timer look (while blocked)
  int64_t client_progress_ = 0;  // last byte read from or written to the client (ms)
  int64_t head_started_ = 0;     // first byte of the request head now being read
  Exchange* ex_ = nullptr;
};

}  // namespace ingressd
