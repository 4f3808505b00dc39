// The RouteTable: immutable after compile(), shared by every worker. Lookup
// cost depends on the depth of the request path, not on the number of routes:
// one hash lookup for the host (exact, then the wildcard suffix, then the
// host-less rules) and one per path segment.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/objects.h"
#include "routing/action.h"

namespace re2 {
class RE2;
}

namespace ingressd::routing {

struct EndpointAddr {
  sockaddr_storage sa{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.1:8080", "[::1]:8080"
  uint64_t affinity = 0;  // the session-affinity cookie value naming it: a hash of `text`
};
// The affinity key of an endpoint address text (FNV-1a; never 0).
uint64_t affinity_key(std::string_view text);

// A backend: one Service port in one namespace, with its ready endpoints.
struct Backend {
  uint32_t id = 0;  // dense index into RouteTable::backends()
  std::string namespace_;
  std::string service;
  std::string port;  // as written in the Ingress: "8080" or "http"
  std::vector<EndpointAddr> endpoints;
  std::string unavailable;  // why there is no endpoint ("" when there are some)
  // A Gateway API backendRef that cannot be resolved (unknown kind, missing
  // Service, no ReferenceGrant): its share of requests gets 500, as the spec asks.
  bool invalid = false;
  std::string str() const;  // "default/alpaca:8080"
};

// Conditions on a request beyond host and path (Gateway API HTTPRouteMatch:
// method, headers, query parameters). Empty: every request.
// A value matched exactly, or (Gateway API RegularExpression) as a whole by
// an RE2 regex: linear time, compiled once by compile().
struct HeaderMatch {
  std::string name;  // lower-case
  std::string value;  // exact, case-sensitive (RFC 9110 field values)
  std::shared_ptr<const re2::RE2> regex;  // set: `value` is its pattern
};
struct QueryMatch {
  std::string name;   // exact, case-sensitive
  std::string value;  // exact
  std::shared_ptr<const re2::RE2> regex;
};
// Which listeners a candidate serves (Gateway API: the listeners its route
// is attached to). 0: every listener.
enum ListenerMask : uint8_t { kAnyListener = 0, kPlainListener = 1, kTlsListener = 2 };
struct CookieMatch {
  std::string name;   // exact, case-sensitive
  std::string value;  // exact
};
struct RequestMatch {
  std::string method;  // "" = any
  std::vector<HeaderMatch> headers;
  std::vector<QueryMatch> query;
  std::vector<CookieMatch> cookies;  // in the Cookie field (RFC 6265 §4.2)
  uint8_t listeners = kAnyListener;  // ListenerMask
  bool empty() const {
    return method.empty() && headers.empty() && query.empty() && cookies.empty() && listeners == kAnyListener;
  }
};
// Whether `value` matches `re` as a whole.
bool full_match(const re2::RE2& re, std::string_view value);

// What a candidate looks at in the request, without knowing its codec.
struct RequestFacts {
  std::string_view method;
  std::string_view query;  // "?a=b&c" or "" (as in the request target)
  bool secure = false;     // came on the TLS listener
  // Finds the first value of a header (`name` lower-case); false when absent.
  const void* ctx = nullptr;
  bool (*header)(const void* ctx, std::string_view name, std::string_view& value) = nullptr;
};
bool request_matches(const RequestMatch& m, const RequestFacts* facts);

// One way to serve the requests of a route: its conditions and its action.
struct RouteCandidate {
  RequestMatch match;
  const RouteAction* action = nullptr;
  uint32_t stats_id = 0;  // index into RouteTable::stat_labels()
  int rule_index = -1, match_index = -1;  // HTTPRoute: spec.rules[rule_index].matches[match_index] (explain)
};

struct Route {
  std::string host;  // as in the rule ("" = any host)
  std::string path;  // as in the rule
  model::PathType type = model::PathType::Prefix;
  bool regex = false;  // matched as `^<path>`, case-insensitive (ingress-nginx regex mode)
  std::string ingress;  // "namespace/name" of the Ingress, "httproute/namespace/name" of an HTTPRoute
  int rule = 0;
  int path_index = 0;
  // In precedence order (Gateway API: method, then most header matches, then
  // most query matches, then the older object). An Ingress path has one,
  // unconditional. A request no candidate takes falls through to shorter
  // paths, as the Gateway API requires.
  std::vector<RouteCandidate> candidates;
  const RouteCandidate* pick(const RequestFacts* facts) const {
    for (const auto& c : candidates)
      if (c.match.empty() || request_matches(c.match, facts)) return &c;
    return nullptr;
  }
  // The candidate a request with no particular header, cookie or query takes
  // (the last unconditional one; else the first).
  const RouteCandidate* default_candidate() const {
    for (auto it = candidates.rbegin(); it != candidates.rend(); ++it)
      if (it->match.empty()) return &*it;
    return candidates.empty() ? nullptr : &candidates.front();
  }
  const Backend* backend() const {
    const RouteCandidate* c = default_candidate();
    return c && c->action ? c->action->primary() : nullptr;
  }
};

// Route::ingress of an HTTPRoute's routes: this prefix, then namespace/name.
inline constexpr std::string_view kHttpRoutePrefix = "httproute/";

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using RouteMap = std::unordered_map<std::string, Route, StringHash, std::equal_to<>>;

// A path of a host in ingress-nginx regex mode (use-regex / rewrite-target):
// `^<path>`, case-insensitive, RE2 (linear time).
// A Gateway API RegularExpression path is matched as a whole, case-sensitive
// (`full`, with `re` null).
struct RegexRoute {
  std::shared_ptr<const PathRegex> re;
  Route route;
  std::shared_ptr<const re2::RE2> full;
  bool matches(std::string_view path) const;
};

struct VHost {
  std::string host;
  RouteMap exact;   // key: the path
  RouteMap prefix;  // key: the path without trailing slashes ("" for "/")
  // Regex mode: every non-Exact path of the host, longest first; the first
  // that matches wins (nginx's order for `location ~*`). Exact paths stay in
  // `exact` and are tried first, as nginx's `location =` are.
  std::vector<RegexRoute> regex;
  // A host an HTTPRoute serves: a request none of its routes takes goes on to
  // the broader hostnames (a wildcard, then any host), as the Gateway API's
  // hostname precedence asks. An Ingress-only host stops here (Ingress rules).
  bool fall_through = false;
  const RouteAction* default_action = nullptr;  // the defaultBackend of the oldest Ingress with rules for this host
  std::string default_source;
  uint32_t default_stats_id = 0;
  const Backend* default_backend() const { return default_action ? default_action->primary() : nullptr; }
};

enum class MatchKind { Path, HostDefault, GlobalDefault, None };

struct Match {
  MatchKind kind = MatchKind::None;
  const VHost* vhost = nullptr;
  const Route* route = nullptr;
  const RouteAction* action = nullptr;
  const Backend* backend = nullptr;  // the action's first backend (what a request without a split goes to)
  uint32_t stats_id = 0;  // 0 = no route
  std::string_view owner() const { return action ? std::string_view(action->owner) : std::string_view(); }
};

class RouteTable {
 public:
  // `host` must be normalised (routing::normalize_host), `path` normalised and without the query.
  // `facts` may be null: then only candidates without conditions match.
  Match match(std::string_view host, std::string_view path, const RequestFacts* facts = nullptr) const;

  const std::vector<std::unique_ptr<Backend>>& backends() const { return backends_; }
  size_t route_count() const;
  // All routes in a stable order: host, then path, then type.
  std::vector<const Route*> sorted_routes() const;
  const Backend* global_default() const { return global_default_ ? global_default_->primary() : nullptr; }
  const RouteAction* global_default_action() const { return global_default_; }
  const std::string& global_default_source() const { return global_default_source_; }
  // The most specific vhost for `host`: exact, "*." + one label, Gateway
  // "*." + more labels (longest suffix first), then any host.
  const VHost* find_vhost(std::string_view host) const;
  // The next broader vhost for `host` after `vh` (see find_vhost), or null.
  const VHost* broader_vhost(std::string_view host, const VHost* vh) const;
  // Prometheus label sets, one per route target (id 0: requests that matched
  // no route). Bounded by the configuration, never by request data.
  const std::vector<std::string>& stat_labels() const { return stat_labels_; }
  std::vector<const VHost*> sorted_vhosts() const;  // by host name
  // Whether `host` (normalised) is named in spec.tls of a served Ingress,
  // exactly or by a "*.suffix" entry: plain HTTP for it is redirected.
  bool tls_host(std::string_view host) const;
  bool has_tls_hosts() const { return !tls_exact_.empty() || !tls_wildcard_.empty(); }

 private:
  friend class TableBuilder;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<RouteAction>> actions_;
  std::unordered_map<std::string, VHost, StringHash, std::equal_to<>> exact_hosts_;
  std::unordered_map<std::string, VHost, StringHash, std::equal_to<>> wildcard_hosts_;  // key: suffix after "*."
  // Gateway API wildcards for hosts two or more labels deeper ("*.example.com"
  // also takes "a.b.example.com"); one label deeper is in wildcard_hosts_.
  std::unordered_map<std::string, VHost, StringHash, std::equal_to<>> deep_wildcard_hosts_;
  bool match_in(const VHost& vh, std::string_view path, const RequestFacts* facts, Match& m) const;
  std::unique_ptr<VHost> any_host_;
  const RouteAction* global_default_ = nullptr;
  std::string global_default_source_;
  uint32_t global_default_stats_id_ = 0;
  std::vector<std::string> stat_labels_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> tls_exact_, tls_wildcard_;  // wildcard: the suffix
};

// Built by compile(); kept apart so RouteTable stays read-only for workers.
class TableBuilder {
 public:
  TableBuilder() : table_(std::make_shared<RouteTable>()) {}
  Backend* add_backend(std::unique_ptr<Backend> b);
  const RouteAction* add_action(std::unique_ptr<RouteAction> a);
  VHost& vhost(const std::string& host);  // "", "*.suffix" or an exact host
  // Gateway API "*.suffix" for hosts two or more labels deeper.
  VHost& deep_wildcard_vhost(const std::string& host);
  void set_global_default(const RouteAction* a, std::string source) {
    table_->global_default_ = a;
    table_->global_default_source_ = std::move(source);
  }
  const RouteAction* global_default() const { return table_->global_default_; }
  void add_tls_host(const std::string& host);  // exact or "*.suffix"
  // A regex-mode route; false when the host already has one with the same path (the older stands).
  bool add_regex_route(VHost& v, std::shared_ptr<const PathRegex> re, Route r);
  // Longest path first, then the order they were added (older Ingress first): nginx's order for regex locations.
  void sort_regex_routes();
  std::shared_ptr<const RouteTable> finish();

 private:
  std::shared_ptr<RouteTable> table_;
};

// The prefix-map key of a Prefix rule path: trailing slashes dropped.
std::string_view prefix_key(std::string_view path);

}  // namespace ingressd::routing
