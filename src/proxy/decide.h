// The decide phase: a parsed request head, the facts of its connection, the
// route table and the flags → what to do with the request. Every answer
// ingressd gives on its own before an upstream is involved (400, 404, 308 and
// route redirects, 413, 503) is decided here and nowhere else; the data plane
// (exchange.cc) and `explain` both call it, so they cannot disagree.
// Sans-I/O: no socket, no clock, no worker.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/config.h"
#include "proxy/http1/parser.h"
#include "routing/route_table.h"

namespace ingressd {

struct ConnFacts {
  bool secure = false;          // the request came over TLS
  bool https_listener = false;  // there is an HTTPS listener to redirect plain HTTP to
  routing::ClientAddr client;   // the client's address (source-address rules, rate limits)
  int64_t now_ms = 0;           // the worker's monotonic clock (rate limits; 0: not applied, as in explain)
};

// The request body limit in force for an action (0 = none).
inline uint64_t body_limit(const routing::RouteAction* a, const ProxyConfig& cfg) {
  return a && a->max_body_bytes >= 0 ? static_cast<uint64_t>(a->max_body_bytes) : cfg.max_body_bytes;
}

enum class Verdict : uint8_t { Respond, Redirect, Forward };

struct Decision {
  Verdict verdict = Verdict::Respond;
  int status = 0;          // Respond / Redirect
  const char* detail = "";  // Respond / Redirect: the reason, in the body (never request data)
  bool close = false;      // close the connection after the answer
  std::string_view path;   // the normalised path routing saw (a view into the request or the scratch)
  // Respond: header lines to add (a 401's WWW-Authenticate, a preflight's CORS fields);
  // Forward with a CORS action: the lines for the response (DecideScratch::headers).
  std::string_view headers;
  routing::Match match;    // what routing found (also for a Respond, for the log and metrics)
  // Forward: a limit-connections slot taken for this request; the caller
  // releases it when the exchange ends (null: none).
  const routing::ConnLimit* conn_slot = nullptr;
  // Redirect: the Location value, in DecideScratch::location.
};

// Strings the decision points into; kept by the caller between requests so
// that deciding allocates nothing in the steady state.
struct DecideScratch {
  std::string host;       // the normalised Host
  std::string norm_path;  // the normalised path, when it differs from the request's
  std::string location;   // a redirect's Location
  std::string headers;    // header lines decided per request (CORS), for our answer or the upstream's
};

// `table` null: no configuration is loaded yet. `backend_inflight`: the
// requests this worker has in progress per backend id (null: not counted,
// as in `explain`, which then leaves the per-backend limit out). `roll`: a
// random draw that picks the backend of a traffic split.
Decision decide(const http1::RequestHead& req, const ConnFacts& conn, const routing::RouteTable* table,
                const ProxyConfig& cfg, const uint32_t* backend_inflight, uint64_t roll, DecideScratch& scratch);

// The routing view of an HTTP/1 request head (method, query, headers).
routing::RequestFacts request_facts(const http1::RequestHead& req, bool secure);

// The Location of a route redirect (Gateway API RequestRedirect semantics).
void redirect_location(const routing::Redirect& r, const http1::RequestHead& req, std::string_view host,
                       std::string_view path, bool secure, uint16_t listener_port, std::string& out);

}  // namespace ingressd
