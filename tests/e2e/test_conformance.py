"""The scenarios of kubernetes-sigs/ingress-controller-conformance, run against ingressd.

Each feature gets its own namespace, its own ingressd and one echo process per
backend Service (the echo's `service` field is the Service name, as the
suite's SERVICE_NAME env var is). Requests look like the suite's Go client:
User-Agent "Go-http-client/1.1", Content-Length: 0 for POST/PUT/PATCH, no
body. The steps check: status code, which Service answered, host, path,
method and proto as seen by the backend, User-Agent unchanged, response proto
and the response headers Content-Length, Content-Type, Date and Server.

host_rules has a TLS scenario: a self-signed Secret "conformance-tls" for
foo.bar.com, GET https://foo.bar.com with SNI, and the served certificate must
name foo.bar.com. The suite's plain GET http://foo.bar.com is answered with
ingressd's (and ingress-nginx's) 308 to https for a host with TLS; Go's client
follows it, and so does this test, over TLS, to the same backend.
"""

import os

import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

GO_UA = "Go-http-client/1.1"


def go_request(srv, method, host, path):
    """A request as Go's net/http client sends it (the suite's CaptureRoundTrip)."""
    headers = [("User-Agent", GO_UA)]
    if method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", "0"))
    return srv.request(method, path, host=host, headers=headers)


class ConformanceCase(h.E2ETestCase):
    NAMESPACE = "default"

    @classmethod
    def start_backends(cls, names, ns, port_names=None):
        """One echo per Service name; returns the manifests of the Services and EndpointSlices."""
        objs = []
        cls.echoes = getattr(cls, "echoes", {})
        for name in names:
            e = cls.cres.start_echo(name, namespace=ns)
            cls.echoes[name] = e
            objs += h.backend_objects(name, [e.port], namespace=ns, port_name=(port_names or {}).get(name))
        return objs

    @classmethod
    def serve(cls, objects, workers=1):
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objects)
        cls.srv = cls.cres.start_ingressd(cls.dir, workers=workers)

    def assert_captured(self, r, service=None, host=None, path=None, method=None):
        self.assertEqual(r.status, 200, r)
        j = r.json()
        if service is not None:
            self.assertEqual(j["service"], service)
        if host is not None:
            self.assertEqual(j["host"], host)
        if path is not None:
            self.assertEqual(j["path"], path)
        if method is not None:
            self.assertEqual(j["method"], method)
        return j


# ----------------------------------------------------------------------------
# features/default_backend.feature
# ----------------------------------------------------------------------------

class DefaultBackend(ConformanceCase):
    NAMESPACE = "ingress-conformance-db"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        objs = cls.start_backends(["echo-service"], cls.NAMESPACE)
        objs.append(h.ingress("default-backend", namespace=cls.NAMESPACE, default_backend="echo-service"))
        cls.serve(objs)

    ROWS = [
        ("GET", "my-host", ""),
        ("GET", "my-host", "sub-path"),
        ("POST", "some-host", ""),
        ("PUT", "", "resource"),       # empty host: the Host header is the ingress address itself
        ("DELETE", "some-host", "resource"),
        ("PATCH", "my-host", "resource"),
    ]

    def test_no_rules_sends_all_requests_to_the_default_backend(self):
        for method, host, path in self.ROWS:
            with self.subTest(method=method, host=host, path=path):
                host_header = host or "127.0.0.1:%d" % self.srv.http_port
                r = go_request(self.srv, method, host_header, "/" + path)
                self.assertEqual(r.status, 200, r)
                j = self.assert_captured(r, service="echo-service", method=method, path="/" + path)
                self.assertEqual(r.version, "HTTP/1.1")               # the response proto
                for name in ("Content-Length", "Content-Type", "Date", "Server"):
                    self.assertIn(name, r.headers, "response header %s missing: %r" % (name, r.headers))
                self.assertFalse(r.chunked)
                self.assertEqual(j["proto"], "HTTP/1.1")              # the request proto at the backend
                self.assertEqual(j["headers"].get("User-Agent"), [GO_UA])
                self.assertEqual(j["host"], host_header)
                self.assertEqual(j["namespace"], self.NAMESPACE)


# ----------------------------------------------------------------------------
# features/host_rules.feature
# ----------------------------------------------------------------------------

class HostRules(ConformanceCase):
    NAMESPACE = "ingress-conformance-hr"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        objs = cls.start_backends(["wildcard-foo-com", "foo-bar-com"], cls.NAMESPACE,
                                  port_names={"foo-bar-com": "http"})
        ing = h.ingress("host-rules", namespace=cls.NAMESPACE, rules=[
            h.rule("*.foo.com", [h.http_path("/", "wildcard-foo-com")]),
            h.rule("foo.bar.com", [h.http_path("/", "foo-bar-com", port="http")]),   # by port name
        ])
        ing["spec"]["tls"] = [{"hosts": ["foo.bar.com"], "secretName": "conformance-tls"}]
        objs.append(ing)
        # "Given a self-signed TLS secret named conformance-tls for the foo.bar.com hostname"
        cls.cert = h.CertFactory(os.path.join(cls.cres.tempdir(), "certs")).leaf("conformance", ["foo.bar.com"])
        objs.append(h.cert_secret("conformance-tls", cls.cert, namespace=cls.NAMESPACE))
        cls.serve(objs)

    def test_host_rule_sends_traffic_to_the_matching_backend(self):
        r = go_request(self.srv, "GET", "foo.bar.com", "/")
        # A host with TLS: plain HTTP is redirected to https (308); follow it as Go's client does.
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.headers.get("Location"), "https://foo.bar.com:%d/" % self.srv.https_port)
        r = h.https_request(self.srv.https_port, "GET", "/", host="foo.bar.com", headers=[("User-Agent", GO_UA)])
        self.assert_captured(r, service="foo-bar-com", host="foo.bar.com")

    def test_hostname_that_does_not_match_is_not_routed(self):
        self.assertEqual(go_request(self.srv, "GET", "subdomain.bar.com", "/").status, 404)

    def test_wildcard_host_rule_matches_one_label(self):
        r = go_request(self.srv, "GET", "bar.foo.com", "/")
        self.assert_captured(r, service="wildcard-foo-com", host="bar.foo.com")

    def test_wildcard_does_not_match_more_than_one_label(self):
        self.assertEqual(go_request(self.srv, "GET", "baz.bar.foo.com", "/").status, 404)

    def test_wildcard_does_not_match_no_label(self):
        self.assertEqual(go_request(self.srv, "GET", "foo.com", "/").status, 404)

    def test_host_rule_sends_tls_traffic_to_the_matching_backend(self):
        r = h.https_request(self.srv.https_port, "GET", "/", host="foo.bar.com", headers=[("User-Agent", GO_UA)])
        self.assert_captured(r, service="foo-bar-com", host="foo.bar.com")
        # The certificate served for SNI foo.bar.com is the Secret's, and names foo.bar.com.
        self.assertEqual(r.peer_serial, self.cert.serial)
        with h.TlsConn(self.srv.https_port, server_name="foo.bar.com") as c:
            _, out, _ = h.openssl(["x509", "-inform", "DER", "-noout", "-ext", "subjectAltName"], input=c.peer_der())
        self.assertIn("DNS:foo.bar.com", out)


# ----------------------------------------------------------------------------
# features/path_rules.feature
# ----------------------------------------------------------------------------

class PathRules(ConformanceCase):
    NAMESPACE = "ingress-conformance-pr"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        names = ["foo-exact", "foo-prefix", "aaa-slash-bbb-prefix", "aaa-prefix", "aaa-slash-bbb-slash-prefix",
                 "foo-slash-exact"]
        objs = cls.start_backends(names, cls.NAMESPACE)
        p = h.http_path
        objs.append(h.ingress("path-rules", namespace=cls.NAMESPACE, rules=[
            h.rule("exact-path-rules", [p("/foo", "foo-exact", "Exact")]),
            h.rule("prefix-path-rules", [p("/foo", "foo-prefix", "Prefix"),
                                         p("/aaa/bbb", "aaa-slash-bbb-prefix", "Prefix"),
                                         p("/aaa", "aaa-prefix", "Prefix")]),
            h.rule("mixed-path-rules", [p("/foo", "foo-prefix", "Prefix"),
                                        p("/foo", "foo-exact", "Exact")]),
            h.rule("trailing-slash-path-rules", [p("/aaa/bbb/", "aaa-slash-bbb-slash-prefix", "Prefix"),
                                                 p("/foo/", "foo-slash-exact", "Exact")]),
        ]))
        cls.serve(objs)

    ROWS = [
        # (scenario, host, path, status, service)
        ("exact /foo matches /foo", "exact-path-rules", "/foo", 200, "foo-exact"),
        ("exact /foo does not match /foo/", "exact-path-rules", "/foo/", 404, None),
        ("exact /foo does not match /FOO", "exact-path-rules", "/FOO", 404, None),
        ("exact /foo does not match /bar", "exact-path-rules", "/bar", 404, None),
        ("prefix /foo matches /foo", "prefix-path-rules", "/foo", 200, "foo-prefix"),
        ("prefix /foo matches /foo/", "prefix-path-rules", "/foo/", 200, "foo-prefix"),
        ("prefix /foo does not match /FOO", "prefix-path-rules", "/FOO", 404, None),
        ("prefix /aaa/bbb matches /aaa/bbb (longest)", "prefix-path-rules", "/aaa/bbb", 200, "aaa-slash-bbb-prefix"),
        ("prefix /aaa/bbb matches /aaa/bbb/ccc", "prefix-path-rules", "/aaa/bbb/ccc", 200, "aaa-slash-bbb-prefix"),
        ("prefix /aaa matches /aaa/ccc", "prefix-path-rules", "/aaa/ccc", 200, "aaa-prefix"),
        ("prefix /aaa does not match /aaaccc", "prefix-path-rules", "/aaaccc", 404, None),
        ("mixed: exact /foo is preferred", "mixed-path-rules", "/foo", 200, "foo-exact"),
        ("prefix /aaa/bbb/ matches /aaa/bbb", "trailing-slash-path-rules", "/aaa/bbb", 200,
         "aaa-slash-bbb-slash-prefix"),
        ("prefix /aaa/bbb/ matches /aaa/bbb/", "trailing-slash-path-rules", "/aaa/bbb/", 200,
         "aaa-slash-bbb-slash-prefix"),
        ("exact /foo/ does not match /foo", "trailing-slash-path-rules", "/foo", 404, None),
    ]

    def test_path_rules(self):
        for scenario, host, path, status, svc in self.ROWS:
            with self.subTest(scenario):
                r = go_request(self.srv, "GET", host, path)
                self.assertEqual(r.status, status, r)
                if status == 200:
                    self.assert_captured(r, service=svc, host=host, path=path, method="GET")

    def test_mixed_prefix_still_serves_longer_paths(self):
        # Beyond the suite: on mixed-path-rules, /foo/x is not Exact /foo, so Prefix /foo answers.
        r = go_request(self.srv, "GET", "mixed-path-rules", "/foo/x")
        self.assert_captured(r, service="foo-prefix", path="/foo/x")


# ----------------------------------------------------------------------------
# features/ingress_class.feature
# ----------------------------------------------------------------------------

class IngressClass(ConformanceCase):
    NAMESPACE = "ingress-conformance-ic"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        objs = cls.start_backends(["ingress-class-prefix", "ours-prefix", "classless-prefix", "missing-prefix"],
                                  cls.NAMESPACE)
        objs += [
            h.ingress_class("some-invalid-class-name", controller="example.com/another-controller"),
            h.ingress_class("ours", controller=h.CONTROLLER_NAME),
            h.ingress("test-ingress-class", namespace=cls.NAMESPACE, class_name="some-invalid-class-name", rules=[
                h.rule("ingress-class", [h.http_path("/", "ingress-class-prefix")])]),
            h.ingress("names-missing-class", namespace=cls.NAMESPACE, class_name="no-such-class", rules=[
                h.rule("missing-class", [h.http_path("/", "missing-prefix")])]),
            h.ingress("our-class", namespace=cls.NAMESPACE, class_name="ours", rules=[
                h.rule("our-class", [h.http_path("/", "ours-prefix")])]),
            h.ingress("classless", namespace=cls.NAMESPACE, rules=[
                h.rule("classless", [h.http_path("/", "classless-prefix")])]),
        ]
        cls.serve(objs)

    def test_invalid_ingress_class_is_not_served(self):
        r = go_request(self.srv, "GET", "ingress-class", "/")
        self.assertEqual(r.status, 404, r)
        states = {s["ingress"]: s["state"] for s in self.srv.config()["ingresses"]}
        self.assertEqual(states.get(self.NAMESPACE + "/test-ingress-class"), "Ignored", states)

    def test_class_that_names_no_ingressclass_is_not_served(self):
        self.assertEqual(go_request(self.srv, "GET", "missing-class", "/").status, 404)

    def test_our_class_and_classless_are_served(self):
        self.assert_captured(go_request(self.srv, "GET", "our-class", "/"), service="ours-prefix")
        self.assert_captured(go_request(self.srv, "GET", "classless", "/"), service="classless-prefix")


# ----------------------------------------------------------------------------
# features/load_balancing.feature
# ----------------------------------------------------------------------------

class LoadBalancing(ConformanceCase):
    NAMESPACE = "ingress-conformance-lb"
    REPLICAS = 10

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pods = [cls.cres.start_echo("echo-service", namespace=cls.NAMESPACE) for _ in range(cls.REPLICAS)]
        cls.ing = h.ingress("load-balancing", namespace=cls.NAMESPACE, default_backend="echo-service")
        # Start with one replica, as the suite does before it scales the Deployment.
        cls.serve(h.backend_objects("echo-service", [cls.pods[0].port], namespace=cls.NAMESPACE) + [cls.ing],
                  workers=2)

    def scale_to(self, n):
        """Rewrites the EndpointSlices to the first n echo pods and waits until ingressd uses them."""
        def endpoints():
            return len(self.srv.config()["routes"]["defaultBackend"]["backend"]["endpoints"])
        if endpoints() == n:
            return
        before = self.srv.reloads()
        h.write_manifests(self.dir, h.backend_objects("echo-service", [p.port for p in self.pods[:n]],
                                                      namespace=self.NAMESPACE) + [self.ing])
        self.srv.wait_reload(before)
        h.wait_until(lambda: endpoints() == n, timeout=3, what="%d endpoints" % n)

    def test_requests_reach_all_ten_endpoints_after_scale_up(self):
        self.scale_to(1)
        self.assert_captured(go_request(self.srv, "GET", "load-balancing", "/"), service="echo-service")
        self.scale_to(self.REPLICAS)
        # 100 requests on one keep-alive connection (Go's client reuses its connection).
        by_status = {}
        with self.srv.conn() as c:
            for _ in range(100):
                c.send(h.build_request("GET", "/", "load-balancing", {"User-Agent": GO_UA}))
                r = c.read_response()
                by_status.setdefault(r.status, set()).add(r.json()["pod"] if r.status == 200 else None)
        self.assertEqual(set(by_status), {200}, by_status)
        self.assertEqual(len(by_status[200]), self.REPLICAS, sorted(by_status[200]))
        self.assertEqual(by_status[200], {p.pod for p in self.pods})

    def test_new_connections_also_spread(self):
        # Two workers, a new connection per request: every endpoint is still reached.
        self.scale_to(self.REPLICAS)
        pods = set()
        for _ in range(100):
            r = go_request(self.srv, "GET", "load-balancing", "/")
            self.assertEqual(r.status, 200, r)
            pods.add(r.json()["pod"])
        self.assertEqual(pods, {p.pod for p in self.pods})


if __name__ == "__main__":
    unittest.main()
