#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "routing/dump.h"
#include "test_util.h"

using namespace ingressd;
using namespace ingressd::testing;

namespace {

// One Ingress with one host-less rule holding the given (path, type, service) entries.
std::string ingress(const std::string& name, const std::string& host,
                    const std::vector<std::tuple<std::string, std::string, std::string>>& paths,
                    const std::string& extra_spec = "", const std::string& meta_extra = "") {
  std::string s = "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name + "\n" + meta_extra +
                  "spec:\n" + extra_spec + "  rules:\n  - " + (host.empty() ? "" : "host: \"" + host + "\"\n    ") +
                  "http:\n      paths:\n";
  for (auto& [p, t, svc] : paths)
    s += "      - path: " + p + "\n        pathType: " + t + "\n        backend: {service: {name: " + svc +
         ", port: {number: 8080}}}\n";
  return s;
}

std::string services(std::initializer_list<const char*> names) {
  std::string s;
  for (auto n : names) s += service(n);
  return s;
}

struct SpecRow {
  std::vector<std::pair<std::string, std::string>> rules;  // path, type
  std::string request;
  bool matches;
  std::string winner;  // the rule path expected to win (index into rules as "path/type")
};

}  // namespace

// Every row of the examples table in the Kubernetes Ingress documentation
// ("Examples" under "Path types").
TEST(Matching, SpecExamplesTable) {
  struct Row {
    std::vector<std::pair<std::string, std::string>> rules;
    std::string request;
    int expect;  // index of the rule that wins, -1 = no match (default backend)
  };
  std::vector<Row> rows = {
      {{{"/", "Prefix"}}, "/anything/at/all", 0},
      {{{"/foo", "Exact"}}, "/foo", 0},
      {{{"/foo", "Exact"}}, "/bar", -1},
      {{{"/foo", "Exact"}}, "/foo/", -1},
      {{{"/foo/", "Exact"}}, "/foo", -1},
      {{{"/foo", "Prefix"}}, "/foo", 0},
      {{{"/foo", "Prefix"}}, "/foo/", 0},
      {{{"/foo/", "Prefix"}}, "/foo", 0},
      {{{"/foo/", "Prefix"}}, "/foo/", 0},
      {{{"/aaa/bb", "Prefix"}}, "/aaa/bbb", -1},
      {{{"/aaa/bbb", "Prefix"}}, "/aaa/bbb", 0},
      {{{"/aaa/bbb/", "Prefix"}}, "/aaa/bbb", 0},
      {{{"/aaa/bbb", "Prefix"}}, "/aaa/bbb/", 0},
      {{{"/aaa/bbb", "Prefix"}}, "/aaa/bbb/ccc", 0},
      {{{"/aaa/bbb", "Prefix"}}, "/aaa/bbbxyz", -1},
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}}, "/aaa/ccc", 1},
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}, {"/aaa/bbb", "Prefix"}}, "/aaa/bbb", 2},
      {{{"/", "Prefix"}, {"/aaa", "Prefix"}, {"/aaa/bbb", "Prefix"}}, "/ccc", 0},
      {{{"/aaa", "Prefix"}}, "/ccc", -1},
      {{{"/foo", "Prefix"}, {"/foo", "Exact"}}, "/foo", 1},
      {{{"/foo", "Exact"}, {"/foo", "Prefix"}}, "/foo", 0},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    std::vector<std::tuple<std::string, std::string, std::string>> paths;
    std::string svcs;
    for (size_t j = 0; j < row.rules.size(); ++j) {
      std::string svc = "svc" + std::to_string(j);
      paths.emplace_back(row.rules[j].first, row.rules[j].second, svc);
      svcs += service(svc);
    }
    std::string text = ingress("t", "", paths, "  defaultBackend: {service: {name: fallback, port: {number: 8080}}}\n") +
                       svcs + service("fallback");
    auto c = compile_text(text);
    std::string want = row.expect < 0 ? "fallback" : "svc" + std::to_string(row.expect);
    EXPECT_EQ(route(*c->result.table, "x.example.com", row.request), want) << "row " << i << ": " << row.request;
  }
}

TEST(Matching, PrefixIsCaseSensitiveAndElementWise) {
  auto c = compile_text(ingress("t", "", {{"/foo", "Prefix", "a"}}) + services({"a"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "h", "/foo/bar"), "a");
  EXPECT_EQ(route(t, "h", "/FOO"), "404");
  EXPECT_EQ(route(t, "h", "/foobar"), "404");
  EXPECT_EQ(route(t, "h", "/foo?x=1"), "404");  // the caller strips the query; "/foo?x=1" is not a path
}

TEST(Matching, WildcardMatchesExactlyOneLabel) {
  auto c = compile_text(ingress("t", "*.foo.com", {{"/", "Prefix", "wild"}}) + services({"wild"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "bar.foo.com", "/"), "wild");
  EXPECT_EQ(route(t, "BAR.Foo.COM:8080", "/"), "wild");
  EXPECT_EQ(route(t, "baz.bar.foo.com", "/"), "404");
  EXPECT_EQ(route(t, "foo.com", "/"), "404");
  EXPECT_EQ(route(t, ".foo.com", "/"), "404");
}

TEST(Matching, HostPrecedenceExactThenWildcardThenAny) {
  auto c = compile_text(ingress("a", "foo.bar.com", {{"/", "Prefix", "exact"}}) +
                        ingress("b", "*.bar.com", {{"/", "Prefix", "wild"}}) + ingress("c", "", {{"/", "Prefix", "any"}}) +
                        services({"exact", "wild", "any"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "foo.bar.com", "/x"), "exact");
  EXPECT_EQ(route(t, "foo.bar.com.", "/x"), "exact");
  EXPECT_EQ(route(t, "baz.bar.com", "/x"), "wild");
  EXPECT_EQ(route(t, "other.com", "/x"), "any");
  EXPECT_EQ(route(t, "", "/x"), "any");
}

TEST(Matching, HostRuleDoesNotFallThroughToOtherHosts) {
  // A request for a host with rules is decided by that host's rules, then
  // its default backend; it does not fall through to host-less rules.
  auto c = compile_text(ingress("a", "foo.com", {{"/a", "Prefix", "a"}}) + ingress("b", "", {{"/b", "Prefix", "b"}}) +
                        services({"a", "b"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "foo.com", "/a"), "a");
  EXPECT_EQ(route(t, "foo.com", "/b"), "404");
  EXPECT_EQ(route(t, "x.com", "/b"), "b");
}

TEST(Matching, DefaultBackends) {
  // The seed's host-ingress: alpaca.example.com → alpaca, anything else → be-default.
  std::string host_ingress = R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: host-ingress
spec:
  defaultBackend:
    service:
      name: be-default
      port:
        number: 8080
  rules:
    - host: alpaca.example.com
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: alpaca
              port:
                number: 8080
)";
  auto c = compile_text(host_ingress + services({"alpaca", "be-default"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "alpaca.example.com", "/"), "alpaca");
  EXPECT_EQ(route(t, "alpaca.example.com", "/x/y"), "alpaca");
  EXPECT_EQ(route(t, "bandicoot.example.com", "/"), "be-default");
  EXPECT_EQ(route(t, "", "/"), "be-default");
}

TEST(Matching, HostDefaultComesFromTheIngressOfTheHost) {
  auto c = compile_text(ingress("a", "a.com", {{"/x", "Exact", "x"}},
                                "  defaultBackend: {service: {name: da, port: {number: 8080}}}\n") +
                        ingress("b", "", {{"/y", "Exact", "y"}}, "  defaultBackend: {service: {name: db, port: {number: 8080}}}\n") +
                        services({"x", "y", "da", "db"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "a.com", "/nope"), "da");
  EXPECT_EQ(route(t, "b.com", "/nope"), "da");  // global default: oldest, then by name ("default/a" < "default/b")
}

TEST(Backends, PortByNameAndTargetPortName) {
  auto c = compile_text(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: t}
spec:
  defaultBackend: {service: {name: web, port: {name: http}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: metrics, port: 9090, targetPort: 9090}
  - {name: http, port: 80, targetPort: web-port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 3000}, {name: metrics, port: 9090}]
endpoints:
- addresses: [10.1.0.1]
  conditions: {ready: true}
- addresses: [10.1.0.2]
  conditions: {ready: false}
- addresses: [10.1.0.3]
- addresses: [10.1.0.4]
  conditions: {ready: false, serving: true, terminating: true}
)");
  const auto* b = c->result.table->global_default();
  ASSERT_NE(b, nullptr);
  std::vector<std::string> eps;
  for (auto& e : b->endpoints) eps.push_back(e.text);
  EXPECT_EQ(eps, (std::vector<std::string>{"10.1.0.1:3000", "10.1.0.3:3000"}));
}

TEST(Backends, ServiceLookupStaysInTheIngressNamespace) {
  auto c = compile_text(
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t, namespace: team-a}\nspec:\n"
      "  defaultBackend: {service: {name: bandicoot, port: {number: 8080}}}\n" +
      service("bandicoot", "team-b", "10.0.0.2"));
  const auto* b = c->result.table->global_default();
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->endpoints.empty());
  EXPECT_NE(b->unavailable.find("team-a/bandicoot"), std::string::npos);
  bool warned = false;
  for (auto& d : c->result.diagnostics) warned |= d.reason == "BackendUnavailable";
  EXPECT_TRUE(warned);

  auto c2 = compile_text("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t, namespace: team-a}\nspec:\n"
                         "  defaultBackend: {service: {name: bandicoot, port: {number: 8080}}}\n" +
                         service("bandicoot", "team-b", "10.0.0.2") + service("bandicoot", "team-a", "10.0.0.1"));
  ASSERT_EQ(c2->result.table->global_default()->endpoints.size(), 1u);
  EXPECT_EQ(c2->result.table->global_default()->endpoints[0].text, "10.0.0.1:8080");
}

TEST(Backends, MissingServicePortAndNoEndpoints) {
  auto c = compile_text(ingress("t", "", {{"/a", "Prefix", "nosvc"}, {"/b", "Prefix", "empty"}}) +
                        "---\napiVersion: v1\nkind: Service\nmetadata: {name: empty}\nspec: {ports: [{port: 8080}]}\n");
  const auto& t = *c->result.table;
  auto m = t.match("h", "/a");
  ASSERT_NE(m.backend, nullptr);
  EXPECT_TRUE(m.backend->endpoints.empty());
  m = t.match("h", "/b");
  ASSERT_NE(m.backend, nullptr);
  EXPECT_TRUE(m.backend->endpoints.empty());
  EXPECT_NE(m.backend->unavailable.find("no ready endpoints"), std::string::npos);
}

TEST(Backends, EndpointsV1IsUsedWithoutSlices) {
  auto c = compile_text(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: t}
spec:
  defaultBackend: {service: {name: old, port: {number: 80}}}
---
apiVersion: v1
kind: Service
metadata: {name: old}
spec: {ports: [{port: 80, targetPort: 8000}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: old}
subsets:
- addresses: [{ip: 10.2.0.1}]
  notReadyAddresses: [{ip: 10.2.0.2}]
  ports: [{port: 8000}]
)");
  const auto* b = c->result.table->global_default();
  ASSERT_EQ(b->endpoints.size(), 1u);
  EXPECT_EQ(b->endpoints[0].text, "10.2.0.1:8000");
}

TEST(Compile, ConflictOldestWinsThenName) {
  std::string a = ingress("zeta", "foo.com", {{"/x", "Prefix", "old"}}, "",
                          "  creationTimestamp: \"2024-01-01T00:00:00Z\"\n");
  std::string b = ingress("alpha", "foo.com", {{"/x", "Prefix", "new"}, {"/y", "Prefix", "new"}}, "",
                          "  creationTimestamp: \"2025-01-01T00:00:00Z\"\n");
  auto c = compile_text(b + a + services({"old", "new"}));
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "foo.com", "/x"), "old");
  EXPECT_EQ(route(t, "foo.com", "/y"), "new");  // different paths merge
  const Diagnostic* conflict = nullptr;
  for (auto& d : c->result.diagnostics)
    if (d.reason == "Conflict") conflict = &d;
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->object, "Ingress default/alpha");
  EXPECT_NE(conflict->message.find("default/zeta"), std::string::npos);
  EXPECT_NE(conflict->message.find("foo.com"), std::string::npos);
  EXPECT_NE(conflict->message.find("/x"), std::string::npos);
  bool partial = false;
  for (auto& s : c->result.statuses)
    partial |= s.ingress == "default/alpha" && s.state == routing::IngressState::PartiallyAccepted;
  EXPECT_TRUE(partial);

  // Without timestamps the name decides.
  auto c2 = compile_text(ingress("b", "foo.com", {{"/x", "Prefix", "bsvc"}}) +
                         ingress("a", "foo.com", {{"/x", "Prefix", "asvc"}}) + services({"asvc", "bsvc"}));
  EXPECT_EQ(route(*c2->result.table, "foo.com", "/x"), "asvc");
}

TEST(Compile, ClassSelection) {
  std::string classes = R"(---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ours}
spec: {controller: ingressd.dev/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: theirs}
spec: {controller: k8s.io/ingress-nginx}
)";
  std::string text = classes + ingress("mine", "a.com", {{"/", "Prefix", "a"}}, "  ingressClassName: ours\n") +
                     ingress("other", "b.com", {{"/", "Prefix", "b"}}, "  ingressClassName: theirs\n") +
                     ingress("legacy", "c.com", {{"/", "Prefix", "c"}}, "", "  annotations: {kubernetes.io/ingress.class: nginx}\n") +
                     ingress("legacy-ours", "d.com", {{"/", "Prefix", "d"}}, "", "  annotations: {kubernetes.io/ingress.class: ours}\n") +
                     ingress("classless", "e.com", {{"/", "Prefix", "e"}}) + services({"a", "b", "c", "d", "e"});
  auto c = compile_text(text);
  const auto& t = *c->result.table;
  EXPECT_EQ(route(t, "a.com", "/"), "a");
  EXPECT_EQ(route(t, "b.com", "/"), "404");
  EXPECT_EQ(route(t, "c.com", "/"), "404");
  EXPECT_EQ(route(t, "d.com", "/"), "d");
  EXPECT_EQ(route(t, "e.com", "/"), "e");
  routing::CompileOptions strict;
  strict.serve_classless = false;
  auto c2 = compile_text(text, strict);
  EXPECT_EQ(route(*c2->result.table, "e.com", "/"), "404");
  routing::CompileOptions nginx;
  nginx.controller_name = "k8s.io/ingress-nginx";
  nginx.serve_classless = false;
  auto c3 = compile_text(text, nginx);
  EXPECT_EQ(route(*c3->result.table, "a.com", "/"), "404");
  EXPECT_EQ(route(*c3->result.table, "b.com", "/"), "b");
}

TEST(Compile, DeterministicWhateverTheFileOrder) {
  std::vector<std::pair<std::string, std::string>> files = {
      {"1.yaml", ingress("one", "foo.com", {{"/x", "Prefix", "a"}})},
      {"2.yaml", ingress("two", "foo.com", {{"/x", "Prefix", "b"}, {"/z", "Exact", "b"}})},
      {"3.yaml", ingress("three", "*.foo.com", {{"/", "Prefix", "c"}}, "  defaultBackend: {service: {name: a, port: {number: 8080}}}\n")},
      {"4.yaml", ingress("four", "", {{"/", "Prefix", "a"}}, "  defaultBackend: {service: {name: b, port: {number: 8080}}}\n")},
      {"5.yaml", services({"a", "b", "c"})},
  };
  auto base = compile_texts(files);
  std::string want = routing::dump_text(*base->result.table);
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    auto shuffled = files;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (size_t k = 0; k < shuffled.size(); ++k) shuffled[k].first = std::to_string(k) + ".yaml";
    auto c = compile_texts(shuffled);
    EXPECT_EQ(routing::dump_text(*c->result.table), want);
  }
}

TEST(Store, BrokenEditKeepsLastGoodVersion) {
  ObjectStore store;
  auto good = files_from({{"a.yaml", ingress("keep", "a.com", {{"/", "Prefix", "a"}})}, {"s.yaml", services({"a"})}});
  store.replace_from_files(good);
  EXPECT_EQ(store.snapshot()->count(model::Kind::Ingress), 1u);
  // The same object with an unknown field: the old version stays.
  std::string broken = ingress("keep", "a.com", {{"/", "Prefix", "a"}});
  broken.replace(broken.find("spec:"), 5, "spec:\n  bogus: 1");
  auto diags = store.replace_from_files(files_from({{"a.yaml", broken}, {"s.yaml", services({"a"})}}));
  EXPECT_EQ(store.snapshot()->count(model::Kind::Ingress), 1u);
  bool kept = false, reported = false;
  for (auto& d : diags) {
    kept |= d.reason == "KeptLastGood";
    reported |= d.message.find("unknown field \"spec.bogus\"") != std::string::npos;
  }
  EXPECT_TRUE(kept);
  EXPECT_TRUE(reported);
  // A YAML syntax error in the file: the file's objects stay too.
  store.replace_from_files(files_from({{"a.yaml", "key: [unclosed\n"}, {"s.yaml", services({"a"})}}));
  EXPECT_EQ(store.snapshot()->count(model::Kind::Ingress), 1u);
  // The file removed: the object goes.
  store.replace_from_files(files_from({{"s.yaml", services({"a"})}}));
  EXPECT_EQ(store.snapshot()->count(model::Kind::Ingress), 0u);
}

TEST(Golden, ExamplesRouteDump) {
  std::vector<std::pair<std::string, std::string>> files;
  for (auto name : {"host-ingress.yaml", "path-ingress.yaml", "simple-ingress.yaml", "demo-services.yaml"}) {
    std::ifstream in(std::string(INGRESSD_SOURCE_DIR) + "/examples/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    files.emplace_back(name, ss.str());
  }
  auto c = compile_texts(files);
  std::ifstream g(std::string(INGRESSD_SOURCE_DIR) + "/tests/golden/examples.routes.txt");
  std::stringstream want;
  want << g.rdbuf();
  EXPECT_EQ(routing::dump_text(*c->result.table), want.str());
}

TEST(Compile, TlsSecretMissingIsAWarning) {
  auto c = compile_text(ingress("t", "a.com", {{"/", "Prefix", "a"}}, "  tls: [{hosts: [a.com], secretName: nope}]\n") +
                        services({"a"}));
  bool warned = false;
  for (auto& d : c->result.diagnostics)
    warned |= d.reason == "SecretNotFound" && d.message.find("default/nope") != std::string::npos &&
              d.severity == Severity::Warning;
  EXPECT_TRUE(warned);
  EXPECT_EQ(route(*c->result.table, "a.com", "/"), "a");  // the host keeps serving
}

TEST(Compile, ClassParametersAreReportedAsUnsupported) {
  auto c = compile_text(R"(apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ours}
spec:
  controller: ingressd.dev/ingress-controller
  parameters: {apiGroup: example.com, kind: Params, name: p}
)");
  bool warned = false;
  for (auto& d : c->result.diagnostics) warned |= d.reason == "UnsupportedParameters";
  EXPECT_TRUE(warned);
}

TEST(Compile, WatchNamespaceIgnoresAndCounts) {
  routing::CompileOptions opts;
  opts.watch_namespaces = {"team-a"};
  auto c = compile_text(
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a, namespace: team-a}\nspec:\n"
      "  defaultBackend: {service: {name: s, port: {number: 8080}}}\n---\n"
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: b, namespace: team-b}\nspec:\n"
      "  rules: [{host: b.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 8080}}}}]}}]\n" +
          service("s", "team-a") + service("s", "team-b"),
      opts);
  EXPECT_EQ(c->result.ignored_other_namespace, 1u);
  EXPECT_EQ(c->result.table->route_count(), 0u);
  EXPECT_EQ(c->result.table->global_default_source(), "team-a/a");
}

// The state names are what `check` and /configz print (and the e2e tests read).
TEST(IngressState, Names) {
  EXPECT_STREQ(routing::ingress_state_name(routing::IngressState::Accepted), "Accepted");
  EXPECT_STREQ(routing::ingress_state_name(routing::IngressState::PartiallyAccepted), "PartiallyAccepted");
  EXPECT_STREQ(routing::ingress_state_name(routing::IngressState::Rejected), "Rejected");
  EXPECT_STREQ(routing::ingress_state_name(routing::IngressState::Ignored), "Ignored");
}
