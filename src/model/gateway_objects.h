// Gateway API objects (gateway.networking.k8s.io, standard channel), named
// after the Go types of sigs.k8s.io/gateway-api/apis/v1, plus the core
// Namespace (its labels select routes for a listener).
//
// Decoding (decode.h) applies the CRD's OpenAPI defaults the way the API
// server does before it validates, so every field with a `default:` in the
// CRD holds a value here; std::optional marks a field that may really be
// absent. Enum-valued fields are strings as written (after defaulting): the
// CRD's enums were checked, but open enums such as Listener.protocol keep
// whatever matched their pattern. `status` is ignored everywhere.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/object_meta.h"

namespace ingressd::model {

// metav1.LabelSelector. The CRD types it but does not check operators: an
// unknown operator reaches the compile step, which must treat it as matching
// nothing (as labels.LabelSelectorAsSelector fails on it).
struct LabelSelectorRequirement {
  std::string key;
  std::string operator_;  // In, NotIn, Exists, DoesNotExist (unchecked)
  std::vector<std::string> values;
};
struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
};

// A GEP-2257 duration ("1h30m", "500ms", "0s"): the text as written and its
// value. "0s" means "no timeout" where the API says so (HTTPRouteTimeouts).
struct Duration {
  std::string text;
  int64_t ms = 0;
};
// nullopt unless `s` matches ^([0-9]{1,5}(h|m|s|ms)){1,4}$.
std::optional<int64_t> parse_gateway_duration_ms(std::string_view s);

// ---- references (object_reference_types.go, shared_types.go) ----

struct ParentReference {
  std::string group = "gateway.networking.k8s.io";
  std::string kind = "Gateway";
  std::optional<std::string> namespace_;  // absent = the route's namespace
  std::string name;
  std::optional<std::string> section_name;
  std::optional<int32_t> port;
  int line = 0;
};

struct BackendObjectReference {
  std::string group;  // "" = core
  std::string kind = "Service";
  std::string name;
  std::optional<std::string> namespace_;  // absent = the route's namespace
  std::optional<int32_t> port;            // required (CEL) when group "" and kind Service
};

struct SecretObjectReference {
  std::string group;  // "" = core
  std::string kind = "Secret";
  std::string name;
  std::optional<std::string> namespace_;
};

// ObjectReference (caCertificateRefs): no defaults, group and kind required.
struct ObjectReference {
  std::string group;
  std::string kind;
  std::string name;
  std::optional<std::string> namespace_;
};

struct LocalObjectReference {
  std::string group;
  std::string kind;
  std::string name;
};

struct RouteGroupKind {
  std::string group = "gateway.networking.k8s.io";
  std::string kind;
};

// ---- GatewayClass ----

struct ParametersReference {
  std::string group;
  std::string kind;
  std::string name;
  std::optional<std::string> namespace_;
};
struct GatewayClass {
  ObjectMeta meta;  // cluster-scoped: namespace_ ""
  std::string controller_name;
  std::optional<std::string> description;
  std::optional<ParametersReference> parameters_ref;
};

// ---- Gateway ----

struct RouteNamespaces {
  std::string from = "Same";  // All, Selector, Same
  std::optional<LabelSelector> selector;
};
struct AllowedRoutes {
  RouteNamespaces namespaces;
  std::vector<RouteGroupKind> kinds;  // empty = the kinds the listener's protocol supports
};

// Go: ListenerTLSConfig (Gateway.spec.tls is the different GatewayTLSConfig below).
struct ListenerTLSConfig {
  std::string mode = "Terminate";  // Terminate, Passthrough
  std::vector<SecretObjectReference> certificate_refs;
  std::map<std::string, std::string> options;
};

struct Listener {
  std::string name;
  std::optional<std::string> hostname;
  int32_t port = 0;
  std::string protocol;  // HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed name
  std::optional<ListenerTLSConfig> tls;
  AllowedRoutes allowed_routes;  // defaulted: {namespaces: {from: Same}}
  int line = 0;
};

struct GatewaySpecAddress {
  std::string type = "IPAddress";  // IPAddress, Hostname, NamedAddress or domain-prefixed
  std::string value;               // "" = absent (the implementation picks)
};

struct LocalParametersReference {
  std::string group;
  std::string kind;
  std::string name;
};
struct GatewayInfrastructure {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::optional<LocalParametersReference> parameters_ref;
};

struct ListenerNamespaces {
  std::string from = "None";  // All, Selector, Same, None
  std::optional<LabelSelector> selector;
};
struct AllowedListeners {
  ListenerNamespaces namespaces;
};

struct FrontendTLSValidation {
  std::vector<ObjectReference> ca_certificate_refs;  // 1..16
  std::string mode = "AllowValidOnly";               // AllowValidOnly, AllowInsecureFallback
};
struct TLSConfig {
  std::optional<FrontendTLSValidation> validation;
};
struct TLSPortConfig {
  int32_t port = 0;
  TLSConfig tls;
};
struct FrontendTLSConfig {
  TLSConfig default_;
  std::vector<TLSPortConfig> per_port;
};
struct GatewayBackendTLS {
  std::optional<SecretObjectReference> client_certificate_ref;
};
struct GatewayTLSConfig {
  std::optional<GatewayBackendTLS> backend;
  std::optional<FrontendTLSConfig> frontend;
};

struct Gateway {
  ObjectMeta meta;
  std::string gateway_class_name;
  std::vector<Listener> listeners;  // 1..64, unique names
  std::vector<GatewaySpecAddress> addresses;
  std::optional<GatewayInfrastructure> infrastructure;
  std::optional<AllowedListeners> allowed_listeners;
  std::optional<GatewayTLSConfig> tls;
};

// ---- HTTPRoute ----

struct HTTPPathMatch {
  std::string type = "PathPrefix";  // Exact, PathPrefix, RegularExpression
  std::string value = "/";
};
struct HTTPHeaderMatch {
  std::string type = "Exact";  // Exact, RegularExpression
  std::string name;
  std::string value;
};
struct HTTPQueryParamMatch {
  std::string type = "Exact";  // Exact, RegularExpression
  std::string name;
  std::string value;
};
struct HTTPRouteMatch {
  HTTPPathMatch path;  // defaulted: PathPrefix "/"
  std::vector<HTTPHeaderMatch> headers;
  std::vector<HTTPQueryParamMatch> query_params;
  std::optional<std::string> method;  // GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH
  int line = 0;
};

struct HTTPHeader {
  std::string name;
  std::string value;
};
struct HTTPHeaderFilter {
  std::vector<HTTPHeader> set;
  std::vector<HTTPHeader> add;
  std::vector<std::string> remove;
};

struct HTTPPathModifier {
  std::string type;                                 // ReplaceFullPath, ReplacePrefixMatch
  std::optional<std::string> replace_full_path;     // set exactly when type is ReplaceFullPath
  std::optional<std::string> replace_prefix_match;  // set exactly when type is ReplacePrefixMatch
};

struct HTTPRequestRedirectFilter {
  std::optional<std::string> scheme;  // http, https
  std::optional<std::string> hostname;
  std::optional<HTTPPathModifier> path;
  std::optional<int32_t> port;
  int32_t status_code = 302;  // 301, 302, 303, 307, 308
};

struct HTTPURLRewriteFilter {
  std::optional<std::string> hostname;
  std::optional<HTTPPathModifier> path;
};

struct Fraction {
  int32_t numerator = 0;
  int32_t denominator = 100;  // >= 1, >= numerator
};
// Neither percent nor fraction (at most one is set): mirror every request.
struct HTTPRequestMirrorFilter {
  BackendObjectReference backend_ref;
  std::optional<int32_t> percent;  // 0..100
  std::optional<Fraction> fraction;
};

struct HTTPCORSFilter {
  std::vector<std::string> allow_origins;  // "*" or scheme://host[:port], host may start with "*."
  std::optional<bool> allow_credentials;
  std::vector<std::string> allow_methods;  // the HTTP methods or "*"
  std::vector<std::string> allow_headers;
  std::vector<std::string> expose_headers;
  int32_t max_age = 5;  // seconds
};

// Exactly the member named by `type` is set (CEL on the CRD).
struct HTTPRouteFilter {
  std::string type;  // RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite,
                     // ExtensionRef, CORS
  std::optional<HTTPHeaderFilter> request_header_modifier;
  std::optional<HTTPHeaderFilter> response_header_modifier;
  std::optional<HTTPRequestMirrorFilter> request_mirror;
  std::optional<HTTPRequestRedirectFilter> request_redirect;
  std::optional<HTTPURLRewriteFilter> url_rewrite;
  std::optional<HTTPCORSFilter> cors;
  std::optional<LocalObjectReference> extension_ref;
  int line = 0;
};

// Go embeds BackendObjectReference in BackendRef and BackendRef in HTTPBackendRef.
struct BackendRef : BackendObjectReference {
  int32_t weight = 1;  // 0..1000000
};
struct HTTPBackendRef : BackendRef {
  std::vector<HTTPRouteFilter> filters;
  int line = 0;
};

struct HTTPRouteTimeouts {
  std::optional<Duration> request;
  std::optional<Duration> backend_request;  // <= request unless request is 0s (CEL)
};

struct HTTPRouteRule {
  std::optional<std::string> name;
  std::vector<HTTPRouteMatch> matches;  // absent → one match {path: PathPrefix "/"}; `[]` stays empty
  std::vector<HTTPRouteFilter> filters;
  std::vector<HTTPBackendRef> backend_refs;
  std::optional<HTTPRouteTimeouts> timeouts;
  int line = 0;
};

struct HTTPRoute {
  ObjectMeta meta;
  std::vector<ParentReference> parent_refs;
  std::vector<std::string> hostnames;
  std::vector<HTTPRouteRule> rules;  // absent → one rule with the default match and no backends
};

// ---- ReferenceGrant ----

struct ReferenceGrantFrom {
  std::string group;
  std::string kind;
  std::string namespace_;
};
struct ReferenceGrantTo {
  std::string group;
  std::string kind;
  std::optional<std::string> name;  // absent = every object of the kind
};
struct ReferenceGrant {
  ObjectMeta meta;
  std::vector<ReferenceGrantFrom> from;  // 1..16
  std::vector<ReferenceGrantTo> to;      // 1..16
};

// ---- core/v1 Namespace: only its labels matter to us ----

struct Namespace {
  ObjectMeta meta;  // cluster-scoped: namespace_ ""
};

// ---- recognised, not supported: decoded loosely so that status can say so ----

// The spec is accepted as an open object; parentRefs and hostnames are
// decoded and checked as for HTTPRoute.
struct GRPCRoute {
  ObjectMeta meta;
  std::vector<ParentReference> parent_refs;
  std::vector<std::string> hostnames;
};

struct LocalPolicyTargetReferenceWithSectionName {
  std::string group;
  std::string kind;
  std::string name;
  std::optional<std::string> section_name;
};
// The spec is accepted as an open object; targetRefs is decoded and checked.
struct BackendTLSPolicy {
  ObjectMeta meta;
  std::vector<LocalPolicyTargetReferenceWithSectionName> target_refs;
};

}  // namespace ingressd::model
