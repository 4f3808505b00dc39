"""The seed's examples, end to end.

examples/demo-services.yaml (with its EndpointSlice ports rewritten to the
echo processes started here) plus one of simple-ingress.yaml,
host-ingress.yaml, path-ingress.yaml; and the two broken versions of
simple-ingress.yaml the seed shows (kind: ingress, and spec.service), which
must produce exactly the Kubernetes API server's messages with file and line,
via `ingressd check` and in the `ingressd serve` log, while everything else
in the folder keeps serving.
"""

import os
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

# Fallback copies of the seed's broken manifests (used when the shared seed
# folder is not next to the repository).
SEED_V1 = """# simple-ingress.yaml v1
apiVersion: networking.k8s.io/v1
kind: ingress
metadata:
  name: simple-ingress
spec:
  service:
    name: alpaca
    port:
      number: 8080
"""
SEED_V2 = """# simple-ingress.yaml v2
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: simple-ingress
spec:
  service:
    name: alpaca
    port:
      number: 8080
"""

MSG_V1 = 'no kind "ingress" is registered for version "networking.k8s.io/v1"'
MSG_V2 = 'strict decoding error: unknown field "spec.service"'

DEMO_PORTS = {"alpaca": 9001, "bandicoot": 9002, "be-default": 9003}


def read(path):
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


def seed_text(name, fallback):
    p = os.path.join(h.SEED_EXAMPLES, name)
    return read(p) if os.path.isfile(p) else fallback


def line_of(text, needle):
    """1-based number of the first line containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in text" % needle)


class SeedExamples(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = {name: cls.cres.start_echo(name) for name in DEMO_PORTS}

    def make_dir(self, *example_files, extra=None):
        """A temp folder with demo-services.yaml (ports rewritten) and the named examples/ files."""
        d = self.tempdir()
        services = read(os.path.join(h.EXAMPLES, "demo-services.yaml"))
        for name, demo_port in DEMO_PORTS.items():
            old = "- port: %d\n" % demo_port
            self.assertEqual(services.count(old), 1, "demo-services.yaml should name port %d once" % demo_port)
            services = services.replace(old, "- port: %d\n" % self.echo[name].port)
        h.write_file(os.path.join(d, "demo-services.yaml"), services)
        for f in example_files:
            h.write_file(os.path.join(d, f), read(os.path.join(h.EXAMPLES, f)))
        for name, text in (extra or {}).items():
            h.write_file(os.path.join(d, name), text)
        return d

    def serve(self, d):
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        return srv

    # ---- each example alone -------------------------------------------------

    def test_simple_ingress_every_host_goes_to_alpaca(self):
        srv = self.serve(self.make_dir("simple-ingress.yaml"))
        for host in ("alpaca.example.com", "bandicoot.example.com", "anything.example.org", "localhost",
                     "127.0.0.1:%d" % srv.http_port):
            for path in ("/", "/a/b", "/x?y=1"):
                with self.subTest(host=host, path=path):
                    r = srv.get(path, host)
                    self.assertServedBy(r, "alpaca")
                    self.assertEqual(r.json()["path"], path)
                    self.assertEqual(r.json()["host"], host)

    def test_simple_ingress_http10_client_without_host(self):
        # "every host" includes none: an HTTP/1.0 request without Host goes to the default backend.
        srv = self.serve(self.make_dir("simple-ingress.yaml"))
        r = srv.request("GET", "/", host=None, version="HTTP/1.0")
        self.assertServedBy(r, "alpaca")

    def test_host_ingress_routes_by_host(self):
        srv = self.serve(self.make_dir("host-ingress.yaml"))
        cases = [
            ("alpaca.example.com", "/", "alpaca"),
            ("alpaca.example.com", "/deep/path?q=1", "alpaca"),
            ("ALPACA.Example.COM", "/", "alpaca"),           # host names are case-insensitive
            ("alpaca.example.com:%d" % srv.http_port, "/", "alpaca"),  # a port in Host is ignored for matching
            ("alpaca.example.com.", "/", "alpaca"),          # so is a trailing dot
            ("bandicoot.example.com", "/", "be-default"),
            ("x.alpaca.example.com", "/", "be-default"),
            ("example.com", "/", "be-default"),
            ("localhost", "/anything", "be-default"),
        ]
        for host, path, svc in cases:
            with self.subTest(host=host, path=path):
                r = srv.get(path, host)
                self.assertServedBy(r, svc)
                self.assertEqual(r.json()["host"], host)
                self.assertEqual(r.json()["path"], path)

    def test_path_ingress_routes_by_path(self):
        srv = self.serve(self.make_dir("path-ingress.yaml"))
        host = "bandicoot.example.com"
        cases = [
            ("/a/", "alpaca"),
            ("/a/b", "alpaca"),
            ("/a/b/c?d=e", "alpaca"),
            ("/a", "alpaca"),          # Prefix "/a/" matches "/a": the trailing slash is ignored
            ("/", "bandicoot"),
            ("/b", "bandicoot"),
            ("/ab", "bandicoot"),      # element-wise prefix: "/ab" is not under "/a/"
            ("/A/b", "bandicoot"),     # case-sensitive
        ]
        for path, svc in cases:
            with self.subTest(path=path):
                r = srv.get(path, host)
                self.assertServedBy(r, svc)
                self.assertEqual(r.json()["path"], path)
        for other in ("alpaca.example.com", "example.com", "localhost"):
            with self.subTest(host=other):
                r = srv.get("/a/b", other)
                self.assertEqual(r.status, 404, r)

    def test_all_examples_together(self):
        # host-ingress and simple-ingress both set a defaultBackend; the first by namespace/name
        # (host-ingress) wins. Rules of every Ingress apply.
        srv = self.serve(self.make_dir("simple-ingress.yaml", "host-ingress.yaml", "path-ingress.yaml"))
        self.assertServedBy(srv.get("/", "alpaca.example.com"), "alpaca")
        self.assertServedBy(srv.get("/a/x", "bandicoot.example.com"), "alpaca")
        self.assertServedBy(srv.get("/x", "bandicoot.example.com"), "bandicoot")
        self.assertServedBy(srv.get("/", "unknown.example.com"), "be-default")

    # ---- the seed's two errors -----------------------------------------------

    def check_error(self, fname, text, needle, msg):
        d = self.tempdir()
        path = os.path.join(d, fname)
        h.write_file(path, text)
        line = line_of(text, needle)
        expected = "%s:%d: error: Ingress default/simple-ingress: %s" % (path, line, msg)
        rc, out, err = h.run_cli(["check", path])
        self.assertEqual(rc, 1, out + err)
        self.assertIn(expected, out.splitlines(), out + err)
        # the folder form reports the same line
        rc, out, err = h.run_cli(["check", d])
        self.assertEqual(rc, 1, out + err)
        self.assertIn(expected, out.splitlines(), out + err)

    def test_check_reports_kind_ingress(self):
        self.check_error("simple-ingress-v1.yaml", seed_text("simple-ingress-v1.yaml", SEED_V1), "kind: ingress",
                         MSG_V1)

    def test_check_reports_unknown_field_spec_service(self):
        self.check_error("simple-ingress-v2.yaml", seed_text("simple-ingress-v2.yaml", SEED_V2), "  service:", MSG_V2)

    def test_check_good_examples_pass(self):
        d = self.make_dir("simple-ingress.yaml", "host-ingress.yaml", "path-ingress.yaml")
        for f in ("simple-ingress.yaml", "host-ingress.yaml", "path-ingress.yaml"):
            with self.subTest(example=f):
                d1 = self.make_dir(f)
                rc, out, err = h.run_cli(["check", d1])
                self.assertEqual(rc, 0, out + err)
                self.assertNotIn("error:", out)
        rc, out, err = h.run_cli(["routes", d])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("alpaca.example.com", out)
        self.assertIn("bandicoot.example.com", out)

    def serve_with_broken(self, fname, text, needle, msg):
        d = self.make_dir("host-ingress.yaml", "path-ingress.yaml", extra={fname: text})
        srv = self.serve(d)
        path = os.path.join(d, fname)
        expected = "%s:%d: error: Ingress default/simple-ingress: %s" % (path, line_of(text, needle), msg)
        h.wait_until(lambda: expected in srv.log(), timeout=3, what="the diagnostic in the serve log")
        log_lines = [l for l in srv.log().splitlines() if expected in l]
        self.assertTrue(log_lines[0].rstrip().endswith(expected), log_lines)
        # the other objects in the folder keep serving
        self.assertServedBy(srv.get("/", "alpaca.example.com"), "alpaca")
        self.assertServedBy(srv.get("/a/b", "bandicoot.example.com"), "alpaca")
        self.assertServedBy(srv.get("/b", "bandicoot.example.com"), "bandicoot")
        self.assertServedBy(srv.get("/", "other.example.com"), "be-default")
        cfg = srv.config()
        self.assertIn(msg, cfg["lastError"])
        self.assertTrue(cfg["ready"])
        return srv

    def test_serve_kind_ingress_error_others_keep_serving(self):
        self.serve_with_broken("simple-ingress-v1.yaml", seed_text("simple-ingress-v1.yaml", SEED_V1),
                               "kind: ingress", MSG_V1)

    def test_serve_unknown_field_error_others_keep_serving(self):
        self.serve_with_broken("simple-ingress-v2.yaml", seed_text("simple-ingress-v2.yaml", SEED_V2),
                               "  service:", MSG_V2)

    def test_seed_edit_history_v3_v1_v2_v3(self):
        """The seed's story in one file: a good version serves, the broken edits keep it in force."""
        d = self.make_dir("simple-ingress.yaml")
        srv = self.serve(d)
        path = os.path.join(d, "simple-ingress.yaml")
        good = read(os.path.join(h.EXAMPLES, "simple-ingress.yaml"))
        self.assertServedBy(srv.get("/", "x.example.com"), "alpaca")
        for text, needle, msg in ((seed_text("simple-ingress-v1.yaml", SEED_V1), "kind: ingress", MSG_V1),
                                  (seed_text("simple-ingress-v2.yaml", SEED_V2), "  service:", MSG_V2)):
            n = srv.reloads()
            h.write_file(path, text)
            cfg = srv.wait_reload(n)
            expected = "%s:%d: error: Ingress default/simple-ingress: %s" % (path, line_of(text, needle), msg)
            self.assertEqual(cfg["lastError"], expected)
            h.wait_until(lambda: expected in srv.log(), timeout=2, what="the diagnostic in the log")
            self.assertServedBy(srv.get("/", "x.example.com"), "alpaca")
        n = srv.reloads()
        h.write_file(path, good)
        cfg = srv.wait_reload(n)
        self.assertEqual(cfg["lastError"], "")
        self.assertServedBy(srv.get("/", "x.example.com"), "alpaca")


if __name__ == "__main__":
    unittest.main()
