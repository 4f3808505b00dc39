"""Operator mode and the Gateway API: discovery of the CRDs, routing by HTTPRoutes from the API server, and the
status the leader writes (observedGeneration, lastTransitionTime, our parents entries only, no write when nothing
changed).

The fixture (kube_fixture.py) serves the Gateway API's resources with --gateway-api, or from /_test/gateway-api.

Run: INGRESSD_BIN=build/ingressd python3 -m unittest -v tests/e2e/test_kube_gateway.py
"""

import time

try:
    from . import harness as h
    from . import kube_harness as k
    from .test_kube import KubeTestCase
except ImportError:
    import harness as h
    import kube_harness as k
    from test_kube import KubeTestCase

GROUP = "gateway.networking.k8s.io"
OTHER = "example.com/other-controller"


def conditions(entry):
    return {c["type"]: c for c in entry.get("conditions", [])}


class GatewayCase(KubeTestCase):
    def gateway_fixture(self, tokens=("test-token",)):
        return self.fixture(tokens=tokens, extra=("--gateway-api",))

    def objects(self, api, route_status=None):
        """GatewayClass "ingressd", Gateway default/gw (HTTP :80), HTTPRoute default/web for web.example.com →
        Service alpaca (loaded at once, with `route_status` as the route's status when given)."""
        route = h.http_route("web", ["gw"], ["web.example.com"], "alpaca")
        if route_status is not None:
            route["status"] = route_status
        api.load([h.gateway_class("ingressd"), h.gateway("gw", "ingressd"), route])

    def route_status(self, api, name="web"):
        return api.get("HTTPRoute", name).get("status") or {}

    def our_parent(self, api, name="web"):
        mine = [p for p in self.route_status(api, name).get("parents", []) if p["controllerName"] == h.CONTROLLER_NAME]
        return mine[0] if len(mine) == 1 else None

    def gateway_status_patches(self, api, token):
        return [r for r in api.write_requests() if r["method"] == "PATCH" and r["path"].endswith("/status")
                and ("/%s/" % GROUP) in r["path"] and r["token"] == token]

    def wait_route_status(self, api, generation, name="web"):
        def ok():
            p = self.our_parent(api, name)
            return p is not None and all(c.get("observedGeneration") == generation for c in p["conditions"])
        h.wait_until(ok, what="HTTPRoute %s status at generation %d" % (name, generation))
        return self.our_parent(api, name)


class TestDiscovery(GatewayCase):
    def test_without_the_crds_ingresses_as_before(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, ["--publish-status-address", "10.1.2.3"])
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.assertEqual(k.metric(ing, "ingressd_kube_gateway_api_served"), 0)
        log = ing.log()
        self.assertEqual(log.count("Gateway API is not installed"), 1, log)
        self.assertNotIn("gatewayclasses", log)
        gets = {r["path"] for r in api.requests() if r["method"] == "GET"}
        self.assertIn("/apis/%s/v1" % GROUP, gets)
        self.assertIn("/apis/%s/v1beta1" % GROUP, gets)
        self.assertFalse([p for p in gets if p.startswith("/apis/%s/v1/" % GROUP) or p == "/api/v1/namespaces"], gets)
        h.wait_until(lambda: (api.get("Ingress", "web").get("status") or {}).get("loadBalancer", {}).get("ingress")
                     == [{"ip": "10.1.2.3"}], what="Ingress status written as before")

    def test_crds_installed_later_are_picked_up_and_removal_forgets(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("old", rules=[h.rule("old.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, ["--gateway-api-discovery-period", "1s"])
        self.assertEqual(k.served_by(ing, "old.example.com"), "alpaca")
        api.control("gateway-api?on=1")
        self.objects(api)
        k.wait_served(ing, "web.example.com", "alpaca", timeout=5)
        self.assertIn("Gateway API: now also watching gatewayclasses (v1), gateways (v1), httproutes (v1), "
                      "referencegrants (v1beta1), grpcroutes (v1), namespaces (v1)", ing.log())
        self.assertEqual(k.metric(ing, "ingressd_kube_gateway_api_served"), 1)
        self.wait_route_status(api, 1)  # written once every new informer has listed
        # The CRDs go away (with their objects): the routes go too, the Ingress stays.
        api.control("gateway-api?on=0")
        k.wait_served(ing, "web.example.com", 404, timeout=5)
        self.assertEqual(k.served_by(ing, "old.example.com"), "alpaca")
        self.assertIn("httproutes is no longer served", ing.log())
        self.assertEqual(ing.admin("/readyz").status, 200)

    def test_watch_namespace_limits_the_namespaced_kinds(self):
        f = self.gateway_fixture()
        api = f.api()
        for ns in ("team", "default"):
            api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            self.backend(api, "alpaca", namespace=ns)
        api.load([h.gateway_class("ingressd"),
                  h.gateway("gw", "ingressd", namespace="team"),
                  h.http_route("web", ["gw"], ["team.example.com"], "alpaca", namespace="team"),
                  h.gateway("gw", "ingressd"),
                  h.http_route("web", ["gw"], ["default.example.com"], "alpaca")])
        ing = self.ingressd(f, ["--watch-namespace", "team"])
        self.assertEqual(k.served_by(ing, "team.example.com"), "alpaca")
        self.assertEqual(k.served_by(ing, "default.example.com"), 404)
        self.assertEqual(ing.config()["objects"]["HTTPRoute"], 1)
        self.assertEqual(ing.config()["objects"]["Namespace"], 1)
        paths = {r["path"] for r in api.requests() if r["method"] == "GET"}
        self.assertIn("/apis/%s/v1/namespaces/team/httproutes" % GROUP, paths)
        self.assertIn("/apis/%s/v1beta1/namespaces/team/referencegrants" % GROUP, paths)
        self.assertIn("/apis/%s/v1/gatewayclasses" % GROUP, paths)
        self.assertNotIn("/apis/%s/v1/httproutes" % GROUP, paths)
        self.assertNotIn("/apis/%s/v1/gateways" % GROUP, paths)
        self.assertEqual(k.metric(ing, "ingressd_kube_synced", {"resource": "namespaces", "namespace": "team"}), 1)


class TestGatewayStatus(GatewayCase):
    def test_route_served_and_status_written_once(self):
        f = self.gateway_fixture(tokens=("test-token", "ingressd-token"))
        api = f.api()
        self.backend(api, "alpaca")
        self.objects(api)
        ing = self.ingressd(f, ["--publish-status-address", "10.1.2.3"], token="ingressd-token")
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.assertEqual(k.served_by(ing, "other.example.com"), 404)

        # (b) the route's parent entry, the Gateway's listeners and the class, at generation 1.
        p = self.wait_route_status(api, 1)
        self.assertEqual(p["parentRef"]["name"], "gw")
        c = conditions(p)
        self.assertEqual((c["Accepted"]["status"], c["Accepted"]["reason"]), ("True", "Accepted"))
        self.assertEqual((c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]), ("True", "ResolvedRefs"))
        for cond in p["conditions"]:
            self.assertRegex(cond["lastTransitionTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        h.wait_until(lambda: api.get("Gateway", "gw").get("status", {}).get("listeners"), what="Gateway status")
        gs = api.get("Gateway", "gw")["status"]
        self.assertEqual(gs["listeners"][0]["name"], "http")
        self.assertEqual(gs["listeners"][0]["attachedRoutes"], 1)
        self.assertEqual(gs["listeners"][0]["supportedKinds"], [{"group": GROUP, "kind": "HTTPRoute"}])
        self.assertEqual(gs["addresses"], [{"type": "IPAddress", "value": "10.1.2.3"}])
        for cond in gs["conditions"] + gs["listeners"][0]["conditions"]:
            self.assertEqual(cond["observedGeneration"], 1, cond)
            self.assertIn("lastTransitionTime", cond)
        self.assertEqual(conditions(gs)["Programmed"]["status"], "True")
        h.wait_until(lambda: conditions(api.get("GatewayClass", "ingressd", namespace=None).get("status", {}))
                     .get("Accepted", {}).get("status") == "True", what="GatewayClass Accepted")

        # (c) a second cycle with nothing changed writes nothing: recompiles (a Service label, a new Service,
        # our own status writes coming back by the watch) find every status as it should be.
        time.sleep(0.5)
        before = len(self.gateway_status_patches(api, "ingressd-token"))
        self.assertEqual(before, 3, self.gateway_status_patches(api, "ingressd-token"))  # class, Gateway, route
        metric = lambda kind: k.metric(ing, "ingressd_kube_gateway_status_updates_total", {"kind": kind})  # noqa: E731
        self.assertEqual([metric(x) for x in ("GatewayClass", "Gateway", "HTTPRoute")], [1, 1, 1])
        reloads = ing.reloads()
        api.patch("Service", "alpaca", {"metadata": {"labels": {"x": "1"}}})
        api.create(h.service("unrelated"))
        h.wait_until(lambda: ing.reloads() > reloads, what="a recompile")
        time.sleep(1.0)
        self.assertEqual(len(self.gateway_status_patches(api, "ingressd-token")), before)

        # A new generation of the route: observedGeneration follows; the times of unchanged conditions stay.
        first_ltt = c["Accepted"]["lastTransitionTime"]
        time.sleep(1.1)  # lastTransitionTime has a one-second resolution
        api.patch("HTTPRoute", "web", {"spec": {"hostnames": ["web.example.com", "www.example.com"]}})
        p2 = self.wait_route_status(api, 2)
        self.assertEqual(conditions(p2)["Accepted"]["lastTransitionTime"], first_ltt)
        k.wait_served(ing, "www.example.com", "alpaca")
        # A condition that changes gets a new time: the backend Service goes away.
        api.delete("Service", "alpaca")

        def refs_broken():
            p = self.our_parent(api)
            return p and conditions(p)["ResolvedRefs"]["status"] == "False"
        h.wait_until(refs_broken, what="ResolvedRefs False")
        c3 = conditions(self.our_parent(api))
        self.assertEqual(c3["ResolvedRefs"]["reason"], "BackendNotFound")
        self.assertNotEqual(c3["ResolvedRefs"]["lastTransitionTime"], first_ltt)
        self.assertEqual(c3["Accepted"]["lastTransitionTime"], first_ltt)

    def test_other_controllers_parent_entries_are_kept(self):
        f = self.gateway_fixture(tokens=("test-token", "ingressd-token"))
        api = f.api()
        self.backend(api, "alpaca")
        theirs = {"parentRef": {"group": GROUP, "kind": "Gateway", "name": "their-gw"}, "controllerName": OTHER,
                  "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                  "observedGeneration": 1, "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
        route = h.http_route("web", ["gw", "their-gw"], ["web.example.com"], "alpaca")
        route["status"] = {"parents": [theirs]}
        api.load([h.gateway_class("ingressd"), h.gateway("gw", "ingressd"), route])
        ing = self.ingressd(f, [], token="ingressd-token")
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.wait_route_status(api, 1)
        parents = self.route_status(api)["parents"]
        self.assertEqual(len(parents), 2, parents)
        self.assertIn(theirs, parents)  # untouched
        # The other controller updates its entry; then a change of ours: its new entry is kept.
        theirs2 = dict(theirs, conditions=[dict(theirs["conditions"][0], observedGeneration=1, reason="Accepted",
                                                message="still fine")])
        mine = self.our_parent(api)
        api.patch("HTTPRoute", "web", {"status": {"parents": [mine, theirs2]}}, status=True)
        api.patch("HTTPRoute", "web", {"spec": {"hostnames": ["web.example.com", "www.example.com"]}})
        self.wait_route_status(api, 2)
        parents = self.route_status(api)["parents"]
        self.assertEqual(len(parents), 2, parents)
        self.assertIn(theirs2, parents)
        # No longer ours (our Gateway leaves its parentRefs): our entry goes, theirs stays.
        api.patch("HTTPRoute", "web", {"spec": {"parentRefs": [{"name": "their-gw"}]}})
        h.wait_until(lambda: self.route_status(api)["parents"] == [theirs2], what="our entry removed")
        k.wait_served(ing, "web.example.com", 404)

    def test_conflicting_write_is_read_again_and_redone(self):
        # Another controller writes its entry between our read of the route and our PATCH: the PATCH's
        # resourceVersion precondition fails (409), ingressd reads the route again and writes ours next to it.
        f = self.gateway_fixture(tokens=("test-token", "ingressd-token"))
        api = f.api()
        self.backend(api, "alpaca")
        self.objects(api)
        theirs = {"parentRef": {"group": GROUP, "kind": "Gateway", "name": "their-gw"}, "controllerName": OTHER,
                  "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                  "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
        path = "/apis/%s/v1/namespaces/default/httproutes/web/status" % GROUP
        api.control("interleave?path=" + path, body={"parents": [theirs]})
        ing = self.ingressd(f, [], token="ingressd-token")
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.wait_route_status(api, 1)
        parents = self.route_status(api)["parents"]
        self.assertEqual(len(parents), 2, parents)
        self.assertIn(theirs, parents)
        patches = [r for r in api.write_requests() if r["path"] == path and r["token"] == "ingressd-token"]
        self.assertEqual(len(patches), 2, patches)  # the 409, then the one that took
        self.assertIn("/apis/%s/v1/namespaces/default/httproutes/web" % GROUP,
                      {r["path"] for r in api.requests() if r["method"] == "GET" and r["token"] == "ingressd-token"})
        self.assertNotIn("cannot update the status", ing.log())

    def test_only_the_leader_writes_gateway_status(self):
        f = self.gateway_fixture(tokens=("replica-a", "replica-b", "test-token"))
        api = f.api("test-token")
        self.backend(api, "alpaca")
        self.objects(api)
        flags = ["--lease-duration", "2s", "--renew-deadline", "1500ms", "--retry-period", "200ms"]
        a = self.ingressd(f, flags, token="replica-a")
        b = self.ingressd(f, flags, token="replica-b")
        for r in (a, b):
            self.assertEqual(k.served_by(r, "web.example.com"), "alpaca")
        h.wait_until(lambda: (k.metric(a, "ingressd_leader") or 0) + (k.metric(b, "ingressd_leader") or 0) == 1,
                     what="exactly one leader")
        leader = "replica-a" if k.metric(a, "ingressd_leader") == 1 else "replica-b"
        self.wait_route_status(api, 1)
        time.sleep(0.5)
        writers = {r["token"] for r in api.write_requests() if ("/%s/" % GROUP) in r["path"]}
        self.assertEqual(writers, {leader})


if __name__ == "__main__":
    import unittest
    unittest.main()
