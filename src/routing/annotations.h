// The ingress-nginx annotations (nginx.ingress.kubernetes.io/*) and our own
// prefix (ingressd.io/*, which wins when both are set), parsed into strict
// types and compiled into route actions. No annotation value is ever pasted
// into text for another parser (the IngressNightmare class of bugs): each is
// parsed as what it is (a bool, a size, a duration, a CIDR list, a URL, a
// path, an RE2 regex) or refused with a diagnostic.
//
// Fail closed: an annotation that asks for protection ingressd cannot give
// (authentication, client certificates, WAF, raw nginx snippets, an allow
// list it cannot parse) makes the Ingress's routes answer 503, never the
// unprotected backend, unless --allow-unenforced-annotations says otherwise.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnostic.h"
#include "routing/action.h"

namespace ingressd::routing {

inline constexpr std::string_view kNginxPrefix = "nginx.ingress.kubernetes.io/";
inline constexpr std::string_view kOurPrefix = "ingressd.io/";

// How ingressd treats an annotation (the table in docs/migrating-from-ingress-nginx.md).
enum class Support : uint8_t {
  Honoured,     // the same semantics as ingress-nginx
  Approximate,  // close, with a documented difference
  Accepted,     // parsed and accepted; nothing to do in ingressd
  NotYet,       // not implemented yet: a warning; the Ingress serves without it
  FailClosed,   // security-relevant and not implemented: the Ingress's routes answer 503
  Refused,      // raw nginx configuration: refused, and the routes answer 503
};
const char* support_name(Support s);

struct AnnotationInfo {
  std::string_view name;  // without prefix
  Support support;
  std::string_view note;  // how, or why not
};
// Every annotation ingress-nginx documents, and ours.
const std::vector<AnnotationInfo>& annotation_table();
const AnnotationInfo* find_annotation(std::string_view name);

// auth-type: basic, before its Secret is looked up (compile does).
struct BasicAuthSpec {
  std::string secret_namespace;  // "" = the Ingress's
  std::string secret_name;
  bool map = false;  // auth-secret-type: auth-map
  std::string realm = "Authentication Required";
};

// One Ingress's annotations, parsed.
struct IngressOptions {
  bool regex = false;  // use-regex or rewrite-target: the Ingress's hosts match paths as regexes
  bool canary = false;
  std::string canary_header, canary_header_value, canary_cookie;
  int canary_weight = 0, canary_weight_total = 100;
  std::optional<std::string> rewrite_target;  // RE2 rewrite string (\1..\9)
  std::string app_root;
  std::string upstream_vhost;
  // mirror-target naming a Service of the Ingress's namespace
  // (http://<service>[.<namespace>[.svc[.cluster.local]]][:port]$request_uri).
  std::shared_ptr<const SessionAffinity> affinity;  // affinity: cookie
  std::string mirror_service;
  std::string mirror_namespace;  // as written in the URL ("" = the Ingress's); compile checks it
  int32_t mirror_port = 80;
  std::optional<Redirect> redirect;  // permanent-redirect / temporal-redirect
  SslRedirect ssl_redirect = SslRedirect::Default;
  int64_t max_body_bytes = -1;
  int connect_timeout_ms = 0, read_timeout_ms = 0, send_timeout_ms = 0;
  std::shared_ptr<const IpAccess> ip_access;
  HeaderEdits request_headers, response_headers;
  std::optional<BasicAuthSpec> basic_auth;
  std::shared_ptr<const CorsPolicy> cors;
  std::vector<std::shared_ptr<const RateLimit>> rate_limits;
  std::shared_ptr<const ConnLimit> conn_limit;
  std::vector<Cidr> rate_limit_exempt;
  std::string refuse;  // why the routes fail closed ("" = they serve)
};

struct AnnotationIssue {
  Severity severity;
  std::string reason;  // UnknownAnnotation, InvalidAnnotation, UnsupportedAnnotation, RefusedAnnotation
  std::string message;
  std::string annotation = {};  // the key as written, when the issue is one annotation's value
};

// `allow_unenforced`: serve Ingresses whose protection ingressd cannot enforce
// anyway (the issues stay errors).
IngressOptions parse_annotations(const std::map<std::string, std::string>& annotations, bool allow_unenforced,
                                 std::vector<AnnotationIssue>& issues);

// mirror-target: http://<service>[.<namespace>[.svc[.cluster.local]]][:port], then $request_uri or nothing.
bool parse_mirror_target(std::string_view v, std::string& service, std::string& ns, int32_t& port, std::string& why);

// Parsers, exposed for tests and `ingressd migrate`.
bool parse_bool(std::string_view v, bool& out);
bool parse_size(std::string_view v, uint64_t& out);      // nginx size: 8, 8k, 8m, 8g
bool parse_seconds(std::string_view v, int& out_ms);     // 30, 30s, 500ms, 2m
// rewrite-target → an RE2 rewrite string; false with `why` when it is not a path or refers to a group > 9.
bool parse_rewrite_target(std::string_view v, std::string& rewrite, std::string& why);

}  // namespace ingressd::routing
