#include "routing/annotations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "core/strings.h"
#include "model/validate.h"
#include "routing/cors.h"
#include "routing/rate_limit.h"

namespace ingressd::routing {

const char* support_name(Support s) {
  switch (s) {
    case Support::Honoured: return "honoured";
    case Support::Approximate: return "approximate";
    case Support::Accepted: return "accepted";
    case Support::NotYet: return "not yet";
    case Support::FailClosed: return "fail closed";
    case Support::Refused: return "refused";
  }
  return "?";
}

namespace {

using S = Support;
constexpr std::string_view kSnippet =
    "raw nginx configuration: there is no nginx to give it to, and pasting annotation text into a config language "
    "is the bug class of CVE-2021-25742 and IngressNightmare (CVE-2025-1974); express it with a typed annotation";
constexpr std::string_view kAuth =
    "authentication is not implemented yet: the Ingress's routes answer 503 rather than serve unprotected";
constexpr std::string_view kTlsAuth =
    "client-certificate authentication is not implemented yet: the Ingress's routes answer 503 rather than serve "
    "unprotected";
constexpr std::string_view kWaf = "ModSecurity is not available: the Ingress's routes answer 503 rather than serve unfiltered";

}  // namespace

const std::vector<AnnotationInfo>& annotation_table() {
  static const std::vector<AnnotationInfo> t = {
      {"app-root", S::Honoured, "a request for / is redirected (302) to this path"},
      {"affinity", S::Honoured,
       "cookie: a client keeps to the endpoint its cookie names (the same value in every replica); a new client, or "
       "one whose endpoint is gone or failing, gets the round-robin endpoint and a new cookie"},
      {"affinity-mode", S::Approximate,
       "balanced and persistent both keep a client on its endpoint while it is there (no rebalancing on scale-up)"},
      {"affinity-canary-behavior", S::NotYet, "with affinity and canary"},
      {"auth-realm", S::Honoured, "the realm of the Basic challenge (default \"Authentication Required\")"},
      {"auth-secret", S::Honoured,
       "a Secret of the Ingress's namespace with the users; missing, unreadable or empty: the routes answer 503. "
       "Operator mode watches only kubernetes.io/tls Secrets today, so there basic auth fails closed (503) until "
       "the Secret informer covers auth Secrets"},
      {"auth-secret-type", S::Honoured, "auth-file (an htpasswd file under the key \"auth\", default) or auth-map (a key per user)"},
      {"auth-type", S::Honoured,
       "basic: 401 without valid credentials (htpasswd bcrypt, apr1, SHA-1 or crypt hashes, checked by APR); digest is "
       "not implemented and fails closed (503)"},
      {"auth-tls-secret", S::FailClosed, kTlsAuth},
      {"auth-tls-verify-depth", S::FailClosed, kTlsAuth},
      {"auth-tls-verify-client", S::FailClosed, kTlsAuth},
      {"auth-tls-error-page", S::FailClosed, kTlsAuth},
      {"auth-tls-pass-certificate-to-upstream", S::FailClosed, kTlsAuth},
      {"auth-tls-match-cn", S::FailClosed, kTlsAuth},
      {"auth-url", S::FailClosed, kAuth},
      {"auth-cache-key", S::FailClosed, kAuth},
      {"auth-cache-duration", S::FailClosed, kAuth},
      {"auth-proxy-set-headers", S::FailClosed, kAuth},
      {"auth-method", S::FailClosed, kAuth},
      {"auth-signin", S::FailClosed, kAuth},
      {"auth-signin-redirect-param", S::FailClosed, kAuth},
      {"auth-request-redirect", S::FailClosed, kAuth},
      {"auth-response-headers", S::FailClosed, kAuth},
      {"auth-always-set-cookie", S::FailClosed, kAuth},
      {"auth-keepalive", S::FailClosed, kAuth},
      {"auth-keepalive-share-vars", S::FailClosed, kAuth},
      {"auth-keepalive-requests", S::FailClosed, kAuth},
      {"auth-keepalive-timeout", S::FailClosed, kAuth},
      {"auth-snippet", S::Refused, kSnippet},
      {"enable-global-auth", S::Accepted, "ingressd has no global external auth to turn on or off"},
      {"backend-protocol", S::Honoured,
       "HTTP is honoured; HTTPS, GRPC, GRPCS, AUTO_HTTP, AJP and FCGI backends are not implemented yet and their "
       "routes answer 503 (never plain HTTP to a backend that expects TLS)"},
      {"canary", S::Honoured,
       "the Ingress's paths become alternatives of the same host and path of the main Ingress (one canary per path); "
       "the main Ingress's other annotations apply to both"},
      {"canary-by-header", S::Honoured, "\"always\" → canary, \"never\" → main, else the next rule"},
      {"canary-by-header-value", S::Honoured, "the header equal to this value → canary, else the next rule"},
      {"canary-by-header-pattern", S::NotYet, "regex header values are not implemented yet; the header is ignored"},
      {"canary-by-cookie", S::Honoured, "the cookie \"always\" → canary, \"never\" → main, else the next rule"},
      {"canary-weight", S::Honoured, "this share of the remaining requests (out of canary-weight-total) → canary"},
      {"canary-weight-total", S::Honoured, "default 100"},
      {"client-body-buffer-size", S::Accepted, "ingressd streams request bodies; it never buffers them to disk"},
      {"configuration-snippet", S::Refused, kSnippet},
      {"custom-http-errors", S::NotYet, "not implemented yet"},
      {"custom-headers", S::NotYet, "not implemented yet; ingressd.io/response-headers sets response headers"},
      {"default-backend", S::NotYet, "not implemented yet"},
      {"enable-cors", S::Honoured, "OPTIONS is answered 204 with the CORS fields; every response gets them for an allowed Origin"},
      {"cors-allow-origin", S::Honoured, "comma-separated origins, \"*\" (default) or https://*.example.com"},
      {"cors-allow-methods", S::Honoured, "default GET, PUT, POST, DELETE, PATCH, OPTIONS"},
      {"cors-allow-headers", S::Honoured, "default DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"},
      {"cors-expose-headers", S::Honoured, "default none"},
      {"cors-allow-credentials", S::Honoured, "default true"},
      {"cors-max-age", S::Honoured, "seconds, default 1728000"},
      {"force-ssl-redirect", S::Honoured, "308 to https even for hosts without spec.tls"},
      {"from-to-www-redirect", S::NotYet, "not implemented yet"},
      {"http2-push-preload", S::Accepted, "HTTP/2 server push is obsolete (browsers removed it); nothing is pushed"},
      {"limit-connections", S::Honoured,
       "concurrent requests per client address, per replica (each HTTP/2 stream counts, as in nginx); 503 beyond"},
      {"limit-rps", S::Honoured, "per client address, per replica (shared by the workers); burst = limit × multiplier; 503 beyond"},
      {"limit-rpm", S::Honoured, "as limit-rps, per minute"},
      {"limit-burst-multiplier", S::Honoured, "default 5"},
      {"limit-rate", S::NotYet, "bandwidth limits are not implemented yet"},
      {"limit-rate-after", S::NotYet, "bandwidth limits are not implemented yet"},
      {"limit-whitelist", S::Honoured, "the older name of limit-allowlist"},
      {"limit-allowlist", S::Honoured, "CIDRs the rate limits do not apply to"},
      {"global-rate-limit", S::NotYet, "removed from ingress-nginx; not implemented"},
      {"global-rate-limit-window", S::NotYet, "removed from ingress-nginx; not implemented"},
      {"global-rate-limit-key", S::NotYet, "removed from ingress-nginx; not implemented"},
      {"global-rate-limit-ignored-cidrs", S::NotYet, "removed from ingress-nginx; not implemented"},
      {"permanent-redirect", S::Honoured, "every request of the Ingress's paths is redirected to this URL"},
      {"permanent-redirect-code", S::Honoured, "300-308 (default 301)"},
      {"temporal-redirect", S::Honoured, "every request of the Ingress's paths is redirected to this URL"},
      {"temporal-redirect-code", S::Honoured, "300-308 (default 302)"},
      {"preserve-trailing-slash", S::NotYet, "not implemented yet"},
      {"proxy-body-size", S::Honoured, "413 beyond it; 0 = no limit; overrides --max-body-bytes"},
      {"proxy-cookie-domain", S::NotYet, "not implemented yet"},
      {"proxy-cookie-path", S::NotYet, "not implemented yet"},
      {"proxy-connect-timeout", S::Honoured, "seconds; overrides --upstream-connect-timeout"},
      {"proxy-send-timeout", S::Approximate,
       "ingressd has one upstream inactivity timeout for writing and reading: the larger of proxy-send-timeout and "
       "the read timeout (proxy-read-timeout, else the flag) applies"},
      {"proxy-read-timeout", S::Honoured, "seconds; overrides --upstream-read-timeout"},
      {"proxy-next-upstream", S::NotYet, "ingressd retries only what is safe: connect failures, and idempotent requests reset before any response byte"},
      {"proxy-next-upstream-timeout", S::NotYet, "see proxy-next-upstream"},
      {"proxy-next-upstream-tries", S::NotYet, "see proxy-next-upstream (--max-connect-attempts)"},
      {"proxy-request-buffering", S::Accepted, "ingressd streams request bodies (as \"off\")"},
      {"proxy-redirect-from", S::NotYet, "not implemented yet"},
      {"proxy-redirect-to", S::NotYet, "not implemented yet"},
      {"proxy-http-version", S::Accepted, "ingressd speaks HTTP/1.1 to upstreams"},
      {"proxy-ssl-secret", S::NotYet, "only with backend-protocol HTTPS, which is not implemented yet"},
      {"proxy-ssl-ciphers", S::NotYet, "only with backend-protocol HTTPS"},
      {"proxy-ssl-name", S::NotYet, "only with backend-protocol HTTPS"},
      {"proxy-ssl-protocols", S::NotYet, "only with backend-protocol HTTPS"},
      {"proxy-ssl-verify", S::NotYet, "only with backend-protocol HTTPS"},
      {"proxy-ssl-verify-depth", S::NotYet, "only with backend-protocol HTTPS"},
      {"proxy-ssl-server-name", S::NotYet, "only with backend-protocol HTTPS"},
      {"enable-rewrite-log", S::Accepted, "`ingressd explain` shows the rewritten path"},
      {"rewrite-target", S::Honoured,
       "the path becomes the target with $1..$9 from the path regex; the host switches to regex matching"},
      {"satisfy", S::FailClosed, kAuth},
      {"server-alias", S::NotYet, "not implemented yet; list the names as rules' hosts"},
      {"server-snippet", S::Refused, kSnippet},
      {"service-upstream", S::NotYet, "not implemented yet: requests go to the endpoints"},
      {"session-cookie-name", S::Honoured, "the cookie's name (default INGRESSCOOKIE)"},
      {"session-cookie-path", S::Honoured, "the cookie's Path (default /)"},
      {"session-cookie-domain", S::Honoured, "the cookie's Domain"},
      {"session-cookie-expires", S::Approximate, "sent as Max-Age (the same lifetime, no clock in the header)"},
      {"session-cookie-max-age", S::Honoured, "the cookie's Max-Age"},
      {"session-cookie-secure", S::Honoured, "the cookie's Secure attribute"},
      {"session-cookie-change-on-failure", S::Approximate,
       "always on: after a failed endpoint the client gets the cookie of the endpoint that answered"},
      {"session-cookie-samesite", S::Honoured, "the cookie's SameSite (None, Lax, Strict)"},
      {"session-cookie-conditional-samesite-none", S::Approximate,
       "SameSite=None is sent to every browser (no User-Agent sniffing)"},
      {"ssl-redirect", S::Honoured, "\"false\" turns the 308 to https off for the Ingress's paths"},
      {"ssl-passthrough", S::FailClosed,
       "TLS passthrough is not implemented: ingressd would terminate TLS with its own certificate instead of the "
       "backend's, so the routes answer 503"},
      {"stream-snippet", S::Refused, kSnippet},
      {"upstream-hash-by", S::NotYet, "consistent hashing is not implemented yet; requests are balanced round robin"},
      {"upstream-hash-by-subset", S::NotYet, "with upstream-hash-by"},
      {"upstream-hash-by-subset-size", S::NotYet, "with upstream-hash-by"},
      {"x-forwarded-prefix", S::Honoured, "sets X-Forwarded-Prefix on the upstream request"},
      {"load-balance", S::NotYet, "round robin only"},
      {"upstream-vhost", S::Honoured, "the Host sent upstream"},
      {"allowlist-source-range", S::Honoured, "clients outside these CIDRs get 403; an invalid list fails closed (503)"},
      {"whitelist-source-range", S::Honoured, "the older name of allowlist-source-range; both set differently fails closed"},
      {"denylist-source-range", S::Honoured, "clients in these CIDRs get 403; an invalid list fails closed (503)"},
      {"proxy-buffering", S::Accepted, "ingressd streams responses (as \"off\")"},
      {"proxy-buffers-number", S::Accepted, "buffers are ingressd's own (64 KiB per direction)"},
      {"proxy-buffer-size", S::Accepted, "buffers are ingressd's own; a response head up to 64 KiB is accepted"},
      {"proxy-max-temp-file-size", S::Accepted, "ingressd never buffers to disk"},
      {"ssl-ciphers", S::NotYet, "cipher suites are process-wide (OpenSSL defaults, TLS 1.2+)"},
      {"ssl-prefer-server-ciphers", S::NotYet, "process-wide"},
      {"connection-proxy-header", S::Accepted, "ingressd manages upstream connections itself (keep-alive pools)"},
      {"enable-access-log", S::NotYet, "the access log is process-wide (--access-log)"},
      {"enable-opentracing", S::NotYet, "tracing is not implemented"},
      {"opentracing-trust-incoming-span", S::NotYet, "tracing is not implemented"},
      {"enable-opentelemetry", S::NotYet, "tracing is not implemented"},
      {"opentelemetry-trust-incoming-span", S::NotYet, "tracing is not implemented"},
      {"opentelemetry-operation-name", S::NotYet, "tracing is not implemented"},
      {"enable-influxdb", S::NotYet, "use the Prometheus metrics on the admin port"},
      {"influxdb-measurement", S::NotYet, "with enable-influxdb"},
      {"influxdb-port", S::NotYet, "with enable-influxdb"},
      {"influxdb-host", S::NotYet, "with enable-influxdb"},
      {"influxdb-server-name", S::NotYet, "with enable-influxdb"},
      {"use-regex", S::Honoured, "the Ingress's hosts match paths as case-insensitive RE2 regexes anchored at the start"},
      {"enable-modsecurity", S::FailClosed, kWaf},
      {"enable-owasp-core-rules", S::FailClosed, kWaf},
      {"modsecurity-transaction-id", S::FailClosed, kWaf},
      {"modsecurity-snippet", S::Refused, kSnippet},
      {"mirror-request-body", S::Approximate,
       "the body is mirrored when all of it came with the request head (Content-Length); a request whose body is "
       "still on its way is not mirrored (ingressd never buffers a body for a mirror)"},
      {"mirror-target", S::Approximate,
       "a Service of the Ingress's namespace, http://<service>[.<namespace>[.svc[.cluster.local]]][:port] followed "
       "by $request_uri or nothing: the mirror gets the request as the backend does; other URLs are refused with a "
       "warning"},
      {"mirror-host", S::NotYet, "the mirrored request carries the Host the backend gets"},
      // ingressd's own (ingressd.io/ only): what configuration-snippet was most used for, typed.
      {"request-headers", S::Honoured, "ingressd.io/ only: \"Name: value\" lines set on the upstream request"},
      {"response-headers", S::Honoured, "ingressd.io/ only: \"Name: value\" lines set on the response"},
  };
  return t;
}

const AnnotationInfo* find_annotation(std::string_view name) {
  for (const auto& a : annotation_table())
    if (a.name == name) return &a;
  return nullptr;
}

bool parse_bool(std::string_view v, bool& out) {
  // strconv.ParseBool, as ingress-nginx reads its bools.
  static const std::set<std::string_view> t = {"1", "t", "T", "TRUE", "true", "True"};
  static const std::set<std::string_view> f = {"0", "f", "F", "FALSE", "false", "False"};
  if (t.count(v)) return out = true, true;
  if (f.count(v)) return out = false, true;
  return false;
}

bool parse_size(std::string_view v, uint64_t& out) {
  if (v.empty()) return false;
  uint64_t mult = 1;
  switch (v.back()) {
    case 'k': case 'K': mult = 1024; break;
    case 'm': case 'M': mult = 1024 * 1024; break;
    case 'g': case 'G': mult = 1024ull * 1024 * 1024; break;
    default: break;
  }
  if (mult != 1) v.remove_suffix(1);
  if (v.empty()) return false;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) return false;
  if (n > UINT64_MAX / mult) return false;
  out = n * mult;
  return true;
}

bool parse_seconds(std::string_view v, int& out_ms) {
  int64_t mult = 1000;
  if (v.ends_with("ms")) {
    mult = 1;
    v.remove_suffix(2);
  } else if (v.ends_with("s")) {
    v.remove_suffix(1);
  } else if (v.ends_with("m")) {
    mult = 60'000;
    v.remove_suffix(1);
  }
  if (v.empty()) return false;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0 || n > 86'400'000 / mult) return false;
  out_ms = static_cast<int>(n * mult);
  return true;
}

namespace {

// RFC 9110 §5.6.2 token.
bool is_http_token(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (!(std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos))
      return false;
  return true;
}

bool visible_or_space(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

// An absolute http(s) URL of RFC 3986 characters only: nothing that could end a
// header line or be read as something else.
bool valid_redirect_url(std::string_view v) {
  if (!v.starts_with("http://") && !v.starts_with("https://")) return false;
  if (v.size() > 2048) return false;
  for (unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
        c == '{' || c == '|' || c == '}')
      return false;
  }
  size_t host_start = v.find("://") + 3;
  return host_start < v.size() && v[host_start] != '/';
}

bool valid_path_value(std::string_view v) {
  if (v.empty() || v[0] != '/' || v.size() > 2048) return false;
  for (unsigned char c : v)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

bool valid_host_value(std::string_view v) {
  if (v.empty() || v.size() > 255) return false;
  for (unsigned char c : v)
    if (!(std::isalnum(c) || c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_')) return false;
  return true;
}

// Field names a route may not set: framing and connection management are ours.
bool reserved_header(std::string_view lower) {
  static const std::set<std::string_view> r = {
      "connection", "content-length", "transfer-encoding", "host", "keep-alive", "te", "trailer", "upgrade",
      "proxy-connection", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip",
      "x-request-id"};
  return r.count(lower) > 0;
}

bool parse_header_lines(std::string_view v, HeaderEdits& out, std::string& why) {
  for (auto line : split(v, '\n')) {
    line = trim_ows(line);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      why = fmt::format("\"{}\" is not \"Name: value\"", line);
      return false;
    }
    std::string_view name = trim_ows(line.substr(0, colon));
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_http_token(name)) {
      why = fmt::format("\"{}\" is not a valid header name", name);
      return false;
    }
    if (!visible_or_space(value)) {
      why = fmt::format("the value of {} holds control characters", name);
      return false;
    }
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (reserved_header(lower)) {
      why = fmt::format("{} is managed by ingressd and cannot be set", name);
      return false;
    }
    out.set.emplace_back(std::move(lower), std::string(value));
  }
  return true;
}

}  // namespace

bool parse_rewrite_target(std::string_view v, std::string& rewrite, std::string& why) {
  if (!valid_path_value(v)) {
    why = "must be a path starting with '/', without spaces or control characters";
    return false;
  }
  if (v.find_first_of("?#") != std::string_view::npos) {
    why = "must be a path without a query or fragment (the request's query string is kept)";
    return false;
  }
  rewrite.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\') {
      rewrite += "\\\\";
    } else if (c == '$') {
      if (i + 1 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '9') {
        rewrite += '\\';
        rewrite += v[++i];
      } else {
        why = "only $0..$9 (the path regex's groups) may be used, no nginx variables";
        return false;
      }
    } else {
      rewrite += c;
    }
  }
  return true;
}

bool parse_mirror_target(std::string_view v, std::string& service, std::string& ns, int32_t& port, std::string& why) {
  why = "must be http://<service>[.<namespace>[.svc[.cluster.local]]][:port] followed by $request_uri or nothing "
        "(ingressd mirrors to Services of the Ingress's namespace)";
  if (!v.starts_with("http://")) return false;
  v.remove_prefix(7);
  std::string_view hostport = v.substr(0, v.find('/')), rest = v.substr(hostport.size());
  if (const size_t d = hostport.find('$'); d != std::string_view::npos) {
    rest = hostport.substr(d);
    hostport = hostport.substr(0, d);
  }
  if (!rest.empty() && rest != "$request_uri" && rest != "/$request_uri") return false;
  std::string_view host = hostport;
  port = 80;
  if (const size_t c = hostport.rfind(':'); c != std::string_view::npos) {
    host = hostport.substr(0, c);
    std::string_view p = hostport.substr(c + 1);
    int n = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    if (ec != std::errc() || end != p.data() + p.size() || n < 1 || n > 65535) return false;
    port = n;
  }
  std::vector<std::string_view> labels;
  for (size_t i = 0; i <= host.size();) {
    size_t j = host.find('.', i);
    if (j == std::string_view::npos) j = host.size();
    labels.push_back(host.substr(i, j - i));
    i = j + 1;
  }
  if (labels.empty() || labels.size() > 5) return false;
  for (auto l : labels)
    if (!model::is_dns1123_label(l)) return false;
  if (labels.size() >= 3 && labels[2] != "svc") return false;
  if (labels.size() == 4 || (labels.size() == 5 && (labels[3] != "cluster" || labels[4] != "local"))) return false;
  service = labels[0];
  ns = labels.size() >= 2 ? std::string(labels[1]) : std::string();
  return true;
}

IngressOptions parse_annotations(const std::map<std::string, std::string>& annotations, bool allow_unenforced,
                                 std::vector<AnnotationIssue>& issues) {
  IngressOptions o;
  // name → (value, key as written); ours wins over ingress-nginx's.
  std::map<std::string, std::pair<std::string, std::string>> vals;
  std::vector<std::string> unknown_protective;
  for (const auto& [key, value] : annotations) {
    std::string_view k(key);
    bool ours = k.starts_with(kOurPrefix);
    if (!ours && !k.starts_with(kNginxPrefix)) continue;
    std::string name(k.substr(ours ? kOurPrefix.size() : kNginxPrefix.size()));
    const AnnotationInfo* info = find_annotation(name);
    if (!info || (!ours && (name == "request-headers" || name == "response-headers"))) {
      // A name that looks like protection (a newer ingress-nginx's auth or
      // source-range annotation, a snippet) fails closed rather than be ignored.
      const bool protective = name.starts_with("auth-") || name.ends_with("-source-range") ||
                              name.find("snippet") != std::string::npos || name.find("modsecurity") != std::string::npos;
      if (protective) {
        issues.push_back({Severity::Error, "UnknownAnnotation",
                          fmt::format("annotation {} is not known to ingressd but looks like protection (auth, source "
                                      "ranges, snippets); the Ingress's routes answer 503 rather than serve unprotected",
                                      key)});
        unknown_protective.push_back(key);
      } else {
        issues.push_back({Severity::Warning, "UnknownAnnotation",
                          fmt::format("annotation {} is not known to ingressd and has no effect", key)});
      }
      continue;
    }
    if (ours || !vals.count(name)) vals[name] = {value, key};
  }
  std::vector<std::string> fail;  // reasons to fail closed
  for (const auto& key : unknown_protective) fail.push_back(fmt::format("{} is not known", key));
  auto bad = [&](const std::string& key, const std::string& value, const std::string& why, bool closes) {
    issues.push_back({Severity::Error, "InvalidAnnotation",
                      fmt::format("annotation {}: invalid value \"{}\": {}{}", key, value, why,
                                  closes ? "; the Ingress's routes answer 503 rather than serve unprotected"
                                         : "; the annotation is ignored"),
                      key});
    if (closes) fail.push_back(fmt::format("{} is invalid", key));
  };
  auto get = [&](std::string_view name) -> const std::pair<std::string, std::string>* {
    auto it = vals.find(std::string(name));
    return it == vals.end() ? nullptr : &it->second;
  };
  auto boolean = [&](std::string_view name, bool& out) {
    if (auto* v = get(name)) {
      if (parse_bool(v->first, out)) return true;
      bad(v->second, v->first, "must be \"true\" or \"false\"", false);
    }
    return false;
  };

  for (const auto& [name, kv] : vals) {
    const AnnotationInfo* info = find_annotation(name);
    const std::string& key = kv.second;
    switch (info->support) {
      case Support::Refused:
        issues.push_back({Severity::Error, "RefusedAnnotation", fmt::format("annotation {} is refused: {}", key, info->note)});
        fail.push_back(fmt::format("{} is refused", key));
        break;
      case Support::FailClosed:
        if (name == "ssl-passthrough") {
          bool on = false;
          if (!parse_bool(kv.first, on)) {
            bad(key, kv.first, "must be \"true\" or \"false\"", true);
            break;
          }
          if (!on) break;
        }
        issues.push_back({Severity::Error, "UnsupportedAnnotation",
                          fmt::format("annotation {} cannot be honoured: {}", key, info->note)});
        fail.push_back(fmt::format("{} cannot be honoured", key));
        break;
      case Support::NotYet:
        issues.push_back({Severity::Warning, "UnsupportedAnnotation",
                          fmt::format("annotation {} is not honoured: {}", key, info->note)});
        break;
      default:
        break;
    }
  }

  bool b = false;
  if (boolean("use-regex", b)) o.regex = b;
  if (boolean("canary", b)) o.canary = b;
  if (o.canary) {
    auto token = [&](std::string_view name, std::string& out) {
      if (auto* v = get(name)) {
        if (is_http_token(v->first)) out = v->first;
        else bad(v->second, v->first, "must be a header or cookie name", false);
      }
    };
    token("canary-by-header", o.canary_header);
    token("canary-by-cookie", o.canary_cookie);
    if (auto* v = get("canary-by-header-value")) {
      if (!v->first.empty() && visible_or_space(v->first)) o.canary_header_value = v->first;
      else bad(v->second, v->first, "must be a header value", false);
    }
    auto number = [&](std::string_view name, int& out) {
      auto* v = get(name);
      if (!v) return;
      int n = -1;
      auto [end, ec] = std::from_chars(v->first.data(), v->first.data() + v->first.size(), n);
      if (ec == std::errc() && end == v->first.data() + v->first.size() && n >= 0 && n <= 1'000'000) out = n;
      else bad(v->second, v->first, "must be a whole number", false);
    };
    number("canary-weight", o.canary_weight);
    number("canary-weight-total", o.canary_weight_total);
    if (o.canary_weight_total <= 0) o.canary_weight_total = 100;
    if (o.canary_weight > o.canary_weight_total) o.canary_weight = o.canary_weight_total;
  }
  if (auto* v = get("rewrite-target")) {
    std::string rw, why;
    if (parse_rewrite_target(v->first, rw, why)) {
      o.rewrite_target = rw;
      o.regex = true;
    } else {
      bad(v->second, v->first, why, false);
    }
  }
  if (auto* v = get("app-root")) {
    if (valid_path_value(v->first)) o.app_root = v->first;
    else bad(v->second, v->first, "must be a path starting with '/'", false);
  }
  if (auto* v = get("x-forwarded-prefix")) {
    if (!v->first.empty() && visible_or_space(v->first)) o.request_headers.set.emplace_back("x-forwarded-prefix", v->first);
    else bad(v->second, v->first, "must be a header value without control characters", false);
  }
  if (auto* v = get("upstream-vhost")) {
    if (valid_host_value(v->first)) o.upstream_vhost = v->first;
    else bad(v->second, v->first, "must be a host name (and port)", false);
  }
  if (auto* v = get("affinity")) {
    if (v->first == "cookie") {
      auto aff = std::make_shared<SessionAffinity>();
      auto field = [&](std::string_view name, auto valid, const char* why) -> const std::string* {
        auto* f = get(name);
        if (!f) return nullptr;
        if (valid(f->first)) return &f->first;
        bad(f->second, f->first, why, false);
        return nullptr;
      };
      if (auto* n = field("session-cookie-name", [](const std::string& x) { return is_http_token(x); }, "must be a cookie name"))
        aff->cookie = *n;
      std::string attrs = "; Path=";
      const std::string* path = field("session-cookie-path", [](const std::string& x) { return valid_path_value(x) && x.find(';') == std::string::npos; },
                                      "must be a path starting with '/'");
      attrs += path ? *path : "/";
      if (auto* d = field("session-cookie-domain", [](const std::string& x) { return valid_host_value(x) && x.find(':') == std::string::npos; },
                          "must be a domain name"))
        attrs += "; Domain=" + *d;
      auto seconds = [](const std::string& x) {
        return !x.empty() && x.size() <= 10 && x.find_first_not_of("0123456789") == std::string::npos;
      };
      const std::string* age = field("session-cookie-max-age", seconds, "must be a number of seconds");
      if (!age) age = field("session-cookie-expires", seconds, "must be a number of seconds");
      if (age) attrs += "; Max-Age=" + *age;
      bool secure = false;
      if (boolean("session-cookie-secure", secure) && secure) attrs += "; Secure";
      if (auto* ss = field("session-cookie-samesite", [](const std::string& x) { return x == "None" || x == "Lax" || x == "Strict"; },
                           "must be None, Lax or Strict"))
        attrs += "; SameSite=" + *ss;
      attrs += "; HttpOnly";
      aff->attributes = attrs;
      o.affinity = std::move(aff);
    } else {
      bad(v->second, v->first, "must be \"cookie\" (the only affinity type)", false);
    }
  }
  if (auto* v = get("mirror-target")) {
    std::string why;
    if (!parse_mirror_target(v->first, o.mirror_service, o.mirror_namespace, o.mirror_port, why))
      bad(v->second, v->first, why, false);
  }
  auto redirect = [&](std::string_view url_name, std::string_view code_name, int default_code) {
    auto* v = get(url_name);
    if (!v || o.redirect) return;
    if (!valid_redirect_url(v->first)) {
      bad(v->second, v->first, "must be an absolute http:// or https:// URL of URL characters only", false);
      return;
    }
    Redirect r;
    r.url = v->first;
    r.status = default_code;
    if (auto* c = get(code_name)) {
      int code = 0;
      auto [end, ec] = std::from_chars(c->first.data(), c->first.data() + c->first.size(), code);
      if (ec == std::errc() && end == c->first.data() + c->first.size() && code >= 300 && code <= 308 && code != 306 &&
          code != 304 && code != 305)
        r.status = code;
      else
        bad(c->second, c->first, fmt::format("must be a redirect status (300-303, 307, 308); {} is used", default_code), false);
    }
    o.redirect = r;
  };
  redirect("permanent-redirect", "permanent-redirect-code", 301);
  redirect("temporal-redirect", "temporal-redirect-code", 302);
  if (boolean("ssl-redirect", b) && !b) o.ssl_redirect = SslRedirect::Off;
  if (boolean("force-ssl-redirect", b) && b) o.ssl_redirect = SslRedirect::Force;
  if (auto* v = get("proxy-body-size")) {
    uint64_t n = 0;
    if (parse_size(v->first, n) && n <= static_cast<uint64_t>(INT64_MAX)) o.max_body_bytes = static_cast<int64_t>(n);
    else bad(v->second, v->first, "must be a size such as 8m, 512k or 0 (no limit)", false);
  }
  int ms = 0, send_ms = 0;
  if (auto* v = get("proxy-connect-timeout")) {
    if (parse_seconds(v->first, ms) && ms > 0) o.connect_timeout_ms = ms;
    else bad(v->second, v->first, "must be a positive number of seconds", false);
  }
  if (auto* v = get("proxy-read-timeout")) {
    if (parse_seconds(v->first, ms) && ms > 0) o.read_timeout_ms = ms;
    else bad(v->second, v->first, "must be a positive number of seconds", false);
  }
  if (auto* v = get("proxy-send-timeout")) {
    if (parse_seconds(v->first, send_ms) && send_ms > 0) {
      o.send_timeout_ms = send_ms;
    } else {
      bad(v->second, v->first, "must be a positive number of seconds", false);
    }
  }
  auto cidrs = [&](std::string_view name, std::vector<Cidr>& out) {
    auto* v = get(name);
    if (!v) return false;
    for (auto part : split(v->first, ',')) {
      part = trim_ows(part);
      if (part.empty()) continue;
      Cidr c;
      if (!Cidr::parse(part, c)) {
        bad(v->second, v->first, fmt::format("\"{}\" is not an address or CIDR", part), true);
        out.clear();
        return false;
      }
      out.push_back(c);
    }
    if (out.empty()) bad(v->second, v->first, "lists no address", true);
    return !out.empty();
  };
  {
    auto ip = std::make_shared<IpAccess>();
    const auto* allow_new = get("allowlist-source-range");
    const auto* allow_old = get("whitelist-source-range");
    if (allow_new && allow_old && allow_new->first != allow_old->first) {
      issues.push_back({Severity::Error, "InvalidAnnotation",
                        fmt::format("annotations {} and {} disagree; the Ingress's routes answer 503 rather than guess "
                                    "which list protects them", allow_new->second, allow_old->second)});
      fail.push_back("allowlist-source-range and whitelist-source-range disagree");
    }
    bool any = cidrs(allow_new ? "allowlist-source-range" : "whitelist-source-range", ip->allow);
    any = cidrs("denylist-source-range", ip->deny) || any;
    if (any) o.ip_access = std::move(ip);
  }
  if (auto* v = get("backend-protocol")) {
    std::string p = v->first;
    for (char& c : p) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (p != "HTTP") {
      static const std::set<std::string> known = {"HTTPS", "GRPC", "GRPCS", "AUTO_HTTP", "AJP", "FCGI"};
      issues.push_back({Severity::Error, "UnsupportedAnnotation",
                        fmt::format("annotation {}: \"{}\" {}; the Ingress's routes answer 503 rather than send plain "
                                    "HTTP to that backend",
                                    v->second, v->first,
                                    known.count(p) ? "backends are not supported yet" : "is not a backend protocol")});
      fail.push_back(fmt::format("{}: {} is not supported", v->second, v->first));
    }
  }
  for (std::string_view name : {"request-headers", "response-headers"}) {
    auto* v = get(name);
    if (!v) continue;
    std::string why;
    HeaderEdits& e = name == "request-headers" ? o.request_headers : o.response_headers;
    HeaderEdits parsed;
    if (parse_header_lines(v->first, parsed, why)) e.set.insert(e.set.end(), parsed.set.begin(), parsed.set.end());
    else bad(v->second, v->first, why, false);
  }
  {
    int mult = 5;
    auto count = [&](std::string_view name, int& out) {
      auto* v = get(name);
      if (!v) return false;
      int n = -1;
      auto [end, ec] = std::from_chars(v->first.data(), v->first.data() + v->first.size(), n);
      if (ec == std::errc() && end == v->first.data() + v->first.size() && n > 0 && n <= 10'000'000) {
        out = n;
        return true;
      }
      bad(v->second, v->first, "must be a positive whole number", false);
      return false;
    };
    count("limit-burst-multiplier", mult);
    int conns = 0;
    if (count("limit-connections", conns)) o.conn_limit = std::make_shared<ConnLimit>(conns);
    int rps = 0, rpm = 0;
    if (count("limit-rps", rps)) o.rate_limits.push_back(std::make_shared<RateLimit>(rps, double(rps) * mult));
    if (count("limit-rpm", rpm)) o.rate_limits.push_back(std::make_shared<RateLimit>(rpm / 60.0, double(rpm) * mult));
    if (!o.rate_limits.empty() || o.conn_limit) {
      std::vector<Cidr> exempt;
      cidrs(get("limit-allowlist") ? "limit-allowlist" : "limit-whitelist", exempt);
      o.rate_limit_exempt = std::move(exempt);
    }
  }
  if (boolean("enable-cors", b) && b) {
    auto cors = std::make_shared<CorsPolicy>();
    auto tokens = [&](std::string_view name, std::string& out) {
      auto* v = get(name);
      if (!v) return;
      for (auto t : split(v->first, ',')) {
        t = trim_ows(t);
        if (!t.empty() && t != "*" && !is_http_token(t)) {
          bad(v->second, v->first, fmt::format("\"{}\" is not a method or header name", t), false);
          return;
        }
      }
      out = v->first;
    };
    tokens("cors-allow-methods", cors->methods);
    tokens("cors-allow-headers", cors->headers);
    tokens("cors-expose-headers", cors->expose);
    if (auto* v = get("cors-allow-origin")) {
      for (auto t : split(v->first, ',')) {
        t = trim_ows(t);
        if (t.empty()) continue;
        size_t scheme = t.find("://");
        bool ok = t == "*" || (scheme != std::string_view::npos && scheme > 0 &&
                               valid_host_value(t.substr(scheme + 3).starts_with("*.") ? t.substr(scheme + 5)
                                                                                      : t.substr(scheme + 3)));
        if (!ok) {
          bad(v->second, v->first, fmt::format("\"{}\" is not an origin (scheme://host[:port], or *)", t), false);
          cors->origins.clear();
          break;
        }
        cors->origins.emplace_back(t);
      }
    } else {
      cors->origins = {"*"};
    }
    boolean("cors-allow-credentials", cors->credentials);
    if (auto* v = get("cors-max-age")) {
      int n = -1;
      auto [end, ec] = std::from_chars(v->first.data(), v->first.data() + v->first.size(), n);
      if (ec == std::errc() && end == v->first.data() + v->first.size() && n >= 0) cors->max_age = n;
      else bad(v->second, v->first, "must be a number of seconds", false);
    }
    if (!cors->origins.empty()) o.cors = std::move(cors);
  }
  if (auto* v = get("auth-type")) {
    std::string t = v->first;
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (t == "basic") {
      BasicAuthSpec spec;
      auto* sec = get("auth-secret");
      if (!sec || sec->first.empty()) {
        issues.push_back({Severity::Error, "InvalidAnnotation",
                          fmt::format("annotation {}: basic authentication needs auth-secret; the Ingress's routes answer "
                                      "503 rather than serve unprotected", v->second)});
        fail.push_back("auth-type basic without auth-secret");
      } else {
        size_t slash = sec->first.find('/');
        spec.secret_namespace = slash == std::string::npos ? "" : sec->first.substr(0, slash);
        spec.secret_name = slash == std::string::npos ? sec->first : sec->first.substr(slash + 1);
      }
      if (auto* ty = get("auth-secret-type")) {
        if (ty->first == "auth-map") spec.map = true;
        else if (ty->first != "auth-file") bad(ty->second, ty->first, "must be auth-file or auth-map", true);
      }
      if (auto* r = get("auth-realm")) {
        bool ok = !r->first.empty() && r->first.size() <= 256 && visible_or_space(r->first) &&
                  r->first.find_first_of("\"\\") == std::string::npos;
        if (ok) spec.realm = r->first;
        else bad(r->second, r->first, "must be text without quotes, backslashes or control characters", false);
      }
      o.basic_auth = spec;
    } else {
      issues.push_back({Severity::Error, "UnsupportedAnnotation",
                        fmt::format("annotation {}: \"{}\" {}; the Ingress's routes answer 503 rather than serve "
                                    "unprotected", v->second, v->first,
                                    t == "digest" ? "authentication is not implemented" : "is not an auth-type")});
      fail.push_back(fmt::format("{} {} cannot be honoured", v->second, v->first));
    }
  } else {
    for (std::string_view name : {"auth-secret", "auth-secret-type", "auth-realm"})
      if (auto* lone = get(name))
        issues.push_back({Severity::Warning, "InvalidAnnotation",
                          fmt::format("annotation {} has no effect without auth-type", lone->second)});
  }
  if (!fail.empty()) {
    std::string reason = fmt::format("this route is not served: {}", fmt::join(fail, "; "));
    if (allow_unenforced) {
      issues.push_back({Severity::Warning, "UnenforcedAnnotation",
                        "--allow-unenforced-annotations: the Ingress serves without the protection it asks for"});
    } else {
      o.refuse = std::move(reason);
    }
  }
  return o;
}

}  // namespace ingressd::routing
