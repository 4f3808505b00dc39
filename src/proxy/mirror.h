// A mirrored request (Gateway API RequestMirror): a copy of a request sent
// to another backend, its response read and dropped. It never delays,
// changes or fails the client's exchange: it owns its own upstream
// connection (taken from the same pools), has one deadline, and gives up
// quietly (counted) on any error.
//
// What is copied: the request head as it goes to the primary backend (after
// rewrites and header edits), and the body when all of it arrived with the
// head (Content-Length framing). A request whose body is still on its way
// (or chunked) is not mirrored, and counted as skipped: mirroring must not
// make ingressd buffer bodies, nor hold the client's request back.
#pragma once
#include <cstdint>
#include <string_view>

#include "proxy/http1/chunked.h"
#include "proxy/http1/parser.h"
#include "proxy/worker.h"

namespace ingressd {

class MirrorRequest final : public UpstreamOwner {
 public:
  explicit MirrorRequest(Worker& w) : w_(w) {}
  // Sends `head` + `body` to `ep`; false when no connection could be opened.
  bool start(const routing::EndpointAddr& ep, std::string_view head, std::string_view body, bool is_head,
             int64_t deadline);
  void on_upstream_event() override;
  // Gives up when `now` is past the deadline; true when it is over (done or given up).
  bool expire(int64_t now);
  bool done() const { return done_; }
  size_t index = 0;  // position in the worker's list

 private:
  void finish(bool ok, bool reusable);
  bool consume_response();  // true when the whole response was read

  Worker& w_;
  UpstreamConn* up_ = nullptr;
  int64_t deadline_ = 0;
  bool is_head_ = false;
  bool head_done_ = false;
  bool keep_alive_ = false;
  bool done_ = false;
  http1::Framing framing_ = http1::Framing::None;
  uint64_t remaining_ = 0;
  http1::ChunkedDecoder chunked_;
};

}  // namespace ingressd
