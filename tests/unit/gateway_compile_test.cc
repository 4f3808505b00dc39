// The Gateway API compile: objects in, table and statuses out, no sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proxy/explain.h"
#include "routing/cors.h"
#include "routing/gateway_compile.h"
#include "test_util.h"

using namespace ingressd;
using namespace ingressd::routing;
using namespace ingressd::testing;

namespace {

const char* kClassAndGateway = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ingressd}
spec: {controllerName: ingressd.dev/ingress-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: someone-else}
spec: {controllerName: example.com/other}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: ingressd
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: same, port: 80, protocol: HTTP, hostname: same.example, allowedRoutes: {namespaces: {from: Same}}}
  - name: selected
    port: 80
    protocol: HTTP
    hostname: selected.example
    allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: blue}}}}
  - {name: grpc-only, port: 80, protocol: HTTP, hostname: grpc.example, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
---
apiVersion: v1
kind: Namespace
metadata: {name: blue, labels: {team: blue}}
)";

struct Headers {
  std::vector<std::pair<std::string, std::string>> h;
  static bool find(const void* ctx, std::string_view name, std::string_view& value) {
    for (const auto& [n, v] : static_cast<const Headers*>(ctx)->h)
      if (n == name) {
        value = v;
        return true;
      }
    return false;
  }
};

// A plain-HTTP GET without headers.
Match gw_match(const RouteTable& t, std::string_view host, std::string_view path) {
  RequestFacts f;
  f.method = "GET";
  return t.match(host, path, &f);
}

// The service a request reaches ("404" when none, "500" for an invalid backend, "redirect" for a redirect).
std::string gw_route(const RouteTable& t, std::string_view host, std::string_view path, std::string_view method = "GET",
                     Headers hdr = {}, std::string_view query = "", bool secure = false) {
  RequestFacts f;
  f.method = method;
  f.query = query;
  f.secure = secure;
  f.ctx = &hdr;
  f.header = &Headers::find;
  Match m = t.match(host, path, &f);
  if (!m.action) return "404";
  if (m.action->redirects) return "redirect";
  if (!m.action->refuse.empty()) return std::to_string(m.action->refuse_status);
  if (!m.backend) return "404";
  return m.backend->invalid ? "500" : m.backend->service;
}

const nlohmann::json* status_of(const CompileResult& r, const std::string& kind, const std::string& name) {
  for (const auto& s : r.gateway_status)
    if (s.kind == kind && s.name == name) return &s.status;
  return nullptr;
}

// The (status, reason) of condition `type` of an HTTPRoute's first parent.
std::pair<std::string, std::string> route_condition(const CompileResult& r, const std::string& name, const char* type,
                                                    size_t parent = 0) {
  const nlohmann::json* s = status_of(r, "HTTPRoute", name);
  if (!s || (*s)["parents"].size() <= parent) return {"absent", ""};
  for (const auto& c : (*s)["parents"][parent]["conditions"])
    if (c["type"] == type) return {c["status"], c["reason"]};
  return {"absent", ""};
}

std::string route_yaml(const std::string& name, const std::string& ns, const std::string& spec,
                       const std::string& created = "") {
  return "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " + name +
         ", namespace: " + ns + (created.empty() ? "" : ", creationTimestamp: \"" + created + "\"") + "}\nspec:\n" + spec;
}

// A self-signed certificate and its key, PEM, indented for a YAML block scalar.
std::pair<std::string, std::string> self_signed_pem() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, k);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("s.example"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_sign(x, k, EVP_sha256());
  auto pem = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string out, line;
    for (char c : std::string(p, static_cast<size_t>(n))) {
      line += c;
      if (c == '\n') {
        out += "    " + line;
        line.clear();
      }
    }
    BIO_free(b);
    return out;
  };
  auto crt = pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
  auto key = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(x);
  EVP_PKEY_free(k);
  return {crt, key};
}

}  // namespace

TEST(GatewayHostnames, IntersectionAsTheSpecWritesIt) {
  struct Case {
    const char *listener, *route;
    bool ok;
    const char* out;
  } cases[] = {
      {"", "foo.example.com", true, "foo.example.com"},
      {"foo.example.com", "", true, "foo.example.com"},
      {"foo.example.com", "foo.example.com", true, "foo.example.com"},
      {"foo.example.com", "bar.example.com", false, ""},
      {"*.example.com", "foo.example.com", true, "foo.example.com"},
      {"*.example.com", "a.b.example.com", true, "a.b.example.com"},  // wildcards take any number of labels
      {"*.example.com", "example.com", false, ""},
      {"foo.example.com", "*.example.com", true, "foo.example.com"},
      {"*.example.com", "*.foo.example.com", true, "*.foo.example.com"},
      {"*.foo.example.com", "*.example.com", true, "*.foo.example.com"},
      {"*.example.com", "*.example.net", false, ""},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(intersect_hostnames(c.listener, c.route, out), c.ok) << c.listener << " ∩ " << c.route;
    if (c.ok) {
      EXPECT_EQ(out, c.out) << c.listener << " ∩ " << c.route;
    }
  }
}

TEST(GatewayCompile, PrecedenceExactPrefixMethodHeadersQueryAge) {
  std::string y = kClassAndGateway + service("exact", "infra") + service("prefix", "infra") + service("longer", "infra") +
                  service("method", "infra") + service("headers2", "infra") + service("headers1", "infra") +
                  service("query", "infra") + service("older", "infra") + service("newer", "infra");
  y += route_yaml("b-newer", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [prec.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /age}}]
    backendRefs: [{name: newer, port: 8080}]
)", "2024-01-02T00:00:00Z");
  y += route_yaml("a-route", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [prec.example]
  rules:
  - matches: [{path: {type: Exact, value: /foo}}]
    backendRefs: [{name: exact, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: prefix, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /foo}}]
    backendRefs: [{name: longer, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /m}, headers: [{name: a, value: "1"}]}
    backendRefs: [{name: headers1, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /m}, headers: [{name: a, value: "1"}, {name: b, value: "2"}]}
    backendRefs: [{name: headers2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]
    backendRefs: [{name: method, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /m}, queryParams: [{name: q, value: "1"}]}]
    backendRefs: [{name: query, port: 8080}]
)", "2024-01-03T00:00:00Z");
  y += route_yaml("c-older", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [prec.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /age}}]
    backendRefs: [{name: older, port: 8080}]
)", "2024-01-01T00:00:00Z");
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  EXPECT_EQ(gw_route(t, "prec.example", "/foo"), "exact");
  EXPECT_EQ(gw_route(t, "prec.example", "/foo/"), "longer");
  EXPECT_EQ(gw_route(t, "prec.example", "/foo/bar"), "longer");
  EXPECT_EQ(gw_route(t, "prec.example", "/foobar"), "prefix");  // element-wise
  // Method before headers, more headers before fewer, headers before query.
  EXPECT_EQ(gw_route(t, "prec.example", "/m", "POST", {{{"a", "1"}, {"b", "2"}}}), "method");
  EXPECT_EQ(gw_route(t, "prec.example", "/m", "GET", {{{"a", "1"}, {"b", "2"}}}, "?q=1"), "headers2");
  EXPECT_EQ(gw_route(t, "prec.example", "/m", "GET", {{{"a", "1"}}}, "?q=1"), "headers1");
  EXPECT_EQ(gw_route(t, "prec.example", "/m", "GET", {}, "?q=1"), "query");
  EXPECT_EQ(gw_route(t, "prec.example", "/m", "GET"), "prefix");  // no condition holds: falls through to "/"
  // The same match in two routes: the older route.
  EXPECT_EQ(gw_route(t, "prec.example", "/age"), "older");
}

TEST(GatewayCompile, HostnamesFallThroughFromTheMostSpecific) {
  std::string y = kClassAndGateway + service("exact", "infra") + service("wild", "infra") + service("any", "infra");
  y += route_yaml("exact", "infra", R"(  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /only}}]
    backendRefs: [{name: exact, port: 8080}]
)");
  y += route_yaml("wild", "infra", R"(  parentRefs: [{name: gw, sectionName: http}]
  hostnames: ["*.example.com"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /w}}]
    backendRefs: [{name: wild, port: 8080}]
)");
  y += route_yaml("any", "infra", R"(  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - backendRefs: [{name: any, port: 8080}]
)");
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  EXPECT_EQ(gw_route(t, "a.example.com", "/only"), "exact");
  EXPECT_EQ(gw_route(t, "a.example.com", "/w"), "wild");   // the exact host's routes do not take it: the wildcard's do
  EXPECT_EQ(gw_route(t, "a.example.com", "/x"), "any");
  EXPECT_EQ(gw_route(t, "b.c.example.com", "/w"), "wild");  // two labels deeper
  EXPECT_EQ(gw_route(t, "example.com", "/w"), "any");       // the wildcard needs a label
  EXPECT_EQ(gw_route(t, "other.test", "/only"), "any");
}

TEST(GatewayCompile, AttachmentAndItsStatus) {
  std::string y = kClassAndGateway + service("svc", "infra") + service("svc", "blue") + service("svc", "red");
  y += route_yaml("same-ok", "infra", "  parentRefs: [{name: gw, sectionName: same}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("same-no", "red", "  parentRefs: [{name: gw, namespace: infra, sectionName: same}]\n  hostnames: [red.example]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("sel-ok", "blue", "  parentRefs: [{name: gw, namespace: infra, sectionName: selected}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("sel-no", "red", "  parentRefs: [{name: gw, namespace: infra, sectionName: selected}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("no-section", "infra", "  parentRefs: [{name: gw, sectionName: nope}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("no-host", "infra", "  parentRefs: [{name: gw, sectionName: same}]\n  hostnames: [other.example]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("kind-no", "infra", "  parentRefs: [{name: gw, sectionName: grpc-only}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  y += route_yaml("other-class", "infra", "  parentRefs: [{name: nowhere}]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  auto c = compile_text(y);
  const auto& r = c->result;
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(route_condition(r, "same-ok", "Accepted"), P("True", "Accepted"));
  EXPECT_EQ(route_condition(r, "same-no", "Accepted"), P("False", "NotAllowedByListeners"));
  EXPECT_EQ(route_condition(r, "sel-ok", "Accepted"), P("True", "Accepted"));
  EXPECT_EQ(route_condition(r, "sel-no", "Accepted"), P("False", "NotAllowedByListeners"));
  EXPECT_EQ(route_condition(r, "no-section", "Accepted"), P("False", "NoMatchingParent"));
  EXPECT_EQ(route_condition(r, "no-host", "Accepted"), P("False", "NoMatchingListenerHostname"));
  EXPECT_EQ(route_condition(r, "kind-no", "Accepted"), P("False", "NotAllowedByListeners"));
  EXPECT_EQ(status_of(r, "HTTPRoute", "other-class"), nullptr);  // not our parent: not our status to write
  EXPECT_EQ(gw_route(*r.table, "same.example", "/"), "svc");
  EXPECT_EQ(gw_route(*r.table, "red.example", "/"), "404");
  // Listener status: attached routes, and the unsupported route kind.
  const nlohmann::json* gw = status_of(r, "Gateway", "gw");
  ASSERT_TRUE(gw);
  std::map<std::string, int> attached;
  for (const auto& l : (*gw)["listeners"]) attached[l["name"]] = l["attachedRoutes"];
  EXPECT_EQ(attached["same"], 1);      // same-ok; no-host's hostname is not the listener's: not accepted, not counted
  EXPECT_EQ(attached["selected"], 1);  // sel-ok
  const auto& grpc = (*gw)["listeners"][3];
  EXPECT_EQ(grpc["supportedKinds"].size(), 0u);
  EXPECT_EQ(grpc["conditions"][1]["reason"], "InvalidRouteKinds");
  ASSERT_TRUE(status_of(r, "GatewayClass", "ingressd"));
  EXPECT_EQ(status_of(r, "GatewayClass", "someone-else"), nullptr);
}

TEST(GatewayCompile, BackendRefsAcrossNamespacesNeedAReferenceGrant) {
  std::string y = kClassAndGateway + service("svc", "infra") + service("there", "other") + service("granted", "other");
  y += route_yaml("cross", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [cross.example]
  rules:
  - matches: [{path: {value: /denied}}]
    backendRefs: [{name: there, namespace: other, port: 8080}]
  - matches: [{path: {value: /granted}}]
    backendRefs: [{name: granted, namespace: other, port: 8080}]
  - matches: [{path: {value: /missing}}]
    backendRefs: [{name: missing, port: 8080}]
  - matches: [{path: {value: /kind}}]
    backendRefs: [{group: example.com, kind: Bucket, name: b}]
  - matches: [{path: {value: /split}}]
    backendRefs: [{name: svc, port: 8080, weight: 1}, {name: missing, port: 8080, weight: 1}]
  - matches: [{path: {value: /none}}]
)");
  y += R"(---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: infra}]
  to: [{group: "", kind: Service, name: granted}]
)";
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  EXPECT_EQ(gw_route(t, "cross.example", "/denied"), "500");
  EXPECT_EQ(gw_route(t, "cross.example", "/granted"), "granted");
  EXPECT_EQ(gw_route(t, "cross.example", "/missing"), "500");
  EXPECT_EQ(gw_route(t, "cross.example", "/kind"), "500");
  EXPECT_EQ(gw_route(t, "cross.example", "/none"), "500");  // no backendRefs, no redirect
  EXPECT_EQ(route_condition(c->result, "cross", "Accepted").first, "True");
  EXPECT_EQ(route_condition(c->result, "cross", "ResolvedRefs"), std::make_pair(std::string("False"), std::string("RefNotPermitted")));
  // The split keeps its valid half; the invalid backend's share is 500 (decided in the data plane).
  Match m = gw_match(t, "cross.example", "/split");
  ASSERT_TRUE(m.action);
  ASSERT_EQ(m.action->backends.size(), 2u);
  EXPECT_FALSE(m.action->backends[0].backend->invalid);
  EXPECT_TRUE(m.action->backends[1].backend->invalid);
}

TEST(GatewayCompile, FiltersBecomeTheActionsTheAnnotationsUse) {
  std::string y = kClassAndGateway + service("svc", "infra") + service("mirror", "infra");
  y += route_yaml("filters", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [f.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /prefix}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Set, value: a}], add: [{name: X-Add, value: b}], remove: [X-Gone]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: X-Resp, value: c}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 8080}, percent: 25}
    backendRefs:
    - name: svc
      port: 8080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Backend, value: svc}]}}]
  - matches: [{path: {type: Exact, value: /go}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
)");
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  Match m = gw_match(t, "f.example", "/prefix/x");
  ASSERT_TRUE(m.action);
  const RouteAction& a = *m.action;
  EXPECT_EQ(a.rewrite.host, "internal.example");
  std::string out;
  a.rewrite.path.apply("/prefix/x", out);
  EXPECT_EQ(out, "/new/x");
  ASSERT_EQ(a.request_headers.set.size(), 1u);
  EXPECT_EQ(a.request_headers.set[0].first, "x-set");
  EXPECT_EQ(a.request_headers.remove, std::vector<std::string>{"x-gone"});
  ASSERT_EQ(a.mirrors.size(), 1u);
  EXPECT_EQ(a.mirrors[0].backend->service, "mirror");
  EXPECT_EQ(a.mirrors[0].numerator, 25u);
  EXPECT_EQ(a.mirrors[0].denominator, 100u);
  // The backend's own filter: its requests take an action with the rule's edits and its own.
  ASSERT_TRUE(a.backends[0].action);
  EXPECT_EQ(a.backends[0].action->request_headers.set.size(), 2u);
  EXPECT_EQ(a.backends[0].action->rewrite.host, "internal.example");
  Match r = gw_match(t, "f.example", "/go");
  ASSERT_TRUE(r.action && r.action->redirects);
  EXPECT_EQ(r.action->redirect.status, 301);
  EXPECT_EQ(r.action->redirect.scheme, "https");
  EXPECT_TRUE(r.action->redirect.declared_listener_port);
}

TEST(GatewayCompile, ListenersServeTheirOwnProtocolOnly) {
  auto [crt, key] = self_signed_pem();
  std::string y = std::string(kClassAndGateway) + service("svc", "infra") +
                  "---\napiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: infra}\ntype: kubernetes.io/tls\n"
                  "stringData:\n  tls.crt: |\n" + crt + "  tls.key: |\n" + key + R"(---
apiVersion: v1
kind: Secret
metadata: {name: malformed, namespace: infra}
type: kubernetes.io/tls
stringData: {tls.crt: "not a certificate", tls.key: "not a key"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls, namespace: infra}
spec:
  gatewayClassName: ingressd
  listeners:
  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: cert}]}}
  - {name: tcp, port: 9000, protocol: TCP}
  - {name: odd, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: cert}]}}
  - {name: nocert, port: 443, protocol: HTTPS, hostname: nocert.example, tls: {certificateRefs: [{name: missing}]}}
  - {name: badpem, port: 443, protocol: HTTPS, hostname: badpem.example, tls: {certificateRefs: [{name: malformed}]}}
)";
  y += route_yaml("secure", "infra", "  parentRefs: [{name: tls, sectionName: https}]\n  hostnames: [s.example]\n  rules: [{backendRefs: [{name: svc, port: 8080}]}]\n");
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  EXPECT_EQ(gw_route(t, "s.example", "/", "GET", {}, "", /*secure=*/true), "svc");
  EXPECT_EQ(gw_route(t, "s.example", "/", "GET", {}, "", /*secure=*/false), "404");
  const nlohmann::json* gw = status_of(c->result, "Gateway", "tls");
  ASSERT_TRUE(gw);
  const auto& ls = (*gw)["listeners"];
  EXPECT_EQ(ls[0]["conditions"][3]["status"], "True");  // Programmed
  EXPECT_EQ(ls[1]["conditions"][0]["reason"], "UnsupportedProtocol");
  EXPECT_EQ(ls[2]["conditions"][0]["reason"], "PortUnavailable");
  EXPECT_EQ(ls[1]["supportedKinds"].size(), 0u);  // no route kind on a protocol ingressd does not serve
  EXPECT_EQ(ls[3]["conditions"][1]["reason"], "InvalidCertificateRef");
  EXPECT_EQ(ls[4]["conditions"][1]["reason"], "InvalidCertificateRef");  // not PEM
  EXPECT_EQ(ls[4]["conditions"][3]["status"], "False");
  EXPECT_EQ((*gw)["conditions"][0]["reason"], "ListenersNotValid");
  bool bound = false;
  for (const auto& b : c->result.tls) bound |= b.object == "Gateway infra/tls" && b.secret == "cert";
  EXPECT_TRUE(bound);
}

TEST(GatewayCompile, IngressAndHTTPRouteShareTheTableIngressFirst) {
  std::string y = kClassAndGateway + service("ing", "infra") + service("gw", "infra") + R"(---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: infra}
spec:
  rules:
  - host: both.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: ing, port: {number: 8080}}}}]
)";
  y += route_yaml("web", "infra", R"(  parentRefs: [{name: gw}]
  hostnames: [both.example]
  rules:
  - matches: [{path: {value: /}}]
    backendRefs: [{name: gw, port: 8080}]
  - matches: [{path: {value: /api}}]
    backendRefs: [{name: gw, port: 8080}]
)");
  auto c = compile_text(y);
  const auto& t = *c->result.table;
  EXPECT_EQ(gw_route(t, "both.example", "/"), "ing");
  EXPECT_EQ(gw_route(t, "both.example", "/api/x"), "gw");
  bool warned = false;
  for (const auto& d : c->result.diagnostics) warned |= d.reason == "Conflict" && d.object == "HTTPRoute infra/web";
  EXPECT_TRUE(warned);
}

TEST(GatewayCompile, GRPCRouteIsReportedNotSupported) {
  std::string y = std::string(kClassAndGateway) + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: infra}
spec:
  parentRefs: [{name: gw}]
)";
  auto c = compile_text(y);
  const nlohmann::json* s = status_of(c->result, "GRPCRoute", "g");
  ASSERT_TRUE(s) << "a GRPCRoute of our Gateway gets a status";
  EXPECT_EQ((*s)["parents"][0]["conditions"][0]["status"], "False");
  EXPECT_EQ((*s)["parents"][0]["conditions"][0]["reason"], "UnsupportedValue");
}

TEST(GatewayExplain, SaysWhichRuleAndMatchAndWhyTheOthersDidNot) {
  std::string y = kClassAndGateway + service("v1", "infra") + service("v2", "infra");
  y += route_yaml("r", "infra", R"(  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [x.example]
  rules:
  - backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {value: /v2}, headers: [{name: version, value: two}]}, {path: {value: /v2}, method: POST}]
    backendRefs: [{name: v2, port: 8080}]
)");
  auto c = compile_text(y);
  ExplainRequest xr;
  xr.url = "http://x.example/v2/a";
  auto e = explain(*c->store.snapshot(), {}, *c->result.table, xr);
  EXPECT_EQ(e.json["match"]["kind"], "httproute") << e.text;
  EXPECT_EQ(e.json["match"]["rule"], 0) << e.text;
  EXPECT_NE(e.text.find("spec.rules[1].matches[0]"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("header version = \"two\" does not hold"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("method is not POST"), std::string::npos) << e.text;
  xr.method = "POST";
  e = explain(*c->store.snapshot(), {}, *c->result.table, xr);
  EXPECT_EQ(e.json["match"]["rule"], 1) << e.text;
  EXPECT_EQ(e.json["match"]["match"], 1) << e.text;
}

TEST(GatewayCors, TheFilterSemanticsOfTheConformanceSuite) {
  CorsPolicy p;
  p.gateway = true;
  p.origins = {"*"};
  p.methods = "*";
  p.headers = "*";
  p.credentials = true;
  p.max_age = 5;
  std::string out;
  p.append_headers("https://other.foo.com", true, out, "PUT", "x-header-1, x-header-2");
  EXPECT_NE(out.find("Access-Control-Allow-Origin: https://other.foo.com\r\n"), std::string::npos) << out;  // echoed: credentials
  EXPECT_NE(out.find("Access-Control-Allow-Methods: PUT\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Access-Control-Allow-Headers: x-header-1, x-header-2\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Access-Control-Allow-Credentials: true\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Access-Control-Max-Age: 5\r\n"), std::string::npos) << out;
  out.clear();
  p.credentials = false;
  p.append_headers("https://other.foo.com", false, out);
  EXPECT_EQ(out.find("Credentials"), std::string::npos) << out;
  EXPECT_EQ(out.find("Methods"), std::string::npos) << "a simple request gets no preflight fields: " << out;
  out.clear();
  p.origins = {"https://www.foo.com", "https://*.bar.com"};
  p.append_headers("https://foobar.com", true, out, "GET");
  EXPECT_EQ(out, "");  // not an allowed origin: nothing
  p.append_headers("https://xpto.www.bar.com", true, out, "GET");
  EXPECT_NE(out.find("Access-Control-Allow-Origin: https://xpto.www.bar.com\r\n"), std::string::npos) << out;
}
