#include "proxy/h2_session.h"

#include <fmt/format.h>

#include <strings.h>

#include <cstring>

#include "proxy/session.h"
#include "proxy/worker.h"

namespace ingressd {
namespace {

constexpr size_t kHigh = 64 * 1024;  // the same mark as session.cc
// Response bytes buffered for all streams of one connection: beyond this,
// stream connections stop reading their upstreams until the client takes some.
constexpr size_t kConnHigh = 1024 * 1024;
// The connection-level receive window: wide, so that one stream whose
// upstream is slow cannot stall the uploads of the others (each stream is
// bounded by its own 64 KiB window).
constexpr int32_t kConnWindow = 16 * 1024 * 1024;

bool valid_request_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

void append_chunk(Buffer& b, const uint8_t* p, size_t n) {
  char hdr[24];
  size_t h = http1::chunk_header(hdr, n);
  b.append(hdr, h);
  b.append(reinterpret_cast<const char*>(p), n);
  b.append("\r\n", 2);
}

}  // namespace

H2Session::H2Session(Worker& w, ClientConn& conn, const H2Limits& limits) : w_(w), conn_(conn), limits_(limits) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &H2Session::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Session::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Session::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Session::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Session::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &H2Session::on_frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // acknowledged as the stream connection takes it
  nghttp2_option_set_max_continuations(opt, limits_.max_continuations);
  nghttp2_option_set_stream_reset_rate_limit(opt, limits_.reset_burst, limits_.reset_rate);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kHigh)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits_.max_header_list_bytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnWindow);
  WorkerStats& st = w_.mutable_stats();
  st.http2_connections_total.fetch_add(1, std::memory_order_relaxed);
  st.http2_connections_active.fetch_add(1, std::memory_order_relaxed);
}

H2Session::~H2Session() {
  close_all();
  nghttp2_session_del(session_);
  w_.mutable_stats().http2_connections_active.fetch_sub(1, std::memory_order_relaxed);
}

H2Session::Stream* H2Session::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

bool H2Session::on_input(Buffer& in) {
  if (broken_) return false;
  in_input_ = true;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in.data()), in.size());
  in_input_ = false;
  if (n < 0) {
    // A connection error (bad preface, frame errors, CONTINUATION or
    // SETTINGS/PING floods): GOAWAY with the reason, then close.
    uint32_t code = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM
                    : n == NGHTTP2_ERR_HEADER_COMP                                         ? NGHTTP2_COMPRESSION_ERROR
                                                                                           : NGHTTP2_PROTOCOL_ERROR;
    if (nghttp2_session_terminate_session(session_, code) != 0)
      w_.mutable_stats().http2_resets_refused.fetch_add(1, std::memory_order_relaxed);  // no GOAWAY to count it by
    broken_ = true;
    in.consume(in.size());
  } else {
    in.consume(static_cast<size_t>(n));
  }
  drive_pending();
  return !broken_;
}

void H2Session::drive_pending() {
  if (conn_unacked_) {
    nghttp2_session_consume_connection(session_, conn_unacked_);
    conn_unacked_ = 0;
  }
  // Streams whose request got new bytes: let their exchanges run.
  while (!pending_.empty()) {
    std::vector<int32_t> batch;
    batch.swap(pending_);
    for (int32_t id : batch) {
      Stream* s = find(id);
      if (!s) continue;
      if (s->conn) s->conn->h2_feed();
      s = find(id);
      if (s && !s->conn && s->unacked) {
        nghttp2_session_consume_stream(session_, id, s->unacked);
        s->unacked = 0;
      }
    }
  }
}

void H2Session::produce(Buffer& out, size_t high) {
  while (out.size() < high && nghttp2_session_want_write(session_)) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      if (n < 0) broken_ = true;
      break;
    }
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

bool H2Session::wants_output() const { return nghttp2_session_want_write(session_) != 0; }

bool H2Session::finished() const {
  if (broken_) return !nghttp2_session_want_write(session_);
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

void H2Session::shutdown() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void H2Session::close_all() {
  auto streams = std::move(streams_);
  streams_.clear();
  buffered_ = 0;
  for (auto& [id, s] : streams) {
    if (ClientConn* c = s->conn) {
      s->conn = nullptr;
      c->h2_orphan();
      w_.close_client(c);
    }
    delete s;
  }
}

// ---- callbacks ----

int H2Session::on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* s = new Stream();
  s->id = f->hd.stream_id;
  self->streams_[s->id] = s;
  self->w_.mutable_stats().http2_streams_total.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

int H2Session::on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers: dropped
  Stream* s = self->find(f->hd.stream_id);
  if (!s) return 0;
  s->header_bytes += namelen + valuelen + 32;  // RFC 9113 §6.5.2's accounting
  if (s->header_bytes > self->limits_.max_header_list_bytes) {
    s->header_error = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM for this stream only
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (!n.empty() && n[0] == ':') {
    if (n == ":method") s->method.assign(v);
    else if (n == ":path") s->path.assign(v);
    else if (n == ":authority") s->authority.assign(v);
    else if (n == ":scheme") s->scheme.assign(v);
    return 0;  // nghttp2 has rejected any other pseudo-header
  }
  if (n == "host") {
    s->host.assign(v);
    return 0;
  }
  if (n == "cookie") {  // RFC 9113 §8.2.3: split cookies are joined for HTTP/1.1
    if (!s->cookie.empty()) s->cookie.append("; ");
    s->cookie.append(v);
    return 0;
  }
  if (n == "content-length") s->has_content_length = true;
  s->head.append(n).append(": ").append(v).append("\r\n");
  return 0;
}

int H2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  Stream* s = nullptr;
  switch (f->hd.type) {
    case NGHTTP2_HEADERS:
      s = self->find(f->hd.stream_id);
      if (!s) return 0;
      if (f->headers.cat == NGHTTP2_HCAT_REQUEST && !s->request_started) {
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) s->request_ended = true;
        self->start_request(*s);
      } else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        self->end_request(*s);  // trailers end the body
      }
      return 0;
    case NGHTTP2_DATA:
      s = self->find(f->hd.stream_id);
      if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) self->end_request(*s);
      return 0;
    default:
      return 0;
  }
}

int H2Session::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  Stream* s = self->find(id);
  if (!s) {
    self->conn_unacked_ += len;
    return 0;
  }
  s->unacked += len;
  self->conn_unacked_ += len;
  if (s->conn && !s->request_ended) {
    Buffer& in = s->conn->h2_input();
    if (s->chunked_body) append_chunk(in, data, len);
    else in.append(reinterpret_cast<const char*>(data), len);
  }
  self->pending_.push_back(id);
  return 0;
}

int H2Session::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  Stream* s = it->second;
  self->streams_.erase(it);
  self->buffered_ -= s->body.size();
  if (ClientConn* c = s->conn) {
    // Reset by the client (or ended) while its exchange runs: stop it.
    s->conn = nullptr;
    c->h2_orphan();
    self->w_.close_client(c);
  }
  delete s;
  if (self->streams_.empty()) self->conn_.h2_idle();
  return 0;
}

// ---- request ----

void H2Session::start_request(Stream& s) {
  s.request_started = true;
  if (!s.host.empty()) {
    // RFC 9113 §8.3.1: :authority wins; a host field that differs makes the request malformed.
    if (s.authority.empty()) s.authority = s.host;
    else if (s.authority.size() != s.host.size() ||
             strncasecmp(s.authority.data(), s.host.data(), s.host.size()) != 0)
      s.header_error = true;
  }
  if (s.header_error || !valid_request_token(s.method) || !valid_request_token(s.path) ||
      s.authority.find_first_of(" \t\r\n") != std::string::npos) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  ClientConn* c = w_.add_h2_stream(conn_, this, s.id);
  s.conn = c;
  s.chunked_body = !s.request_ended && !s.has_content_length;
  // The request as HTTP/1.1, for the same exchange code as HTTP/1 clients.
  Buffer& in = c->h2_input();
  in.append(s.method);
  in.append(" ", 1);
  in.append(s.path);
  in.append(" HTTP/1.1\r\nHost: ");
  in.append(s.authority);
  in.append("\r\n");
  in.append(s.head);
  if (!s.cookie.empty()) {
    in.append("Cookie: ");
    in.append(s.cookie);
    in.append("\r\n");
  }
  if (s.chunked_body) in.append("Transfer-Encoding: chunked\r\n");
  in.append("\r\n");
  std::string().swap(s.head);
  pending_.push_back(s.id);
}

void H2Session::end_request(Stream& s) {
  if (s.request_ended) return;
  s.request_ended = true;
  if (s.conn && s.chunked_body) s.conn->h2_input().append("0\r\n\r\n");
  pending_.push_back(s.id);
}

// ---- response ----

void H2Session::stream_output(int32_t id, Buffer& out, bool& can_write) {
  Stream* s = find(id);
  if (!s) {
    out.consume(out.size());
    can_write = true;
    return;
  }
  if (!decode_response(*s, out)) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    out.consume(out.size());
  }
  if (s->resp_done) out.consume(out.size());  // nothing follows a response on a stream
  can_write = s->body.size() < kHigh && buffered_ < kConnHigh;
  s->blocked = !can_write;
  if (s->deferred && (!s->body.empty() || s->resp_done)) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  // Acknowledge request bytes the exchange has taken.
  if (s->unacked && s->conn && s->conn->h2_input().size() < kHigh) {
    nghttp2_session_consume_stream(session_, id, s->unacked);
    s->unacked = 0;
  }
  conn_.wake();
}

bool H2Session::decode_response(Stream& s, Buffer& out) {
  while (!s.resp_head_done) {
    if (out.empty()) return true;
    http1::ResponseHead& h = w_.scratch_response();
    http1::ParseError err;
    long n = http1::parse_response_head(out.data(), out.size(), s.method == "HEAD", h, err, w_.cfg.limits);
    if (n == 0) return true;
    if (n < 0) return false;
    if (h.status < 200) {
      // Interim responses go on as non-final HEADERS (RFC 9113 §8.1): 100
      // Continue releases a client waiting to send its body, 103 carries
      // early hints. 101 cannot come: a stream never asks to upgrade.
      if (h.status != 101) submit_response(s, h, false);
      out.consume(static_cast<size_t>(n));
      continue;
    }
    s.resp_head_done = true;
    s.progress_ms = w_.now_ms();
    s.framing = h.framing;
    s.remaining = h.content_length;
    s.resp_done = h.framing == http1::Framing::None || (h.framing == http1::Framing::Length && h.content_length == 0);
    submit_response(s, h);  // views into `out`: before consuming
    out.consume(static_cast<size_t>(n));
  }
  while (!s.resp_done && !out.empty() && s.body.size() < kHigh) {
    switch (s.framing) {
      case http1::Framing::Length: {
        size_t k = static_cast<size_t>(std::min<uint64_t>(s.remaining, out.size()));
        s.body.append(out.data(), k);
        buffered_ += k;
        out.consume(k);
        s.remaining -= k;
        if (s.remaining == 0) s.resp_done = true;
        break;
      }
      case http1::Framing::Chunked: {
        auto r = s.chunked.feed(out.data(), out.size());
        if (r.status == http1::ChunkedDecoder::Status::Error) return false;
        if (r.status == http1::ChunkedDecoder::Status::Data) {
          s.body.append(r.data, r.data_len);
          buffered_ += r.data_len;
        }
        out.consume(r.consumed);
        if (r.status == http1::ChunkedDecoder::Status::Done) s.resp_done = true;
        if (r.status == http1::ChunkedDecoder::Status::NeedMore) return true;
        break;
      }
      case http1::Framing::UntilClose:
        s.body.append(out.data(), out.size());
        buffered_ += out.size();
        out.consume(out.size());
        break;
      default:
        s.resp_done = true;
        break;
    }
  }
  return true;
}

void H2Session::submit_response(Stream& s, const http1::ResponseHead& h, bool final) {
  // Field names in lower case (RFC 9113 §8.2); connection-specific fields dropped.
  std::string& store = w_.scratch_string();
  store.clear();
  store.reserve(64 + 64 * static_cast<size_t>(h.n_headers));
  std::vector<std::pair<size_t, size_t>> spans;  // (offset, length) pairs: name, value
  auto add = [&](std::string_view v) {
    spans.emplace_back(store.size(), v.size());
    for (char c : v) store += c;
  };
  auto add_name = [&](std::string_view v) {
    spans.emplace_back(store.size(), v.size());
    for (char c : v) store += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  };
  char status[4] = {static_cast<char>('0' + h.status / 100), static_cast<char>('0' + h.status / 10 % 10),
                    static_cast<char>('0' + h.status % 10), 0};
  add(":status");
  add(std::string_view(status, 3));
  for (int i = 0; i < h.n_headers; ++i) {
    const http1::Header& f = h.headers[i];
    if (f.flags & http1::kHopByHop) continue;
    add_name(f.name);
    add(f.value);
  }
  if (final && (h.framing == http1::Framing::Length || (h.framing == http1::Framing::None && h.has_content_length))) {
    add("content-length");
    add(fmt::format_int(h.content_length).c_str());
  }
  std::vector<nghttp2_nv> nv(spans.size() / 2);
  for (size_t i = 0; i < nv.size(); ++i) {
    auto [no, nl] = spans[2 * i];
    auto [vo, vl] = spans[2 * i + 1];
    nv[i] = {reinterpret_cast<uint8_t*>(store.data() + no), reinterpret_cast<uint8_t*>(store.data() + vo), nl, vl,
             NGHTTP2_NV_FLAG_NONE};
  }
  if (!final) {
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, nv.data(), nv.size(), nullptr);
    return;
  }
  s.resp_submitted = true;
  if (s.resp_done) {
    nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), nullptr);
    return;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = nullptr;
  prd.read_callback = &H2Session::read_body;
  nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), &prd);
}

ssize_t H2Session::read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                             nghttp2_data_source*, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  Stream* s = self->find(id);
  if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t k = std::min(len, s->body.size());
  if (k > 0) {
    std::memcpy(buf, s->body.data(), k);
    s->body.consume(k);
    self->buffered_ -= k;
    s->progress_ms = self->w_.now_ms();
    if (s->blocked && s->body.size() < kHigh && self->buffered_ < kConnHigh && s->conn) {
      s->blocked = false;
      s->conn->h2_writable();  // room again: read the upstream on
    }
    if (self->buffered_ < kConnHigh) self->wake_blocked();
  }
  if (s->body.empty()) {
    if (s->resp_done) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s->body.release_if_empty();
      return static_cast<ssize_t>(k);
    }
    if (k == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(k);
}

void H2Session::wake_blocked() {
  for (auto& [id, s] : streams_) {
    if (s->blocked && s->conn && s->body.size() < kHigh) {
      s->blocked = false;
      s->conn->h2_writable();
    }
  }
}

void H2Session::sweep(int64_t now, int64_t stall_ms) {
  std::vector<int32_t> stalled;
  for (auto& [id, s] : streams_)
    if (s->resp_head_done && !s->body.empty() && now - s->progress_ms >= stall_ms) stalled.push_back(id);
  for (int32_t id : stalled) {
    // The client keeps this stream's window shut: give up on it (the
    // connection's other streams go on).
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    if (Stream* s = find(id)) {
      buffered_ -= s->body.size();
      s->body.consume(s->body.size());
      s->body.release_if_empty();
    }
  }
  if (!stalled.empty()) conn_.wake();
}

// A response is complete but the client still sends its request body: tell
// it to stop (RFC 9113 §8.1), so that the stream does not linger half-closed.
int H2Session::on_frame_send(nghttp2_session* session, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
    // Closed for a protocol error or abuse (rapid reset, floods), whoever noticed it: us or nghttp2.
    self->w_.mutable_stats().http2_resets_refused.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  Stream* s = self->find(f->hd.stream_id);
  if (s && !s->request_ended) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  return 0;
}

void H2Session::stream_detached(int32_t id) {
  Stream* s = find(id);
  if (!s) return;
  s->conn = nullptr;
  if (!s->resp_done) {
    // The exchange ended without a whole response (upstream reset mid-body,
    // timeout): the stream is reset, as an HTTP/1 connection would be closed.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  } else if (s->unacked) {
    nghttp2_session_consume_stream(session_, id, s->unacked);
    s->unacked = 0;
  }
  conn_.wake();
}

}  // namespace ingressd
