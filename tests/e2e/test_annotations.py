"""The ingress-nginx annotations ingressd honours, end to end.

One ingressd serves one Ingress per host (each with the annotations under
test) in front of `ingressd echo` upstreams, which answer with JSON describing
the request they got; every test sends real HTTP/1.1 requests on loopback and
asserts what a user sees: the status, the Location, the path, Host and headers
the upstream saw, the response headers. `ingressd check` is run on small
manifest folders for what it must report.

Covered: rewrite-target with capture groups (the ingress-nginx documentation
example; query kept; case-insensitive regex), use-regex (longest regex first,
the docs' warning example) and regex mode spreading to every Ingress of the
host, a regex-looking path without use-regex (literal, LiteralRegex warning),
app-root, permanent/temporal redirects and their codes, upstream-vhost,
x-forwarded-prefix, whitelist/denylist-source-range (403; an invalid CIDR
fails closed with 503 and an error), fail closed for auth-url, auth-type and
configuration-snippet (503, check exits 1, --allow-unenforced-annotations
serves), one refused Ingress not taking the others down, proxy-body-size
(Content-Length and chunked), ssl-redirect "false" on a TLS host and
force-ssl-redirect without TLS, ingressd.io/request-headers and
response-headers, ingressd.io/ winning over nginx.ingress.kubernetes.io/,
unknown annotations (warned, served), canary Ingresses (by header, cookie and weight).
"""

import base64
import subprocess
import json
import os
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

N = "nginx.ingress.kubernetes.io/"
O = "ingressd.io/"
IS = "ImplementationSpecific"


def ing(name, host, paths=(("/", "main"),), annotations=None, path_type="Prefix"):
    """An Ingress with one rule for `host`: paths are (path, service) or (path, service, pathType)."""
    hp = []
    for p in paths:
        hp.append(h.http_path(p[0], p[1], p[2] if len(p) > 2 else path_type))
    return h.ingress(name, rules=[h.rule(host, hp)], annotations=annotations)


def seen(test, resp, service=None):
    """The request as the echo upstream saw it (asserting a 200 from `service`)."""
    test.assertEqual(resp.status, 200, resp)
    j = resp.json()
    if service:
        test.assertEqual(j["service"], service, j)
    return j


def check(test, objects, extra=()):
    """`ingressd check -o json` on a folder holding `objects`; returns (rc, JSON)."""
    d = test.tempdir()
    h.write_manifests(d, objects)
    rc, out, err = h.run_cli(["check", "-o", "json"] + list(extra) + [d])
    try:
        return rc, json.loads(out)
    except ValueError as e:
        raise AssertionError("check: not JSON (%s):\n%s%s" % (e, out, err))


def diags(j, name=None, severity=None, reason=None):
    """check's diagnostics about Ingress `name` (by object), with that severity and reason."""
    out = []
    for d in j["diagnostics"]:
        if name is not None and not d["object"].endswith("/" + name):
            continue
        if severity is not None and d["severity"] != severity:
            continue
        if reason is not None and d["reason"] != reason:
            continue
        out.append(d)
    return out


# Every Ingress the class's ingressd serves, one host each (unless said otherwise).
def class_ingresses():
    return [
        # 1. the rewrite-target example of the ingress-nginx documentation
        ing("rewrite", "rewrite.example", [("/something(/|$)(.*)", "main", IS)], {N + "rewrite-target": "/$2"}),
        # 2. the use-regex warning example: longest path string first, first match wins
        ing("regex", "regex.example", [("/foo/bar/bar", "bar", IS), ("/foo/bar/[A-Z0-9]{3}", "three", IS)],
            {N + "use-regex": "true"}),
        #    regex mode on one Ingress of a host makes the other Ingresses' paths of that host regexes too
        ing("spread-regex", "spread.example", [("/api/v[0-9]+", "bar", IS)], {N + "use-regex": "true"}),
        ing("spread-plain", "spread.example", [("/static", "three")]),
        ing("control-plain", "control.example", [("/static", "three")]),
        # 3. a regex-looking path without use-regex: literal
        ing("literal", "literal.example", [("/lit/a+", "main", IS)]),
        # 4. app-root
        ing("approot", "approot.example", [("/", "main")], {N + "app-root": "/app1"}),
        # 5. redirects
        ing("perm", "perm.example", annotations={N + "permanent-redirect": "https://www.example.com/new-home"}),
        ing("perm308", "perm308.example", annotations={N + "permanent-redirect": "https://www.example.com/p308",
                                                        N + "permanent-redirect-code": "308"}),
        ing("temp", "temp.example", annotations={N + "temporal-redirect": "https://temp.example.org/maintenance"}),
        # 6. upstream-vhost, x-forwarded-prefix
        ing("vhost", "vhost.example", annotations={N + "upstream-vhost": "internal.svc.local",
                                                   N + "x-forwarded-prefix": "/api"}),
        # 7. source ranges
        ing("allow10", "allow10.example", annotations={N + "whitelist-source-range": "10.0.0.0/8"}),
        ing("allow127", "allow127.example", annotations={N + "whitelist-source-range": "127.0.0.0/8"}),
        ing("allowlist", "allowlist.example",
            annotations={N + "whitelist-source-range": "10.0.0.0/8, 192.168.0.0/16,127.0.0.1"}),
        ing("deny", "deny.example", annotations={N + "denylist-source-range": "127.0.0.1/32"}),
        ing("badcidr", "badcidr.example", annotations={N + "whitelist-source-range": "10.0.0.0/33"}),
        # 8. fail closed
        ing("authurl", "authurl.example", annotations={N + "auth-url": "http://auth.example/"}),
        ing("authbasic", "authbasic.example", annotations={N + "auth-type": "basic"}),
        ing("snippet", "snippet.example", annotations={N + "configuration-snippet": "more_set_headers 'X-Y: z';"}),
        ing("plain", "plain.example"),
        # 9. proxy-body-size
        ing("body", "body.example", annotations={N + "proxy-body-size": "1k"}),
        # 10. ssl-redirect / force-ssl-redirect (spec.tls without a Secret: the default certificate)
        h.with_tls(ing("tlsoff", "tlsoff.example", annotations={N + "ssl-redirect": "false"}),
                   [(["tlsoff.example"], None)]),
        h.with_tls(ing("tlson", "tlson.example"), [(["tlson.example"], None)]),
        ing("force", "force.example", annotations={N + "force-ssl-redirect": "true"}),
        # 11. ingressd.io/ headers; ingressd.io/ wins over nginx.ingress.kubernetes.io/
        ing("headers", "headers.example", annotations={O + "request-headers": "X-A: 1\nX-B: 2",
                                                       O + "response-headers": "X-Frame-Options: DENY"}),
        ing("both", "both.example", annotations={N + "upstream-vhost": "nginx.internal",
                                                 O + "upstream-vhost": "ours.internal"}),
        # 12. an unknown annotation
        ing("unknown", "unknown.example", annotations={N + "no-such-thing": "yes"}),
        # 13. canary: "a-canary" sorts first by name, and still only gets what its annotations ask
        ing("a-canary", "canary.example", [("/", "canary")],
            {N + "canary": "true", N + "canary-weight": "30", N + "canary-by-header": "X-Canary",
             N + "canary-by-cookie": "use_canary"}),
        ing("b-main", "canary.example", [("/", "main")]),
        ing("c-canary", "canary-value.example", [("/", "canary")],
            {N + "canary": "true", N + "canary-by-header": "X-Region", N + "canary-by-header-value": "eu-west"}),
        ing("d-main", "canary-value.example", [("/", "main")]),
        ing("cors", "cors.example", annotations={N + "enable-cors": "true",
                                                 N + "cors-allow-origin": "https://app.example.com"}),
        ing("limited", "limited.example", annotations={N + "limit-rps": "1", N + "limit-burst-multiplier": "1"}),
        ing("oneatatime", "oneatatime.example", annotations={N + "limit-connections": "1"}),
        ing("e-lonely", "nomain.example", [("/", "canary")], {N + "canary": "true", N + "canary-weight": "100"}),
    ]


class Annotations(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = {}
        objs = []
        for name in ("main", "bar", "three", "canary"):
            e = cls.cres.start_echo(name)
            cls.echo[name] = e
            objs += h.backend_objects(name, [e.port])
        cls.backends = list(objs)
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs + class_ingresses())
        cls.d = cls.cres.start_ingressd(cls.dir)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def get(self, host, path, **kw):
        return self.d.get(path, host=host, **kw)

    # -- 1. rewrite-target ------------------------------------------------------------------------------------

    def test_rewrite_target_capture_groups_docs_example(self):
        for path, want in [("/something", "/"), ("/something/", "/"), ("/something/new", "/new"),
                           ("/something/new/deeper", "/new/deeper"), ("/something/new?x=1", "/new?x=1"),
                           ("/something?a=b&c=d", "/?a=b&c=d")]:
            with self.subTest(path=path):
                j = seen(self, self.get("rewrite.example", path), "main")
                self.assertEqual(j["path"], want, j)

    def test_rewrite_target_regex_is_case_insensitive(self):
        j = seen(self, self.get("rewrite.example", "/SOMETHING/new"), "main")
        self.assertEqual(j["path"], "/new", j)
        j = seen(self, self.get("rewrite.example", "/SomeThing"), "main")
        self.assertEqual(j["path"], "/", j)

    def test_rewrite_target_regex_is_anchored_and_needs_its_boundary(self):
        # ^/something(/|$): "/somethingelse" and "/x/something/new" are not this location's
        self.assertEqual(self.get("rewrite.example", "/somethingelse").status, 404)
        self.assertEqual(self.get("rewrite.example", "/x/something/new").status, 404)

    # -- 2. use-regex ---------------------------------------------------------------------------------------

    def test_use_regex_longest_path_first_docs_warning_example(self):
        # "/foo/bar/[A-Z0-9]{3}" is the longer path string, so it is tried first and (case-insensitively)
        # matches "/foo/bar/bar": the /foo/bar/bar backend gets nothing.
        for path in ("/foo/bar/bar", "/foo/bar/BAR", "/foo/bar/ABC", "/foo/bar/a1b", "/foo/bar/bar/more"):
            with self.subTest(path=path):
                j = seen(self, self.get("regex.example", path), "three")
                self.assertEqual(j["path"], path, j)  # no rewrite-target: the path is kept
        self.assertEqual(self.get("regex.example", "/foo/bar/ba").status, 404)
        self.assertEqual(self.get("regex.example", "/foo/bar/a-b").status, 404)

    def test_regex_mode_spreads_to_other_ingresses_of_the_host(self):
        seen(self, self.get("spread.example", "/api/v2/users"), "bar")
        seen(self, self.get("spread.example", "/API/V10"), "bar")
        self.assertEqual(self.get("spread.example", "/api/vx").status, 404)
        # spread-plain's Prefix /static is "^/static", case-insensitive, on this host...
        for path in ("/static/app.js", "/staticfoo", "/STATIC/app.js"):
            with self.subTest(host="spread.example", path=path):
                seen(self, self.get("spread.example", path), "three")
        # ...while the same Ingress path on a host without regex mode stays an element-wise,
        # case-sensitive Prefix.
        seen(self, self.get("control.example", "/static/app.js"), "three")
        for path in ("/staticfoo", "/STATIC/app.js"):
            with self.subTest(host="control.example", path=path):
                self.assertEqual(self.get("control.example", path).status, 404)

    # -- 3. a regex-looking path without use-regex ----------------------------------------------------------

    def test_regex_looking_path_without_use_regex_is_literal(self):
        seen(self, self.get("literal.example", "/lit/a+"), "main")
        seen(self, self.get("literal.example", "/lit/a+/x"), "main")
        for path in ("/lit/aa", "/lit/a", "/LIT/a+"):
            with self.subTest(path=path):
                self.assertEqual(self.get("literal.example", path).status, 404)

    def test_check_warns_literal_regex(self):
        rc, j = check(self, self.backends + [ing("literal", "literal.example", [("/lit/a+", "main", IS),
                                                                                 ("/api/v[0-9]+", "main", IS)])])
        self.assertEqual(rc, 0, j)
        ws = diags(j, "literal", "warning", "LiteralRegex")
        self.assertEqual(len(ws), 2, j)
        self.assertIn("/lit/a+", ws[0]["message"] + ws[1]["message"])
        self.assertIn("/api/v[0-9]+", ws[0]["message"] + ws[1]["message"])
        # with use-regex it is a regex, and no warning
        rc, j = check(self, self.backends + [ing("literal", "literal.example", [("/api/v[0-9]+", "main", IS)],
                                                 {N + "use-regex": "true"})])
        self.assertEqual(rc, 0, j)
        self.assertEqual(diags(j, "literal", reason="LiteralRegex"), [], j)

    # -- 4. app-root ----------------------------------------------------------------------------------------

    def test_app_root(self):
        r = self.get("approot.example", "/")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.reason, "Found", r)
        self.assertTrue((r.headers.get("Location") or "").endswith("/app1"), r)
        self.assertNotIn(b'"service"', r.body)
        j = seen(self, self.get("approot.example", "/other"), "main")
        self.assertEqual(j["path"], "/other")
        j = seen(self, self.get("approot.example", "/app1"), "main")
        self.assertEqual(j["path"], "/app1")

    # -- 5. redirects ---------------------------------------------------------------------------------------

    def test_permanent_redirect(self):
        for path in ("/", "/any/path?q=1"):
            with self.subTest(path=path):
                r = self.get("perm.example", path)
                self.assertEqual(r.status, 301, r)
                self.assertEqual(r.reason, "Moved Permanently", r)
                self.assertEqual(r.headers.get("Location"), "https://www.example.com/new-home", r)

    def test_permanent_redirect_code_308(self):
        r = self.d.request("POST", "/form", host="perm308.example", body=b"a=1")
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.headers.get("Location"), "https://www.example.com/p308", r)

    def test_temporal_redirect(self):
        r = self.get("temp.example", "/x")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.reason, "Found", r)
        self.assertEqual(r.headers.get("Location"), "https://temp.example.org/maintenance", r)

    # -- 6. upstream-vhost, x-forwarded-prefix --------------------------------------------------------------

    def test_upstream_vhost_and_x_forwarded_prefix(self):
        j = seen(self, self.get("vhost.example", "/p"), "main")
        self.assertEqual(j["host"], "internal.svc.local", j)
        self.assertEqual(j["headers"].get("Host"), ["internal.svc.local"], j)
        self.assertEqual(j["headers"].get("X-Forwarded-Prefix"), ["/api"], j)
        # X-Forwarded-Host still tells the upstream what the client asked for
        self.assertEqual(j["headers"].get("X-Forwarded-Host"), ["vhost.example"], j)

    # -- 7. source ranges -----------------------------------------------------------------------------------

    def test_whitelist_source_range_outside_is_403(self):
        r = self.get("allow10.example", "/")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.reason, "Forbidden", r)
        self.assertNotIn(b'"service"', r.body)

    def test_whitelist_source_range_ignores_client_forwarded_headers(self):
        # the TCP peer (127.0.0.1) is checked, not what the client claims
        r = self.get("allow10.example", "/", headers={"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"})
        self.assertEqual(r.status, 403, r)

    def test_whitelist_source_range_inside_is_served(self):
        seen(self, self.get("allow127.example", "/"), "main")
        seen(self, self.get("allowlist.example", "/"), "main")

    def test_denylist_source_range_is_403(self):
        r = self.get("deny.example", "/")
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(b'"service"', r.body)

    def test_invalid_cidr_fails_closed(self):
        r = self.get("badcidr.example", "/")
        self.assertEqual(r.status, 503, r)
        self.assertNotIn(b'"service"', r.body)
        rc, j = check(self, self.backends + [ing("badcidr", "badcidr.example",
                                                 annotations={N + "whitelist-source-range": "10.0.0.0/33"})])
        self.assertEqual(rc, 1, j)
        es = diags(j, "badcidr", "error")
        self.assertTrue(es, j)
        self.assertTrue(any("whitelist-source-range" in d["message"] and "10.0.0.0/33" in d["message"] for d in es),
                        es)

    # -- 8. fail closed -------------------------------------------------------------------------------------

    def test_auth_annotations_fail_closed(self):
        for host in ("authurl.example", "authbasic.example"):
            with self.subTest(host=host):
                for path in ("/", "/private/data"):
                    r = self.get(host, path)
                    self.assertEqual(r.status, 503, r)
                    self.assertNotIn(b'"service"', r.body)

    def test_snippet_fails_closed(self):
        r = self.get("snippet.example", "/")
        self.assertEqual(r.status, 503, r)
        self.assertNotIn(b'"service"', r.body)

    def test_other_ingresses_keep_serving(self):
        # the class's ingressd serves the refused Ingresses above; the others are unaffected
        seen(self, self.get("plain.example", "/"), "main")
        seen(self, self.get("plain.example", "/x/y"), "main")

    def test_check_names_fail_closed_annotations(self):
        for name, host, key, value, reason, word in [
                ("authurl", "authurl.example", "auth-url", "http://auth.example/", "UnsupportedAnnotation", None),
                ("authbasic", "authbasic.example", "auth-type", "basic", "InvalidAnnotation", None),  # no auth-secret
                ("snippet", "snippet.example", "configuration-snippet", "more_set_headers 'X-Y: z';",
                 "RefusedAnnotation", "refused")]:
            with self.subTest(annotation=key):
                rc, j = check(self, self.backends + [ing(name, host, annotations={N + key: value}),
                                                     ing("plain", "plain.example")])
                self.assertNotEqual(rc, 0, j)
                es = diags(j, name, "error", reason)
                self.assertTrue(es, j)
                self.assertTrue(any(N + key in d["message"] for d in es), es)
                if word:
                    self.assertTrue(any(word in d["message"] for d in es), es)
                states = {s["ingress"]: s["state"] for s in j["ingresses"]}
                self.assertEqual(states.get("default/plain"), "Accepted", j)
                self.assertNotEqual(states.get("default/" + name), "Accepted", j)

    def test_basic_auth_with_an_htpasswd_secret(self):
        # Hashes as `htpasswd` writes them: bcrypt (-B) and Apache MD5 (-m).
        lines = []
        for flag, user, pw in (("-B", "alice", "wonderland"), ("-m", "bob", "builder")):
            out = subprocess.run(["htpasswd", "-nb", flag, user, pw], capture_output=True, text=True, check=True)
            lines.append(out.stdout.strip())
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "users", "namespace": "default"},
                  "data": {"auth": base64.b64encode(("\n".join(lines) + "\n").encode()).decode()}}
        d = self.tempdir()
        h.write_manifests(d, self.backends + [secret, ing("basic", "basic.example", annotations={
            N + "auth-type": "basic", N + "auth-secret": "users", N + "auth-realm": "Staff only"})])
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        r = srv.get("/", host="basic.example")
        self.assertEqual(r.status, 401, r)
        self.assertIn('realm="Staff only"', r.headers.get("WWW-Authenticate") or "", r)
        self.assertNotIn(b'"service"', r.body)

        def auth(user, pw):
            return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}
        for _ in range(3):  # a keep-alive client's repeated requests
            seen(self, srv.get("/", host="basic.example", headers=auth("alice", "wonderland")), "main")
        seen(self, srv.get("/x", host="basic.example", headers=auth("bob", "builder")), "main")
        self.assertEqual(srv.get("/", host="basic.example", headers=auth("alice", "wrong")).status, 401)
        self.assertEqual(srv.get("/", host="basic.example", headers=auth("mallory", "builder")).status, 401)

    def test_allow_unenforced_annotations_serves(self):
        d = self.tempdir()
        h.write_manifests(d, self.backends + [
            ing("authurl", "authurl.example", annotations={N + "auth-url": "http://auth.example/"}),
            ing("authbasic", "authbasic.example", annotations={N + "auth-type": "basic"})])
        srv = self.start_ingressd(d, extra_args=["--allow-unenforced-annotations"])
        self.log_on_failure(srv)
        for host in ("authurl.example", "authbasic.example"):
            with self.subTest(host=host):
                seen(self, srv.get("/", host=host), "main")
        # the unenforced protection is still reported (as errors) by check, with or without the flag
        rc, j = check(self, self.backends + [ing("authurl", "authurl.example",
                                                 annotations={N + "auth-url": "http://auth.example/"})],
                      extra=["--allow-unenforced-annotations"])
        self.assertNotEqual(rc, 0, j)
        self.assertTrue(diags(j, "authurl", "error", "UnsupportedAnnotation"), j)

    # -- 9. proxy-body-size ---------------------------------------------------------------------------------

    def test_proxy_body_size_content_length(self):
        # Over the limit: 413 from the head alone (the body is never sent, so no reset can eat the answer).
        with self.d.conn() as c:
            c.send(h.build_request("POST", "/upload", "body.example", {"Content-Length": "2048"}))
            r = c.read_response("POST")
            self.assertEqual(r.status, 413, r)
            self.assertNotIn(b'"service"', r.body)
            self.assertTrue(c.is_closed(), "the connection should be closed after the 413")
        j = seen(self, self.d.request("POST", "/upload", host="body.example", body=b"x" * 512), "main")
        self.assertEqual(j["body_size"], 512)
        j = seen(self, self.d.request("POST", "/upload", host="body.example", body=b"x" * 1024), "main")
        self.assertEqual(j["body_size"], 1024)  # the limit itself is allowed
        # another host keeps the default limit
        j = seen(self, self.d.request("POST", "/upload", host="plain.example", body=b"x" * 4096), "main")
        self.assertEqual(j["body_size"], 4096)

    def test_proxy_body_size_chunked(self):
        # Under the limit in chunks: forwarded whole.
        with self.d.conn() as c:
            c.send(h.build_request("POST", "/upload", "body.example", {"Transfer-Encoding": "chunked"}) +
                   b"100\r\n" + b"y" * 256 + b"\r\n100\r\n" + b"y" * 256 + b"\r\n0\r\n\r\n")
            j = seen(self, c.read_response("POST"), "main")
            self.assertEqual(j["body_size"], 512)
        # Over the limit: the echo upstream answers only after the whole body, so no response has started
        # when ingressd counts the byte past 1k: it answers 413 and closes (exchange.cc).
        with self.d.conn() as c:
            c.send(h.build_request("POST", "/upload", "body.example", {"Transfer-Encoding": "chunked"}) +
                   b"400\r\n" + b"z" * 1024 + b"\r\n")
            c.send(b"400\r\n" + b"z" * 1024 + b"\r\n0\r\n\r\n")
            r = c.read_response("POST")
            self.assertEqual(r.status, 413, r)
            self.assertNotIn(b'"service"', r.body)
            self.assertTrue(c.is_closed(), "the connection should be closed after the 413")

    # -- 10. ssl-redirect, force-ssl-redirect ---------------------------------------------------------------

    def test_tls_host_redirects_by_default(self):
        r = self.get("tlson.example", "/x?y=1")
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.headers.get("Location"), "https://tlson.example:%d/x?y=1" % self.d.https_port, r)

    def test_ssl_redirect_false_on_tls_host_serves_plain_http(self):
        j = seen(self, self.get("tlsoff.example", "/x?y=1"), "main")
        self.assertEqual(j["path"], "/x?y=1")

    def test_force_ssl_redirect_without_tls(self):
        r = self.get("force.example", "/x?y=1")
        self.assertEqual(r.status, 308, r)
        self.assertEqual(r.headers.get("Location"), "https://force.example:%d/x?y=1" % self.d.https_port, r)

    # -- 11. ingressd.io/ headers and precedence ------------------------------------------------------------

    def test_request_and_response_headers(self):
        r = self.get("headers.example", "/h", headers={"X-A": "from-client"})
        j = seen(self, r, "main")
        self.assertEqual(j["headers"].get("X-A"), ["1"], j)  # set: replaces the client's field
        self.assertEqual(j["headers"].get("X-B"), ["2"], j)
        self.assertEqual(r.headers.get_all("X-Frame-Options"), ["DENY"], r)
        # another host gets neither
        r = self.get("plain.example", "/h")
        j = seen(self, r, "main")
        self.assertNotIn("X-A", j["headers"])
        self.assertIsNone(r.headers.get("X-Frame-Options"))

    def test_ingressd_prefix_wins_over_nginx_prefix(self):
        j = seen(self, self.get("both.example", "/"), "main")
        self.assertEqual(j["host"], "ours.internal", j)

    # -- 12. unknown annotations ----------------------------------------------------------------------------

    def test_unknown_annotation_warned_and_served(self):
        seen(self, self.get("unknown.example", "/"), "main")
        rc, j = check(self, self.backends + [ing("unknown", "unknown.example",
                                                 annotations={N + "no-such-thing": "yes"})])
        self.assertEqual(rc, 0, j)
        ws = diags(j, "unknown", "warning")
        self.assertTrue(any(N + "no-such-thing" in d["message"] for d in ws), j)
        self.assertEqual({s["ingress"]: s["state"] for s in j["ingresses"]}.get("default/unknown"), "Accepted", j)

    # -- 13. canary -----------------------------------------------------------------------------------------

    def svc(self, host, path="/", headers=None):
        r = self.get(host, path, headers=headers)
        self.assertEqual(r.status, 200, r)
        return r.json()["service"]

    def test_canary_by_header_overrides_cookie_and_weight(self):
        for i in range(10):
            self.assertEqual(self.svc("canary.example", "/h%d" % i, {"X-Canary": "always"}), "canary")
            self.assertEqual(self.svc("canary.example", "/h%d" % i,
                                      {"X-Canary": "never", "Cookie": "use_canary=always"}), "main")

    def test_canary_by_cookie_overrides_weight(self):
        for i in range(10):
            self.assertEqual(self.svc("canary.example", "/k", {"Cookie": "a=b; use_canary=always"}), "canary")
            self.assertEqual(self.svc("canary.example", "/k", {"Cookie": "use_canary=never"}), "main")

    def test_canary_weight_splits_traffic(self):
        n = 1000
        got = sum(self.svc("canary.example", "/w%d" % i) == "canary" for i in range(n))
        # 30 % of 1,000: a binomial's standard deviation is ~14.5; allow ±6 of them.
        self.assertTrue(300 - 90 <= got <= 300 + 90, got)

    def test_canary_by_header_value(self):
        self.assertEqual(self.svc("canary-value.example", "/", {"X-Region": "eu-west"}), "canary")
        self.assertEqual(self.svc("canary-value.example", "/", {"X-Region": "always"}), "main")
        self.assertEqual(self.svc("canary-value.example", "/"), "main")

    def test_cors_preflight_and_response_fields(self):
        with self.d.conn() as c:
            # The preflight is ours: 204, no body, and the connection stays usable.
            c.send(b"OPTIONS /api HTTP/1.1\r\nHost: cors.example\r\nOrigin: https://app.example.com\r\n"
                   b"Access-Control-Request-Method: PUT\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), "https://app.example.com")
            self.assertIn("PUT", r.headers.get("Access-Control-Allow-Methods") or "")
            self.assertEqual(r.headers.get("Access-Control-Max-Age"), "1728000")
            self.assertEqual(r.body, b"")
            c.send(b"GET /api HTTP/1.1\r\nHost: cors.example\r\nOrigin: https://app.example.com\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["service"], "main")
            self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), "https://app.example.com")
        r = self.get("cors.example", "/api", headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))

    def test_limit_rps_answers_503_past_the_burst(self):
        # 1 r/s with a burst of 1: two requests at once pass, a quick run of more does not all pass.
        statuses = [self.get("limited.example", "/r%d" % i).status for i in range(6)]
        self.assertEqual(statuses[:2], [200, 200], statuses)
        self.assertIn(503, statuses[2:], statuses)
        self.assertEqual(set(statuses) - {200, 503}, set(), statuses)

    def test_limit_connections_frees_the_slot_when_a_request_ends(self):
        # limit-connections 1: one request at a time from this address; one after the other all pass,
        # on one keep-alive connection and on new ones.
        for i in range(5):
            seen(self, self.get("oneatatime.example", "/n%d" % i), "main")
        with self.d.conn() as c:
            for i in range(3):
                c.send(b"GET /k HTTP/1.1\r\nHost: oneatatime.example\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)

    def test_canary_without_main_gets_no_traffic(self):
        self.assertEqual(self.get("nomain.example", "/").status, 404)


class Affinity(h.E2ETestCase):
    """affinity: cookie: a client keeps to the endpoint its cookie names; a new one gets a cookie."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        a, b = cls.cres.start_echo("sticky"), cls.cres.start_echo("sticky")
        objs = h.backend_objects("sticky", [a.port, b.port]) + [
            ing("sticky", "sticky.example", [("/", "sticky")], {N + "affinity": "cookie"}),
            ing("custom", "custom.example", [("/", "sticky")],
                {N + "affinity": "cookie", N + "session-cookie-name": "route", N + "session-cookie-max-age": "3600",
                 N + "session-cookie-samesite": "Lax", N + "session-cookie-path": "/app"}),
            ing("roundrobin", "rr.example", [("/", "sticky")]),
        ]
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.d = cls.cres.start_ingressd(cls.dir)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def test_new_client_gets_a_cookie_and_keeps_to_its_endpoint(self):
        r = self.d.get("/", host="sticky.example")
        self.assertEqual(r.status, 200, r)
        cookie = r.headers.get("set-cookie")
        self.assertRegex(cookie or "", r"^INGRESSCOOKIE=[0-9a-f]{16}; Path=/; HttpOnly$")
        pod = r.json()["pod"]
        value = cookie.split(";")[0]
        for _ in range(8):
            r = self.d.get("/", host="sticky.example", headers={"Cookie": "other=1; " + value})
            self.assertEqual(r.json()["pod"], pod)
            self.assertIsNone(r.headers.get("set-cookie"), "a kept endpoint sets no new cookie")

    def test_without_the_cookie_requests_are_balanced(self):
        pods = {self.d.get("/", host="rr.example").json()["pod"] for _ in range(6)}
        self.assertEqual(len(pods), 2, pods)
        self.assertIsNone(self.d.get("/", host="rr.example").headers.get("set-cookie"))

    def test_a_cookie_for_no_endpoint_gets_a_new_one(self):
        r = self.d.get("/", host="sticky.example", headers={"Cookie": "INGRESSCOOKIE=00000000deadbeef"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("deadbeef", r.headers.get("set-cookie") or "deadbeef")

    def test_cookie_attributes(self):
        r = self.d.get("/app", host="custom.example")
        self.assertRegex(r.headers.get("set-cookie") or "",
                         r"^route=[0-9a-f]{16}; Path=/app; Max-Age=3600; SameSite=Lax; HttpOnly$")


class Recorder:
    """A mirror backend on loopback that records every request it gets (method, path, Host, body) and answers
    200; stopped by the test class."""

    def __init__(self):
        import http.server
        import threading
        seen_requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen_requests.append((self.command, self.path, self.headers.get("Host"), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = do_HEAD = handle_one

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Mirrors(h.E2ETestCase):
    """mirror-target: a copy of each request goes to a Service of the Ingress's namespace; the client's exchange
    is the backend's alone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rec = Recorder()
        main = cls.cres.start_echo("main")
        dead_port = h.free_port()  # nothing listens there
        objs = h.backend_objects("main", [main.port]) + [
            h.service("mirror", port=8080, target_port=cls.rec.port),
            h.endpoint_slice("mirror", cls.rec.port),
            h.service("deadmirror", port=8080, target_port=dead_port),
            h.endpoint_slice("deadmirror", dead_port),
            ing("mirrored", "mirror.example",
                annotations={N + "mirror-target": "http://mirror.default.svc.cluster.local:8080$request_uri"}),
            ing("dead", "dead.example", annotations={N + "mirror-target": "http://deadmirror:8080$request_uri"}),
            ing("elsewhere", "elsewhere.example", annotations={N + "mirror-target": "http://mirror.other:8080"}),
        ]
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.d = cls.cres.start_ingressd(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.rec.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def mirrored(self, pred):
        h.wait_until(lambda: any(pred(r) for r in self.rec.requests), what="the mirror to get the request")

    def test_get_is_mirrored_with_its_query(self):
        r = self.d.get("/get/this?x=1", host="mirror.example")
        self.assertEqual(seen(self, r, "main")["path"], "/get/this?x=1")
        self.mirrored(lambda q: q[0] == "GET" and q[1] == "/get/this?x=1" and q[2] == "mirror.example")

    def test_post_body_is_mirrored(self):
        r = h.http_request(self.d.http_port, "POST", "/post", host="mirror.example", body=b"hello mirror")
        self.assertEqual(r.status, 200, r)
        self.mirrored(lambda q: q[0] == "POST" and q[1] == "/post" and q[3] == b"hello mirror")

    def test_dead_mirror_does_not_touch_the_response(self):
        for i in range(3):
            r = self.d.get("/d%d" % i, host="dead.example")
            self.assertEqual(seen(self, r, "main")["path"], "/d%d" % i)
        h.wait_until(lambda: b'ingressd_mirrored_requests_total{result="failed"} 3' in self.d.admin("/metrics").body,
                     what="three failed mirrors counted")

    def test_mirror_in_another_namespace_is_refused(self):
        self.assertEqual(self.d.get("/", host="elsewhere.example").status, 200)
        rc, j = check(self, [h.service("mirror"), ing("elsewhere", "elsewhere.example",
                                                       annotations={N + "mirror-target": "http://mirror.other:8080"})])
        found = diags(j, "elsewhere", "warning", "InvalidAnnotation")
        self.assertTrue(found, j)
        self.assertIn("own namespace", found[0]["message"])

    def test_bad_mirror_target_is_warned(self):
        rc, j = check(self, [h.service("mirror"), ing("x", "x.example",
                                                       annotations={N + "mirror-target": "https://example.com/x"})])
        self.assertTrue(diags(j, "x", "error", "InvalidAnnotation"), j)


if __name__ == "__main__":
    unittest.main()
