// The exchange of a client connection: from a parsed request head to the
// upstream and back. What to do with the request is decided by the phases
// (decide, upstream_request, endpoint_picker, response_head); this file moves
// the bytes, retries, and accounts for the request.
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "observe/access_line.h"
#include "observe/metrics.h"
#include "proxy/endpoint_picker.h"
#include "proxy/response_head.h"
#include "proxy/responses.h"
#include "proxy/session.h"
#include "proxy/socket_io.h"
#include "proxy/upstream_request.h"
#include "routing/rate_limit.h"

namespace ingressd {
namespace {

int64_t mono_us() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

// The draw that picks the backend of a traffic split: the request's start
// time in microseconds, scrambled (Fibonacci hashing). Free (the time is read
// anyway) and spread evenly enough for weights; not for anything secret.
uint64_t split_roll(int64_t start_us) { return (static_cast<uint64_t>(start_us) * 0x9E3779B97F4A7C15ull) >> 20; }

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
    for (std::string* str : {&e.head, &e.request_id, &e.log_method, &e.log_host, &e.log_target, &e.decided.host,
                             &e.decided.norm_path, &e.decided.location, &e.decided.headers, &e.rewritten_path})
      str->clear();
    f.push_back(ex_);
  } else {
    delete ex_;
  }
  ex_ = nullptr;
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
  ex().action = nullptr;
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
  ex().is_head = req.is_head;
  ex().client_minor = req.minor;
  ex().client_keep_alive = req.keep_alive;

  TableRef* t = w_.table();
  const ConnFacts facts{secure_, w_.tls() != nullptr, client_addr_, w_.now_ms()};
  const Decision d = decide(req, facts, t ? t->table.get() : nullptr, w_.cfg,
                            t ? t->backend_inflight.data() : nullptr, split_roll(ex().start_us), ex().decided);
  // For the log and metrics, also when the answer is ours.
  ex().stats_id = d.match.stats_id;
  ex().backend = d.match.backend;
  ex().route = d.match.route;
  ex().action = d.match.action;
  ex().ingress = d.match.owner();  // a view into the pinned table
  if (d.verdict != Verdict::Forward) {
    in_.consume(static_cast<size_t>(n));  // `req` views die here
    if (d.verdict == Verdict::Respond) {
      send_error(d.status, d.detail, d.close, d.headers);
      return false;
    }
    std::string& loc = w_.scratch_string();
    loc.assign("Location: ").append(ex().decided.location).append("\r\n");
    send_error(d.status, d.detail, d.close, loc);
    return false;
  }
  const routing::Backend* be = d.match.backend;
  ex().conn_slot = d.conn_slot;
  ex().active = true;
  ex().table = t;
  ++t->inflight;
  ++t->backend_inflight[be->id];
  ex().req_body_bytes = 0;
  ex().attempts = 0;
  ex().retried_stale = false;
  ex().idempotent = is_idempotent(req.method);
  ex().websocket = req.websocket;
  ex().req_framing = req.framing;
  ex().req_remaining = req.content_length;
  ex().req_chunked.reset();
  ex().req_done = req.framing == http1::Framing::None;
  ex().req_body_forwarded = false;
  ex().resp_head_done = ex().resp_any = ex().resp_started = ex().resp_done = false;
  ex().status = 0;
  // X-Request-ID: passed through when the client sent one, else ours.
  const bool new_id = ex().request_id.empty();
  if (new_id) new_request_id();
  const UpstreamRequestFacts uf{peer_ip_, secure_, secure_ ? w_.cfg.https_port : w_.cfg.http_port,
                                new_id ? std::string_view(ex().request_id) : std::string_view()};
  write_upstream_head(req, d.path, d.match.action, uf, ex().rewritten_path, ex().head);
  const routing::RouteAction* act = d.match.action;
  const bool affine = act && !act->is_plain && act->affinity;
  const uint64_t wanted = affine ? affinity_from_cookies(req, act->affinity->cookie) : 0;
  if (d.match.action && !d.match.action->is_plain && !d.match.action->mirrors.empty()) start_mirrors(*d.match.action, req, static_cast<size_t>(n));
  in_.consume(static_cast<size_t>(n));  // `req` views die here
  phase_ = Phase::Exchange;
  ex().next_endpoint = first_endpoint(*be, t->rr[be->id], WorkerHealth{w_});
  ex().affinity = 0;
  if (wanted) {
    // Session affinity: the endpoint the client's cookie names, while it is there and healthy.
    if (size_t i = affine_endpoint(*be, wanted, WorkerHealth{w_}); i != SIZE_MAX) {
      ex().next_endpoint = i;
      ex().affinity = wanted;
    }
  }
  connect_upstream();
  return true;
}

// Copies of the request for the action's mirrors, each with its share of
// requests; the body goes along when all of it is already here.
void ClientConn::start_mirrors(const routing::RouteAction& a, const http1::RequestHead& req, size_t head_len) {
  std::string_view body;
  const std::string_view* at_hand = &body;
  if (req.framing == http1::Framing::Length) {
    if (in_.size() - head_len >= req.content_length)
      body = std::string_view(in_.data() + head_len, static_cast<size_t>(req.content_length));
    else
      at_hand = nullptr;
  } else if (req.framing != http1::Framing::None || req.websocket) {
    at_hand = nullptr;  // chunked, or a tunnel: nothing to copy
  }
  for (const routing::Mirror& m : a.mirrors) {
    if (m.denominator == 0 || w_.next_random() % m.denominator >= m.numerator) continue;
    w_.start_mirror(*m.backend, ex().table, ex().head, at_hand, req.is_head);
  }
}

void ClientConn::new_request_id() {
  static const char* hex = "0123456789abcdef";
  uint64_t a = w_.next_random(), b = w_.next_random();
  std::string& id = ex().request_id;
  id.resize(32);
  char* p = id.data();
  for (int i = 0; i < 16; ++i) {
    p[i] = hex[(a >> (4 * i)) & 15];
    p[16 + i] = hex[(b >> (4 * i)) & 15];
  }
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
    if (ex().attempts < max_attempts(*ex().backend, w_.cfg.max_connect_attempts)) {
      ex().next_endpoint = next_endpoint(*ex().backend, ex().next_endpoint);
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
    if (was_connecting && ex().attempts < max_attempts(*ex().backend, w_.cfg.max_connect_attempts)) {
      // Nothing reached the upstream: try the next endpoint.
      ex().next_endpoint = next_endpoint(*ex().backend, ex().next_endpoint);
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
      if (!reused && n > 1) ex().next_endpoint = next_endpoint(*ex().backend, ex().next_endpoint);
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
        const uint64_t limit = body_limit(ex().action, w_.cfg);
        if (limit && ex().req_body_bytes > limit) {
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
    if (ex().client_minor >= 1) write_interim_head(out_, resp);
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
  ResponseHeadFacts rf;
  rf.client_minor = ex().client_minor;
  rf.client_keep_alive = ex().client_keep_alive;
  rf.is_head = ex().is_head;
  rf.chunk_out = ex().resp_chunk_out;
  rf.secure = secure_;
  rf.hsts = w_.cfg.hsts;
  rf.date_line = w_.date_header();
  rf.action = ex().action;
  if (ex().action && ex().action->cors) rf.extra = ex().decided.headers;
  if (ex().action && ex().action->affinity && ex().endpoint && ex().endpoint->affinity != ex().affinity) {
    // A new client, or its endpoint is gone: the cookie of the endpoint that answers.
    std::string& c = ex().set_cookie;
    c.assign("Set-Cookie: ").append(ex().action->affinity->cookie).append("=");
    affinity_value(ex().endpoint->affinity, c);
    c.append(ex().action->affinity->attributes).append("\r\n");
    rf.set_cookie = c;
  }
  write_final_head(out_, resp, rf);
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
  if (ex().conn_slot) {
    ex().conn_slot->release(client_addr_);  // the limiter lives in the table, still pinned here
    ex().conn_slot = nullptr;
  }
  --ex().table->backend_inflight[ex().backend->id];
  w_.release_table(ex().table);
  ex().table = nullptr;
  ex().backend = nullptr;
  ex().endpoint = nullptr;
  ex().active = false;
}

void ClientConn::send_error(int status, const char* detail, bool close, std::string_view extra) {
  bool head_only = ex().is_head;
  // The error response is the answer to this request: appended first, so
  // that record() counts its bytes.
  std::string lines;
  if (secure_ && !w_.cfg.hsts.empty()) {
    lines.assign(extra).append("Strict-Transport-Security: ").append(w_.cfg.hsts).append("\r\n");
    extra = lines;
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
  AccessRecord r;
  timespec rt;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &rt);
  r.iso_second = w_.iso_second(rt.tv_sec);  // the second's text is cached by the worker
  r.millis = static_cast<int>(rt.tv_nsec / 1'000'000);
  r.client = peer_ip_;
  r.method = ex().log_method;
  r.host = ex().log_host;
  r.target = ex().log_target;
  r.protocol = is_stream() ? "HTTP/2.0" : ex().client_minor ? "HTTP/1.1" : "HTTP/1.0";
  r.status = status;
  r.bytes_in = ex().bytes_in;
  r.bytes_out = bytes_out;
  r.duration_us = dur;
  if (ex().endpoint) r.upstream = ex().endpoint->text;
  r.upstream_us = ex().upstream_us;
  r.ingress = ex().ingress;
  if (ex().route) {
    r.rule_host = ex().route->host;
    r.rule_path = ex().route->path;
  }
  if (const routing::Backend* be = ex().backend) {
    r.has_service = true;
    r.service_namespace = be->namespace_;
    r.service_name = be->service;
    r.service_port = be->port;
  }
  r.request_id = ex().request_id;
  append_access_line(b, r, log->format());
  if (b.size() >= 64 * 1024) w_.flush_log();
  ex().log_method.clear();
  ex().log_host.clear();
  ex().log_target.clear();
}

}  // namespace ingressd
