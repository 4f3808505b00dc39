// explain(): which route a request takes, what ingressd does with it, and why
// the other rules do not take it. Used by `ingressd explain` and the admin
// port's /debug/explain. The request is parsed by the data plane's HTTP/1
// parser and decided by the data plane's decide phase (decide.h), so the
// answer is the one a real request gets (400, 404, 308, 413, 503, forward);
// the near misses come from the objects themselves.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/config.h"
#include "routing/compile.h"

namespace ingressd {

struct Explanation {
  nlohmann::json json;
  std::string text;
};

struct ExplainRequest {
  std::string url;          // "http://host/path?query" or "/path?query"
  std::string host_header;  // the Host when the URL has none
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // more request headers
  std::string client;           // the client's address ("" = unknown: source-range allow lists refuse it)
  ProxyConfig proxy;            // the flags in force (redirects, limits)
  bool https_listener = true;   // plain HTTP for TLS hosts is redirected only when there is an HTTPS listener
};

Explanation explain(const Snapshot& snap, const routing::CompileOptions& opts, const routing::RouteTable& table,
                    const ExplainRequest& req);

// The URL and Host form alone (GET, default flags).
inline Explanation explain(const Snapshot& snap, const routing::CompileOptions& opts, const routing::RouteTable& table,
                           std::string_view url, std::string_view host_header) {
  ExplainRequest r;
  r.url = url;
  r.host_header = host_header;
  return explain(snap, opts, table, r);
}

namespace routing {
// Whether a rule path of this type matches a (normalised) request path, by the Ingress spec.
bool path_matches(std::string_view rule_path, model::PathType type, std::string_view request_path);
}  // namespace routing

}  // namespace ingressd
