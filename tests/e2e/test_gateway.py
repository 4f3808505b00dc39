"""The Gateway API end to end, in file mode: one ingressd serving a GatewayClass, Gateways and HTTPRoutes in front of
`ingressd echo` upstreams (which answer with JSON describing the request they got). Cases follow the upstream
conformance suite's HTTPRoute tests (their manifests are in gateway_conformance/; the full transcription is
test_gateway_conformance.py): matching and precedence, traffic split, ReferenceGrant, invalid backends (500),
filters (header modifiers, redirect, URL rewrite, mirror, CORS), the HTTPS listener with its certificate, listener
isolation, and the status `check -o json` reports."""

import json
import os
import unittest

try:
    from . import harness as h
except ImportError:
    import harness as h

INFRA = "gateway-conformance-infra"
GW_API = "gateway.networking.k8s.io/v1"


def obj(kind, name, spec, namespace=INFRA, api=GW_API, **meta):
    o = {"apiVersion": api, "kind": kind, "metadata": dict({"name": name}, **meta), "spec": spec}
    if namespace:
        o["metadata"]["namespace"] = namespace
    return o


def route(name, spec, namespace=INFRA):
    return obj("HTTPRoute", name, spec, namespace)


def status_of(j, kind, name):
    for s in j["gatewayStatus"]:
        if s["kind"] == kind and s["name"] == name:
            return s["status"]
    return None


def condition(conds, type_):
    for c in conds:
        if c["type"] == type_:
            return c["status"], c["reason"]
    return None


class Gateway(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        certs = h.CertFactory(cls.cres.tempdir())
        cls.cert = certs.leaf("secure", ["secure.example.com"])
        cls.echo = {}
        objs = [
            obj("GatewayClass", "ingressd", {"controllerName": h.CONTROLLER_NAME}, namespace=None),
            obj("Gateway", "same-namespace", {"gatewayClassName": "ingressd", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}]}),
            obj("Gateway", "secure", {"gatewayClassName": "ingressd", "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "secure.example.com",
                 "tls": {"certificateRefs": [{"name": "secure-cert"}]}}]}),
            h.cert_secret("secure-cert", cls.cert, namespace=INFRA),
        ]
        for name, ns in [("infra-backend-v1", INFRA), ("infra-backend-v2", INFRA), ("infra-backend-v3", INFRA),
                         ("mirror", INFRA), ("app-backend-v1", "gateway-conformance-app-backend")]:
            log = name == "mirror"
            e = cls.cres.start_echo(name, namespace=ns, log_requests=log) if log else cls.cres.start_echo(name, namespace=ns)
            cls.echo[name] = e
            objs += h.backend_objects(name, [e.port], namespace=ns)
        parent = [{"name": "same-namespace"}]
        objs += [
            route("matching", {"parentRefs": parent, "hostnames": ["match.example"], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"name": "infra-backend-v1", "port": 8080}]},
                {"matches": [{"path": {"type": "Exact", "value": "/v2"}},
                             {"path": {"type": "PathPrefix", "value": "/v2/"}},
                             {"headers": [{"name": "version", "value": "two"}]}],
                 "backendRefs": [{"name": "infra-backend-v2", "port": 8080}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/q"}, "queryParams": [{"name": "animal", "value": "whale"}]},
                             {"path": {"type": "PathPrefix", "value": "/q"}, "method": "POST"}],
                 "backendRefs": [{"name": "infra-backend-v3", "port": 8080}]},
            ]}),
            route("split", {"parentRefs": parent, "hostnames": ["split.example"], "rules": [
                {"backendRefs": [{"name": "infra-backend-v1", "port": 8080, "weight": 7},
                                 {"name": "infra-backend-v2", "port": 8080, "weight": 3},
                                 {"name": "infra-backend-v3", "port": 8080, "weight": 0}]}]}),
            route("cross", {"parentRefs": parent, "hostnames": ["cross.example"], "rules": [
                {"matches": [{"path": {"value": "/granted"}}],
                 "backendRefs": [{"name": "app-backend-v1", "namespace": "gateway-conformance-app-backend", "port": 8080}]},
                {"matches": [{"path": {"value": "/missing"}}], "backendRefs": [{"name": "no-such-svc", "port": 8080}]},
                {"matches": [{"path": {"value": "/kind"}}],
                 "backendRefs": [{"group": "example.com", "kind": "Bucket", "name": "b"}]},
            ]}),
            obj("ReferenceGrant", "allow-infra", {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": INFRA}],
                "to": [{"group": "", "kind": "Service", "name": "app-backend-v1"}]},
                namespace="gateway-conformance-app-backend", api="gateway.networking.k8s.io/v1beta1"),
            route("filters", {"parentRefs": parent, "hostnames": ["filters.example"], "rules": [
                {"matches": [{"path": {"value": "/headers"}}],
                 "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
                     "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
                     "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
                     "remove": ["X-Header-Remove"]}},
                     {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                         "set": [{"name": "X-Resp", "value": "resp"}]}}],
                 "backendRefs": [{"name": "infra-backend-v1", "port": 8080}]},
                {"matches": [{"path": {"value": "/prefix/one"}}],
                 "filters": [{"type": "URLRewrite", "urlRewrite": {
                     "hostname": "rewritten.example",
                     "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}}}],
                 "backendRefs": [{"name": "infra-backend-v1", "port": 8080}]},
                {"matches": [{"path": {"value": "/redirect"}}],
                 "filters": [{"type": "RequestRedirect", "requestRedirect": {
                     "hostname": "example.org", "statusCode": 301,
                     "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}]},
                {"matches": [{"path": {"value": "/to-https"}}],
                 "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "port": 8443}}]},
                {"matches": [{"path": {"value": "/mirror"}}],
                 "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "mirror", "port": 8080}}}],
                 "backendRefs": [{"name": "infra-backend-v1", "port": 8080}]},
                {"matches": [{"path": {"value": "/cors"}}],
                 "filters": [{"type": "CORS", "cors": {"allowOrigins": ["https://www.foo.com"], "allowMethods": ["GET", "OPTIONS"],
                                                       "allowCredentials": True, "maxAge": 3600}}],
                 "backendRefs": [{"name": "infra-backend-v1", "port": 8080}]},
            ]}),
            route("tls-route", {"parentRefs": [{"name": "secure"}], "hostnames": ["secure.example.com"], "rules": [
                {"backendRefs": [{"name": "infra-backend-v2", "port": 8080}]}]}),
            route("other-ns", {"parentRefs": [{"name": "same-namespace", "namespace": INFRA}],
                               "hostnames": ["other.example"],
                               "rules": [{"backendRefs": [{"name": "app-backend-v1", "port": 8080}]}]},
                  namespace="gateway-conformance-app-backend"),
        ]
        cls.objects = objs
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.d = cls.cres.start_ingressd(cls.dir)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def backend(self, r):
        self.assertEqual(r.status, 200, r)
        return r.json()["service"]

    def test_path_header_query_and_method_matches(self):
        cases = [("/", {}, "GET", "infra-backend-v1"), ("/v2", {}, "GET", "infra-backend-v2"),
                 ("/v2example", {}, "GET", "infra-backend-v1"), ("/v2/", {}, "GET", "infra-backend-v2"),
                 ("/foo", {"version": "two"}, "GET", "infra-backend-v2"),
                 ("/q?animal=whale", {}, "GET", "infra-backend-v3"), ("/q?animal=dolphin", {}, "GET", "infra-backend-v1"),
                 ("/q", {}, "POST", "infra-backend-v3")]
        for path, headers, method, want in cases:
            r = h.http_request(self.d.http_port, method, path, host="match.example", headers=headers)
            self.assertEqual(self.backend(r), want, "%s %s %s" % (method, path, headers))

    def test_unknown_host_is_404(self):
        self.assertEqual(self.d.get("/", host="nowhere.example").status, 404)

    def test_weighted_split_and_weight_zero(self):
        seen = {}
        for _ in range(200):
            b = self.backend(self.d.get("/", host="split.example"))
            seen[b] = seen.get(b, 0) + 1
        self.assertNotIn("infra-backend-v3", seen)
        self.assertTrue(100 < seen.get("infra-backend-v1", 0) < 190, seen)  # 70 % give or take
        self.assertTrue(10 < seen.get("infra-backend-v2", 0) < 100, seen)

    def test_reference_grant_and_invalid_backends(self):
        self.assertEqual(self.backend(self.d.get("/granted", host="cross.example")), "app-backend-v1")
        self.assertEqual(self.d.get("/missing", host="cross.example").status, 500)
        self.assertEqual(self.d.get("/kind", host="cross.example").status, 500)

    def test_request_and_response_header_modifiers(self):
        r = self.d.get("/headers", host="filters.example",
                       headers={"X-Header-Set": "orig", "X-Header-Add": "orig", "X-Header-Remove": "gone"})
        j = r.json()
        self.assertEqual(j["headers"]["X-Header-Set"], ["set-overwrites-values"])
        self.assertEqual(j["headers"]["X-Header-Add"], ["orig", "add-appends-values"])
        self.assertNotIn("X-Header-Remove", j["headers"])
        self.assertEqual(r.headers.get("x-resp"), "resp")

    def test_url_rewrite(self):
        j = self.d.get("/prefix/one/two?x=1", host="filters.example").json()
        self.assertEqual(j["path"], "/one/two?x=1")
        self.assertEqual(j["host"], "rewritten.example")

    def test_redirects(self):
        r = self.d.get("/redirect/x?q=1", host="filters.example")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.headers.get("location"), "http://example.org/new?q=1")
        r = self.d.get("/to-https", host="filters.example")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.headers.get("location"), "https://filters.example:8443/to-https")

    def test_mirror(self):
        r = self.d.get("/mirror/abc", host="filters.example")
        self.assertEqual(self.backend(r), "infra-backend-v1")
        def log():
            with open(self.echo["mirror"].log_path, errors="replace") as f:
                return f.read()
        h.wait_until(lambda: "/mirror/abc" in log(), what="the mirror to log the request")

    def test_cors(self):
        r = self.d.request("OPTIONS", "/cors", "filters.example",
                           headers={"Origin": "https://www.foo.com", "Access-Control-Request-Method": "GET"})
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.headers.get("access-control-allow-origin"), "https://www.foo.com")
        self.assertEqual(r.headers.get("access-control-max-age"), "3600")
        self.assertEqual(r.headers.get("access-control-allow-credentials"), "true")
        r = self.d.get("/cors", host="filters.example", headers={"Origin": "https://www.foo.com"})
        self.assertEqual(self.backend(r), "infra-backend-v1")
        self.assertEqual(r.headers.get("access-control-allow-origin"), "https://www.foo.com")
        r = self.d.get("/cors", host="filters.example", headers={"Origin": "https://evil.example"})
        self.assertIsNone(r.headers.get("access-control-allow-origin"))

    def test_https_listener_serves_with_its_certificate_and_only_there(self):
        ctx = h.tls_client_context(cafile=self.cert.crt)
        r = h.https_request(self.d.https_port, "GET", "/", host="secure.example.com", context=ctx)
        self.assertEqual(self.backend(r), "infra-backend-v2")
        self.assertEqual(r.peer_serial, self.cert.serial)
        # The route is attached to the HTTPS listener only.
        self.assertEqual(self.d.get("/", host="secure.example.com").status, 404)

    def test_route_of_a_namespace_the_listener_does_not_allow(self):
        self.assertEqual(self.d.get("/", host="other.example").status, 404)

    def test_check_reports_status_in_the_api_shape(self):
        rc, out, err = h.run_cli(["check", "-o", "json", self.dir])
        j = json.loads(out)
        gc = status_of(j, "GatewayClass", "ingressd")
        self.assertEqual(condition(gc["conditions"], "Accepted"), ("True", "Accepted"))
        gw = status_of(j, "Gateway", "same-namespace")
        self.assertEqual(condition(gw["conditions"], "Programmed"), ("True", "Programmed"))
        self.assertEqual(gw["listeners"][0]["attachedRoutes"], 4)
        self.assertEqual(gw["listeners"][0]["supportedKinds"], [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
        m = status_of(j, "HTTPRoute", "matching")["parents"][0]
        self.assertEqual(m["controllerName"], h.CONTROLLER_NAME)
        self.assertEqual(condition(m["conditions"], "Accepted"), ("True", "Accepted"))
        self.assertEqual(condition(m["conditions"], "ResolvedRefs"), ("True", "ResolvedRefs"))
        c = status_of(j, "HTTPRoute", "cross")["parents"][0]
        self.assertEqual(condition(c["conditions"], "ResolvedRefs")[0], "False")
        o = status_of(j, "HTTPRoute", "other-ns")["parents"][0]
        self.assertEqual(condition(o["conditions"], "Accepted"), ("False", "NotAllowedByListeners"))

    def test_a_broken_route_edit_keeps_the_rest_serving(self):
        d = self.tempdir()
        objs = [o for o in self.objects] + [route("broken", {"parentRefs": [{"name": "same-namespace"}],
                                                             "rules": [{"matches": [{"path": {"type": "Exact", "value": "no-slash"}}]}]})]
        h.write_manifests(d, objs)
        rc, out, err = h.run_cli(["check", "-o", "json", d])
        self.assertEqual(rc, 1, out)
        j = json.loads(out)
        msgs = [x["message"] for x in j["diagnostics"] if x["severity"] == "error"]
        self.assertTrue(any("spec.rules[0].matches[0].path" in m for m in msgs), msgs)
        self.assertIsNotNone(status_of(j, "HTTPRoute", "matching"), "the other routes are still compiled")


if __name__ == "__main__":
    unittest.main()
