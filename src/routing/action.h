// What a matched request is to do: a RouteAction. Routing (route_table.h)
// decides *which* action; the request phases (src/proxy/) carry it out, each
// part in one phase:
//   refuse, redirect                       → decide          (src/proxy/decide.h)
//   path/host rewrite, request headers     → upstream request (src/proxy/upstream_request.h)
//   weighted backends                      → endpoint picking (src/proxy/endpoint_picker.h)
//   response headers                       → response head    (src/proxy/response_head.h)
// An Ingress path compiles to an action with one backend and nothing else;
// annotations and Gateway API filters fill in the rest. Actions are owned by
// the RouteTable and immutable, like everything in it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingressd::routing {

class PathRegex;
class BasicAuth;
struct CorsPolicy;
class RateLimit;
class ConnLimit;

struct Backend;

// A client address as the access rules see it (IPv4-mapped IPv6 taken as IPv4).
struct ClientAddr {
  uint8_t family = 0;  // 4 or 6; 0 = unknown
  uint8_t bytes[16] = {};
};

struct Cidr {
  uint8_t family = 4;
  uint8_t bytes[16] = {};
  int prefix = 32;
  bool contains(const ClientAddr& a) const;
  // "10.0.0.0/8", "192.168.1.1" (a /32), "2001:db8::/32"; false when not a valid address or prefix length.
  static bool parse(std::string_view text, Cidr& out);
};

// Source-address rules (ingress-nginx whitelist-source-range / denylist-source-range):
// a client in `deny` is refused; with an `allow` list, a client outside it is refused too.
struct IpAccess {
  std::vector<Cidr> allow, deny;
  bool allows(const ClientAddr& a) const;
};

struct RouteAction;
struct WeightedBackend {
  const Backend* backend = nullptr;
  uint32_t weight = 1;
  // Gateway API backendRef filters: the action for the requests this backend
  // gets (the rule's, with the backend's header edits added); null: the rule's.
  const RouteAction* action = nullptr;
};

// Header edits in the Gateway API's HTTPHeaderFilter terms: `set` replaces
// every field of that name (or adds one), `add` appends a field, `remove`
// drops every field of that name. Names are stored lower-case and compared
// case-insensitively (RFC 9110 §5.1). Applied: remove and set drop the
// original fields, then set and add are appended in order.
struct HeaderEdits {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
  // Whether an original field named `name` is dropped (removed or replaced).
  bool drops(std::string_view name) const;
};

// How a path is rewritten (Gateway API HTTPPathModifier).
struct PathModifier {
  // RegexReplace (ingress-nginx rewrite-target): when `regex` matches the
  // path, the path becomes `value` with \1..\9 replaced by the groups it
  // captured (nginx's `rewrite <path> <target> break`); else it is kept.
  enum class Kind : uint8_t { None, ReplaceFullPath, ReplacePrefixMatch, RegexReplace };
  Kind kind = Kind::None;
  std::string value;  // the new path, or the replacement for the matched prefix
  // ReplacePrefixMatch: the route's prefix that matched ("/foo"; trailing
  // slashes ignored, element-wise as the match itself).
  std::string matched_prefix;
  std::shared_ptr<const PathRegex> regex;
  bool active() const { return kind != Kind::None; }
  // The path `request_path` becomes, written into `out`.
  void apply(std::string_view request_path, std::string& out) const;
};

// Answered by ingressd itself with a redirect (Gateway API RequestRedirect,
// ingress-nginx permanent-redirect / temporal-redirect / app-root).
struct Redirect {
  int status = 302;  // 301, 302, 303, 307 or 308
  // A fixed URL (ingress-nginx permanent-redirect): used as it is.
  std::string url;
  // Otherwise the request's URL with these parts replaced (empty / 0 = kept).
  std::string scheme;
  std::string host;
  uint16_t port = 0;
  PathModifier path;
  // ingress-nginx app-root: `return 302 $scheme://$http_host<path>`, the Host
  // as the client sent it (port included) and no query.
  bool host_as_sent = false;
  // Gateway API: the listener port an unset port falls back to is the
  // Listener's declared one (80, 443: the Service maps them onto ingressd's
  // ports), not the port ingressd listens on.
  bool declared_listener_port = false;
};

// A copy of a share of the requests sent to another backend, its response
// dropped (Gateway API RequestMirror; src/proxy/mirror.h).
struct Mirror {
  const Backend* backend = nullptr;
  uint32_t numerator = 1, denominator = 1;  // the share mirrored: numerator/denominator
};

// ingress-nginx affinity: cookie: a client keeps to the endpoint its cookie
// names. The value is a hash of the endpoint's address (EndpointAddr::affinity),
// the same in every replica, so the replicas behind a load balancer agree.
struct SessionAffinity {
  std::string cookie = "INGRESSCOOKIE";
  std::string attributes = "; Path=/; HttpOnly";  // what follows the value in Set-Cookie
};

// Rewrites of the request as it goes upstream.
struct Rewrite {
  std::string host;  // the Host sent upstream ("" = the client's)
  PathModifier path;
  bool active() const { return !host.empty() || path.active(); }
};

// Plain HTTP for a TLS host gets 308 to https by default (--ssl-redirect);
// an Ingress may turn it off, or force it for a host without TLS.
enum class SslRedirect : uint8_t { Default, Off, Force };

struct RouteAction {
  std::vector<WeightedBackend> backends;  // one for an Ingress path; a traffic split for HTTPRoute
  uint32_t total_weight = 0;              // sum of the weights
  Redirect redirect;                      // when `redirects`
  bool redirects = false;
  Rewrite rewrite;
  HeaderEdits request_headers;
  HeaderEdits response_headers;
  std::vector<Mirror> mirrors;
  std::shared_ptr<const SessionAffinity> affinity;  // null: round robin
  SslRedirect ssl_redirect = SslRedirect::Default;
  std::shared_ptr<const IpAccess> ip_access;  // null: every client
  std::shared_ptr<const BasicAuth> basic_auth;  // null: no authentication
  std::shared_ptr<const CorsPolicy> cors;       // null: no CORS
  std::vector<std::shared_ptr<const RateLimit>> rate_limits;  // per client address; 503 beyond
  std::shared_ptr<const ConnLimit> conn_limit;  // concurrent requests per client address; 503 beyond
  std::vector<Cidr> rate_limit_exempt;          // clients the rate and connection limits do not apply to
  int64_t max_body_bytes = -1;  // request body limit (0 = none); -1: --max-body-bytes
  int connect_timeout_ms = 0;   // 0: --upstream-connect-timeout
  int read_timeout_ms = 0;      // 0: --upstream-read-timeout
  // proxy-send-timeout: ingressd has one upstream inactivity timer for writing
  // and reading; the larger of this and the read timeout applies (0: none).
  int send_timeout_ms = 0;
  // Fail closed: a configuration asked for protection ingressd cannot give
  // (an auth or allow-list annotation it does not honour). Every request
  // gets 503 with this reason; never the unprotected backend.
  std::string refuse;
  // 503 for protection ingressd cannot enforce; 500 for a Gateway API rule
  // whose backends or filters cannot be resolved (the spec's answer).
  uint16_t refuse_status = 503;
  // The object this action came from ("namespace/name" of the Ingress), for
  // the access log, metrics and explain.
  std::string owner;

  // plain_forward(), worked out once by TableBuilder::add_action: the data
  // plane tests this one flag instead of every policy.
  bool is_plain = false;

  const Backend* primary() const { return backends.empty() ? nullptr : backends.front().backend; }
  // Nothing beyond forwarding to one backend: the upstream request and the
  // response head need not look at the action at all.
  bool plain_forward() const {
    return !redirects && refuse.empty() && !rewrite.active() && request_headers.empty() && response_headers.empty() && mirrors.empty() && !affinity &&
           backends.size() <= 1 && (backends.empty() || !backends[0].action) && !ip_access && !basic_auth && !cors && rate_limits.empty() && !conn_limit && ssl_redirect == SslRedirect::Default && max_body_bytes < 0;
  }
};

}  // namespace ingressd::routing
