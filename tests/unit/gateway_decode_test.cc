// Decoding of the Gateway API kinds (and the core Namespace): the standard
// channel CRDs' schemas, defaults, OpenAPI validation and CEL rules, with the
// API server's wording. Manifests marked "conformance" are copied from
// kubernetes-sigs/gateway-api (conformance/base/manifests.yaml and
// conformance/tests/*.yaml).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/decode.h"

using namespace ingressd;
using namespace ingressd::model;

namespace {

DecodeResult decode(const std::string& s) { return decode_manifests(s, "gw.yaml"); }

std::vector<std::string> messages(const DecodedObject& d) {
  std::vector<std::string> out;
  for (auto& e : d.errors) out.push_back(e.message);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& m : v) s += "\n  " + m;
  return s;
}

// The single object of a one-document text, which must have decoded.
template <typename T>
T decoded(const std::string& text) {
  auto r = decode(text);
  EXPECT_TRUE(r.file_errors.empty());
  EXPECT_EQ(r.objects.size(), 1u);
  if (r.objects.size() != 1 || !r.objects[0].object) {
    ADD_FAILURE() << "not decoded:" << (r.objects.empty() ? "" : joined(messages(r.objects[0])));
    return T{};
  }
  const T* t = std::get_if<T>(&*r.objects[0].object);
  EXPECT_NE(t, nullptr);
  return t ? *t : T{};
}

// The error messages of a one-document text, which must have been rejected.
std::vector<std::string> rejected(const std::string& text) {
  auto r = decode(text);
  EXPECT_TRUE(r.file_errors.empty());
  EXPECT_EQ(r.objects.size(), 1u);
  if (r.objects.size() != 1) return {};
  EXPECT_FALSE(r.objects[0].object) << "accepted, but should have been rejected:\n" << text;
  return messages(r.objects[0]);
}

bool contains(const std::vector<std::string>& v, const std::string& m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

const char* kCelSkipped =
    "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct "
    "the existing errors to complete validation";

std::string route(const std::string& spec_body, const std::string& api_version = "gateway.networking.k8s.io/v1") {
  return "apiVersion: " + api_version + "\nkind: HTTPRoute\nmetadata:\n  name: r\n  namespace: ns\nspec:\n" + spec_body;
}
std::string route_invalid(const std::string& rest) {
  return "HTTPRoute.gateway.networking.k8s.io \"r\" is invalid: " + rest;
}
std::string gateway(const std::string& listeners_and_more) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: ns\nspec:\n"
         "  gatewayClassName: c\n" +
         listeners_and_more;
}
std::string gateway_invalid(const std::string& rest) {
  return "Gateway.gateway.networking.k8s.io \"g\" is invalid: " + rest;
}

// conformance/base/manifests.yaml: the infra Namespace, its four Gateways and
// the first Service, then a Deployment (a kind ingressd does not read) and the
// two backend Namespaces.
const char* kConformanceBase = R"(apiVersion: v1
kind: Namespace
metadata:
  name: gateway-conformance-infra
  labels:
    gateway-conformance: infra
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: same-namespace
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: same-namespace-with-https-listener
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
    - name: https
      port: 443
      protocol: HTTPS
      allowedRoutes:
        namespaces:
          from: Same
      tls:
        certificateRefs:
          - group: ""
            kind: Secret
            name: tls-validity-checks-certificate
            namespace: gateway-conformance-infra
    - name: https-with-hostname
      port: 443
      hostname: second-example.org
      protocol: HTTPS
      allowedRoutes:
        namespaces:
          from: Same
      tls:
        certificateRefs:
          - group: ""
            kind: Secret
            name: tls-validity-checks-certificate
            namespace: gateway-conformance-infra
    - name: https-with-wildcard-hostname
      port: 443
      hostname: "*.wildcard.org"
      protocol: HTTPS
      allowedRoutes:
        namespaces:
          from: Same
      tls:
        certificateRefs:
          - group: ""
            kind: Secret
            name: tls-validity-checks-certificate
            namespace: gateway-conformance-infra
    - name: https-with-hostname-matching-wildcard
      port: 443
      hostname: "fourth-example.wildcard.org"
      protocol: HTTPS
      allowedRoutes:
        namespaces:
          from: Same
      tls:
        certificateRefs:
          - group: ""
            kind: Secret
            name: tls-validity-checks-certificate
            namespace: gateway-conformance-infra
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: all-namespaces
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: All
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: backend-namespaces
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: Selector
          selector:
            matchLabels:
              gateway-conformance: backend
---
apiVersion: v1
kind: Service
metadata:
  name: infra-backend-v1
  namespace: gateway-conformance-infra
spec:
  selector:
    app: infra-backend-v1
  ports:
    - name: first-port
      protocol: TCP
      port: 8080
      targetPort: 3000
    - name: second-port
      protocol: TCP
      appProtocol: kubernetes.io/h2c
      port: 8081
      targetPort: 3001
    - name: third-port
      protocol: TCP
      appProtocol: kubernetes.io/ws
      port: 8082
      targetPort: 3000
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: infra-backend-v1
  namespace: gateway-conformance-infra
spec:
  replicas: 2
---
apiVersion: v1
kind: Namespace
metadata:
  name: gateway-conformance-app-backend
  labels:
    gateway-conformance: backend
---
apiVersion: v1
kind: Namespace
metadata:
  name: gateway-conformance-web-backend
  labels:
    gateway-conformance: backend
)";

// An HTTPRoute with every filter type: rules from the conformance tests
// httproute-request-header-modifier, -response-header-modifier,
// -request-percentage-mirror, -redirect-path, -rewrite-path and -cors, and an
// ExtensionRef filter (no conformance test uses one).
const char* kEveryFilter = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: every-filter
  namespace: gateway-conformance-infra
spec:
  parentRefs:
  - name: same-namespace
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /multiple
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: X-Header-Set-1
          value: header-set-1
        - name: X-Header-Set-2
          value: header-set-2
        add:
        - name: X-Header-Add-1
          value: header-add-1
        remove:
        - X-Header-Remove-1
        - X-Header-Remove-2
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add:
        - name: X-Header-Add
          value: add-appends-values
    backendRefs:
    - name: infra-backend-v1
      port: 8080
  - matches:
    - path:
        type: PathPrefix
        value: /percent-mirror-fraction
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: infra-backend-v2
          namespace: gateway-conformance-infra
          port: 8080
        fraction:
          numerator: 25
          denominator: 50
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: infra-backend-v3
          port: 8080
        percent: 20
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      namespace: gateway-conformance-infra
  - matches:
    - path:
        type: PathPrefix
        value: /path-and-status
    filters:
    - type: RequestRedirect
      requestRedirect:
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /replacement-prefix
        statusCode: 301
  - matches:
    - path:
        type: PathPrefix
        value: /full/one
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: one.example.org
        path:
          type: ReplaceFullPath
          replaceFullPath: /one
    backendRefs:
    - name: infra-backend-v1
      port: 8080
  - filters:
    - type: CORS
      cors:
        allowOrigins:
        - "https://www.foo.com"
        - "https://*.bar.com"
        allowMethods:
        - GET
        - OPTIONS
        allowHeaders:
        - "x-header-1"
        - "x-header-2"
        exposeHeaders:
        - "x-header-3"
        - "x-header-4"
        allowCredentials: true
        maxAge: 3600
    matches:
    - path:
        type: PathPrefix
        value: /cors-1
    backendRefs:
    - name: infra-backend-v1
      port: 8080
  - matches:
    - path:
        type: Exact
        value: /ext
    filters:
    - type: ExtensionRef
      extensionRef:
        group: example.com
        kind: Auth
        name: strict
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      weight: 0
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set:
          - name: X-Backend
            value: v1
)";

// conformance/tests/httproute-reference-grant.yaml
const char* kReferenceGrant = R"(apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: reference-grant
  namespace: gateway-conformance-web-backend
spec:
  from:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      namespace: gateway-conformance-infra
  to:
    - group: ""
      kind: Service
      name: web-backend
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reference-grant
  namespace: gateway-conformance-infra
spec:
  parentRefs:
    - name: same-namespace
  rules:
    - backendRefs:
        - name: web-backend
          namespace: gateway-conformance-web-backend
          port: 8080
)";

}  // namespace

// ---- conformance manifests decode, with defaults ----

TEST(GatewayDecode, ConformanceBaseManifests) {
  auto r = decode(kConformanceBase);
  ASSERT_TRUE(r.file_errors.empty());
  std::map<std::string, const DecodedObject*> by_key;
  const DecodedObject* deployment = nullptr;
  for (auto& o : r.objects) {
    if (o.object) by_key[object_key(*o.object).str()] = &o;
    else deployment = &o;
  }
  // The Deployment is the one failure, and it takes nothing else down.
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ(messages(*deployment),
            std::vector<std::string>{"no kind \"Deployment\" is registered for version \"apps/v1\""});
  EXPECT_EQ(r.objects.size(), 9u);
  ASSERT_EQ(by_key.size(), 8u);
  for (const char* k :
       {"Namespace gateway-conformance-infra", "Namespace gateway-conformance-app-backend",
        "Namespace gateway-conformance-web-backend", "Gateway gateway-conformance-infra/same-namespace",
        "Gateway gateway-conformance-infra/same-namespace-with-https-listener",
        "Gateway gateway-conformance-infra/all-namespaces", "Gateway gateway-conformance-infra/backend-namespaces",
        "Service gateway-conformance-infra/infra-backend-v1"})
    EXPECT_TRUE(by_key.count(k)) << k;

  const auto& ns = std::get<Namespace>(*by_key["Namespace gateway-conformance-infra"]->object);
  EXPECT_EQ(ns.meta.namespace_, "");
  EXPECT_EQ(ns.meta.labels, (std::map<std::string, std::string>{{"gateway-conformance", "infra"}}));

  const auto& same = std::get<Gateway>(*by_key["Gateway gateway-conformance-infra/same-namespace"]->object);
  EXPECT_EQ(same.gateway_class_name, "{GATEWAY_CLASS_NAME}");
  ASSERT_EQ(same.listeners.size(), 1u);
  EXPECT_EQ(same.listeners[0].name, "http");
  EXPECT_EQ(same.listeners[0].port, 80);
  EXPECT_EQ(same.listeners[0].protocol, "HTTP");
  EXPECT_FALSE(same.listeners[0].hostname);
  EXPECT_FALSE(same.listeners[0].tls);
  EXPECT_EQ(same.listeners[0].allowed_routes.namespaces.from, "Same");
  EXPECT_TRUE(same.listeners[0].allowed_routes.kinds.empty());

  const auto& https =
      std::get<Gateway>(*by_key["Gateway gateway-conformance-infra/same-namespace-with-https-listener"]->object);
  ASSERT_EQ(https.listeners.size(), 4u);
  EXPECT_FALSE(https.listeners[0].hostname);
  EXPECT_EQ(https.listeners[1].hostname, "second-example.org");
  EXPECT_EQ(https.listeners[2].hostname, "*.wildcard.org");
  for (const auto& l : https.listeners) {
    EXPECT_EQ(l.port, 443);
    EXPECT_EQ(l.protocol, "HTTPS");
    ASSERT_TRUE(l.tls);
    EXPECT_EQ(l.tls->mode, "Terminate");  // defaulted
    ASSERT_EQ(l.tls->certificate_refs.size(), 1u);
    EXPECT_EQ(l.tls->certificate_refs[0].group, "");
    EXPECT_EQ(l.tls->certificate_refs[0].kind, "Secret");
    EXPECT_EQ(l.tls->certificate_refs[0].name, "tls-validity-checks-certificate");
    EXPECT_EQ(l.tls->certificate_refs[0].namespace_, "gateway-conformance-infra");
  }
  EXPECT_GT(https.listeners[1].line, https.listeners[0].line);

  const auto& all = std::get<Gateway>(*by_key["Gateway gateway-conformance-infra/all-namespaces"]->object);
  EXPECT_EQ(all.listeners.at(0).allowed_routes.namespaces.from, "All");

  const auto& sel = std::get<Gateway>(*by_key["Gateway gateway-conformance-infra/backend-namespaces"]->object);
  const auto& rn = sel.listeners.at(0).allowed_routes.namespaces;
  EXPECT_EQ(rn.from, "Selector");
  ASSERT_TRUE(rn.selector);
  EXPECT_EQ(rn.selector->match_labels, (std::map<std::string, std::string>{{"gateway-conformance", "backend"}}));
}

TEST(GatewayDecode, HTTPRouteWithEveryFilter) {
  HTTPRoute r = decoded<HTTPRoute>(kEveryFilter);
  EXPECT_EQ(r.meta.namespace_, "gateway-conformance-infra");
  ASSERT_EQ(r.parent_refs.size(), 1u);
  EXPECT_EQ(r.parent_refs[0].group, "gateway.networking.k8s.io");
  EXPECT_EQ(r.parent_refs[0].kind, "Gateway");
  EXPECT_EQ(r.parent_refs[0].name, "same-namespace");
  EXPECT_FALSE(r.parent_refs[0].namespace_);
  EXPECT_FALSE(r.parent_refs[0].section_name);
  EXPECT_FALSE(r.parent_refs[0].port);
  ASSERT_EQ(r.rules.size(), 6u);

  // Request and response header modifiers.
  const HTTPRouteRule& hm = r.rules[0];
  ASSERT_EQ(hm.filters.size(), 2u);
  EXPECT_EQ(hm.filters[0].type, "RequestHeaderModifier");
  ASSERT_TRUE(hm.filters[0].request_header_modifier);
  EXPECT_FALSE(hm.filters[0].response_header_modifier);
  const auto& rq = *hm.filters[0].request_header_modifier;
  ASSERT_EQ(rq.set.size(), 2u);
  EXPECT_EQ(rq.set[1].name, "X-Header-Set-2");
  EXPECT_EQ(rq.set[1].value, "header-set-2");
  ASSERT_EQ(rq.add.size(), 1u);
  EXPECT_EQ(rq.add[0].name, "X-Header-Add-1");
  EXPECT_EQ(rq.remove, (std::vector<std::string>{"X-Header-Remove-1", "X-Header-Remove-2"}));
  ASSERT_TRUE(hm.filters[1].response_header_modifier);
  EXPECT_EQ(hm.filters[1].response_header_modifier->add.at(0).value, "add-appends-values");
  ASSERT_EQ(hm.backend_refs.size(), 1u);
  EXPECT_EQ(hm.backend_refs[0].group, "");
  EXPECT_EQ(hm.backend_refs[0].kind, "Service");
  EXPECT_EQ(hm.backend_refs[0].name, "infra-backend-v1");
  EXPECT_EQ(hm.backend_refs[0].port, 8080);
  EXPECT_EQ(hm.backend_refs[0].weight, 1);
  EXPECT_FALSE(hm.backend_refs[0].namespace_);

  // Mirrors: fraction and percent.
  const HTTPRouteRule& mr = r.rules[1];
  ASSERT_EQ(mr.filters.size(), 2u);
  ASSERT_TRUE(mr.filters[0].request_mirror);
  const auto& m0 = *mr.filters[0].request_mirror;
  EXPECT_EQ(m0.backend_ref.name, "infra-backend-v2");
  EXPECT_EQ(m0.backend_ref.kind, "Service");
  EXPECT_EQ(m0.backend_ref.namespace_, "gateway-conformance-infra");
  EXPECT_EQ(m0.backend_ref.port, 8080);
  ASSERT_TRUE(m0.fraction);
  EXPECT_EQ(m0.fraction->numerator, 25);
  EXPECT_EQ(m0.fraction->denominator, 50);
  EXPECT_FALSE(m0.percent);
  EXPECT_EQ(mr.filters[1].request_mirror->percent, 20);
  EXPECT_FALSE(mr.filters[1].request_mirror->fraction);
  EXPECT_EQ(mr.backend_refs.at(0).namespace_, "gateway-conformance-infra");

  // Redirect, without backends.
  const HTTPRouteRule& rd = r.rules[2];
  EXPECT_TRUE(rd.backend_refs.empty());
  ASSERT_TRUE(rd.filters.at(0).request_redirect);
  const auto& redirect = *rd.filters[0].request_redirect;
  EXPECT_EQ(redirect.status_code, 301);
  EXPECT_FALSE(redirect.scheme);
  EXPECT_FALSE(redirect.hostname);
  EXPECT_FALSE(redirect.port);
  ASSERT_TRUE(redirect.path);
  EXPECT_EQ(redirect.path->type, "ReplacePrefixMatch");
  EXPECT_EQ(redirect.path->replace_prefix_match, "/replacement-prefix");
  EXPECT_FALSE(redirect.path->replace_full_path);

  // URL rewrite.
  const auto& rw = r.rules[3].filters.at(0);
  ASSERT_TRUE(rw.url_rewrite);
  EXPECT_EQ(rw.url_rewrite->hostname, "one.example.org");
  EXPECT_EQ(rw.url_rewrite->path->type, "ReplaceFullPath");
  EXPECT_EQ(rw.url_rewrite->path->replace_full_path, "/one");

  // CORS.
  const auto& cf = r.rules[4].filters.at(0);
  ASSERT_TRUE(cf.cors);
  EXPECT_EQ(cf.cors->allow_origins, (std::vector<std::string>{"https://www.foo.com", "https://*.bar.com"}));
  EXPECT_EQ(cf.cors->allow_methods, (std::vector<std::string>{"GET", "OPTIONS"}));
  EXPECT_EQ(cf.cors->allow_headers, (std::vector<std::string>{"x-header-1", "x-header-2"}));
  EXPECT_EQ(cf.cors->expose_headers, (std::vector<std::string>{"x-header-3", "x-header-4"}));
  EXPECT_EQ(cf.cors->allow_credentials, true);
  EXPECT_EQ(cf.cors->max_age, 3600);
  EXPECT_EQ(r.rules[4].matches.at(0).path.value, "/cors-1");

  // ExtensionRef, and a backend's own filter and weight 0.
  const HTTPRouteRule& ext = r.rules[5];
  EXPECT_EQ(ext.matches.at(0).path.type, "Exact");
  ASSERT_TRUE(ext.filters.at(0).extension_ref);
  EXPECT_EQ(ext.filters[0].extension_ref->group, "example.com");
  EXPECT_EQ(ext.filters[0].extension_ref->kind, "Auth");
  EXPECT_EQ(ext.filters[0].extension_ref->name, "strict");
  ASSERT_EQ(ext.backend_refs.size(), 1u);
  EXPECT_EQ(ext.backend_refs[0].weight, 0);
  ASSERT_EQ(ext.backend_refs[0].filters.size(), 1u);
  EXPECT_EQ(ext.backend_refs[0].filters[0].request_header_modifier->set.at(0).name, "X-Backend");

  // Lines of rules and matches, for diagnostics.
  EXPECT_EQ(r.rules[0].line, 10);
  EXPECT_EQ(r.rules[0].matches[0].line, 11);
  EXPECT_GT(r.rules[1].line, r.rules[0].line);
  EXPECT_GT(r.rules[4].matches[0].line, r.rules[4].line);
}

TEST(GatewayDecode, ReferenceGrantAndRouteFromConformance) {
  auto r = decode(kReferenceGrant);
  ASSERT_EQ(r.objects.size(), 2u);
  ASSERT_TRUE(r.objects[0].object) << joined(messages(r.objects[0]));
  const auto& rg = std::get<ReferenceGrant>(*r.objects[0].object);
  EXPECT_EQ(object_key(*r.objects[0].object).str(), "ReferenceGrant gateway-conformance-web-backend/reference-grant");
  ASSERT_EQ(rg.from.size(), 1u);
  EXPECT_EQ(rg.from[0].group, "gateway.networking.k8s.io");
  EXPECT_EQ(rg.from[0].kind, "HTTPRoute");
  EXPECT_EQ(rg.from[0].namespace_, "gateway-conformance-infra");
  ASSERT_EQ(rg.to.size(), 1u);
  EXPECT_EQ(rg.to[0].group, "");
  EXPECT_EQ(rg.to[0].kind, "Service");
  EXPECT_EQ(rg.to[0].name, "web-backend");

  ASSERT_TRUE(r.objects[1].object) << joined(messages(r.objects[1]));
  const auto& hr = std::get<HTTPRoute>(*r.objects[1].object);
  ASSERT_EQ(hr.rules.size(), 1u);
  // A rule without matches gets the CRD's default match.
  ASSERT_EQ(hr.rules[0].matches.size(), 1u);
  EXPECT_EQ(hr.rules[0].matches[0].path.type, "PathPrefix");
  EXPECT_EQ(hr.rules[0].matches[0].path.value, "/");
  EXPECT_EQ(hr.rules[0].backend_refs.at(0).namespace_, "gateway-conformance-web-backend");
}

// ---- defaults ----

TEST(GatewayDecode, HTTPRouteDefaults) {
  // No rules at all: one rule with the default match and no backends.
  HTTPRoute empty = decoded<HTTPRoute>(route("  parentRefs: [{name: gw}]\n"));
  ASSERT_EQ(empty.rules.size(), 1u);
  ASSERT_EQ(empty.rules[0].matches.size(), 1u);
  EXPECT_EQ(empty.rules[0].matches[0].path.type, "PathPrefix");
  EXPECT_EQ(empty.rules[0].matches[0].path.value, "/");
  EXPECT_TRUE(empty.rules[0].backend_refs.empty());
  EXPECT_TRUE(empty.hostnames.empty());

  HTTPRoute r = decoded<HTTPRoute>(route(R"(  parentRefs:
  - name: gw
    namespace: infra
    sectionName: http
    port: 80
  - {group: "", kind: Service, name: mesh}
  hostnames: ["*.example.com", foo.example.com]
  rules:
  - name: first
    matches:
    - path: {value: /only-value}
    - path: {type: Exact}
    - headers: [{name: X-A, value: a}, {name: X-B, value: "b.*", type: RegularExpression}]
      queryParams: [{name: q, value: v}]
      method: GET
    - {}
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, port: 443}
    - type: RequestMirror
      requestMirror:
        backendRef: {name: m, port: 9}
        fraction: {numerator: 1}
    - type: CORS
      cors: {allowOrigins: ["*"]}
    timeouts: {request: 2h, backendRequest: 1h30m500ms}
  - backendRefs:
    - {name: a, port: 80, weight: 7}
    - {group: example.com, kind: Bucket, name: b}
)"));
  ASSERT_EQ(r.parent_refs.size(), 2u);
  EXPECT_EQ(r.parent_refs[0].namespace_, "infra");
  EXPECT_EQ(r.parent_refs[0].section_name, "http");
  EXPECT_EQ(r.parent_refs[0].port, 80);
  EXPECT_EQ(r.parent_refs[1].group, "");  // explicit "" is kept, not defaulted
  EXPECT_EQ(r.parent_refs[1].kind, "Service");
  EXPECT_EQ(r.hostnames, (std::vector<std::string>{"*.example.com", "foo.example.com"}));
  ASSERT_EQ(r.rules.size(), 2u);
  const HTTPRouteRule& a = r.rules[0];
  EXPECT_EQ(a.name, "first");
  ASSERT_EQ(a.matches.size(), 4u);
  EXPECT_EQ(a.matches[0].path.type, "PathPrefix");
  EXPECT_EQ(a.matches[0].path.value, "/only-value");
  EXPECT_EQ(a.matches[1].path.type, "Exact");
  EXPECT_EQ(a.matches[1].path.value, "/");
  EXPECT_EQ(a.matches[2].path.type, "PathPrefix");  // path absent: defaulted too
  EXPECT_EQ(a.matches[2].path.value, "/");
  ASSERT_EQ(a.matches[2].headers.size(), 2u);
  EXPECT_EQ(a.matches[2].headers[0].type, "Exact");
  EXPECT_EQ(a.matches[2].headers[1].type, "RegularExpression");
  EXPECT_EQ(a.matches[2].headers[1].value, "b.*");
  ASSERT_EQ(a.matches[2].query_params.size(), 1u);
  EXPECT_EQ(a.matches[2].query_params[0].type, "Exact");
  EXPECT_EQ(a.matches[2].method, "GET");
  EXPECT_FALSE(a.matches[0].method);
  EXPECT_EQ(a.matches[3].path.value, "/");
  ASSERT_EQ(a.filters.size(), 3u);
  EXPECT_EQ(a.filters[0].request_redirect->status_code, 302);
  EXPECT_EQ(a.filters[0].request_redirect->scheme, "https");
  EXPECT_EQ(a.filters[0].request_redirect->port, 443);
  EXPECT_FALSE(a.filters[0].request_redirect->path);
  EXPECT_EQ(a.filters[1].request_mirror->fraction->denominator, 100);
  EXPECT_EQ(a.filters[1].request_mirror->backend_ref.kind, "Service");
  EXPECT_EQ(a.filters[2].cors->max_age, 5);
  EXPECT_FALSE(a.filters[2].cors->allow_credentials);
  ASSERT_TRUE(a.timeouts);
  EXPECT_EQ(a.timeouts->request->text, "2h");
  EXPECT_EQ(a.timeouts->request->ms, 7200000);
  EXPECT_EQ(a.timeouts->backend_request->text, "1h30m500ms");
  EXPECT_EQ(a.timeouts->backend_request->ms, 5400500);
  const HTTPRouteRule& b = r.rules[1];
  EXPECT_FALSE(b.timeouts);
  EXPECT_EQ(b.matches.at(0).path.value, "/");
  EXPECT_EQ(b.backend_refs.at(0).weight, 7);
  EXPECT_EQ(b.backend_refs.at(1).group, "example.com");
  EXPECT_EQ(b.backend_refs.at(1).kind, "Bucket");
  EXPECT_FALSE(b.backend_refs.at(1).port);  // the port rule is only for Services
}

TEST(GatewayDecode, ExplicitEmptyMatchesStayEmpty) {
  // Structural defaulting fills absent (or null) fields only.
  HTTPRoute r =
      decoded<HTTPRoute>(route("  rules:\n  - matches: []\n    backendRefs: [{name: a, port: 80}]\n"
                               "  - matches:\n    backendRefs: [{name: a, port: 80}]\n"));
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_TRUE(r.rules[0].matches.empty());
  ASSERT_EQ(r.rules[1].matches.size(), 1u);  // null is pruned, then defaulted
  EXPECT_EQ(r.rules[1].matches[0].path.value, "/");
}

TEST(GatewayDecode, GatewayDefaults) {
  Gateway g = decoded<Gateway>(gateway(R"(  listeners:
  - name: tls
    port: 8443
    protocol: TLS
    hostname: "*.example.com"
    tls:
      mode: Passthrough
    allowedRoutes:
      kinds: [{kind: TLSRoute}]
  - name: https
    port: 443
    protocol: HTTPS
    tls:
      certificateRefs: [{name: cert, namespace: certs}]
      options: {example.com/min-version: "1.3"}
    allowedRoutes:
      namespaces:
        selector: {matchExpressions: [{key: team, operator: In, values: [a, b]}]}
  addresses:
  - value: 10.0.0.1
  - type: Hostname
    value: gw.example.com
  infrastructure:
    labels: {team: a}
    parametersRef: {group: example.com, kind: Params, name: p}
  allowedListeners: {}
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
)"));
  EXPECT_EQ(g.meta.namespace_, "ns");
  ASSERT_EQ(g.listeners.size(), 2u);
  const Listener& t = g.listeners[0];
  EXPECT_EQ(t.hostname, "*.example.com");
  EXPECT_EQ(t.tls->mode, "Passthrough");
  EXPECT_EQ(t.allowed_routes.namespaces.from, "Same");  // allowedRoutes present, namespaces absent
  ASSERT_EQ(t.allowed_routes.kinds.size(), 1u);
  EXPECT_EQ(t.allowed_routes.kinds[0].group, "gateway.networking.k8s.io");
  EXPECT_EQ(t.allowed_routes.kinds[0].kind, "TLSRoute");
  const Listener& h = g.listeners[1];
  EXPECT_EQ(h.tls->mode, "Terminate");
  EXPECT_EQ(h.tls->certificate_refs.at(0).kind, "Secret");
  EXPECT_EQ(h.tls->certificate_refs.at(0).namespace_, "certs");
  EXPECT_EQ(h.tls->options.at("example.com/min-version"), "1.3");
  EXPECT_EQ(h.allowed_routes.namespaces.from, "Same");  // from absent
  ASSERT_TRUE(h.allowed_routes.namespaces.selector);
  const auto& me = h.allowed_routes.namespaces.selector->match_expressions;
  ASSERT_EQ(me.size(), 1u);
  EXPECT_EQ(me[0].key, "team");
  EXPECT_EQ(me[0].operator_, "In");
  EXPECT_EQ(me[0].values, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(g.addresses.size(), 2u);
  EXPECT_EQ(g.addresses[0].type, "IPAddress");
  EXPECT_EQ(g.addresses[1].type, "Hostname");
  EXPECT_EQ(g.infrastructure->labels.at("team"), "a");
  EXPECT_EQ(g.infrastructure->parameters_ref->kind, "Params");
  ASSERT_TRUE(g.allowed_listeners);
  EXPECT_EQ(g.allowed_listeners->namespaces.from, "None");
  ASSERT_TRUE(g.tls && g.tls->frontend && g.tls->frontend->default_.validation);
  EXPECT_EQ(g.tls->frontend->default_.validation->mode, "AllowValidOnly");
  EXPECT_EQ(g.tls->frontend->default_.validation->ca_certificate_refs.at(0).kind, "ConfigMap");
}

TEST(GatewayDecode, GatewayClassAndV1beta1) {
  GatewayClass gc = decoded<GatewayClass>(R"(apiVersion: gateway.networking.k8s.io/v1beta1
kind: GatewayClass
metadata:
  name: ingressd
  namespace: ignored
spec:
  controllerName: ingressd.dev/gateway-controller
  description: ingressd's class
  parametersRef: {group: example.com, kind: Config, name: c, namespace: ops}
)");
  EXPECT_EQ(gc.meta.name, "ingressd");
  EXPECT_EQ(gc.meta.namespace_, "");  // cluster-scoped
  EXPECT_EQ(gc.controller_name, "ingressd.dev/gateway-controller");
  EXPECT_EQ(gc.description, "ingressd's class");
  EXPECT_EQ(gc.parameters_ref->namespace_, "ops");

  HTTPRoute r = decoded<HTTPRoute>(
      route("  rules: [{backendRefs: [{name: a, port: 80}]}]\n", "gateway.networking.k8s.io/v1beta1"));
  EXPECT_EQ(r.rules.at(0).backend_refs.at(0).name, "a");
  Gateway g = decoded<Gateway>(
      "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: Gateway\nmetadata: {name: g}\n"
      "spec: {gatewayClassName: c, listeners: [{name: h, port: 80, protocol: HTTP}]}\n");
  EXPECT_EQ(g.meta.namespace_, "default");
  ReferenceGrant rg = decoded<ReferenceGrant>(
      "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: rg}\n"
      "spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}], to: [{group: '', kind: "
      "Secret}]}\n");
  EXPECT_FALSE(rg.to.at(0).name);
}

TEST(GatewayDecode, KindsNamesAndKeys) {
  EXPECT_STREQ(kind_name(Kind::GatewayClass), "GatewayClass");
  EXPECT_STREQ(kind_name(Kind::Gateway), "Gateway");
  EXPECT_STREQ(kind_name(Kind::HTTPRoute), "HTTPRoute");
  EXPECT_STREQ(kind_name(Kind::ReferenceGrant), "ReferenceGrant");
  EXPECT_STREQ(kind_name(Kind::Namespace), "Namespace");
  EXPECT_STREQ(kind_name(Kind::GRPCRoute), "GRPCRoute");
  EXPECT_STREQ(kind_name(Kind::BackendTLSPolicy), "BackendTLSPolicy");
  EXPECT_TRUE(is_cluster_scoped(Kind::GatewayClass));
  EXPECT_TRUE(is_cluster_scoped(Kind::Namespace));
  EXPECT_TRUE(is_cluster_scoped(Kind::IngressClass));
  EXPECT_FALSE(is_cluster_scoped(Kind::HTTPRoute));
  EXPECT_EQ((ObjectKey{Kind::HTTPRoute, "ns", "r"}.str()), "HTTPRoute ns/r");
  EXPECT_EQ((ObjectKey{Kind::GatewayClass, "", "c"}.str()), "GatewayClass c");
  Object o = HTTPRoute{};
  EXPECT_EQ(object_kind(o), Kind::HTTPRoute);
  o = BackendTLSPolicy{};
  EXPECT_EQ(object_kind(o), Kind::BackendTLSPolicy);

  // A rejected object still names itself, so a broken edit can keep the last good version.
  auto r = decode(route("  rules: [{backendRefs: [{name: a}]}]\n"));
  ASSERT_TRUE(r.objects.at(0).key);
  EXPECT_EQ(r.objects[0].key->str(), "HTTPRoute ns/r");
  EXPECT_EQ(r.objects[0].errors.at(0).object, "HTTPRoute ns/r");
}

TEST(GatewayDecode, NamespaceKeepsLabelsAcceptsSpecAndStatus) {
  Namespace ns = decoded<Namespace>(R"(apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels: {kubernetes.io/metadata.name: team-a, env: prod}
spec:
  finalizers: [kubernetes]
status:
  phase: Active
)");
  EXPECT_EQ(ns.meta.name, "team-a");
  EXPECT_EQ(ns.meta.namespace_, "");
  EXPECT_EQ(ns.meta.labels.at("env"), "prod");
  auto bad = rejected("apiVersion: v1\nkind: Namespace\nmetadata: {name: Team.A}\n");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(
      bad[0],
      "Namespace \"Team.A\" is invalid: metadata.name: Invalid value: \"Team.A\": a lowercase RFC 1123 label must "
      "consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
      "character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
  auto unknown = rejected("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nbogus: 1\n");
  EXPECT_EQ(unknown, std::vector<std::string>{"strict decoding error: unknown field \"bogus\""});
}

TEST(GatewayDecode, UnsupportedKindsDecodeLoosely) {
  // GRPCRoute: the spec is open; parentRefs and hostnames are decoded and checked.
  GRPCRoute gr = decoded<GRPCRoute>(R"(apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: grpc}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: foo.Bar, method: Baz}}]
    backendRefs: [{name: svc, port: 50051}]
    anything: goes
)");
  ASSERT_EQ(gr.parent_refs.size(), 1u);
  EXPECT_EQ(gr.parent_refs[0].kind, "Gateway");
  EXPECT_EQ(gr.parent_refs[0].section_name, "grpc");
  EXPECT_EQ(gr.hostnames, std::vector<std::string>{"grpc.example.com"});
  auto bad = rejected(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\n"
      "spec: {parentRefs: [{name: gw, port: 0}]}\n");
  EXPECT_TRUE(contains(bad,
                       "GRPCRoute.gateway.networking.k8s.io \"g\" is invalid: spec.parentRefs[0].port: Invalid "
                       "value: 0: spec.parentRefs[0].port in body should be greater than or equal to 1"))
      << joined(bad);
  // Outside spec and status it is strict as ever.
  EXPECT_EQ(rejected("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec: {}\n"
                     "extra: 1\n"),
            std::vector<std::string>{"strict decoding error: unknown field \"extra\""});

  for (const char* v : {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1alpha3"}) {
    BackendTLSPolicy p = decoded<BackendTLSPolicy>(std::string("apiVersion: ") + v + R"(
kind: BackendTLSPolicy
metadata: {name: p, namespace: ns}
spec:
  targetRefs:
  - {group: "", kind: Service, name: svc, sectionName: https}
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    hostname: svc.example.com
)");
    ASSERT_EQ(p.target_refs.size(), 1u) << v;
    EXPECT_EQ(p.target_refs[0].kind, "Service");
    EXPECT_EQ(p.target_refs[0].name, "svc");
    EXPECT_EQ(p.target_refs[0].section_name, "https");
  }
  auto no_targets = rejected(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: p}\n"
      "spec: {validation: {hostname: x}}\n");
  EXPECT_TRUE(contains(no_targets,
                       "BackendTLSPolicy.gateway.networking.k8s.io \"p\" is invalid: spec.targetRefs: "
                       "Required value"))
      << joined(no_targets);
}

TEST(GatewayDecode, UnknownKindInTheGroupKeepsTheRegistryMessage) {
  auto r = decode("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateways\nmetadata: {name: a}\nspec: {}\n");
  EXPECT_EQ(
      messages(r.objects.at(0)),
      std::vector<std::string>{"no kind \"Gateways\" is registered for version \"gateway.networking.k8s.io/v1\""});
  // GRPCRoute has no v1beta1 in the standard channel.
  r = decode("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: GRPCRoute\nmetadata: {name: a}\nspec: {}\n");
  EXPECT_EQ(messages(r.objects.at(0)),
            std::vector<std::string>{
                "no kind \"GRPCRoute\" is registered for version \"gateway.networking.k8s.io/v1beta1\""});
}

TEST(GatewayDecode, ListOfRoutes) {
  auto r = decode(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRouteList
items:
- apiVersion: gateway.networking.k8s.io/v1
  kind: HTTPRoute
  metadata: {name: a}
  spec: {}
- apiVersion: gateway.networking.k8s.io/v1
  kind: HTTPRoute
  metadata: {name: b}
  spec: {hostnames: [B]}
)");
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_TRUE(r.objects[0].object);
  EXPECT_FALSE(r.objects[1].object);
}

// ---- strict decoding and types ----

TEST(GatewayDecode, UnknownFieldIsStrictDecodingError) {
  // retry and sessionPersistence are experimental-channel fields.
  auto m =
      rejected(route("  rules:\n  - backendRefs: [{name: a, port: 80}]\n    retry: {attempts: 2}\n"
                     "    sessionPersistence: {type: Cookie}\n  bogus: true\n"));
  EXPECT_EQ(m, std::vector<std::string>{"strict decoding error: unknown field \"spec.rules[0].retry\", unknown field "
                                        "\"spec.rules[0].sessionPersistence\", unknown field \"spec.bogus\""});
  auto r = decode(route("  rules:\n  - backendRefs: [{name: a, port: 80, wieght: 2}]\n"));
  ASSERT_EQ(r.objects.at(0).errors.size(), 1u);
  EXPECT_EQ(r.objects[0].errors[0].message,
            "strict decoding error: unknown field \"spec.rules[0].backendRefs[0].wieght\"");
  EXPECT_EQ(r.objects[0].errors[0].line, 8);
  EXPECT_EQ(r.objects[0].errors[0].reason, "StrictDecoding");
  // status is an open object.
  decoded<HTTPRoute>(route("  rules: [{backendRefs: [{name: a, port: 80}]}]\n") +
                     "status:\n  parents:\n  - parentRef: {name: gw}\n    controllerName: x/y\n    conditions: []\n");
}

TEST(GatewayDecode, TypeErrorsWordedAsForCustomResources) {
  auto m = rejected(gateway("  listeners: [{name: h, port: \"80\", protocol: HTTP}]\n"));
  EXPECT_EQ(m, std::vector<std::string>{gateway_invalid(
                   "spec.listeners[0].port: Invalid value: \"80\": spec.listeners[0].port in body must be of type "
                   "integer: \"string\"")});
  m = rejected(route("  hostnames: example.com\n"));
  EXPECT_EQ(m, std::vector<std::string>{route_invalid(
                   "spec.hostnames: Invalid value: \"example.com\": spec.hostnames in body must be of type array: "
                   "\"string\"")});
  m = rejected(route("  rules: [{filters: [{type: CORS, cors: {allowCredentials: maybe}}]}]\n"));
  EXPECT_EQ(m, std::vector<std::string>{route_invalid(
                   "spec.rules[0].filters[0].cors.allowCredentials: Invalid value: \"maybe\": "
                   "spec.rules[0].filters[0].cors.allowCredentials in body must be of type boolean: \"string\"")});
}

TEST(GatewayDecode, OneBadDocumentDoesNotTakeTheOthersDown) {
  std::string text = route("  rules: [{backendRefs: [{name: a, port: 80}]}]\n") + "---\n" +
                     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: bad, namespace: ns}\n"
                     "spec:\n  rules:\n  - matches: [{path: {type: Exact, value: nope}}]\n" +
                     "---\n" + kReferenceGrant + "---\nkind: [\n";
  auto r = decode(text);
  ASSERT_EQ(r.objects.size(), 4u);
  EXPECT_EQ(r.file_errors.size(), 1u);  // the syntax error of the last document
  EXPECT_TRUE(r.objects[0].object);
  ASSERT_FALSE(r.objects[1].object);
  EXPECT_EQ(r.objects[1].key->str(), "HTTPRoute ns/bad");
  EXPECT_EQ(r.objects[1].errors.at(0).message,
            "HTTPRoute.gateway.networking.k8s.io \"bad\" is invalid: spec.rules[0].matches[0].path: Invalid value: "
            "\"object\": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']");
  EXPECT_EQ(r.objects[1].errors.at(0).line, 14);
  EXPECT_TRUE(r.objects[2].object);
  EXPECT_TRUE(r.objects[3].object);
}

TEST(GatewayDecode, ErrorLinesPointAtEachField) {
  // Several errors in one object: each at its own line (line_for_path must not
  // rebind the document while it walks it).
  auto r = decode(route(R"(  hostnames:
  - ok.example.com
  - Bad
  rules:
  - backendRefs:
    - name: a
      port: 80
      weight: -1
    - name: b
      port: 70000
)"));
  ASSERT_EQ(r.objects.size(), 1u);
  const auto& errs = r.objects[0].errors;
  ASSERT_EQ(errs.size(), 3u) << joined(messages(r.objects[0]));
  EXPECT_EQ(errs[0].line, 9);
  EXPECT_NE(errs[0].message.find("spec.hostnames[1]"), std::string::npos);
  EXPECT_EQ(errs[1].line, 14);
  EXPECT_NE(errs[1].message.find("spec.rules[0].backendRefs[0].weight"), std::string::npos);
  EXPECT_EQ(errs[2].line, 16);
  EXPECT_NE(errs[2].message.find("spec.rules[0].backendRefs[1].port"), std::string::npos);
}

// ---- validation: one rule per case ----

struct Bad {
  const char* name;
  std::string text;
  std::string message;  // one of the object's errors, whole
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

class GatewayValidation : public ::testing::TestWithParam<Bad> {};

TEST_P(GatewayValidation, Rejects) {
  const Bad& b = GetParam();
  auto m = rejected(b.text);
  EXPECT_TRUE(contains(m, b.message)) << "want:\n  " << b.message << "\ngot:" << joined(m);
}

std::string rule(const std::string& r) { return route("  rules:\n" + r); }
const std::string kBackend = "    backendRefs: [{name: a, port: 80}]\n";

INSTANTIATE_TEST_SUITE_P(
    HTTPRoute, GatewayValidation,
    ::testing::Values(
        Bad{"PathNotAbsolute", rule("  - matches: [{path: {type: Exact, value: foo}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": value must be an absolute path "
                          "and start with '/' when type one of ['Exact', 'PathPrefix']")},
        Bad{"PathDoubleSlash", rule("  - matches: [{path: {value: /a//b}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '//' when type "
                          "one of ['Exact', 'PathPrefix']")},
        Bad{"PathDotSegment", rule("  - matches: [{path: {value: /a/./b}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '/./' when type "
                          "one of ['Exact', 'PathPrefix']")},
        Bad{"PathDotDotSegment", rule("  - matches: [{path: {value: /a/../b}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '/../' when "
                          "type one of ['Exact', 'PathPrefix']")},
        Bad{"PathEncodedSlashLower", rule("  - matches: [{path: {value: /a%2fb}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '%2f' when "
                          "type one of ['Exact', 'PathPrefix']")},
        Bad{"PathEncodedSlashUpper", rule("  - matches: [{path: {value: /a%2Fb}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '%2F' when "
                          "type one of ['Exact', 'PathPrefix']")},
        Bad{"PathFragment", rule("  - matches: [{path: {value: \"/a#b\"}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '#' when type "
                          "one of ['Exact', 'PathPrefix']")},
        Bad{"PathEndsDotDot", rule("  - matches: [{path: {type: Exact, value: /a/..}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not end with '/..' when "
                          "type one of ['Exact', 'PathPrefix']")},
        Bad{"PathEndsDot", rule("  - matches: [{path: {value: /a/.}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must not end with '/.' when "
                          "type one of ['Exact', 'PathPrefix']")},
        Bad{"PathInvalidCharacters", rule("  - matches: [{path: {value: \"/a b\"}}]\n"),
            route_invalid("spec.rules[0].matches[0].path: Invalid value: \"object\": must only contain valid "
                          "characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types "
                          "['Exact', 'PathPrefix']")},
        Bad{"PathType", rule("  - matches: [{path: {type: Prefix, value: /}}]\n"),
            route_invalid("spec.rules[0].matches[0].path.type: Unsupported value: \"Prefix\": supported values: "
                          "\"Exact\", \"PathPrefix\", \"RegularExpression\"")},
        Bad{"PathTooLong", rule("  - matches: [{path: {value: /" + std::string(1024, 'a') + "}}]\n"),
            route_invalid("spec.rules[0].matches[0].path.value: Too long: may not be more than 1024 bytes")},
        Bad{"HeaderNameNotAToken", rule("  - matches: [{headers: [{name: \"X A\", value: v}]}]\n"),
            route_invalid("spec.rules[0].matches[0].headers[0].name: Invalid value: \"X A\": "
                          "spec.rules[0].matches[0].headers[0].name in body should match "
                          "'^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$'")},
        Bad{"HeaderNameEmpty", rule("  - matches: [{headers: [{name: \"\", value: v}]}]\n"),
            route_invalid("spec.rules[0].matches[0].headers[0].name: Invalid value: \"\": "
                          "spec.rules[0].matches[0].headers[0].name in body should be at least 1 chars long")},
        Bad{"HeaderValueRequired", rule("  - matches: [{headers: [{name: X-A}]}]\n"),
            route_invalid("spec.rules[0].matches[0].headers[0].value: Required value")},
        Bad{"HeaderMatchType", rule("  - matches: [{headers: [{name: X-A, value: v, type: Prefix}]}]\n"),
            route_invalid("spec.rules[0].matches[0].headers[0].type: Unsupported value: \"Prefix\": supported "
                          "values: \"Exact\", \"RegularExpression\"")},
        Bad{"HeaderMatchDuplicate", rule("  - matches: [{headers: [{name: X-A, value: a}, {name: X-A, value: b}]}]\n"),
            route_invalid("spec.rules[0].matches[0].headers[1]: Duplicate value: map[string]interface "
                          "{}{\"name\":\"X-A\"}")},
        Bad{"QueryParamName", rule("  - matches: [{queryParams: [{name: \"a=b\", value: v}]}]\n"),
            route_invalid("spec.rules[0].matches[0].queryParams[0].name: Invalid value: \"a=b\": "
                          "spec.rules[0].matches[0].queryParams[0].name in body should match "
                          "'^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$'")},
        Bad{"Method", rule("  - matches: [{method: get}]\n"),
            route_invalid("spec.rules[0].matches[0].method: Unsupported value: \"get\": supported values: \"GET\", "
                          "\"HEAD\", \"POST\", \"PUT\", \"DELETE\", \"CONNECT\", \"OPTIONS\", \"TRACE\", \"PATCH\"")},
        Bad{"Hostname", route("  hostnames: [Example.com]\n"),
            route_invalid("spec.hostnames[0]: Invalid value: \"Example.com\": spec.hostnames[0] in body should match "
                          "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"HostnameWildcardInside", route("  hostnames: [\"foo.*.com\"]\n"),
            route_invalid("spec.hostnames[0]: Invalid value: \"foo.*.com\": spec.hostnames[0] in body should match "
                          "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"HostnameWithPort", route("  hostnames: [\"foo.com:80\"]\n"),
            route_invalid("spec.hostnames[0]: Invalid value: \"foo.com:80\": spec.hostnames[0] in body should match "
                          "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"FilterType", rule("  - filters: [{type: Rewrite}]\n"),
            route_invalid("spec.rules[0].filters[0].type: Unsupported value: \"Rewrite\": supported values: "
                          "\"RequestHeaderModifier\", \"ResponseHeaderModifier\", \"RequestMirror\", "
                          "\"RequestRedirect\", \"URLRewrite\", \"ExtensionRef\", \"CORS\"")},
        Bad{"FilterTypeRequired", rule("  - filters: [{requestHeaderModifier: {remove: [a]}}]\n"),
            route_invalid("spec.rules[0].filters[0].type: Required value")},
        Bad{"FilterMissingItsField", rule("  - filters: [{type: RequestHeaderModifier}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0]: Invalid value: \"object\": filter.requestHeaderModifier must be "
                          "specified for RequestHeaderModifier filter.type")},
        Bad{"FilterWithAnotherField",
            rule("  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [a]}, "
                 "urlRewrite: {hostname: a.com}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0]: Invalid value: \"object\": filter.urlRewrite must be nil if the "
                          "filter.type is not URLRewrite")},
        Bad{"BackendFilterMissingItsField", rule("  - backendRefs: [{name: a, port: 80, filters: [{type: CORS}]}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].filters[0]: Invalid value: \"object\": filter.cors must be "
                          "specified for CORS filter.type")},
        Bad{"RedirectAndRewrite",
            rule("  - filters:\n    - {type: RequestRedirect, requestRedirect: {scheme: https}}\n"
                 "    - {type: URLRewrite, urlRewrite: {hostname: a.com}}\n"),
            route_invalid("spec.rules[0].filters: Invalid value: \"array\": May specify either "
                          "httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both")},
        Bad{"RepeatedHeaderModifier",
            rule("  - filters:\n    - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [a]}}\n"
                 "    - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [b]}}\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters: Invalid value: \"array\": RequestHeaderModifier filter cannot be "
                          "repeated")},
        Bad{"RepeatedCORS",
            rule("  - filters:\n    - {type: CORS, cors: {allowOrigins: ['*']}}\n    - {type: CORS, cors: {}}\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters: Invalid value: \"array\": CORS filter cannot be repeated")},
        Bad{"RedirectWithBackends",
            rule("  - filters: [{type: RequestRedirect, requestRedirect: {port: 8443}}]\n" + kBackend),
            route_invalid("spec.rules[0]: Invalid value: \"object\": RequestRedirect filter must not be used together "
                          "with backendRefs")},
        Bad{"RedirectStatusCode", rule("  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]\n"),
            route_invalid("spec.rules[0].filters[0].requestRedirect.statusCode: Unsupported value: 304: supported "
                          "values: \"301\", \"302\", \"303\", \"307\", \"308\"")},
        Bad{"RedirectScheme", rule("  - filters: [{type: RequestRedirect, requestRedirect: {scheme: HTTPS}}]\n"),
            route_invalid("spec.rules[0].filters[0].requestRedirect.scheme: Unsupported value: \"HTTPS\": supported "
                          "values: \"http\", \"https\"")},
        Bad{"RedirectHostnameIsPrecise",
            rule("  - filters: [{type: RequestRedirect, requestRedirect: {hostname: \"*.example.com\"}}]\n"),
            route_invalid("spec.rules[0].filters[0].requestRedirect.hostname: Invalid value: \"*.example.com\": "
                          "spec.rules[0].filters[0].requestRedirect.hostname in body should match "
                          "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"ReplacePrefixMatchNeedsPathPrefix",
            rule("  - matches: [{path: {type: Exact, value: /a}}]\n    filters: [{type: URLRewrite, urlRewrite: "
                 "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0]: Invalid value: \"object\": When using URLRewrite filter with "
                          "path.replacePrefixMatch, exactly one PathPrefix match must be specified")},
        Bad{"ReplacePrefixMatchNeedsOneMatch",
            rule("  - matches: [{path: {value: /a}}, {path: {value: /b}}]\n    filters: [{type: RequestRedirect, "
                 "requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /c}}}]\n"),
            route_invalid("spec.rules[0]: Invalid value: \"object\": When using RequestRedirect filter with "
                          "path.replacePrefixMatch, exactly one PathPrefix match must be specified")},
        Bad{"BackendReplacePrefixMatchNeedsPathPrefix",
            rule("  - matches: [{path: {type: Exact, value: /a}}]\n    backendRefs: [{name: a, port: 80, filters: "
                 "[{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]\n"),
            route_invalid("spec.rules[0]: Invalid value: \"object\": Within backendRefs, When using URLRewrite filter "
                          "with path.replacePrefixMatch, exactly one PathPrefix match must be specified")},
        Bad{"PathModifierFieldMissing",
            rule("  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]\n" + kBackend),
            route_invalid(
                "spec.rules[0].filters[0].urlRewrite.path: Invalid value: \"object\": replaceFullPath must be "
                "specified when type is set to 'ReplaceFullPath'")},
        Bad{"PathModifierWrongField",
            rule("  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /a, "
                 "replacePrefixMatch: /b}}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].urlRewrite.path: Invalid value: \"object\": type must be "
                          "'ReplacePrefixMatch' when replacePrefixMatch is set")},
        Bad{"MirrorPercentAndFraction",
            rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent: 5, "
                 "fraction: {numerator: 1}}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].requestMirror: Invalid value: \"object\": Only one of percent or "
                          "fraction may be specified in HTTPRequestMirrorFilter")},
        Bad{"MirrorFraction",
            rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, fraction: "
                 "{numerator: 3, denominator: 2}}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].requestMirror.fraction: Invalid value: \"object\": numerator must "
                          "be less than or equal to denominator")},
        Bad{"MirrorDenominator",
            rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, fraction: "
                 "{numerator: 0, denominator: 0}}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].requestMirror.fraction.denominator: Invalid value: 0: "
                          "spec.rules[0].filters[0].requestMirror.fraction.denominator in body should be greater than "
                          "or equal to 1")},
        Bad{"MirrorPercent",
            rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent: "
                 "101}}]\n" +
                 kBackend),
            route_invalid(
                "spec.rules[0].filters[0].requestMirror.percent: Invalid value: 101: "
                "spec.rules[0].filters[0].requestMirror.percent in body should be less than or equal to 100")},
        Bad{"MirrorServiceNeedsPort",
            rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m}}}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0].requestMirror.backendRef: Invalid value: \"object\": Must have "
                          "port for Service reference")},
        Bad{"ServiceBackendNeedsPort", rule("  - backendRefs: [{name: a}]\n"),
            route_invalid("spec.rules[0].backendRefs[0]: Invalid value: \"object\": Must have port for Service "
                          "reference")},
        Bad{"BackendNameRequired", rule("  - backendRefs: [{port: 80}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].name: Required value")},
        Bad{"BackendWeightNegative", rule("  - backendRefs: [{name: a, port: 80, weight: -1}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].weight: Invalid value: -1: "
                          "spec.rules[0].backendRefs[0].weight in body should be greater than or equal to 0")},
        Bad{"BackendWeightTooBig", rule("  - backendRefs: [{name: a, port: 80, weight: 1000001}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].weight: Invalid value: 1000001: "
                          "spec.rules[0].backendRefs[0].weight in body should be less than or equal to 1000000")},
        Bad{"BackendKind", rule("  - backendRefs: [{name: a, port: 80, kind: \"my_kind\"}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].kind: Invalid value: \"my_kind\": "
                          "spec.rules[0].backendRefs[0].kind in body should match "
                          "'^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$'")},
        Bad{"BackendNamespace", rule("  - backendRefs: [{name: a, port: 80, namespace: Other}]\n"),
            route_invalid("spec.rules[0].backendRefs[0].namespace: Invalid value: \"Other\": "
                          "spec.rules[0].backendRefs[0].namespace in body should match "
                          "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'")},
        Bad{"DurationFormat", rule("  - timeouts: {request: 1.5s}\n" + kBackend),
            route_invalid("spec.rules[0].timeouts.request: Invalid value: \"1.5s\": spec.rules[0].timeouts.request in "
                          "body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'")},
        Bad{"DurationDays", rule("  - timeouts: {backendRequest: 1d}\n" + kBackend),
            route_invalid(
                "spec.rules[0].timeouts.backendRequest: Invalid value: \"1d\": "
                "spec.rules[0].timeouts.backendRequest in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'")},
        Bad{"BackendTimeoutLongerThanRequest", rule("  - timeouts: {request: 1s, backendRequest: 1001ms}\n" + kBackend),
            route_invalid("spec.rules[0].timeouts: Invalid value: \"object\": backendRequest timeout cannot be longer "
                          "than request timeout")},
        Bad{"RuleName", rule("  - name: First\n" + kBackend),
            route_invalid("spec.rules[0].name: Invalid value: \"First\": spec.rules[0].name in body should match "
                          "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"RulesEmpty", route("  rules: []\n"),
            route_invalid("spec.rules: Invalid value: 0: spec.rules in body should have at least 1 items")},
        Bad{"ParentRefSectionNameNeeded", route("  parentRefs: [{name: gw}, {name: gw, sectionName: http}]\n"),
            route_invalid("spec.parentRefs: Invalid value: \"array\": sectionName must be specified when parentRefs "
                          "includes 2 or more references to the same parent")},
        Bad{"ParentRefSectionNameUnique",
            route("  parentRefs: [{name: gw, sectionName: a}, {name: gw, sectionName: a, port: 80}]\n"),
            route_invalid("spec.parentRefs: Invalid value: \"array\": sectionName must be unique when parentRefs "
                          "includes 2 or more references to the same parent")},
        Bad{"ParentRefPort", route("  parentRefs: [{name: gw, port: 65536}]\n"),
            route_invalid("spec.parentRefs[0].port: Invalid value: 65536: spec.parentRefs[0].port in body should be "
                          "less than or equal to 65535")},
        Bad{"CORSOrigin", rule("  - filters: [{type: CORS, cors: {allowOrigins: [\"xpto.com\"]}}]\n" + kBackend),
            route_invalid(
                "spec.rules[0].filters[0].cors.allowOrigins[0]: Invalid value: \"xpto.com\": "
                "spec.rules[0].filters[0].cors.allowOrigins[0] in body should match "
                "'(^\\*$)|(^(http(s)?):\\/\\/(((\\*\\.)?([a-zA-Z0-9\\-]+\\.)*[a-zA-Z0-9-]+|\\*)(:([0-9]{1,5}))?)$)'")},
        Bad{"CORSWildcardOriginAlone",
            rule("  - filters: [{type: CORS, cors: {allowOrigins: [\"*\", \"https://a.com\"]}}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0].cors.allowOrigins: Invalid value: \"array\": AllowOrigins cannot "
                          "contain '*' alongside other origins")},
        Bad{"CORSMethod", rule("  - filters: [{type: CORS, cors: {allowMethods: [BAZINGA]}}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0].cors.allowMethods[0]: Unsupported value: \"BAZINGA\": supported "
                          "values: \"GET\", \"HEAD\", \"POST\", \"PUT\", \"DELETE\", \"CONNECT\", \"OPTIONS\", "
                          "\"TRACE\", \"PATCH\", \"*\"")},
        Bad{"CORSMethodDuplicate", rule("  - filters: [{type: CORS, cors: {allowMethods: [GET, GET]}}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0].cors.allowMethods[1]: Duplicate value: \"GET\"")},
        Bad{"CORSMaxAge", rule("  - filters: [{type: CORS, cors: {maxAge: 0}}]\n" + kBackend),
            route_invalid("spec.rules[0].filters[0].cors.maxAge: Invalid value: 0: "
                          "spec.rules[0].filters[0].cors.maxAge in body should be greater than or equal to 1")},
        Bad{"HeaderModifierDuplicateSet",
            rule("  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}, "
                 "{name: a, value: c}]}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].requestHeaderModifier.set[1]: Duplicate value: "
                          "map[string]interface {}{\"name\":\"a\"}")},
        Bad{"HeaderModifierEmptyValue",
            rule("  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: a, value: "
                 "\"\"}]}}]\n" +
                 kBackend),
            route_invalid("spec.rules[0].filters[0].responseHeaderModifier.add[0].value: Invalid value: \"\": "
                          "spec.rules[0].filters[0].responseHeaderModifier.add[0].value in body should be at least 1 "
                          "chars long")},
        Bad{"ExtensionRefGroupRequired",
            rule("  - filters: [{type: ExtensionRef, extensionRef: {kind: K, name: x}}]\n"),
            route_invalid("spec.rules[0].filters[0].extensionRef.group: Required value")},
        Bad{"SpecRequired", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n",
            route_invalid("spec: Required value")},
        Bad{"MetadataName",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: R_1}\nspec: {}\n",
            "HTTPRoute.gateway.networking.k8s.io \"R_1\" is invalid: metadata.name: Invalid value: \"R_1\": a "
            "lowercase "
            "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}),
    [](const ::testing::TestParamInfo<Bad>& i) { return std::string(i.param.name); });

std::string many(const std::string& item, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    std::string x = item;
    for (size_t p; (p = x.find("$i")) != std::string::npos;) x.replace(p, 2, std::to_string(i));
    s += x;
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    MaxItems, GatewayValidation,
    ::testing::Values(
        Bad{"Rules", route("  rules:\n" + many("  - backendRefs: [{name: a, port: 80}]\n", 17)),
            route_invalid("spec.rules: Too many: 17: must have at most 16 items")},
        Bad{"Matches", rule("  - matches:\n" + many("    - path: {value: /$i}\n", 65)),
            route_invalid("spec.rules[0].matches: Too many: 65: must have at most 64 items")},
        Bad{"MatchesAcrossRules",
            route("  rules:\n" + many("  - matches:\n" + many("    - path: {value: /x}\n", 43), 3)),
            route_invalid(
                "spec.rules: Invalid value: \"array\": While 16 rules and 64 matches per rule are allowed, the "
                "total number of matches across all rules in a route must be less than 128")},
        Bad{"Hostnames", route("  hostnames:\n" + many("  - h$i.example.com\n", 17)),
            route_invalid("spec.hostnames: Too many: 17: must have at most 16 items")},
        Bad{"ParentRefs", route("  parentRefs:\n" + many("  - {name: gw$i}\n", 33)),
            route_invalid("spec.parentRefs: Too many: 33: must have at most 32 items")},
        Bad{"Headers", rule("  - matches:\n    - headers:\n" + many("      - {name: h$i, value: v}\n", 17)),
            route_invalid("spec.rules[0].matches[0].headers: Too many: 17: must have at most 16 items")},
        Bad{"BackendRefs", rule("  - backendRefs:\n" + many("    - {name: b$i, port: 80}\n", 17)),
            route_invalid("spec.rules[0].backendRefs: Too many: 17: must have at most 16 items")},
        Bad{"Filters",
            rule("  - filters:\n" + many("    - {type: ExtensionRef, extensionRef: {group: g, kind: K, name: "
                                         "n$i}}\n",
                                         17)),
            route_invalid("spec.rules[0].filters: Too many: 17: must have at most 16 items")},
        Bad{"Listeners", gateway("  listeners:\n" + many("  - {name: l$i, port: 80, protocol: HTTP}\n", 65)),
            gateway_invalid("spec.listeners: Too many: 65: must have at most 64 items")}),
    [](const ::testing::TestParamInfo<Bad>& i) { return std::string(i.param.name); });

const std::string kHttp = "  - {name: http, port: 80, protocol: HTTP}\n";

INSTANTIATE_TEST_SUITE_P(
    Gateway, GatewayValidation,
    ::testing::Values(
        Bad{"ListenersRequired", gateway(""), gateway_invalid("spec.listeners: Required value")},
        Bad{"ListenersEmpty", gateway("  listeners: []\n"),
            gateway_invalid("spec.listeners: Invalid value: 0: spec.listeners in body should have at least 1 items")},
        Bad{"ClassRequired",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: ns}\n"
            "spec:\n  listeners:\n" +
                kHttp,
            gateway_invalid("spec.gatewayClassName: Required value")},
        Bad{"PortZero", gateway("  listeners: [{name: http, port: 0, protocol: HTTP}]\n"),
            gateway_invalid(
                "spec.listeners[0].port: Invalid value: 0: spec.listeners[0].port in body should be greater "
                "than or equal to 1")},
        Bad{"PortTooBig", gateway("  listeners: [{name: http, port: 65536, protocol: HTTP}]\n"),
            gateway_invalid("spec.listeners[0].port: Invalid value: 65536: spec.listeners[0].port in body should be "
                            "less than or equal to 65535")},
        Bad{"PortRequired", gateway("  listeners: [{name: http, protocol: HTTP}]\n"),
            gateway_invalid("spec.listeners[0].port: Required value")},
        Bad{"Protocol", gateway("  listeners: [{name: http, port: 80, protocol: \"HTTP/2\"}]\n"),
            gateway_invalid(
                "spec.listeners[0].protocol: Invalid value: \"HTTP/2\": spec.listeners[0].protocol in body "
                "should match '^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-"
                "9]([-a-z0-9]*[a-z0-9])?)*\\/[A-Za-z0-9]+$'")},
        Bad{"ListenerName", gateway("  listeners: [{name: Http, port: 80, protocol: HTTP}]\n"),
            gateway_invalid("spec.listeners[0].name: Invalid value: \"Http\": spec.listeners[0].name in body should "
                            "match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"ListenerHostname", gateway("  listeners: [{name: h, port: 80, protocol: HTTP, hostname: \"*\"}]\n"),
            gateway_invalid(
                "spec.listeners[0].hostname: Invalid value: \"*\": spec.listeners[0].hostname in body "
                "should match '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")},
        Bad{"ListenerNamesUniqueRule",
            gateway("  listeners:\n" + kHttp + "  - {name: http, port: 81, protocol: HTTP}\n"),
            gateway_invalid(
                "spec.listeners: Invalid value: \"array\": Listener name must be unique within the Gateway")},
        Bad{"ListenerNamesUniqueListMap",
            gateway("  listeners:\n" + kHttp + "  - {name: http, port: 81, protocol: HTTP}\n"),
            gateway_invalid("spec.listeners[1]: Duplicate value: map[string]interface {}{\"name\":\"http\"}")},
        Bad{"ListenerCombinationUnique",
            gateway("  listeners:\n" + kHttp + "  - {name: http2, port: 80, protocol: HTTP}\n"),
            gateway_invalid("spec.listeners: Invalid value: \"array\": Combination of port, protocol and hostname must "
                            "be unique for each listener")},
        Bad{"TLSOnHTTP",
            gateway("  listeners: [{name: h, port: 80, protocol: HTTP, tls: {certificateRefs: [{name: "
                    "c}]}}]\n"),
            gateway_invalid(
                "spec.listeners: Invalid value: \"array\": tls must not be specified for protocols ['HTTP', "
                "'TCP', 'UDP']")},
        Bad{"PassthroughOnHTTPS",
            gateway("  listeners: [{name: h, port: 443, protocol: HTTPS, tls: {mode: "
                    "Passthrough}}]\n"),
            gateway_invalid("spec.listeners: Invalid value: \"array\": tls mode must be Terminate for protocol HTTPS")},
        Bad{"TLSProtocolNeedsTLS", gateway("  listeners: [{name: t, port: 443, protocol: TLS}]\n"),
            gateway_invalid("spec.listeners: Invalid value: \"array\": tls mode must be set for protocol TLS")},
        Bad{"HostnameOnTCP", gateway("  listeners: [{name: t, port: 9000, protocol: TCP, hostname: a.com}]\n"),
            gateway_invalid("spec.listeners: Invalid value: \"array\": hostname must not be specified for protocols "
                            "['TCP', 'UDP']")},
        Bad{"TerminateNeedsCertificates", gateway("  listeners: [{name: h, port: 443, protocol: HTTPS, tls: {}}]\n"),
            gateway_invalid("spec.listeners[0].tls: Invalid value: \"object\": certificateRefs or options must be "
                            "specified when mode is Terminate")},
        Bad{"TLSMode", gateway("  listeners: [{name: h, port: 443, protocol: HTTPS, tls: {mode: Reencrypt}}]\n"),
            gateway_invalid("spec.listeners[0].tls.mode: Unsupported value: \"Reencrypt\": supported values: "
                            "\"Terminate\", \"Passthrough\"")},
        Bad{"AllowedRoutesFrom",
            gateway("  listeners: [{name: h, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: None}}}]\n"),
            gateway_invalid("spec.listeners[0].allowedRoutes.namespaces.from: Unsupported value: \"None\": supported "
                            "values: \"All\", \"Selector\", \"Same\"")},
        Bad{"CertificateRefName",
            gateway("  listeners: [{name: h, port: 443, protocol: HTTPS, tls: {certificateRefs: [{kind: Secret}]}}]\n"),
            gateway_invalid("spec.listeners[0].tls.certificateRefs[0].name: Required value")},
        Bad{"AddressFormat", gateway("  listeners:\n" + kHttp + "  addresses: [{value: \"1.2.3.4:8080\"}]\n"),
            gateway_invalid("spec.addresses[0].value: Invalid value: \"1.2.3.4:8080\": spec.addresses[0].value in body "
                            "must be of type ipv4: \"1.2.3.4:8080\"")},
        Bad{"AddressesUnique",
            gateway("  listeners:\n" + kHttp +
                    "  addresses: [{value: 10.0.0.1}, {type: IPAddress, value: 10.0.0.1}]\n"),
            gateway_invalid("spec.addresses: Invalid value: \"array\": IPAddress values must be unique")},
        Bad{"AddressHostname", gateway("  listeners:\n" + kHttp + "  addresses: [{type: Hostname, value: A.com}]\n"),
            gateway_invalid(
                "spec.addresses[0]: Invalid value: \"object\": Hostname value must be empty or contain only "
                "valid characters (matching "
                "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)")},
        Bad{"InfrastructureLabelKey", gateway("  listeners:\n" + kHttp + "  infrastructure: {labels: {\"-bad\": x}}\n"),
            gateway_invalid("spec.infrastructure.labels: Invalid value: \"object\": Label keys must be in the form of "
                            "an optional DNS subdomain prefix followed by a required name segment of up to 63 "
                            "characters.")}),
    [](const ::testing::TestParamInfo<Bad>& i) { return std::string(i.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Others, GatewayValidation,
    ::testing::Values(
        Bad{"ControllerName",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
            "spec: {controllerName: ingressd}\n",
            "GatewayClass.gateway.networking.k8s.io \"c\" is invalid: spec.controllerName: Invalid value: "
            "\"ingressd\": "
            "spec.controllerName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?"
            ")*\\/[A-Za-z0-9\\/\\-._~%!$&'()*+,;=:]+$'"},
        Bad{"ControllerNameRequired",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec: {}\n",
            "GatewayClass.gateway.networking.k8s.io \"c\" is invalid: spec.controllerName: Required value"},
        Bad{"DescriptionTooLong",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
            "spec: {controllerName: a.io/b, description: " +
                std::string(65, 'd') + "}\n",
            "GatewayClass.gateway.networking.k8s.io \"c\" is invalid: spec.description: Too long: may not be more than "
            "64 bytes"},
        Bad{"ReferenceGrantFromEmpty",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
            "spec: {from: [], to: [{group: '', kind: Service}]}\n",
            "ReferenceGrant.gateway.networking.k8s.io \"g\" is invalid: spec.from: Invalid value: 0: spec.from in body "
            "should have at least 1 items"},
        Bad{"ReferenceGrantFromNamespaceRequired",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
            "spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute}], to: [{group: '', kind: Service}]}\n",
            "ReferenceGrant.gateway.networking.k8s.io \"g\" is invalid: spec.from[0].namespace: Required value"},
        Bad{"ReferenceGrantToGroup",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
            "spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}], to: [{group: Core, "
            "kind: "
            "Service}]}\n",
            "ReferenceGrant.gateway.networking.k8s.io \"g\" is invalid: spec.to[0].group: Invalid value: \"Core\": "
            "spec.to[0].group in body should match '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
            "*$'"},
        Bad{"BackendTLSPolicyTargetsUnique",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: p}\n"
            "spec: {targetRefs: [{group: '', kind: Service, name: s}, {group: '', kind: Service, name: s}]}\n",
            "BackendTLSPolicy.gateway.networking.k8s.io \"p\" is invalid: spec.targetRefs: Invalid value: \"array\": "
            "sectionName must be unique when targetRefs includes 2 or more references to the same target"}),
    [](const ::testing::TestParamInfo<Bad>& i) { return std::string(i.param.name); });

// ---- the API server's ordering: schema errors, then CEL unless blocked ----

TEST(GatewayDecode, BlockingSchemaErrorSkipsTheRules) {
  // An enum violation is blocking: the CEL rule that the same rule breaks
  // (redirect with backends) is not evaluated, and a note says so.
  auto m = rejected(rule("  - filters: [{type: RequestRedirect, requestRedirect: {scheme: ftp}}]\n" + kBackend));
  EXPECT_EQ(m, (std::vector<std::string>{route_invalid("spec.rules[0].filters[0].requestRedirect.scheme: Unsupported "
                                                       "value: \"ftp\": supported values: \"http\", \"https\""),
                                         route_invalid(kCelSkipped)}));
  // A required field left out is blocking too.
  m = rejected(rule("  - backendRefs: [{port: 80}]\n    filters: [{type: RequestRedirect, requestRedirect: {}}]\n"));
  EXPECT_EQ(m, (std::vector<std::string>{route_invalid("spec.rules[0].backendRefs[0].name: Required value"),
                                         route_invalid(kCelSkipped)}));
  // A pattern violation is not: the rules still run.
  m = rejected(rule("  - filters: [{type: RequestRedirect, requestRedirect: {hostname: A}}]\n" + kBackend));
  EXPECT_EQ(m, (std::vector<std::string>{
                   route_invalid("spec.rules[0].filters[0].requestRedirect.hostname: Invalid value: \"A\": "
                                 "spec.rules[0].filters[0].requestRedirect.hostname in body should match "
                                 "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"),
                   route_invalid("spec.rules[0]: Invalid value: \"object\": RequestRedirect filter must not be used "
                                 "together with backendRefs")}));
}

TEST(GatewayDecode, ValidObjectsPassTheRules) {
  // Near misses of the rules above, which the API server accepts.
  decoded<HTTPRoute>(rule("  - matches: [{path: {type: RegularExpression, value: \"/a//b(.*)\"}}]\n" + kBackend));
  decoded<HTTPRoute>(rule("  - matches: [{path: {value: /a%20b/c..d/.e}}]\n" + kBackend));
  decoded<HTTPRoute>(
      rule("  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, "
           "replacePrefixMatch: /b}}}]\n" +
           kBackend));  // default match is a PathPrefix
  decoded<HTTPRoute>(rule("  - timeouts: {request: 0s, backendRequest: 1h}\n" + kBackend));  // 0s: no limit
  decoded<HTTPRoute>(
      route("  parentRefs: [{name: gw, sectionName: a}, {name: gw, sectionName: b}, "
            "{name: gw, namespace: other}]\n"));
  decoded<HTTPRoute>(
      rule("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 1}}}, "
           "{type: RequestMirror, requestMirror: {backendRef: {name: mm, port: 1}}}]\n" +
           kBackend));
  decoded<HTTPRoute>(
      rule("  - filters: [{type: CORS, cors: {allowOrigins: [\"http://*.bar.com:8080\", "
           "\"https://x.io\"], allowMethods: [\"*\"], allowHeaders: [\"*\"]}}]\n" +
           kBackend));
  decoded<HTTPRoute>(route("  hostnames: [\"1.2.3.4\"]\n"));  // the CRD's pattern lets an IP through
  decoded<Gateway>(gateway("  listeners:\n" + kHttp +
                           "  - {name: http-a, port: 80, protocol: HTTP, hostname: a.com}\n"
                           "  - {name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}}\n"
                           "  - {name: https, port: 443, protocol: HTTPS, tls: {options: {a.io/x: v1}}}\n"
                           "  - {name: custom, port: 9, protocol: example.com/Quic}\n"));
}

// ---- GEP-2257 durations ----

TEST(GatewayDecode, DurationTestVectorsFromGep2257) {
  const std::pair<const char*, int64_t> valid[] = {{"0h", 0},
                                                   {"0s", 0},
                                                   {"0h0m0s", 0},
                                                   {"1h", 3600000},
                                                   {"30m", 1800000},
                                                   {"10s", 10000},
                                                   {"500ms", 500},
                                                   {"2h30m", 9000000},
                                                   {"150m", 9000000},
                                                   {"7230s", 7230000},
                                                   {"1h30m10s", 5410000},
                                                   {"10s30m1h", 5410000},
                                                   {"100ms200ms300ms", 600},
                                                   {"00060m", 3600000},
                                                   {"1h2h20m10m", 12600000},
                                                   {"99999h", 99999LL * 3600000}};
  for (auto& [s, ms] : valid) EXPECT_EQ(parse_gateway_duration_ms(s), ms) << s;
  for (const char* s : {"1", "1m1", "1d", "1h30m10s20ms50h", "999999h", "1.5h", "-15m", "", "ms", "1hh", " 1s", "1s "})
    EXPECT_FALSE(parse_gateway_duration_ms(s)) << s;
}

// ---- from the API server (JSON) ----

TEST(GatewayDecode, ApiObjectTolerantOfNewFieldsWithDefaults) {
  auto j = nlohmann::json::parse(R"({
    "metadata": {"name": "r", "namespace": "ns", "resourceVersion": "7", "uid": "u-1"},
    "spec": {
      "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"group": "", "kind": "Service", "name": "a", "port": 80, "weight": 1}],
                 "retry": {"attempts": 3}}],
      "futureField": true
    },
    "status": {"parents": []}
  })");
  DecodedObject d = decode_api_object(j, "gateway.networking.k8s.io/v1", "HTTPRoute", "kube");
  ASSERT_TRUE(d.object) << joined(messages(d));
  const auto& r = std::get<HTTPRoute>(*d.object);
  EXPECT_EQ(r.meta.resource_version, "7");
  EXPECT_EQ(r.rules.at(0).backend_refs.at(0).port, 80);
  EXPECT_EQ(d.key->str(), "HTTPRoute ns/r");

  // Values are still checked; "80" stays a string in JSON.
  j["spec"]["rules"][0]["backendRefs"][0]["port"] = "80";
  d = decode_api_object(j, "gateway.networking.k8s.io/v1", "HTTPRoute", "kube");
  EXPECT_FALSE(d.object);
  EXPECT_EQ(messages(d), std::vector<std::string>{route_invalid(
                             "spec.rules[0].backendRefs[0].port: Invalid value: \"80\": "
                             "spec.rules[0].backendRefs[0].port in body must be of type integer: \"string\"")});
}
