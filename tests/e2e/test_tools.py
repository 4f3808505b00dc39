"""The offline tools: `ingressd check`, `routes`, `explain`, `version`, and the
live /debug/explain of `serve`, which must answer what `explain -o json` says
for the configuration in force.
"""

import json
import os
import re
import unittest
import urllib.parse

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

EP_PORT = 9  # endpoints are only printed, never connected to, in these tests


def line_of(text, needle):
    """1-based number of the first line containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in text" % needle)


def cli_json(test, args, rc=0):
    code, out, err = h.run_cli(args)
    test.assertEqual(code, rc, "ingressd %s: rc %d\n%s%s" % (" ".join(args), code, out, err))
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError("ingressd %s: not JSON (%s):\n%s" % (" ".join(args), e, out))


def manifests(include_a=True):
    """foo.example.com: Ingress a (Exact /api, Prefix /), a wildcard rule, Ingress b claiming a's Prefix /
    (loses by name), Ingress c of another controller's class; bar.example.com/missing names no Service."""
    objs = []
    for svc in ("web", "api", "wild", "other", "theirs"):
        objs += h.backend_objects(svc, [EP_PORT])
    objs += [h.ingress_class("ours"), h.ingress_class("theirs", controller="example.com/other")]
    if include_a:
        objs.append(h.ingress("a", rules=[
            h.rule("foo.example.com", [h.http_path("/api", "api", "Exact"), h.http_path("/", "web")]),
            h.rule("*.example.com", [h.http_path("/", "wild")])]))
    objs += [
        h.ingress("b", rules=[h.rule("foo.example.com", [h.http_path("/", "other")])]),
        h.ingress("c", class_name="theirs", rules=[h.rule("foo.example.com", [h.http_path("/api", "theirs")])]),
        h.ingress("d", rules=[h.rule("bar.example.com", [h.http_path("/missing", "no-such-service")])]),
    ]
    return objs


class ToolsCase(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = cls.cres.tempdir()
        cls.file = h.write_manifests(cls.dir, manifests())


# ----------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------

BAD_SCHEMA = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: broken
spec:
  service:
    name: web
"""

BAD_INDENT = """apiVersion: v1
kind: Service
metadata:
  name: x
   bad: indent
spec:
  ports: []
"""

BAD_EOF = """apiVersion: v1
kind: Service
metadata:
  name: x
spec:
  ports: [
"""

BAD_QUOTE = """apiVersion: v1
kind: Service
metadata:
  name: x
  annotations:
    note: "unterminated
spec:
  ports:
  - port: 80
"""

BAD_TIMESTAMP = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: when
  creationTimestamp: yesterday
spec:
  defaultBackend:
    service:
      name: web
      port:
        number: 8080
"""


class Check(ToolsCase):
    def test_good_manifests_exit_0(self):
        rc, out, err = h.run_cli(["check", self.dir])
        self.assertEqual(rc, 0, out + err)
        # the conflict of Ingress b and the missing Service of Ingress d are warnings, not errors
        self.assertRegex(out, r"(?m)^0 error\(s\), 2 warning\(s\)")
        self.assertNotIn(": error:", out)

    def test_good_manifests_json(self):
        j = cli_json(self, ["check", "-o", "json", self.dir])
        for key in ("errors", "warnings", "diagnostics", "ingresses"):
            self.assertIn(key, j)
        self.assertEqual(j["errors"], 0)
        self.assertEqual(j["warnings"], 2)
        states = {s["ingress"]: s["state"] for s in j["ingresses"]}
        self.assertEqual(states["default/a"], "Accepted")
        self.assertEqual(states["default/c"], "Ignored")
        self.assertNotEqual(states["default/b"], "Accepted")
        conflict = [d for d in j["diagnostics"] if d["reason"] == "Conflict"]
        self.assertEqual(len(conflict), 1, j["diagnostics"])
        self.assertEqual(conflict[0]["object"], "Ingress default/b")
        self.assertIn("default/a", conflict[0]["message"])
        self.assertEqual(conflict[0]["file"], self.file)
        self.assertEqual(conflict[0]["severity"], "warning")

    def check_bad(self, text, needle=None):
        """A folder with good.yaml and bad.yaml: exit 1, one `bad.yaml:LINE: error:` line (LINE is the line of
        needle, or at least a line of the file), the same in -o json; returns the line."""
        d = self.tempdir()
        h.write_manifests(d, manifests(), "good.yaml")
        bad = os.path.join(d, "bad.yaml")
        h.write_file(bad, text)
        rc, out, err = h.run_cli(["check", d])
        self.assertEqual(rc, 1, out + err)
        errors = re.findall(r"(?m)^" + re.escape(bad) + r":(\d+): error: ", out)
        self.assertEqual(len(errors), 1, out)
        line = int(errors[0])
        if needle is not None:
            self.assertEqual(line, line_of(text, needle), out)
        else:
            # a line of the file, or the end of the file (the line after the last newline)
            self.assertTrue(1 <= line <= len(text.splitlines()) + 1, "line %d is not in the %d-line file:\n%s" %
                            (line, len(text.splitlines()), out))
        self.assertNotIn("good.yaml:", "\n".join(l for l in out.splitlines() if ": error: " in l))
        j = cli_json(self, ["check", "-o", "json", d], rc=1)
        self.assertEqual(j["errors"], 1)
        errs = [x for x in j["diagnostics"] if x["severity"] == "error"]
        self.assertEqual([(x["file"], x["line"]) for x in errs], [(bad, line)])
        self.assertIn("default/a", {s["ingress"] for s in j["ingresses"]})   # the rest still compiles
        return line

    def test_folder_with_a_bad_manifest_exits_1(self):
        with self.subTest("unknown field"):
            self.check_bad(BAD_SCHEMA, "  service:")
        with self.subTest("bad indentation"):
            self.check_bad(BAD_INDENT, "   bad: indent")

    def test_syntax_error_at_end_of_file_names_a_line_of_the_file(self):
        self.check_bad(BAD_EOF)

    def test_unterminated_quoted_string_is_an_error(self):
        self.check_bad(BAD_QUOTE)

    def test_creation_timestamp_must_be_rfc3339(self):
        # the API server (metav1.Time, time.RFC3339) refuses it
        self.check_bad(BAD_TIMESTAMP, "creationTimestamp")


# ----------------------------------------------------------------------------
# routes
# ----------------------------------------------------------------------------

class Routes(ToolsCase):
    EXPECTED = {
        # (host, path, pathType) → (ingress, rule, pathIndex, service)
        ("foo.example.com", "/api", "Exact"): ("default/a", 0, 0, "api"),
        ("foo.example.com", "/", "Prefix"): ("default/a", 0, 1, "web"),
        ("*.example.com", "/", "Prefix"): ("default/a", 1, 0, "wild"),
        ("bar.example.com", "/missing", "Prefix"): ("default/d", 0, 0, "no-such-service"),
    }

    def test_routes_text(self):
        rc, out, err = h.run_cli(["routes", self.dir])
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(len(lines), len(self.EXPECTED), out)
        for (host, path, ptype), (ing, ri, pi, svc) in self.EXPECTED.items():
            with self.subTest(host=host, path=path):
                want = "%s %s %s -> default/%s:8080 " % (host, path, ptype, svc)
                hits = [l for l in lines if l.startswith(want)]
                self.assertEqual(len(hits), 1, out)
                self.assertIn("(ingress %s rule %d path %d)" % (ing, ri, pi), hits[0])
                if svc != "no-such-service":
                    self.assertIn("[127.0.0.1:%d]" % EP_PORT, hits[0])
        self.assertNotIn("default/b", out)
        self.assertNotIn("default/c", out)

    def test_routes_json(self):
        j = cli_json(self, ["routes", "-o", "json", self.dir])
        got = {}
        for r in j["routes"]:
            got[(r["host"], r["path"], r["pathType"])] = (r["ingress"], r["rule"], r["pathIndex"],
                                                          r["backend"]["service"])
            self.assertEqual(r["backend"]["namespace"], "default")
        self.assertEqual(got, self.EXPECTED)
        api = [r for r in j["routes"] if r["path"] == "/api"][0]
        self.assertEqual(api["backend"]["endpoints"], ["127.0.0.1:%d" % EP_PORT])
        missing = [r for r in j["routes"] if r["path"] == "/missing"][0]
        self.assertEqual(missing["backend"]["endpoints"], [])
        self.assertIn("unavailable", missing["backend"])


# ----------------------------------------------------------------------------
# explain
# ----------------------------------------------------------------------------

class Explain(ToolsCase):
    def explain_json(self, url, *extra, directory=None):
        return cli_json(self, ["explain", "-o", "json", directory or self.dir, url] + list(extra))

    @staticmethod
    def misses(j):
        return {(m["ingress"], m["rule"], m["pathIndex"]): m for m in j["nearMisses"]}

    def test_text_names_match_and_near_misses(self):
        rc, out, err = h.run_cli(["explain", self.dir, "http://foo.example.com/api/x"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("matched Ingress default/a spec.rules[0]", out)
        self.assertIn('path "/" (Prefix)', out)
        self.assertIn("default/web:8080", out)
        self.assertIn("127.0.0.1:%d" % EP_PORT, out)
        self.assertIn("near misses:", out)
        miss = {}
        for l in out.splitlines():
            m = re.match(r"\s*✗ Ingress (\S+) spec\.rules\[(\d+)\]\.http\.paths\[(\d+)\] .*: (.*)$", l)
            if m:
                miss[(m.group(1), int(m.group(2)), int(m.group(3)))] = l
        self.assertEqual(set(miss), {("default/a", 0, 0), ("default/a", 1, 0), ("default/b", 0, 0),
                                     ("default/c", 0, 0)}, out)
        self.assertIn("Exact", miss[("default/a", 0, 0)])
        self.assertIn("not the whole path", miss[("default/a", 0, 0)])
        self.assertIn("less specific", miss[("default/a", 1, 0)])
        self.assertIn("default/a", miss[("default/b", 0, 0)].split(":", 1)[1])
        self.assertIn("not served by this controller", miss[("default/c", 0, 0)])

    def test_json_names_match_and_near_misses(self):
        j = self.explain_json("http://foo.example.com/api/x")
        self.assertEqual(j["normalizedHost"], "foo.example.com")
        self.assertEqual(j["normalizedPath"], "/api/x")
        m = j["match"]
        self.assertEqual((m["kind"], m["ingress"], m["rule"], m["pathIndex"], m["rulePath"], m["pathType"]),
                         ("path", "default/a", 0, 1, "/", "Prefix"))
        self.assertEqual(m["backend"]["service"], "default/web")
        self.assertEqual(m["backend"]["endpoints"], ["127.0.0.1:%d" % EP_PORT])
        misses = self.misses(j)
        self.assertEqual(set(misses), {("default/a", 0, 0), ("default/a", 1, 0), ("default/b", 0, 0),
                                       ("default/c", 0, 0)})
        self.assertIn("not the whole path", misses[("default/a", 0, 0)]["why"])
        self.assertEqual(misses[("default/a", 0, 0)]["pathType"], "Exact")
        self.assertIn("less specific", misses[("default/a", 1, 0)]["why"])
        self.assertEqual(misses[("default/a", 1, 0)]["ruleHost"], "*.example.com")
        self.assertIn("default/a", misses[("default/b", 0, 0)]["why"])          # the conflict winner
        self.assertIn("precedence", misses[("default/b", 0, 0)]["why"])
        self.assertIn("not served by this controller", misses[("default/c", 0, 0)]["why"])
        self.assertIn("theirs", misses[("default/c", 0, 0)]["why"])
        self.assertEqual(misses[("default/b", 0, 0)]["backend"], "other:8080")

    def test_exact_match_and_wildcard_match(self):
        j = self.explain_json("http://foo.example.com/api")
        self.assertEqual((j["match"]["ingress"], j["match"]["pathType"], j["match"]["rulePath"]),
                         ("default/a", "Exact", "/api"))
        self.assertIn(("default/a", 0, 1), self.misses(j))   # Prefix / loses to the Exact match
        j = self.explain_json("http://x.example.com/anything")
        self.assertEqual((j["match"]["ingress"], j["match"]["rule"], j["match"]["ruleHost"]),
                         ("default/a", 1, "*.example.com"))
        self.assertEqual(j["match"]["backend"]["service"], "default/wild")

    def test_no_match_and_unavailable_backend(self):
        j = self.explain_json("http://nothing.example.org/")
        self.assertEqual(j["match"]["kind"], "none")
        self.assertEqual(j["match"]["status"], 404)
        j = self.explain_json("http://bar.example.com/missing/x")
        self.assertEqual(j["match"]["ingress"], "default/d")
        self.assertEqual(j["match"]["status"], 503)
        rc, out, _ = h.run_cli(["explain", self.dir, "http://bar.example.com/missing"])
        self.assertEqual(rc, 0)
        self.assertIn("503", out)

    def test_request_is_normalised_like_the_proxy_does(self):
        j = self.explain_json("http://FOO.example.com:8080/x/../%61pi?q=1")
        self.assertEqual((j["normalizedHost"], j["normalizedPath"]), ("foo.example.com", "/api"))
        self.assertEqual((j["match"]["ingress"], j["match"]["pathType"], j["match"]["rulePath"]),
                         ("default/a", "Exact", "/api"))

    def test_host_header_form_equals_url_form(self):
        a = self.explain_json("http://foo.example.com/api/x")
        b = self.explain_json("/api/x", "-H", "Host: foo.example.com")
        self.assertEqual(a, b)


# ----------------------------------------------------------------------------
# live /debug/explain
# ----------------------------------------------------------------------------

class LiveExplain(h.E2ETestCase):
    URLS = ["http://foo.example.com/api/x", "http://foo.example.com/api", "http://x.example.com/",
            "http://bar.example.com/missing", "http://nothing.example.org/a/b"]

    def live(self, srv, **params):
        r = srv.admin("/debug/explain?" + urllib.parse.urlencode(params))
        self.assertEqual(r.status, 200, r)
        self.assertTrue((r.headers.get("Content-Type") or "").startswith("application/json"), r)
        return r.json()

    def test_live_explain_answers_like_the_cli_for_the_config_in_force(self):
        d = self.tempdir()
        h.write_manifests(d, manifests())
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        for url in self.URLS:
            with self.subTest(url=url):
                self.assertEqual(self.live(srv, url=url), cli_json(self, ["explain", "-o", "json", d, url]))
        with self.subTest("host and path parameters"):
            self.assertEqual(self.live(srv, host="foo.example.com", path="/api/x"),
                             cli_json(self, ["explain", "-o", "json", d, "/api/x", "-H", "Host:foo.example.com"]))

        # New configuration: without Ingress a, Ingress b takes foo.example.com/.
        before = srv.reloads()
        h.write_manifests(d, manifests(include_a=False))
        srv.wait_reload(before)
        j = self.live(srv, url="http://foo.example.com/api/x")
        self.assertEqual(j["match"]["ingress"], "default/b")
        for url in self.URLS:
            with self.subTest(url=url, config="without a"):
                self.assertEqual(self.live(srv, url=url), cli_json(self, ["explain", "-o", "json", d, url]))

    def test_live_explain_with_another_controller_name(self):
        d = self.tempdir()
        h.write_manifests(d, manifests())
        srv = self.start_ingressd(d, ["--controller-name", "example.com/other"])
        url = "http://foo.example.com/api/x"
        live = self.live(srv, url=url)
        self.assertEqual(live["match"]["ingress"], "default/c")     # now Ingress c of class theirs is ours
        self.assertEqual(live, cli_json(self, ["explain", "-o", "json", "--controller-name", "example.com/other",
                                               d, url]))

    def test_live_explain_without_url_is_400(self):
        d = self.tempdir()
        h.write_manifests(d, manifests())
        srv = self.start_ingressd(d)
        self.assertEqual(srv.admin("/debug/explain").status, 400)


# ----------------------------------------------------------------------------
# version
# ----------------------------------------------------------------------------

class Version(h.E2ETestCase):
    def test_version(self):
        rc, out, err = h.run_cli(["version"])
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out.strip(), r"^ingressd \d+\.\d+\.\d+\S*$")


# ----------------------------------------------------------------------------
# migrate
# ----------------------------------------------------------------------------

def annotated_ingress(name, host, annotations):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}}


class Migrate(h.E2ETestCase):
    def run_migrate(self, objects, *extra):
        d = self.tempdir()
        h.write_manifests(d, objects)
        return h.run_cli(["migrate", d] + list(extra))

    def test_honoured_only_exits_0(self):
        rc, out, err = self.run_migrate([annotated_ingress("a", "a.example", {
            "nginx.ingress.kubernetes.io/rewrite-target": "/", "nginx.ingress.kubernetes.io/ssl-redirect": "false"})])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("honoured", out)
        self.assertIn("serves", out)

    def test_not_yet_and_unknown_exit_2(self):
        rc, out, err = self.run_migrate([annotated_ingress("a", "a.example", {
            "nginx.ingress.kubernetes.io/custom-http-errors": "404", "nginx.ingress.kubernetes.io/no-such": "x"})])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("not yet", out)
        self.assertIn("unknown", out)

    def test_fail_closed_exits_1_and_json_says_why(self):
        objs = [annotated_ingress("auth", "a.example", {"nginx.ingress.kubernetes.io/auth-url": "http://auth/"}),
                annotated_ingress("snip", "b.example", {"nginx.ingress.kubernetes.io/server-snippet": "return 200;"}),
                annotated_ingress("bad", "c.example", {"nginx.ingress.kubernetes.io/proxy-body-size": "10Q"})]
        rc, out, err = self.run_migrate(objs, "-o", "json")
        self.assertEqual(rc, 1, out + err)
        j = json.loads(out)
        by = {i["ingress"]: i for i in j["ingresses"]}
        self.assertFalse(by["default/auth"]["serves"])
        self.assertEqual(by["default/auth"]["annotations"][0]["status"], "fail closed")
        self.assertIn("503", by["default/auth"]["verdict"])
        self.assertEqual(by["default/snip"]["annotations"][0]["status"], "refused")
        self.assertTrue(by["default/bad"]["serves"])
        self.assertEqual(by["default/bad"]["annotations"][0]["status"], "invalid")
        self.assertEqual(j["blocked"], 2)
        rc, _, _ = self.run_migrate(objs[:1], "--allow-unenforced-annotations")
        self.assertEqual(rc, 0)

    def test_table_lists_every_documented_annotation(self):
        rc, out, _ = h.run_cli(["migrate", "--table"])
        self.assertEqual(rc, 0)
        for name in ["rewrite-target", "auth-url", "configuration-snippet", "canary-weight", "whitelist-source-range"]:
            self.assertIn("| `%s` |" % name, out)


class Convert(h.E2ETestCase):
    """`ingressd convert`: the converted Gateway API objects route as the Ingresses did (compared through explain
    on both), and every annotation it cannot express is said."""

    N = "nginx.ingress.kubernetes.io/"

    def ingresses(self):
        def ing(name, host, paths, annotations=None, tls=None):
            o = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                 "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
                 "spec": {"rules": [{"host": host, "http": {"paths": [
                     {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 8080}}}}
                     for p, t, svc in paths]}}]}}
            if tls:
                o["spec"]["tls"] = tls
            return o
        return [
            ing("rewrite", "rewrite.example", [("/something(/|$)(.*)", "ImplementationSpecific", "web")],
                {self.N + "rewrite-target": "/$2", self.N + "upstream-vhost": "internal.example"}),
            ing("plain", "plain.example", [("/", "Prefix", "web"), ("/exact", "Exact", "other")],
                {self.N + "x-forwarded-prefix": "/p"}),
            ing("redirect", "redirect.example", [("/", "Prefix", "web")],
                {self.N + "permanent-redirect": "https://www.example.com/new"}),
            ing("canary", "plain.example", [("/", "Prefix", "other")],
                {self.N + "canary": "true", self.N + "canary-by-header": "X-Canary"}),
        ]

    def explain(self, d, url, headers=()):
        args = ["explain", d, url, "-o", "json", "--https-port", "0"]
        for hd in headers:
            args += ["-H", hd]
        return cli_json(self, args)

    def test_converted_objects_route_as_the_ingresses(self):
        backends = h.backend_objects("web", [18080]) + h.backend_objects("other", [18081])
        src = self.tempdir()
        h.write_manifests(src, self.ingresses() + backends)
        rc, out, err = h.run_cli(["convert", src, "-o", "json"])
        self.assertEqual(rc, 0, out + err)
        converted = json.loads(out)["objects"]
        kinds = sorted({o["kind"] for o in converted})
        self.assertEqual(kinds, ["Gateway", "GatewayClass", "HTTPRoute"])
        dst = self.tempdir()
        h.write_manifests(dst, converted + backends)
        cli_json(self, ["check", "-o", "json", dst])  # exit 0: every converted object is valid and accepted
        cases = [("http://rewrite.example/something/new?x=1", ()), ("http://rewrite.example/something", ()),
                 ("http://plain.example/exact", ()), ("http://plain.example/exact/no", ()),
                 ("http://plain.example/a", ()), ("http://plain.example/a", ("X-Canary: always",)),
                 ("http://redirect.example/x", ())]
        for url, headers in cases:
            a, b = self.explain(src, url, headers), self.explain(dst, url, headers)
            for key in ("upstreamPath", "upstreamHost"):
                self.assertEqual(a.get(key), b.get(key), "%s %s: %s\nIngress: %s\nHTTPRoute: %s" % (url, headers, key, a, b))
            self.assertEqual(a["decision"], b["decision"], "%s %s" % (url, headers))
            if a["decision"]["verdict"] == "forward":
                self.assertEqual(a["match"]["backend"]["service"], b["match"]["backend"]["service"],
                                 "%s %s\nIngress: %s\nHTTPRoute: %s" % (url, headers, a, b))
            self.assertEqual(b["match"]["kind"], "httproute", b)

    def test_protection_that_cannot_be_expressed_exits_1_and_says_so(self):
        src = self.tempdir()
        h.write_manifests(src, [annotated_ingress("guarded", "g.example", {
            self.N + "whitelist-source-range": "10.0.0.0/8", self.N + "proxy-body-size": "8m"})])
        rc, out, err = h.run_cli(["convert", src])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("whitelist-source-range: NOT EXPRESSIBLE", out)
        self.assertIn("proxy-body-size: not expressible", out)
        self.assertIn("kind: HTTPRoute", out)


if __name__ == "__main__":
    unittest.main()
