// The pure parts of operator mode: kubeconfig parsing, ExecCredential,
// watch-event lines, relist diffs, decoding API JSON, the store's apply,
// status diffs (Ingress and Gateway API), Gateway API discovery, lease
// decisions, durations, backoff.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/decode.h"
#include "sources/kube/api_discovery.h"
#include "sources/kube/backoff.h"
#include "sources/kube/gateway_status.h"
#include "sources/kube/informer.h"
#include "sources/kube/kube_config.h"
#include "sources/kube/leader.h"
#include "sources/kube/status_writer.h"
#include "sources/object_store.h"

using namespace ingressd;
using namespace ingressd::kube;
using nlohmann::json;

namespace {

const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster:
    server: https://prod.example.com:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: certs/ca.crt
    insecure-skip-tls-verify: true
users:
- name: alice
  user:
    token: abc
- name: bob
  user:
    client-certificate: /abs/bob.crt
    client-key-data: S0VZ
    tokenFile: tok
- name: carol
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin
      args: [get-token, --x]
      env:
      - name: A
        value: b
contexts:
- name: dev
  context: {cluster: dev, user: alice, namespace: team}
- name: prod
  context: {cluster: prod, user: bob}
- name: exec
  context: {cluster: prod, user: carol}
- name: broken
  context: {cluster: nowhere, user: alice}
)";

TEST(Kubeconfig, CurrentContext) {
  std::string err;
  auto c = parse_kubeconfig(kKubeconfig, "", "/etc/kube", err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->context, "dev");
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_file, "/etc/kube/certs/ca.crt");  // relative to the kubeconfig
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->namespace_, "team");
  EXPECT_FALSE(c->exec);
}

TEST(Kubeconfig, NamedContextWithDataFieldsAndTokenFile) {
  std::string err;
  auto c = parse_kubeconfig(kKubeconfig, "prod", "/etc/kube", err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->server, "https://prod.example.com:6443");  // trailing slash dropped
  EXPECT_EQ(c->ca_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->client_cert_file, "/abs/bob.crt");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token_file, "/etc/kube/tok");
}

TEST(Kubeconfig, ExecPlugin) {
  std::string err;
  auto c = parse_kubeconfig(kKubeconfig, "exec", "/etc/kube", err);
  ASSERT_TRUE(c) << err;
  ASSERT_TRUE(c->exec);
  EXPECT_EQ(c->exec->command, "/etc/kube/./plugin");
  EXPECT_EQ(c->exec->args, (std::vector<std::string>{"get-token", "--x"}));
  ASSERT_EQ(c->exec->env.size(), 1u);
  EXPECT_EQ(c->exec->env[0].first, "A");
  EXPECT_EQ(c->exec->api_version, "client.authentication.k8s.io/v1");
}

TEST(Kubeconfig, Errors) {
  std::string err;
  EXPECT_FALSE(parse_kubeconfig(kKubeconfig, "nope", "", err));
  EXPECT_NE(err.find("context \"nope\" not found"), std::string::npos) << err;
  EXPECT_FALSE(parse_kubeconfig(kKubeconfig, "broken", "", err));
  EXPECT_NE(err.find("cluster \"nowhere\""), std::string::npos) << err;
  EXPECT_FALSE(parse_kubeconfig("apiVersion: v1\nkind: Config\n", "", "", err));
  EXPECT_FALSE(parse_kubeconfig("[unclosed", "", "", err));
}

TEST(ExecCredential, Parse) {
  std::string err;
  auto c = parse_exec_credential(
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
          "status":{"token":"t0k","expirationTimestamp":"2030-01-01T00:00:00Z"}})",
      err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->token, "t0k");
  EXPECT_EQ(c->expires_unix_s, 1893456000);
  EXPECT_FALSE(parse_exec_credential(R"({"kind":"ExecCredential","status":{}})", err));
  EXPECT_FALSE(parse_exec_credential("not json", err));
  EXPECT_FALSE(parse_exec_credential(R"({"kind":"Other","status":{"token":"x"}})", err));
}

TEST(WatchEvent, ParseLines) {
  std::string err;
  auto ev = parse_watch_event(R"({"type":"ADDED","object":{"metadata":{"name":"a","namespace":"ns","resourceVersion":"7"}}})", err);
  ASSERT_TRUE(ev) << err;
  EXPECT_EQ(ev->type, WatchEvent::Type::Added);
  EXPECT_EQ(object_id(ev->object), "ns/a");
  EXPECT_EQ(object_rv(ev->object), "7");
  ev = parse_watch_event(R"({"type":"BOOKMARK","object":{"kind":"Ingress","metadata":{"resourceVersion":"12"}}})", err);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, WatchEvent::Type::Bookmark);
  ev = parse_watch_event(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})", err);
  ASSERT_TRUE(ev);
  EXPECT_EQ(error_event_code(*ev), 410);
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":{"metadata":{"na)", err));  // cut mid-event
  EXPECT_FALSE(parse_watch_event(R"({"type":"WEIRD","object":{}})", err));
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED"})", err));
  EXPECT_FALSE(parse_watch_event("[]", err));
  // Odd types never throw: they give empty ids.
  ev = parse_watch_event(R"({"type":"ADDED","object":{"metadata":{"name":5,"namespace":null,"resourceVersion":[]}}})", err);
  ASSERT_TRUE(ev);
  EXPECT_EQ(object_id(ev->object), "/");
  EXPECT_EQ(object_rv(ev->object), "");
}

json obj(const std::string& ns, const std::string& name, const std::string& rv) {
  return {{"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", rv}}}};
}

TEST(Relist, DiffFindsNewChangedAndGone) {
  KnownObjects known = {{"a/keep", "1"}, {"a/change", "2"}, {"a/gone", "3"}};
  std::vector<json> items = {obj("a", "keep", "1"), obj("a", "change", "9"), obj("a", "new", "10")};
  RelistDiff d = diff_relist(known, items);
  EXPECT_EQ(d.upserts, (std::vector<size_t>{1, 2}));
  EXPECT_EQ(d.deletes, (std::vector<std::string>{"a/gone"}));
  d = diff_relist({}, {});
  EXPECT_TRUE(d.upserts.empty() && d.deletes.empty());
}

TEST(Relist, CollectionPaths) {
  // The Namespaces informer of one watched namespace is labelled by it.
  ResourceInfo ns{model::Kind::Namespace, "v1", "Namespace", "namespaces", false, "metadata.name=team"};
  EXPECT_EQ(collection_path(ns, "team"), "/api/v1/namespaces");
  auto rs = watched_resources();
  ASSERT_EQ(rs.size(), 5u);
  for (auto& r : rs) {
    if (r.plural == "ingresses") {
      EXPECT_EQ(collection_path(r, "default"), "/apis/networking.k8s.io/v1/namespaces/default/ingresses");
      EXPECT_EQ(collection_path(r, ""), "/apis/networking.k8s.io/v1/ingresses");
    }
    if (r.plural == "ingressclasses") {
      EXPECT_EQ(collection_path(r, "default"), "/apis/networking.k8s.io/v1/ingressclasses");
    }
    if (r.plural == "secrets") {
      EXPECT_EQ(collection_path(r, "x"), "/api/v1/namespaces/x/secrets");
      EXPECT_EQ(r.field_selector, "type=kubernetes.io/tls");
    }
  }
}

// An Ingress as the API server serves it: server-set fields, status, and a
// field this version of ingressd does not know.
const char* kServerIngress = R"({
  "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "resourceVersion": "42", "generation": 3,
               "creationTimestamp": "2026-01-01T00:00:00Z",
               "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
               "annotations": {"a": "1"}},
  "spec": {"ingressClassName": "ingressd", "futureField": {"x": 1},
           "rules": [{"host": "web.example.com", "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
  "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
})";

TEST(ApiDecode, ToleratesServerFieldsAndUnknownFields) {
  ResourceInfo r = watched_resources()[1];
  ASSERT_EQ(r.kind_name, "Ingress");
  std::string err;
  Change c = to_change(r, json::parse(kServerIngress), false, err);
  EXPECT_EQ(err, "");
  ASSERT_TRUE(c.object);
  EXPECT_EQ(c.key.str(), "Ingress prod/web");
  const auto& ing = std::get<model::Ingress>(c.object->object);
  EXPECT_EQ(ing.meta.resource_version, "42");
  EXPECT_EQ(ing.meta.uid, "u-1");
  ASSERT_EQ(ing.rules.size(), 1u);
  EXPECT_EQ(ing.rules[0].paths[0].backend.service->port.number, 80);
  // A string that looks like a number stays a string (JSON is typed).
  auto svc = json::parse(R"({"metadata":{"name":"s","namespace":"d","annotations":{"port":"80","on":"true"}},
                              "spec":{"ports":[{"name":"http","port":80,"targetPort":"web"}]}})");
  model::DecodedObject d = model::decode_api_object(svc, "v1", "Service", "");
  ASSERT_TRUE(d.object) << (d.errors.empty() ? "" : d.errors[0].message);
  const auto& s = std::get<model::Service>(*d.object);
  EXPECT_EQ(s.meta.annotations.at("port"), "80");
  EXPECT_EQ(s.meta.annotations.at("on"), "true");
  ASSERT_TRUE(s.ports[0].target_port);
  EXPECT_FALSE(s.ports[0].target_port->is_int);
}

TEST(ApiDecode, WrongTypesStillReject) {
  ResourceInfo r = watched_resources()[1];
  std::string err;
  auto bad = json::parse(R"({"metadata":{"name":"x","namespace":"d"},"spec":{"rules":"nope"}})");
  Change c = to_change(r, bad, false, err);
  EXPECT_FALSE(c.object);  // applied as a deletion
  EXPECT_EQ(c.key.str(), "Ingress d/x");
  EXPECT_NE(err, "");
}

TEST(ObjectStoreApply, BatchesUntilCommit) {
  ObjectStore store;
  ResourceInfo r = watched_resources()[1];
  std::string err;
  Change c = to_change(r, json::parse(kServerIngress), false, err);
  EXPECT_TRUE(store.apply(c.key, c.object));
  EXPECT_EQ(store.snapshot()->objects.size(), 0u);  // not visible before commit
  EXPECT_TRUE(store.commit());
  EXPECT_EQ(store.snapshot()->objects.size(), 1u);
  EXPECT_FALSE(store.commit());
  auto before = store.snapshot();
  EXPECT_FALSE(store.apply(model::ObjectKey{model::Kind::Ingress, "prod", "other"}, std::nullopt));
  EXPECT_TRUE(store.apply(c.key, std::nullopt));
  EXPECT_TRUE(store.commit());
  EXPECT_EQ(store.snapshot()->objects.size(), 0u);
  EXPECT_EQ(before->objects.size(), 1u);  // snapshots already taken do not change
}

TEST(Status, WhatToWrite) {
  json ours = normalize_lb(addresses_to_lb({"10.0.0.1", "lb.example.com", "2001:db8::1"}));
  EXPECT_EQ(ours.dump(), R"([{"hostname":"lb.example.com"},{"ip":"10.0.0.1"},{"ip":"2001:db8::1"}])");
  // Ours, not yet written → write; already equal (any order, extra fields) → nothing.
  EXPECT_EQ(status_to_write(true, json(), ours), ours);
  json same = json::parse(R"([{"ip":"2001:db8::1"},{"ip":"10.0.0.1","ipMode":"VIP"},{"hostname":"lb.example.com"}])");
  EXPECT_FALSE(status_to_write(true, same, ours));
  // Not ours: cleared only when it shows our addresses.
  EXPECT_EQ(status_to_write(false, same, ours), json::array());
  EXPECT_FALSE(status_to_write(false, json::parse(R"([{"ip":"192.0.2.1"}])"), ours));
  EXPECT_FALSE(status_to_write(false, json::array(), ours));
  // No addresses to publish: nothing to clear either.
  EXPECT_FALSE(status_to_write(false, json::array(), json::array()));
}

TEST(ApiDecode, GenerationIsKept) {
  std::string err;
  Change c = to_change(watched_resources()[1], json::parse(kServerIngress), false, err);
  ASSERT_TRUE(c.object);
  EXPECT_EQ(std::get<model::Ingress>(c.object->object).meta.generation, 3);
}

TEST(GatewayDiscovery, WhatIsServedAndWatched) {
  std::string err;
  HttpResult v1{200, R"({"kind":"APIResourceList","groupVersion":"gateway.networking.k8s.io/v1","resources":[
      {"name":"gateways","namespaced":true,"kind":"Gateway"},{"name":"gateways/status","namespaced":true},
      {"name":"httproutes","namespaced":true},{"name":"gatewayclasses","namespaced":false}]})",
                ""};
  auto names = served_resources(v1, err);
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::set<std::string>{"gateways", "httproutes", "gatewayclasses"}));
  EXPECT_EQ(served_resources(HttpResult{404, "{}", ""}, err), std::set<std::string>{});  // not installed
  EXPECT_FALSE(served_resources(HttpResult{503, "", ""}, err));                          // unknown: try again
  EXPECT_FALSE(served_resources(HttpResult{0, "", "connection refused"}, err));
  EXPECT_FALSE(served_resources(HttpResult{200, "[]", ""}, err));

  EXPECT_TRUE(gateway_resources(GatewayApiServed{}).empty());
  GatewayApiServed s{*names, {"gatewayclasses", "gateways", "httproutes", "referencegrants"}};
  auto rs = gateway_resources(s);
  EXPECT_EQ(describe_resources(rs),
            "gatewayclasses (v1), gateways (v1), httproutes (v1), referencegrants (v1beta1), namespaces (v1)");
  EXPECT_FALSE(rs[0].namespaced);
  EXPECT_EQ(collection_path(rs[2], "team"), "/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes");
  EXPECT_EQ(collection_path(rs.back(), "team"), "/api/v1/namespaces");
  // Only v1beta1 (before Gateway API v1.0); GRPCRoute only at v1.
  auto old = gateway_resources(GatewayApiServed{{}, {"gateways", "httproutes", "grpcroutes"}});
  EXPECT_EQ(describe_resources(old), "gateways (v1beta1), httproutes (v1beta1), namespaces (v1)");
}

const char* kController = "ingressd.dev/ingress-controller";

GatewayStatusWant route_want(int64_t generation) {
  return {"HTTPRoute", "default", "web", generation, json::parse(R"({"parents":[{
      "parentRef":{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"gw"},
      "controllerName":"ingressd.dev/ingress-controller",
      "conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":""},
                    {"type":"ResolvedRefs","status":"True","reason":"ResolvedRefs","message":""}]}]})")};
}

TEST(GatewayStatus, RouteParentsKeepOtherControllersAndTimes) {
  json theirs = json::parse(R"({"parentRef":{"name":"other-gw"},"controllerName":"example.com/other",
      "conditions":[{"type":"Accepted","status":"False","reason":"NoMatchingParent","message":"",
                     "lastTransitionTime":"2020-01-01T00:00:00Z"}]})");
  json observed = {{"parents", json::array({theirs})}};
  auto w = gateway_status_to_write(route_want(2), observed, kController, "2026-05-01T10:00:00Z");
  ASSERT_TRUE(w);
  ASSERT_EQ((*w)["parents"].size(), 2u);
  EXPECT_EQ((*w)["parents"][0], theirs);  // as it was, first
  const json& mine = (*w)["parents"][1];
  for (const auto& c : mine["conditions"]) {
    EXPECT_EQ(c["observedGeneration"], 2);
    EXPECT_EQ(c["lastTransitionTime"], "2026-05-01T10:00:00Z");
  }
  // The same again, later: nothing to write (times aside; the API server
  // defaulted nothing away, and the order of the entries does not matter).
  json now_observed = *w;
  std::swap(now_observed["parents"][0], now_observed["parents"][1]);
  now_observed["parents"][0]["parentRef"].erase("group");  // left to the CRD's default
  EXPECT_FALSE(gateway_status_to_write(route_want(2), now_observed, kController, "2026-05-01T11:00:00Z"));
  // A new generation with the same conditions: written, transition times kept.
  auto w3 = gateway_status_to_write(route_want(3), now_observed, kController, "2026-05-01T12:00:00Z");
  ASSERT_TRUE(w3);
  const json& m3 = (*w3)["parents"][1];
  EXPECT_EQ(m3["conditions"][0]["observedGeneration"], 3);
  EXPECT_EQ(m3["conditions"][0]["lastTransitionTime"], "2026-05-01T10:00:00Z");
  // A condition whose reason changes gets a new time; the other keeps its own.
  GatewayStatusWant broken = route_want(3);
  broken.status["parents"][0]["conditions"][1] = {
      {"type", "ResolvedRefs"}, {"status", "False"}, {"reason", "BackendNotFound"}, {"message", "no such Service"}};
  auto wb = gateway_status_to_write(broken, *w3, kController, "2026-05-01T13:00:00Z");
  ASSERT_TRUE(wb);
  EXPECT_EQ((*wb)["parents"][1]["conditions"][0]["lastTransitionTime"], "2026-05-01T10:00:00Z");
  EXPECT_EQ((*wb)["parents"][1]["conditions"][1]["lastTransitionTime"], "2026-05-01T13:00:00Z");
  // No longer ours: only the other controller's entry stays.
  auto gone = route_status_without_ours(*wb, kController);
  ASSERT_TRUE(gone);
  EXPECT_EQ((*gone)["parents"], json::array({theirs}));
  EXPECT_FALSE(route_status_without_ours(*gone, kController));
}

TEST(GatewayStatus, GatewayListenersAndAddresses) {
  GatewayStatusWant g{"Gateway", "default", "gw", 1, json::parse(R"({
      "conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":""}],
      "listeners":[{"name":"http","attachedRoutes":1,"supportedKinds":[{"group":"gateway.networking.k8s.io","kind":"HTTPRoute"}],
                    "conditions":[{"type":"Programmed","status":"True","reason":"Programmed","message":""}]}],
      "addresses":[]})")};
  g.status["addresses"] = gateway_addresses(json::parse(R"([{"hostname":"lb.example.com"},{"ip":"10.0.0.1"}])"));
  EXPECT_EQ(g.status["addresses"].dump(),
            R"([{"type":"Hostname","value":"lb.example.com"},{"type":"IPAddress","value":"10.0.0.1"}])");
  auto w = gateway_status_to_write(g, json(), kController, "2026-05-01T10:00:00Z");
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)["listeners"][0]["conditions"][0]["observedGeneration"], 1);
  EXPECT_EQ((*w)["listeners"][0]["conditions"][0]["lastTransitionTime"], "2026-05-01T10:00:00Z");
  // What the API server has besides ours does not count.
  json observed = *w;
  observed["somethingElse"] = "x";
  EXPECT_FALSE(gateway_status_to_write(g, observed, kController, "2026-05-01T11:00:00Z"));
  // One more route attached: written, the times kept.
  g.status["listeners"][0]["attachedRoutes"] = 2;
  auto w2 = gateway_status_to_write(g, observed, kController, "2026-05-01T12:00:00Z");
  ASSERT_TRUE(w2);
  EXPECT_EQ((*w2)["listeners"][0]["attachedRoutes"], 2);
  EXPECT_EQ((*w2)["listeners"][0]["conditions"][0]["lastTransitionTime"], "2026-05-01T10:00:00Z");
  EXPECT_EQ((*w2)["conditions"][0]["lastTransitionTime"], "2026-05-01T10:00:00Z");
}

TEST(Lease, WhenToAcquire) {
  LeaseObservation obs;
  LeaseView free{"", "", 15};
  EXPECT_TRUE(may_acquire(free, "me", obs, 1000, 15000));
  LeaseView mine{"me", "t1", 15};
  EXPECT_TRUE(may_acquire(mine, "me", obs, 2000, 15000));
  LeaseView theirs{"other", "t1", 15};
  obs = {};
  EXPECT_FALSE(may_acquire(theirs, "me", obs, 10000, 15000));   // first seen now
  EXPECT_FALSE(may_acquire(theirs, "me", obs, 24000, 15000));   // 14 s without renewal
  EXPECT_TRUE(may_acquire(theirs, "me", obs, 25001, 15000));    // > 15 s: expired
  LeaseView renewed{"other", "t2", 15};
  EXPECT_FALSE(may_acquire(renewed, "me", obs, 26000, 15000));  // renewed: the clock restarts
  EXPECT_FALSE(may_acquire(renewed, "me", obs, 40000, 15000));
  EXPECT_TRUE(may_acquire(renewed, "me", obs, 41001, 15000));
}

TEST(Durations, Parse) {
  EXPECT_EQ(parse_duration_ms("15s"), 15000);
  EXPECT_EQ(parse_duration_ms("500ms"), 500);
  EXPECT_EQ(parse_duration_ms("2m"), 120000);
  EXPECT_EQ(parse_duration_ms("1h"), 3600000);
  EXPECT_EQ(parse_duration_ms("10"), 10000);
  EXPECT_EQ(parse_duration_ms("1.5s"), 1500);
  EXPECT_FALSE(parse_duration_ms(""));
  EXPECT_FALSE(parse_duration_ms("s"));
  EXPECT_FALSE(parse_duration_ms("5 days"));
  EXPECT_EQ(micro_time(1767225600123456), "2026-01-01T00:00:00.123456Z");
}

TEST(Backoff, GrowsWithJitterAndResets) {
  Backoff b(200, 30000, 42);
  int prev_cap = 0;
  for (int i = 0; i < 12; ++i) {
    int cap = std::min(30000, 200 << std::min(i, 20));
    int d = b.next_ms();
    EXPECT_GE(d, cap / 2) << i;
    EXPECT_LE(d, cap) << i;
    EXPECT_GE(cap, prev_cap);
    prev_cap = cap;
  }
  EXPECT_EQ(b.attempts(), 12);
  b.reset();
  int d = b.next_ms();
  EXPECT_GE(d, 100);
  EXPECT_LE(d, 200);
  // Two replicas with different seeds do not retry in lockstep.
  Backoff x(1000, 30000, 1), y(1000, 30000, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= x.next_ms() != y.next_ms();
  EXPECT_TRUE(differ);
}

}  // namespace
