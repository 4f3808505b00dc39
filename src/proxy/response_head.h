// The response head phase: the one writer of the heads ingressd passes on
// from upstreams, interim (1xx) and final, in HTTP/1.1. HTTP/2 streams take
// the same bytes and turn them into HEADERS (h2_session.cc), so what is
// decided here (hop-by-hop fields dropped, framing re-stated for this client,
// Connection, HSTS, Date, Server, the route's response header edits) holds
// for both protocols. Sans-I/O: a parsed head in, bytes out.
#pragma once
#include <string_view>

#include "proxy/buffer.h"
#include "proxy/http1/parser.h"
#include "routing/action.h"

namespace ingressd {

struct ResponseHeadFacts {
  int client_minor = 1;         // the client speaks HTTP/1.<minor>
  bool client_keep_alive = true;  // the client connection stays open after this response
  bool is_head = false;         // the request was HEAD
  bool chunk_out = false;       // the body is re-encoded chunked towards the client
  bool secure = false;          // the client came over TLS (HSTS)
  std::string_view hsts;        // Strict-Transport-Security value to add ("" = none)
  std::string_view date_line;   // "Date: ...\r\n", used when the upstream sent none
  const routing::RouteAction* action = nullptr;  // response header edits (may be null)
  // Lines decided with the request (CORS): they replace the upstream's Access-Control-* fields.
  std::string_view extra;
  std::string_view set_cookie;  // a session-affinity Set-Cookie line, added to the upstream's
};

// A 1xx response other than 101 (100 Continue, 103 Early Hints), for HTTP/1.1 clients.
void write_interim_head(Buffer& out, const http1::ResponseHead& resp);
// The final head (also 101 Switching Protocols).
void write_final_head(Buffer& out, const http1::ResponseHead& resp, const ResponseHeadFacts& f);

}  // namespace ingressd
