// HTTP/2 towards clients (nghttp2), multiplexed onto the HTTP/1.1 upstream
// pools.
//
// Each stream is served by a ClientConn of its own (a "stream connection":
// no socket, no TLS) that runs the very same exchange as an HTTP/1
// connection: routing, upstream pool, retries, timeouts, limits, metrics and
// the access log. The stream's request is handed to it as an HTTP/1.1 request
// head (built from the validated HTTP/2 fields) plus its body, chunked when
// the client gave no content-length; its HTTP/1.1 response is read back into
// HEADERS and DATA frames. One exchange code path for both protocols is
// worth the extra head parse per stream.
//
// Flow control: the client's DATA is acknowledged (WINDOW_UPDATE) only as the
// stream connection takes it, so a slow upstream slows the client; a
// response is read from the upstream only while the stream's window lets it
// out (bounded by the same 64 KiB marks as HTTP/1).
#pragma once
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/buffer.h"
#include "proxy/http1/chunked.h"
#include "proxy/http1/parser.h"

namespace ingressd {

class Worker;
class ClientConn;

struct H2Limits {
  uint32_t max_concurrent_streams = 128;
  size_t max_header_list_bytes = 64 * 1024;
  uint64_t reset_burst = 200;  // client RST_STREAMs allowed in a burst (CVE-2023-44487 "rapid reset")
  uint64_t reset_rate = 33;    // ... and per second after it
  size_t max_continuations = 8;  // CONTINUATION frames after a HEADERS (CVE-2024-27316)
};

class H2Session {
 public:
  H2Session(Worker& w, ClientConn& conn, const H2Limits& limits);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Feeds client bytes (consumed from `in`). False: the session is broken
  // (protocol error, flood): send what is queued and close.
  bool on_input(Buffer& in);
  // Serializes frames into `out` while it is below `high`.
  void produce(Buffer& out, size_t high);
  bool wants_output() const;
  bool finished() const;  // nothing more to read or write: close
  size_t open_streams() const { return streams_.size(); }
  // Streams whose response the client has not taken for `stall_ms` (window
  // kept shut) are reset. Called from the connection's timer.
  void sweep(int64_t now_ms, int64_t stall_ms);
  // Graceful shutdown: GOAWAY; streams in progress finish.
  void shutdown();
  // Every stream connection is closed (the client connection goes away).
  void close_all();

  // ---- called by stream connections ----
  // The stream connection's HTTP/1 output: its response, read into the stream.
  // Sets `can_write` false when the stream holds enough unsent data.
  void stream_output(int32_t id, Buffer& out, bool& can_write);
  // The stream connection is closing (or closed): the stream goes on without it.
  void stream_detached(int32_t id);

 private:
  struct Stream {
    int32_t id = 0;
    ClientConn* conn = nullptr;  // null once its exchange is over
    // request
    std::string method, path, authority, scheme;
    std::string head;  // regular fields, "Name: value\r\n"
    std::string cookie;  // cookie fields joined with "; " (RFC 9113 §8.2.3)
    std::string host;    // a host field, checked against :authority
    size_t header_bytes = 0;
    bool has_content_length = false;
    bool chunked_body = false;  // the request body is passed on chunked (no content-length)
    bool request_started = false;
    bool request_ended = false;
    bool header_error = false;
    size_t unacked = 0;  // DATA bytes received and not yet acknowledged (WINDOW_UPDATE)
    // response (decoded from the stream connection's HTTP/1 output)
    bool resp_head_done = false;
    bool resp_submitted = false;
    bool resp_done = false;  // the whole body is in `body`
    bool deferred = false;   // the data provider waits for more
    bool blocked = false;    // the stream connection was told to stop (buffers full)
    int64_t progress_ms = 0;  // last time the client took response bytes (or the response began)
    http1::Framing framing = http1::Framing::None;
    uint64_t remaining = 0;
    http1::ChunkedDecoder chunked;
    Buffer body;
  };

  static ssize_t on_send(nghttp2_session*, const uint8_t*, size_t, int, void*);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t,
                       uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);

  Stream* find(int32_t id);
  void start_request(Stream& s);
  void end_request(Stream& s);
  void drive_pending();
  bool decode_response(Stream& s, Buffer& out);
  // The response head as HEADERS: final (with the body's data provider), or
  // interim (1xx: 100 Continue, 103 Early Hints) as non-final HEADERS.
  void submit_response(Stream& s, const http1::ResponseHead& h, bool final = true);

  Worker& w_;
  ClientConn& conn_;
  H2Limits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, Stream*> streams_;
  std::vector<int32_t> pending_;  // streams with new request bytes to drive after this input
  size_t conn_unacked_ = 0;       // DATA bytes to acknowledge at the connection level
  size_t buffered_ = 0;           // response bytes held in all streams' `body`
  void wake_blocked();
  bool broken_ = false;
  bool in_input_ = false;
};

}  // namespace ingressd
