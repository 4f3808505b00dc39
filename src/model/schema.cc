#include "model/schema.h"

#include "core/strings.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

namespace ingressd::model::schema {
namespace {

TypeP scalar(T t) {
  auto p = std::make_shared<Type>();
  p->t = t;
  return p;
}
TypeP str() { static TypeP p = scalar(T::String); return p; }
TypeP i32() { static TypeP p = scalar(T::Int32); return p; }
TypeP i64() { static TypeP p = scalar(T::Int64); return p; }
TypeP boolean() { static TypeP p = scalar(T::Bool); return p; }
TypeP any() { static TypeP p = scalar(T::Any); return p; }
TypeP ios() { static TypeP p = scalar(T::IntOrString); return p; }
TypeP smap() { static TypeP p = scalar(T::StringMap); return p; }
TypeP time_() { static TypeP p = scalar(T::Time); return p; }
TypeP bytes_map() {
  static TypeP p = [] {
    auto t = std::make_shared<Type>();
    t->t = T::StringMap;  // map[string][]byte: base64 strings, checked in decode
    return TypeP(t);
  }();
  return p;
}
TypeP arr(TypeP elem) {
  auto p = std::make_shared<Type>();
  p->t = T::Array;
  p->elem = std::move(elem);
  return p;
}
TypeP obj(std::string go, std::vector<std::pair<std::string, TypeP>> fields, bool open = false) {
  auto p = std::make_shared<Type>();
  p->t = T::Object;
  p->go_name = std::move(go);
  p->fields = std::move(fields);
  p->open = open;
  return p;
}

TypeP object_meta() {
  static TypeP p = obj("ObjectMeta", {
      {"name", str()}, {"generateName", str()}, {"namespace", str()}, {"selfLink", str()}, {"uid", str()},
      {"resourceVersion", str()}, {"generation", i64()}, {"creationTimestamp", time_()},
      {"deletionTimestamp", time_()}, {"deletionGracePeriodSeconds", i64()}, {"labels", smap()},
      {"annotations", smap()}, {"ownerReferences", arr(any())}, {"finalizers", arr(str())},
      {"managedFields", arr(any())},
  });
  return p;
}

TypeP load_balancer_status() {
  static TypeP p = obj("LoadBalancerStatus", {
      {"ingress", arr(obj("LoadBalancerIngress", {
                      {"ip", str()}, {"hostname", str()}, {"ipMode", str()},
                      {"ports", arr(obj("PortStatus", {{"port", i32()}, {"protocol", str()}, {"error", str()}}))},
                  }))},
  });
  return p;
}

TypeP ingress_backend() {
  static TypeP p = obj("IngressBackend", {
      {"service", obj("IngressServiceBackend", {
                      {"name", str()},
                      {"port", obj("ServiceBackendPort", {{"name", str()}, {"number", i32()}})},
                  })},
      {"resource", obj("TypedLocalObjectReference", {{"apiGroup", str()}, {"kind", str()}, {"name", str()}})},
  });
  return p;
}

TypeP top(std::string go, TypeP spec, TypeP status, std::vector<std::pair<std::string, TypeP>> extra = {}) {
  std::vector<std::pair<std::string, TypeP>> f = {{"apiVersion", str()}, {"kind", str()}, {"metadata", object_meta()}};
  if (spec) f.emplace_back("spec", spec);
  if (status) f.emplace_back("status", status);
  for (auto& e : extra) f.push_back(e);
  return obj(std::move(go), std::move(f));
}

TypeP ingress() {
  static TypeP p = top(
      "Ingress",
      obj("IngressSpec",
          {
              {"ingressClassName", str()},
              {"defaultBackend", ingress_backend()},
              {"tls", arr(obj("IngressTLS", {{"hosts", arr(str())}, {"secretName", str()}}))},
              {"rules", arr(obj("IngressRule",
                                {
                                    {"host", str()},
                                    {"http", obj("HTTPIngressRuleValue",
                                                 {{"paths", arr(obj("HTTPIngressPath", {{"path", str()},
                                                                                        {"pathType", str()},
                                                                                        {"backend", ingress_backend()}}))}})},
                                }))},
          }),
      obj("IngressStatus",
          {{"loadBalancer",
            obj("IngressLoadBalancerStatus",
                {{"ingress", arr(obj("IngressLoadBalancerIngress",
                                     {{"ip", str()},
                                      {"hostname", str()},
                                      {"ports", arr(obj("IngressPortStatus",
                                                        {{"port", i32()}, {"protocol", str()}, {"error", str()}}))}}))}})}}));
  return p;
}

TypeP ingress_class() {
  static TypeP p = top("IngressClass",
                       obj("IngressClassSpec", {{"controller", str()},
                                                {"parameters", obj("IngressClassParametersReference",
                                                                   {{"apiGroup", str()},
                                                                    {"kind", str()},
                                                                    {"name", str()},
                                                                    {"scope", str()},
                                                                    {"namespace", str()}})}}),
                       nullptr);
  return p;
}

TypeP service() {
  static TypeP p = top(
      "Service",
      obj("ServiceSpec",
          {
              {"ports", arr(obj("ServicePort", {{"name", str()},
                                                {"protocol", str()},
                                                {"appProtocol", str()},
                                                {"port", i32()},
                                                {"targetPort", ios()},
                                                {"nodePort", i32()}}))},
              {"selector", smap()},
              {"clusterIP", str()},
              {"clusterIPs", arr(str())},
              {"type", str()},
              {"externalIPs", arr(str())},
              {"sessionAffinity", str()},
              {"loadBalancerIP", str()},
              {"loadBalancerSourceRanges", arr(str())},
              {"externalName", str()},
              {"externalTrafficPolicy", str()},
              {"healthCheckNodePort", i32()},
              {"publishNotReadyAddresses", boolean()},
              {"sessionAffinityConfig", any()},
              {"ipFamilies", arr(str())},
              {"ipFamilyPolicy", str()},
              {"allocateLoadBalancerNodePorts", boolean()},
              {"loadBalancerClass", str()},
              {"internalTrafficPolicy", str()},
              {"trafficDistribution", str()},
          }),
      obj("ServiceStatus", {{"loadBalancer", load_balancer_status()}, {"conditions", arr(any())}}));
  return p;
}

TypeP endpoint_port() {
  static TypeP p =
      obj("EndpointPort", {{"name", str()}, {"protocol", str()}, {"port", i32()}, {"appProtocol", str()}});
  return p;
}

TypeP endpoint_slice() {
  static TypeP p = top("EndpointSlice", nullptr, nullptr,
                       {
                           {"addressType", str()},
                           {"endpoints", arr(obj("Endpoint", {
                                                                 {"addresses", arr(str())},
                                                                 {"conditions", obj("EndpointConditions",
                                                                                    {{"ready", boolean()},
                                                                                     {"serving", boolean()},
                                                                                     {"terminating", boolean()}})},
                                                                 {"hostname", str()},
                                                                 {"targetRef", any()},
                                                                 {"deprecatedTopology", smap()},
                                                                 {"nodeName", str()},
                                                                 {"zone", str()},
                                                                 {"hints", any()},
                                                             }))},
                           {"ports", arr(endpoint_port())},
                       });
  return p;
}

TypeP endpoints() {
  static TypeP p = [] {
    TypeP addr = obj("EndpointAddress", {{"ip", str()}, {"hostname", str()}, {"nodeName", str()}, {"targetRef", any()}});
    return top("Endpoints", nullptr, nullptr,
               {{"subsets", arr(obj("EndpointSubset", {{"addresses", arr(addr)},
                                                       {"notReadyAddresses", arr(addr)},
                                                       {"ports", arr(endpoint_port())}}))}});
  }();
  return p;
}

TypeP secret() {
  static TypeP p = top("Secret", nullptr, nullptr,
                       {{"type", str()}, {"data", bytes_map()}, {"stringData", smap()}, {"immutable", boolean()}});
  return p;
}

// ---- Gateway API (config/crd/standard/gateway.networking.k8s.io_*.yaml) ----
// v1 and v1beta1 share one schema in every CRD. Field types only: patterns,
// enums, bounds and the CEL rules are checked by gateway_validate.cc.

TypeP label_selector() {
  static TypeP p =
      obj("LabelSelector",
          {{"matchLabels", smap()},
           {"matchExpressions",
            arr(obj("LabelSelectorRequirement", {{"key", str()}, {"operator", str()}, {"values", arr(str())}}))}});
  return p;
}

TypeP parent_reference() {
  static TypeP p = obj("ParentReference", {{"group", str()},
                                           {"kind", str()},
                                           {"namespace", str()},
                                           {"name", str()},
                                           {"sectionName", str()},
                                           {"port", i32()}});
  return p;
}

TypeP backend_object_reference() {
  static TypeP p = obj("BackendObjectReference",
                       {{"group", str()}, {"kind", str()}, {"name", str()}, {"namespace", str()}, {"port", i32()}});
  return p;
}

TypeP secret_object_reference() {
  static TypeP p =
      obj("SecretObjectReference", {{"group", str()}, {"kind", str()}, {"name", str()}, {"namespace", str()}});
  return p;
}

TypeP object_reference() {
  static TypeP p = obj("ObjectReference", {{"group", str()}, {"kind", str()}, {"name", str()}, {"namespace", str()}});
  return p;
}

TypeP gateway_class() {
  static TypeP p =
      top("GatewayClass",
          obj("GatewayClassSpec",
              {{"controllerName", str()},
               {"parametersRef",
                obj("ParametersReference", {{"group", str()}, {"kind", str()}, {"name", str()}, {"namespace", str()}})},
               {"description", str()}}),
          obj("GatewayClassStatus", {}, true));
  return p;
}

TypeP gateway() {
  static TypeP p = [] {
    TypeP tls_config =
        obj("TLSConfig", {{"validation", obj("FrontendTLSValidation",
                                             {{"caCertificateRefs", arr(object_reference())}, {"mode", str()}})}});
    TypeP listener =
        obj("Listener",
            {{"name", str()},
             {"hostname", str()},
             {"port", i32()},
             {"protocol", str()},
             {"tls", obj("ListenerTLSConfig",
                         {{"mode", str()}, {"certificateRefs", arr(secret_object_reference())}, {"options", smap()}})},
             {"allowedRoutes",
              obj("AllowedRoutes",
                  {{"namespaces", obj("RouteNamespaces", {{"from", str()}, {"selector", label_selector()}})},
                   {"kinds", arr(obj("RouteGroupKind", {{"group", str()}, {"kind", str()}}))}})}});
    TypeP spec = obj(
        "GatewaySpec",
        {{"gatewayClassName", str()},
         {"listeners", arr(listener)},
         {"addresses", arr(obj("GatewaySpecAddress", {{"type", str()}, {"value", str()}}))},
         {"infrastructure",
          obj("GatewayInfrastructure", {{"labels", smap()},
                                        {"annotations", smap()},
                                        {"parametersRef", obj("LocalParametersReference",
                                                              {{"group", str()}, {"kind", str()}, {"name", str()}})}})},
         {"allowedListeners",
          obj("AllowedListeners",
              {{"namespaces", obj("ListenerNamespaces", {{"from", str()}, {"selector", label_selector()}})}})},
         {"tls",
          obj("GatewayTLSConfig",
              {{"backend", obj("GatewayBackendTLS", {{"clientCertificateRef", secret_object_reference()}})},
               {"frontend", obj("FrontendTLSConfig",
                                {{"default", tls_config},
                                 {"perPort", arr(obj("TLSPortConfig", {{"port", i32()}, {"tls", tls_config}}))}})}})}});
    return top("Gateway", spec, obj("GatewayStatus", {}, true));
  }();
  return p;
}

TypeP http_route() {
  static TypeP p = [] {
    TypeP header = obj("HTTPHeader", {{"name", str()}, {"value", str()}});
    TypeP header_filter = obj("HTTPHeaderFilter", {{"set", arr(header)}, {"add", arr(header)}, {"remove", arr(str())}});
    TypeP path_modifier =
        obj("HTTPPathModifier", {{"type", str()}, {"replaceFullPath", str()}, {"replacePrefixMatch", str()}});
    TypeP filter =
        obj("HTTPRouteFilter",
            {{"type", str()},
             {"requestHeaderModifier", header_filter},
             {"responseHeaderModifier", header_filter},
             {"requestMirror", obj("HTTPRequestMirrorFilter",
                                   {{"backendRef", backend_object_reference()},
                                    {"percent", i32()},
                                    {"fraction", obj("Fraction", {{"numerator", i32()}, {"denominator", i32()}})}})},
             {"requestRedirect", obj("HTTPRequestRedirectFilter", {{"scheme", str()},
                                                                   {"hostname", str()},
                                                                   {"path", path_modifier},
                                                                   {"port", i32()},
                                                                   {"statusCode", i64()}})},
             {"urlRewrite", obj("HTTPURLRewriteFilter", {{"hostname", str()}, {"path", path_modifier}})},
             {"cors", obj("HTTPCORSFilter", {{"allowOrigins", arr(str())},
                                             {"allowCredentials", boolean()},
                                             {"allowMethods", arr(str())},
                                             {"allowHeaders", arr(str())},
                                             {"exposeHeaders", arr(str())},
                                             {"maxAge", i32()}})},
             {"extensionRef", obj("LocalObjectReference", {{"group", str()}, {"kind", str()}, {"name", str()}})}});
    TypeP value_match = obj("HTTPHeaderMatch", {{"type", str()}, {"name", str()}, {"value", str()}});
    TypeP query_match = obj("HTTPQueryParamMatch", {{"type", str()}, {"name", str()}, {"value", str()}});
    TypeP match = obj("HTTPRouteMatch", {{"path", obj("HTTPPathMatch", {{"type", str()}, {"value", str()}})},
                                         {"headers", arr(value_match)},
                                         {"queryParams", arr(query_match)},
                                         {"method", str()}});
    TypeP backend_ref = obj("HTTPBackendRef", {{"group", str()},
                                               {"kind", str()},
                                               {"name", str()},
                                               {"namespace", str()},
                                               {"port", i32()},
                                               {"weight", i32()},
                                               {"filters", arr(filter)}});
    TypeP rule =
        obj("HTTPRouteRule", {{"name", str()},
                              {"matches", arr(match)},
                              {"filters", arr(filter)},
                              {"backendRefs", arr(backend_ref)},
                              {"timeouts", obj("HTTPRouteTimeouts", {{"request", str()}, {"backendRequest", str()}})}});
    TypeP spec = obj("HTTPRouteSpec",
                     {{"parentRefs", arr(parent_reference())}, {"hostnames", arr(str())}, {"rules", arr(rule)}});
    return top("HTTPRoute", spec, obj("HTTPRouteStatus", {}, true));
  }();
  return p;
}

TypeP reference_grant() {
  static TypeP p =
      top("ReferenceGrant",
          obj("ReferenceGrantSpec",
              {{"from", arr(obj("ReferenceGrantFrom", {{"group", str()}, {"kind", str()}, {"namespace", str()}}))},
               {"to", arr(obj("ReferenceGrantTo", {{"group", str()}, {"kind", str()}, {"name", str()}}))}}),
          nullptr);
  return p;
}

// Recognised but not supported: the spec is open, the references we report on are typed.
TypeP grpc_route() {
  static TypeP p =
      top("GRPCRoute", obj("GRPCRouteSpec", {{"parentRefs", arr(parent_reference())}, {"hostnames", arr(str())}}, true),
          obj("GRPCRouteStatus", {}, true));
  return p;
}

TypeP backend_tls_policy() {
  static TypeP p =
      top("BackendTLSPolicy",
          obj("BackendTLSPolicySpec",
              {{"targetRefs", arr(obj("LocalPolicyTargetReferenceWithSectionName",
                                      {{"group", str()}, {"kind", str()}, {"name", str()}, {"sectionName", str()}}))}},
              true),
          obj("PolicyStatus", {}, true));
  return p;
}

TypeP namespace_() {
  static TypeP p = top("Namespace", obj("NamespaceSpec", {}, true), obj("NamespaceStatus", {}, true));
  return p;
}

const char* type_word(T t) {
  switch (t) {
    case T::String: return "string";
    case T::Int32: return "int32";
    case T::Int64: return "int64";
    case T::Bool: return "bool";
    case T::Float: return "float64";
    case T::Object: return "object";
    case T::Array: return "array";
    case T::StringMap: return "map[string]string";
    case T::IntOrString: return "int or string";
    case T::Any: return "any";
    case T::Time: return "time";
    case T::Bytes: return "bytes";
  }
  return "?";
}

std::string node_word(const YAML::Node& n) {
  if (n.IsMap()) return "object";
  if (n.IsSequence()) return "array";
  switch (classify_scalar(n)) {
    case ScalarKind::Null: return "null";
    case ScalarKind::Bool: return "bool";
    case ScalarKind::Int:
    case ScalarKind::Float: return "number";
    case ScalarKind::String: return "string";
  }
  return "?";
}

// The words of kube-openapi's type errors, which CRD kinds report instead of
// encoding/json's: `spec.port in body must be of type integer: "string"`.
const char* openapi_type_word(T t) {
  switch (t) {
    case T::String:
    case T::Time:
    case T::Bytes: return "string";
    case T::Int32:
    case T::Int64: return "integer";
    case T::Bool: return "boolean";
    case T::Float: return "number";
    case T::Object:
    case T::StringMap: return "object";
    case T::Array: return "array";
    case T::IntOrString: return "integer or string";
    case T::Any: return "any";
  }
  return "?";
}

std::string openapi_node_word(const YAML::Node& n) {
  if (n.IsMap()) return "object";
  if (n.IsSequence()) return "array";
  switch (classify_scalar(n)) {
    case ScalarKind::Null: return "null";
    case ScalarKind::Bool: return "boolean";
    case ScalarKind::Int: return "integer";
    case ScalarKind::Float: return "number";
    case ScalarKind::String: return "string";
  }
  return "?";
}

// The bad value as field.Error prints it: strings quoted, numbers and bools bare.
std::string openapi_value(const YAML::Node& n) {
  if (n.IsMap()) return "\"object\"";
  if (n.IsSequence()) return "\"array\"";
  switch (classify_scalar(n)) {
    case ScalarKind::String: return fmt::format("\"{}\"", n.Scalar());
    case ScalarKind::Bool: return scalar_bool(n) ? "true" : "false";  // "yes" is true in YAML 1.1
    case ScalarKind::Null: return "\"null\"";
    default: return n.Scalar();
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// YAML 1.1 ints as go-yaml v2 resolves them: [-+]?(decimal|0octal|0xhex|0bbinary), '_' allowed.
bool looks_int(std::string_view v) {
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) v.remove_prefix(1);
  if (v.empty()) return false;
  auto all = [&](std::string_view d, auto pred) {
    if (d.empty()) return false;
    for (char c : d)
      if (c != '_' && !pred(c)) return false;
    return true;
  };
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
    return all(v.substr(2), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'b' || v[1] == 'B'))
    return all(v.substr(2), [](char c) { return c == '0' || c == '1'; });
  if (!is_digit(v[0])) return false;
  return all(v, is_digit);
}

// [-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)? and .inf/.nan
bool looks_float(std::string_view v) {
  static const char* specials[] = {".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF",
                                   ".nan", ".NaN", ".NAN"};
  for (const char* sp : specials)
    if (v == sp) return true;
  size_t i = 0;
  if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
  size_t digits = 0;
  while (i < v.size() && (is_digit(v[i]) || (digits > 0 && v[i] == '_'))) ++i, ++digits;
  if (i < v.size() && v[i] == '.') {
    ++i;
    size_t frac = 0;
    while (i < v.size() && (is_digit(v[i]) || v[i] == '_')) ++i, ++frac;
    if (digits == 0 && frac == 0) return false;
  } else if (digits == 0) {
    return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
    size_t exp = 0;
    while (i < v.size() && is_digit(v[i])) ++i, ++exp;
    if (exp == 0) return false;
  }
  return i == v.size();
}

}  // namespace

ScalarKind classify_scalar(const YAML::Node& n) {
  if (n.IsNull()) return ScalarKind::Null;
  if (!n.IsScalar()) return ScalarKind::String;
  const std::string& tag = n.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return ScalarKind::String;  // quoted or !!str
  if (tag == "tag:yaml.org,2002:int") return ScalarKind::Int;
  if (tag == "tag:yaml.org,2002:bool") return ScalarKind::Bool;
  const std::string& v = n.Scalar();
  static const std::set<std::string> nulls = {"", "~", "null", "Null", "NULL"};
  static const std::set<std::string> bools = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
                                              "true", "True", "TRUE", "false", "False", "FALSE",
                                              "on", "On", "ON", "off", "Off", "OFF"};
  if (nulls.count(v)) return ScalarKind::Null;
  if (bools.count(v)) return ScalarKind::Bool;
  if (looks_int(v)) return ScalarKind::Int;
  if (looks_float(v)) return ScalarKind::Float;
  return ScalarKind::String;
}

bool scalar_bool(const YAML::Node& n) {
  static const std::set<std::string> truths = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  return truths.count(n.Scalar()) > 0;
}

std::optional<long long> scalar_int(const YAML::Node& n) {
  ScalarKind k = classify_scalar(n);
  std::string v = n.Scalar();
  std::erase(v, '_');
  try {
    if (k == ScalarKind::Int) {
      size_t idx = 0;
      long long r;
      bool neg = !v.empty() && v[0] == '-';
      std::string body = (!v.empty() && (v[0] == '-' || v[0] == '+')) ? v.substr(1) : v;
      if (body.rfind("0x", 0) == 0) r = std::stoll(body.substr(2), &idx, 16), idx += 2;
      else if (body.rfind("0b", 0) == 0) r = std::stoll(body.substr(2), &idx, 2), idx += 2;
      else if (body.size() > 1 && body[0] == '0') r = std::stoll(body, &idx, 8);
      else r = std::stoll(body, &idx, 10);
      if (idx != body.size()) return std::nullopt;
      return neg ? -r : r;
    }
    if (k == ScalarKind::Float) {
      double d = std::stod(v);
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) return static_cast<long long>(d);
    }
  } catch (...) {
  }
  return std::nullopt;
}

void check(const YAML::Node& node, const Type& type, const std::string& path, std::vector<TypeError>& out) {
  auto type_error = [&](const std::string& go_field) {
    TypeError e{path, line_of(node),
                fmt::format("cannot unmarshal {} into Go struct field {} of type {}", node_word(node), go_field,
                            type_word(type.t))};
    e.openapi_message = fmt::format("Invalid value: {}: {} in body must be of type {}: \"{}\"", openapi_value(node),
                                    path, openapi_type_word(type.t), openapi_node_word(node));
    out.push_back(std::move(e));
  };
  // A null value is "absent" for every field kind, as in encoding/json.
  if (node.IsNull()) return;
  switch (type.t) {
    case T::Any:
      return;
    case T::String:
    case T::Time:
      if (!node.IsScalar()) return type_error(path);
      if (classify_scalar(node) != ScalarKind::String) {
        // Go's json refuses a number or bool for a string field.
        return type_error(path);
      }
      if (type.t == T::Time && !parse_rfc3339_ns(node.Scalar()))
        out.push_back({path, line_of(node),
                       fmt::format("parsing time \"{}\" as \"2006-01-02T15:04:05Z07:00\": {} is not an RFC 3339 time",
                                   node.Scalar(), path)});
      return;
    case T::Int32:
    case T::Int64: {
      if (!node.IsScalar()) return type_error(path);
      auto v = scalar_int(node);
      if (!v) return type_error(path);
      if (type.t == T::Int32 && (*v > INT32_MAX || *v < INT32_MIN)) {
        TypeError e{
            path, line_of(node),
            fmt::format("cannot unmarshal number {} into Go struct field {} of type int32", node.Scalar(), path)};
        e.openapi_message =
            fmt::format("Invalid value: {}: {} in body must be of type int32: \"{}\"", *v, path, node.Scalar());
        out.push_back(std::move(e));
      }
      return;
    }
    case T::Float:
      if (!node.IsScalar() || (classify_scalar(node) != ScalarKind::Int && classify_scalar(node) != ScalarKind::Float))
        return type_error(path);
      return;
    case T::Bool:
      if (!node.IsScalar() || classify_scalar(node) != ScalarKind::Bool) return type_error(path);
      return;
    case T::IntOrString:
      if (!node.IsScalar()) return type_error(path);
      if (classify_scalar(node) == ScalarKind::Int) {
        if (!scalar_int(node)) return type_error(path);
        return;
      }
      if (classify_scalar(node) != ScalarKind::String) return type_error(path);
      return;
    case T::StringMap: {
      if (!node.IsMap()) return type_error(path);
      std::set<std::string> seen;
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string k = it->first.Scalar();
        std::string sub = path + "." + k;
        if (!seen.insert(k).second) {
          out.push_back({sub, line_of(it->first), fmt::format("duplicate field \"{}\"", sub), false, true});
          continue;
        }
        const YAML::Node v = it->second;  // a copy: it->second lives in a temporary proxy
        if (v.IsNull()) continue;
        if (!v.IsScalar() || classify_scalar(v) != ScalarKind::String) {
          TypeError e{sub, line_of(v),
                      fmt::format("cannot unmarshal {} into Go struct field {} of type string", node_word(v), sub)};
          e.openapi_message = fmt::format("Invalid value: {}: {} in body must be of type string: \"{}\"",
                                          openapi_value(v), sub, openapi_node_word(v));
          out.push_back(std::move(e));
        }
      }
      return;
    }
    case T::Array: {
      if (!node.IsSequence()) return type_error(path);
      for (size_t i = 0; i < node.size(); ++i) check(node[i], *type.elem, fmt::format("{}[{}]", path, i), out);
      return;
    }
    case T::Object: {
      if (!node.IsMap()) return type_error(path);
      std::set<std::string> seen;
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string k = it->first.IsScalar() ? it->first.Scalar() : "?";
        std::string sub = path.empty() ? k : path + "." + k;
        if (!seen.insert(k).second) {
          out.push_back({sub, line_of(it->first), fmt::format("duplicate field \"{}\"", sub), false, true});
          continue;
        }
        const Type* ft = nullptr;
        for (auto& [name, t] : type.fields)
          if (name == k) ft = t.get();
        if (!ft) {
          if (!type.open) out.push_back({sub, line_of(it->first), fmt::format("unknown field \"{}\"", sub), true});
          continue;
        }
        const YAML::Node value = it->second;  // a copy: it->second lives in a temporary proxy
        check(value, *ft, sub, out);
      }
      return;
    }
    case T::Bytes:
      return;
  }
}

const Type* lookup(const std::string& api_version, const std::string& kind) {
  static const std::map<std::pair<std::string, std::string>, TypeP> table = {
      {{"networking.k8s.io/v1", "Ingress"}, ingress()},
      {{"networking.k8s.io/v1", "IngressClass"}, ingress_class()},
      {{"v1", "Service"}, service()},
      {{"discovery.k8s.io/v1", "EndpointSlice"}, endpoint_slice()},
      {{"v1", "Endpoints"}, endpoints()},
      {{"v1", "Secret"}, secret()},
      {{"v1", "Namespace"}, namespace_()},
      {{"gateway.networking.k8s.io/v1", "GatewayClass"}, gateway_class()},
      {{"gateway.networking.k8s.io/v1beta1", "GatewayClass"}, gateway_class()},
      {{"gateway.networking.k8s.io/v1", "Gateway"}, gateway()},
      {{"gateway.networking.k8s.io/v1beta1", "Gateway"}, gateway()},
      {{"gateway.networking.k8s.io/v1", "HTTPRoute"}, http_route()},
      {{"gateway.networking.k8s.io/v1beta1", "HTTPRoute"}, http_route()},
      {{"gateway.networking.k8s.io/v1", "ReferenceGrant"}, reference_grant()},
      {{"gateway.networking.k8s.io/v1beta1", "ReferenceGrant"}, reference_grant()},
      {{"gateway.networking.k8s.io/v1", "GRPCRoute"}, grpc_route()},
      {{"gateway.networking.k8s.io/v1", "BackendTLSPolicy"}, backend_tls_policy()},
      {{"gateway.networking.k8s.io/v1alpha3", "BackendTLSPolicy"}, backend_tls_policy()},
  };
  auto it = table.find({api_version, kind});
  return it == table.end() ? nullptr : it->second.get();
}

}  // namespace ingressd::model::schema
