// The upstream request phase: the request head as it goes to the upstream.
// Hop-by-hop fields are dropped, the X-Forwarded-* set describes this hop
// (a client cannot claim it came over https), framing is re-stated, and the
// route action's rewrites (path, Host) and request header edits apply here.
// Sans-I/O: a parsed head in, bytes out.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http1/parser.h"
#include "routing/action.h"

namespace ingressd {

struct UpstreamRequestFacts {
  std::string_view peer_ip;        // the client's address (X-Forwarded-For, X-Real-IP)
  bool secure = false;             // came over TLS (X-Forwarded-Proto)
  uint16_t listener_port = 0;      // X-Forwarded-Port
  std::string_view new_request_id;  // sent as X-Request-ID when the client sent none ("" = the client's passes)
};

// Writes the head into `out` (cleared first). `path` is the normalised path
// routing saw; `action` may be null (nothing to rewrite or edit). `scratch`
// holds a rewritten path.
void write_upstream_head(const http1::RequestHead& req, std::string_view path, const routing::RouteAction* action,
                         const UpstreamRequestFacts& facts, std::string& scratch, std::string& out);

}  // namespace ingressd
