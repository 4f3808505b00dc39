"""Operator mode end to end: ingressd against a fixture API server.

The fixture (kube_fixture.py) speaks HTTPS with a test CA and bearer tokens,
discovery, paginated LIST, chunked WATCH with bookmarks and 410s; the real
`kubectl` drives it where it is installed. Each test checks what ingressd
routes after each change, through its HTTP port.

Run: INGRESSD_BIN=build/ingressd python3 -m unittest -v tests/e2e/test_kube.py
"""

import json
import os
import stat
import sys
import time
import unittest

try:
    from . import harness as h
    from . import kube_harness as k
except ImportError:
    import harness as h
    import kube_harness as k


def tls_secret(name, crt="CERT", key="KEY", namespace="default", type_="kubernetes.io/tls"):
    import base64
    data = {}
    if crt is not None:
        data["tls.crt"] = base64.b64encode(crt.encode()).decode()
    if key is not None:
        data["tls.key"] = base64.b64encode(key.encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": type_, "data": data}


class KubeTestCase(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certdir = k.make_certs(cls.cres)

    def fixture(self, tokens=("test-token",), port=None, extra=()):
        return k.start_fixture(self.res, self.certdir, tokens=tokens, port=port, extra=extra)

    def ingressd(self, fixture, extra=(), token=None, wait_ready=True, **kw):
        d = self.tempdir()
        kc = k.write_kubeconfig(d, fixture.server, fixture.ca, token=fixture.tokens[0] if token is None else token, **kw)
        proc = k.start_ingressd_kube(self.res, kc, extra, wait_ready=wait_ready)
        self.log_on_failure(proc)
        return proc

    def backend(self, api, name, namespace="default"):
        e = self.start_echo(name, namespace=namespace)
        api.create(h.service(name, namespace=namespace))
        api.create(h.endpoint_slice(name, e.port, namespace=namespace))
        return e


class TestSync(KubeTestCase):
    def test_initial_sync_of_many_objects_paginated(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        n = 620  # more than one LIST page (500)
        api.load(h.ingress("ing-%03d" % i, rules=[h.rule("h%03d.example.com" % i, [h.http_path("/", "alpaca")])])
                 for i in range(n))
        # The first continue token has expired by the time it is used: the
        # list starts again from its first page.
        api.control("expire-continues?n=1")
        ing = self.ingressd(f)
        cfg = ing.config()
        self.assertEqual(cfg["objects"]["Ingress"], n)
        for i in (0, 499, 500, n - 1):
            self.assertEqual(k.served_by(ing, "h%03d.example.com" % i), "alpaca")
        self.assertEqual(k.served_by(ing, "nope.example.com"), 404)
        self.assertIn("continue token expired", ing.log())
        self.assertEqual(k.metric(ing, "ingressd_kube_relists_total", {"resource": "ingresses"}), 0)
        # /metrics in operator mode passes the strict Prometheus text parser of test_observability.
        try:
            from .test_observability import parse_prometheus
        except ImportError:
            from test_observability import parse_prometheus
        parse_prometheus(ing.admin("/metrics").body.decode())
        self.assertEqual(k.metric(ing, "ingressd_kube_synced", {"resource": "secrets"}), 1)

    def test_add_modify_delete_of_each_kind(self):
        f = self.fixture()
        api = f.api()
        a = self.backend(api, "alpaca")
        b2 = self.start_echo("alpaca2")
        ing = self.ingressd(f, ["--ignore-classless"])
        # Ingress of a class that does not exist yet: not ours.
        api.create(h.ingress("web", class_name="fast", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        time.sleep(0.3)
        self.assertEqual(k.served_by(ing, "web.example.com"), 404)
        # IngressClass: add (ours) → served; modify (another controller) → not; add back; delete → not.
        api.create(h.ingress_class("fast"))
        k.wait_served(ing, "web.example.com", "alpaca")
        api.patch("IngressClass", "fast", {"spec": {"controller": "example.com/other"}}, namespace=None)
        k.wait_served(ing, "web.example.com", 404)
        api.patch("IngressClass", "fast", {"spec": {"controller": h.CONTROLLER_NAME}}, namespace=None)
        k.wait_served(ing, "web.example.com", "alpaca")
        # EndpointSlice: modify (another endpoint) → the other echo answers; delete → 503.
        api.patch("EndpointSlice", "alpaca-%d" % a.port, {"ports": [{"port": b2.port}]})
        k.wait_served(ing, "web.example.com", "alpaca2")
        api.delete("EndpointSlice", "alpaca-%d" % a.port)
        k.wait_served(ing, "web.example.com", 503)
        api.create(h.endpoint_slice("alpaca", a.port))
        k.wait_served(ing, "web.example.com", "alpaca")
        # Service: modify (port no longer matches the Ingress) → 503; delete → 503; add → served.
        api.patch("Service", "alpaca", {"spec": {"ports": [{"port": 9999, "targetPort": 8080}]}})
        k.wait_served(ing, "web.example.com", 503)
        api.delete("Service", "alpaca")
        time.sleep(0.2)
        self.assertEqual(k.served_by(ing, "web.example.com"), 503)
        api.create(h.service("alpaca"))
        k.wait_served(ing, "web.example.com", "alpaca")
        # Ingress: modify the host; delete.
        api.patch("Ingress", "web", {"spec": {"rules": [h.rule("www.example.com", [h.http_path("/", "alpaca")])]}})
        k.wait_served(ing, "www.example.com", "alpaca")
        self.assertEqual(k.served_by(ing, "web.example.com"), 404)
        api.delete("Ingress", "web")
        k.wait_served(ing, "www.example.com", 404)
        api.delete("IngressClass", "fast", namespace=None)
        h.wait_until(lambda: ing.config()["objects"]["IngressClass"] == 0, what="IngressClass gone from the store")

    def test_secret_rotation_and_only_tls_secrets(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        certs = h.CertFactory(self.tempdir())
        v1 = certs.leaf("s-v1", ["s.example.com"])
        v2 = certs.leaf("s-v2", ["s.example.com"])
        ing = self.ingressd(f)
        i = h.ingress("secure", rules=[h.rule("s.example.com", [h.http_path("/", "alpaca")])])
        api.create(h.with_tls(i, [(["s.example.com"], "s-cert")]))
        k.wait_served(ing, "s.example.com", 308)  # a TLS host: plain HTTP is redirected

        def served_serial():
            r = h.https_request(ing.https_port, host="s.example.com")
            self.assertEqual(r.json()["service"], "alpaca")
            return r.peer_serial

        def secret_diags():
            return [d for d in ing.config()["diagnostics"] if d.get("reason") == "SecretNotFound"]
        h.wait_until(lambda: len(secret_diags()) == 1, what="a SecretNotFound diagnostic")
        default_serial = served_serial()
        self.assertNotIn(default_serial, (v1.serial, v2.serial))
        # An Opaque Secret of that name is not watched (fieldSelector type=kubernetes.io/tls).
        api.create(h.cert_secret("s-cert", v1, encoding="data") | {"type": "Opaque"})
        time.sleep(0.3)
        self.assertEqual(ing.config()["objects"]["Secret"], 0)
        self.assertEqual(served_serial(), default_serial)
        api.delete("Secret", "s-cert")
        api.create(h.cert_secret("s-cert", v1, encoding="data"))
        h.wait_until(lambda: served_serial() == v1.serial, what="the certificate of the Secret")
        self.assertFalse(secret_diags())
        # Rotation: the new certificate is served, and the store holds the new version.
        new = api.patch("Secret", "s-cert", h.cert_secret("s-cert", v2, encoding="data"))
        h.wait_until(lambda: served_serial() == v2.serial, what="the rotated certificate")

        def held_rv():
            for o in ing.admin("/debug/objects").json()["objects"]:
                if o["kind"] == "Secret" and o["name"] == "s-cert":
                    return o["resourceVersion"]
            return None
        self.assertEqual(held_rv(), new["metadata"]["resourceVersion"])
        # Deleted: back to the default certificate.
        api.delete("Secret", "s-cert")
        h.wait_until(lambda: served_serial() == default_serial, what="the default certificate again")


class TestKubectl(KubeTestCase):
    @unittest.skipUnless(k.KUBECTL, "kubectl is not installed")
    def test_kubectl_apply_patch_delete_of_the_example(self):
        # kubectl validates with the server's OpenAPI document, which the
        # fixture does not serve: --validate=false (the API server's own
        # validation is not what is under test; ingressd's decoder is).
        f = self.fixture()
        alpaca, dflt = self.start_echo("alpaca"), self.start_echo("be-default")
        d = self.tempdir()
        backends = h.write_manifests(d, [h.service("alpaca"), h.endpoint_slice("alpaca", alpaca.port),
                                         h.service("be-default"), h.endpoint_slice("be-default", dflt.port)])
        ing = self.ingressd(f)
        rc, out, err = k.kubectl(f, ["apply", "--validate=false", "-f", backends])
        self.assertEqual(rc, 0, err)
        example = os.path.join(h.EXAMPLES, "host-ingress.yaml")
        rc, out, err = k.kubectl(f, ["apply", "--validate=false", "-f", example])
        self.assertEqual(rc, 0, err)
        self.assertIn("created", out)
        k.wait_served(ing, "alpaca.example.com", "alpaca")
        self.assertEqual(k.served_by(ing, "other.example.com"), "be-default")
        rc, out, err = k.kubectl(f, ["apply", "--validate=false", "-f", example])
        self.assertEqual((rc, "unchanged" in out), (0, True), out + err)
        # Modify: the example with another host, applied again (kubectl sends a
        # strategic merge patch computed from last-applied-configuration).
        with open(example) as fh:
            changed = fh.read().replace("alpaca.example.com", "llama.example.com")
        changed_path = os.path.join(d, "host-ingress.yaml")
        with open(changed_path, "w") as fh:
            fh.write(changed)
        rc, out, err = k.kubectl(f, ["apply", "--validate=false", "-f", changed_path])
        self.assertEqual((rc, "configured" in out), (0, True), out + err)
        k.wait_served(ing, "llama.example.com", "alpaca")
        self.assertEqual(k.served_by(ing, "alpaca.example.com"), "be-default")
        # And kubectl patch.
        rc, out, err = k.kubectl(f, ["patch", "ingress", "host-ingress", "--type=merge", "-p", json.dumps(
            {"spec": {"rules": [h.rule("vicuna.example.com", [h.http_path("/", "alpaca")])]}})])
        self.assertEqual(rc, 0, err)
        k.wait_served(ing, "vicuna.example.com", "alpaca")
        self.assertEqual(k.served_by(ing, "llama.example.com"), "be-default")
        rc, out, err = k.kubectl(f, ["delete", "-f", example])
        self.assertEqual(rc, 0, err)
        k.wait_served(ing, "vicuna.example.com", 404)
        self.assertEqual(k.served_by(ing, "other.example.com"), 404)


class TestResilience(KubeTestCase):
    def test_watch_stream_cut_mid_event(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        ing = self.ingressd(f)
        api.control("drop-watches?mid_event=1")
        api.create(h.ingress("after-cut", rules=[h.rule("cut.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(ing, "cut.example.com", "alpaca")
        h.wait_until(lambda: k.metric(ing, "ingressd_kube_watch_restarts_total", {"resource": "ingresses"}) >= 1,
                     what="a watch restart counted")
        self.assertEqual(k.metric(ing, "ingressd_kube_relists_total", {"resource": "ingresses"}), 0)

    def test_bookmarks_keep_a_quiet_watch_current(self):
        # Ingresses do not change, Services do. Bookmarks move the Ingress
        # watch's resourceVersion along, so that after a compaction and a
        # broken stream it resumes without a relist.
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        api.control("bookmark-interval?s=0.1")
        ing = self.ingressd(f)
        for i in range(3):
            api.create(h.service("other-%d" % i))
        time.sleep(0.5)  # a few bookmarks
        api.control("compact")
        api.control("drop-watches")
        api.create(h.ingress("web2", rules=[h.rule("web2.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(ing, "web2.example.com", "alpaca")
        self.assertEqual(k.metric(ing, "ingressd_kube_relists_total", {"resource": "ingresses"}), 0)
        self.assertGreaterEqual(k.metric(ing, "ingressd_kube_watch_restarts_total", {"resource": "ingresses"}), 1)

    def _gone_relist(self, extra=()):
        f = self.fixture(extra=extra)
        api = f.api()
        self.backend(api, "alpaca")
        self.start_echo("x")
        for name in ("keep", "drop", "change"):
            api.create(h.ingress(name, rules=[h.rule(name + ".example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f)
        for name in ("keep", "drop", "change"):
            self.assertEqual(k.served_by(ing, name + ".example.com"), "alpaca")
        # While no watch can be opened: delete one, add one, change one; then
        # compact, so that the informers' resourceVersion is gone (410).
        api.control("block-watches?on=1")
        api.control("drop-watches")
        api.delete("Ingress", "drop")
        api.create(h.ingress("new", rules=[h.rule("new.example.com", [h.http_path("/", "alpaca")])]))
        api.patch("Ingress", "change", {"spec": {"rules": [h.rule("changed.example.com", [h.http_path("/", "alpaca")])]}})
        api.control("compact")
        api.control("block-watches?on=0")
        h.wait_until(lambda: k.metric(ing, "ingressd_kube_relists_total", {"resource": "ingresses"}) >= 1,
                     timeout=10, what="a relist")
        k.wait_served(ing, "new.example.com", "alpaca")
        k.wait_served(ing, "changed.example.com", "alpaca")
        self.assertEqual(k.served_by(ing, "drop.example.com"), 404)   # no phantom
        self.assertEqual(k.served_by(ing, "change.example.com"), 404)
        self.assertEqual(k.served_by(ing, "keep.example.com"), "alpaca")
        self.assertEqual(ing.config()["objects"]["Ingress"], 3)
        # And the watch works again afterwards.
        api.create(h.ingress("later", rules=[h.rule("later.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(ing, "later.example.com", "alpaca")

    def test_gone_as_error_event_relists_without_loss_or_phantoms(self):
        self._gone_relist()

    def test_gone_as_http_status_relists_too(self):
        self._gone_relist(extra=("--gone-as-status",))

    def test_api_server_unreachable_at_start_then_later(self):
        port = h.free_port()
        d = self.tempdir()
        kc = k.write_kubeconfig(d, "https://127.0.0.1:%d" % port, os.path.join(self.certdir, "ca.crt"),
                                token="test-token")
        ing = k.start_ingressd_kube(self.res, kc, wait_ready=False)
        self.log_on_failure(ing)
        time.sleep(1.0)
        self.assertTrue(ing.alive())
        self.assertEqual(ing.admin("/readyz").status, 503)
        f = self.fixture(port=port)
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        h.wait_until(lambda: ing.admin("/readyz").status == 200, timeout=40, what="ready once the server is up")
        k.wait_served(ing, "web.example.com", "alpaca")
        f.stop()  # the API server goes away: the last table keeps serving
        time.sleep(1.0)
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.assertEqual(ing.admin("/readyz").status, 200)
        self.assertTrue(ing.alive())

    def test_token_file_rotation_and_exec_plugin(self):
        f = self.fixture(tokens=("token-1",))
        api = f.api()
        self.backend(api, "alpaca")
        d = self.tempdir()
        token_file = os.path.join(d, "token")
        with open(token_file, "w") as fh:
            fh.write("token-1\n")
        ing = self.ingressd(f, token="", token_file=token_file)
        # Rotate: the server takes only the new token; the file says it.
        with open(token_file, "w") as fh:
            fh.write("token-2\n")
        api.control("tokens?set=token-2")
        api = f.api("token-2")
        api.control("drop-watches")
        api.create(h.ingress("rot", rules=[h.rule("rot.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(ing, "rot.example.com", "alpaca", timeout=10)
        # An exec credential plugin (client.authentication.k8s.io/v1). It
        # counts its runs; its credential lives for EXPIRES_IN seconds.
        plugin = os.path.join(d, "plugin.py")
        runs = os.path.join(d, "runs")
        with open(plugin, "w") as fh:
            fh.write("#!%s\nimport datetime, json, os\nassert 'KUBERNETES_EXEC_INFO' in os.environ\n"
                     "open(os.environ['RUNS'], 'a').write('x')\n"
                     "exp = datetime.datetime.now(datetime.timezone.utc) + "
                     "datetime.timedelta(seconds=int(os.environ['EXPIRES_IN']))\n"
                     "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
                     " 'status': {'token': os.environ['PLUGIN_TOKEN'],"
                     " 'expirationTimestamp': exp.strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ')}}))\n" % sys.executable)
        os.chmod(plugin, os.stat(plugin).st_mode | stat.S_IEXEC)

        def exec_kubeconfig(expires_in):
            return {"apiVersion": "client.authentication.k8s.io/v1", "command": plugin, "interactiveMode": "Never",
                    "env": [{"name": "PLUGIN_TOKEN", "value": "token-2"}, {"name": "RUNS", "value": runs},
                            {"name": "EXPIRES_IN", "value": str(expires_in)}]}

        def run_count():
            with open(runs) as fh:
                return len(fh.read())
        ing2 = self.ingressd(f, token="", name="kubeconfig-exec", exec_=exec_kubeconfig(3600))
        self.assertEqual(k.served_by(ing2, "rot.example.com"), "alpaca")
        self.assertEqual(run_count(), 1)  # cached: one run for every informer, the lease and the status writer
        ing2.stop()
        # A credential that expires in 11 s is fetched again 10 s before: at the next request after 1 s.
        os.remove(runs)
        ing3 = self.ingressd(f, token="", name="kubeconfig-exec-short", exec_=exec_kubeconfig(11))
        self.assertEqual(k.served_by(ing3, "rot.example.com"), "alpaca")
        h.wait_until(lambda: run_count() >= 2, timeout=6, what="the plugin to run again near expiry")


class TestClient(KubeTestCase):
    def test_server_certificate_is_verified(self):
        f = self.fixture(tokens=("test-token", "secret-of-the-misconfigured-one"))
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        other = k.make_certs(self.res)  # another CA: the server's certificate does not chain to it
        d = self.tempdir()
        kc = k.write_kubeconfig(d, f.server, os.path.join(other, "ca.crt"), token="secret-of-the-misconfigured-one")
        bad = k.start_ingressd_kube(self.res, kc, wait_ready=False)
        # With the right CA given inline (certificate-authority-data): fine.
        good = self.ingressd(f, ca_inline=True)
        self.assertEqual(k.served_by(good, "web.example.com"), "alpaca")
        self.assertEqual(bad.admin("/readyz").status, 503)
        self.assertIn("certificate", bad.log().lower())
        # It never got as far as a request: its token was not sent.
        self.assertEqual([r for r in api.requests() if r["token"] == "secret-of-the-misconfigured-one"], [])
        # insecure-skip-tls-verify is honoured, with a warning.
        kc2 = k.write_kubeconfig(d, f.server, None, token=f.tokens[0], name="insecure", insecure=True)
        ins = k.start_ingressd_kube(self.res, kc2)
        self.assertEqual(k.served_by(ins, "web.example.com"), "alpaca")
        self.assertIn("NOT verified", ins.log())

    def test_in_cluster_service_account(self):
        f = self.fixture(tokens=("sa-token-1", "admin"))
        api = f.api("admin")
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        sa = self.tempdir()
        for name, text in (("token", "sa-token-1"), ("namespace", "ingressd\n")):
            with open(os.path.join(sa, name), "w") as fh:
                fh.write(text)
        with open(f.ca) as src, open(os.path.join(sa, "ca.crt"), "w") as dst:
            dst.write(src.read())
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(f.port),
                   INGRESSD_SERVICE_ACCOUNT_DIR=sa)
        http_port, admin_port = h.free_port(), h.free_port()
        log = os.path.join(self.tempdir(), "ingressd.log")
        import subprocess
        with open(log, "wb") as lf:
            p = subprocess.Popen([h.BIN, "serve", "--in-cluster", "--http-port", str(http_port), "--https-port", "0",
                                  "--admin-port", str(admin_port), "--workers", "1", "--access-log", "off"],
                                 stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, env=env)
        proc = h.Ingressd(p, log, "", http_port, 0, admin_port)
        self.res.procs.append(proc)
        self.log_on_failure(proc)
        h.wait_port(admin_port, proc=p)
        h.wait_until(lambda: proc.admin("/readyz").status == 200, what="ready in-cluster")
        self.assertEqual(k.served_by(proc, "web.example.com"), "alpaca")
        # The Lease is in the pod's namespace.
        h.wait_until(lambda: api.get("Lease", "ingressd-leader", namespace="ingressd"), what="the lease")
        # The projected token rotates: the file changes, the old token stops working.
        with open(os.path.join(sa, "token"), "w") as fh:
            fh.write("sa-token-2")
        api.control("tokens?set=sa-token-2,admin")
        api.control("drop-watches")
        api.create(h.ingress("web2", rules=[h.rule("web2.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(proc, "web2.example.com", "alpaca", timeout=10)
        self.assertIn("sa-token-2", {r["token"] for r in api.requests()})

    def test_client_certificate(self):
        f = self.fixture(tokens=("admin", "cert:ingressd-client"))
        api = f.api("admin")
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, token="", client_cert=os.path.join(self.certdir, "client.crt"),
                            client_key=os.path.join(self.certdir, "client.key"))
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        self.assertIn("cert:ingressd-client", {r["token"] for r in api.requests()})

    def test_watch_namespace_and_resync(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca", namespace="team")
        self.backend(api, "alpaca")
        api.create(h.ingress("web", namespace="team", rules=[h.rule("team.example.com", [h.http_path("/", "alpaca")])]))
        api.create(h.ingress("web", rules=[h.rule("default.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, ["--watch-namespace", "team", "--resync-period", "1s"])
        self.assertEqual(k.served_by(ing, "team.example.com"), "alpaca")
        self.assertEqual(k.served_by(ing, "default.example.com"), 404)
        self.assertEqual(ing.config()["objects"]["Ingress"], 1)  # the other namespace is not even listed
        paths = {r["path"] for r in api.requests() if r["token"] == f.tokens[0] and r["method"] == "GET"}
        self.assertIn("/apis/networking.k8s.io/v1/namespaces/team/ingresses", paths)
        self.assertIn("/apis/networking.k8s.io/v1/ingressclasses", paths)
        self.assertNotIn("/apis/networking.k8s.io/v1/ingresses", paths)
        # Periodic resync: relists without any 410.
        h.wait_until(lambda: k.metric(ing, "ingressd_kube_relists_total",
                                      {"resource": "ingresses", "namespace": "team"}) >= 2,
                     timeout=6, what="two resyncs")
        self.assertEqual(k.served_by(ing, "team.example.com"), "alpaca")


    def test_resync_period_zero_never_relists(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, ["--resync-period", "0"])
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        lists = lambda: [r for r in api.requests()  # noqa: E731
                         if r["method"] == "GET" and r["path"].endswith("/ingresses") and not r["watch"]]
        first = len(lists())
        time.sleep(2.5)  # a 1 s resync would have relisted twice by now (see the test above)
        self.assertEqual(k.metric(ing, "ingressd_kube_relists_total", {"resource": "ingresses"}), 0)
        self.assertEqual(len(lists()), first)
        # Changes still arrive by the watch.
        api.create(h.ingress("more", rules=[h.rule("more.example.com", [h.http_path("/", "alpaca")])]))
        k.wait_served(ing, "more.example.com", "alpaca")


class TestWriteBack(KubeTestCase):
    def status_patches(self, api, name=None, token=None):
        return [r for r in api.write_requests() if r["method"] == "PATCH" and r["path"].endswith("/status")
                and "/ingresses/" in r["path"] and (name is None or ("/ingresses/%s/" % name) in r["path"])
                and r["token"] != "test-token"]

    def lb(self, api, name):
        return (api.get("Ingress", name).get("status") or {}).get("loadBalancer", {}).get("ingress")

    def test_status_written_once_and_cleared(self):
        f = self.fixture(tokens=("test-token", "ingressd-token"))
        api = f.api()
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        api.create(h.ingress("theirs", class_name="other", rules=[h.rule("t.example.com", [h.http_path("/", "alpaca")])]))
        api.patch("Ingress", "theirs", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}}, status=True)
        ing = self.ingressd(f, ["--publish-status-address", "10.1.2.3,lb.example.com"], token="ingressd-token")
        want = [{"hostname": "lb.example.com"}, {"ip": "10.1.2.3"}]
        h.wait_until(lambda: self.lb(api, "web") == want, what="status written")
        # Unrelated changes recompile; the status is not written again.
        api.patch("Service", "alpaca", {"metadata": {"labels": {"x": "1"}}})
        api.create(h.service("unrelated"))
        time.sleep(1.0)
        self.assertEqual(len(self.status_patches(api, "web")), 1)
        # Another controller's Ingress is never touched.
        self.assertEqual(self.status_patches(api, "theirs"), [])
        self.assertEqual(self.lb(api, "theirs"), [{"ip": "192.0.2.9"}])
        # Not ours any more: cleared.
        api.patch("Ingress", "web", {"spec": {"ingressClassName": "other"}})
        h.wait_until(lambda: self.lb(api, "web") is None, what="status cleared")
        self.assertEqual(len(self.status_patches(api, "web")), 2)

    def test_invalid_ingress_gets_an_event(self):
        # The fixture does not validate; a real API server rejects this one,
        # but one that our decoder rejects and the server's does not would be
        # treated the same way.
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        bad = h.ingress("bad", rules=[h.rule("bad.example.com", [h.http_path("/", "alpaca", path_type="Sometimes")])])
        api.create(bad)
        api.create(h.ingress("good", rules=[h.rule("good.example.com", [h.http_path("/", "alpaca")])]))
        ing = self.ingressd(f, ["--publish-status-address", "10.0.0.9"])
        self.assertEqual(k.served_by(ing, "good.example.com"), "alpaca")
        self.assertEqual(k.served_by(ing, "bad.example.com"), 404)
        self.assertTrue(any("pathType" in d["message"] and d["object"] == "Ingress default/bad"
                            for d in ing.config()["diagnostics"]), ing.config()["diagnostics"])

        def events():
            return [e for e in api.list("Event", "default") if e["involvedObject"]["name"] == "bad"]
        h.wait_until(lambda: len(events()) == 1, what="an Invalid Event")
        e = events()[0]
        self.assertEqual((e["type"], e["reason"]), ("Warning", "Invalid"))
        self.assertIn("Sometimes", e["message"])
        self.assertEqual(e["involvedObject"]["uid"], api.get("Ingress", "bad")["metadata"]["uid"])
        api.patch("Ingress", "bad", {"spec": {"rules": [h.rule("bad.example.com", [h.http_path("/", "alpaca")])]}})
        k.wait_served(ing, "bad.example.com", "alpaca")
        self.assertEqual(len(events()), 1)

    def test_publish_service(self):
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingressd"}})
        api.create(h.service("ingressd", namespace="ingressd"))
        api.patch("Service", "ingressd", {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}},
                  namespace="ingressd", status=True)
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        self.ingressd(f, ["--publish-service", "ingressd/ingressd"])
        h.wait_until(lambda: self.lb(api, "web") == [{"ip": "203.0.113.7"}], what="status from the Service")

    def test_publish_service_bare_name_is_in_our_namespace(self):
        # `--publish-service NAME` names a Service of ingressd's own namespace (the kubeconfig context's here,
        # the service account's in the cluster), not of `default`.
        f = self.fixture()
        api = f.api()
        self.backend(api, "alpaca")
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-system"}})
        for ns, ip in (("ingress-system", "203.0.113.8"), ("default", "192.0.2.99")):
            api.create(h.service("edge", namespace=ns))
            api.patch("Service", "edge", {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}},
                      namespace=ns, status=True)
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        self.ingressd(f, ["--publish-service", "edge"], namespace="ingress-system")
        h.wait_until(lambda: self.lb(api, "web") == [{"ip": "203.0.113.8"}], what="status from ingress-system/edge")

    def test_two_replicas_one_leader_writes(self):
        f = self.fixture(tokens=("replica-a", "replica-b", "test-token"))
        api = f.api("test-token")
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        # A diagnostic worth an Event: a backend Service that does not exist.
        api.create(h.ingress("broken", rules=[h.rule("b.example.com", [h.http_path("/", "missing")])]))
        flags = ["--publish-status-address", "10.9.9.9", "--lease-duration", "2s", "--renew-deadline", "1500ms",
                 "--retry-period", "200ms", "--leader-election-namespace", "kube-system"]
        a = self.ingressd(f, flags, token="replica-a")
        b = self.ingressd(f, flags, token="replica-b")
        for r in (a, b):
            self.assertEqual(k.served_by(r, "web.example.com"), "alpaca")  # both serve traffic
        h.wait_until(lambda: (k.metric(a, "ingressd_leader") or 0) + (k.metric(b, "ingressd_leader") or 0) == 1,
                     what="exactly one leader")
        leader, follower = (a, b) if k.metric(a, "ingressd_leader") == 1 else (b, a)
        lt = "replica-a" if leader is a else "replica-b"
        h.wait_until(lambda: self.lb(api, "web") == [{"ip": "10.9.9.9"}], what="status written")
        h.wait_until(lambda: any(e["involvedObject"]["name"] == "broken" for e in api.list("Event", "default")),
                     what="an Event on the broken Ingress")
        time.sleep(0.6)
        writes = [r for r in api.write_requests() if r["path"].endswith("/status") or "/events" in r["path"]]
        self.assertTrue(writes)
        self.assertEqual({r["token"] for r in writes}, {lt})
        events = [e for e in api.list("Event", "default") if e["involvedObject"]["name"] == "broken"]
        self.assertEqual(len(events), 1, events)  # deduplicated
        self.assertEqual(k.metric(follower, "ingressd_leader"), 0)
        lease = api.get("Lease", "ingressd-leader", namespace="kube-system")
        self.assertTrue(lease["spec"]["holderIdentity"])
        # The leader stops (and hands the lease back): the other takes over and writes.
        leader.stop()
        h.wait_until(lambda: k.metric(follower, "ingressd_leader") == 1, timeout=8, what="the follower to lead")
        api.create(h.ingress("web2", rules=[h.rule("web2.example.com", [h.http_path("/", "alpaca")])]))
        h.wait_until(lambda: self.lb(api, "web2") == [{"ip": "10.9.9.9"}], what="status written by the new leader")
        ft = "replica-b" if lt == "replica-a" else "replica-a"
        self.assertEqual({r["token"] for r in self.status_patches(api, "web2")}, {ft})

    def test_leader_that_cannot_renew_steps_down(self):
        f = self.fixture(tokens=("replica-a", "replica-b", "test-token"))
        api = f.api("test-token")
        self.backend(api, "alpaca")
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        flags = ["--publish-status-address", "10.9.9.9", "--lease-duration", "2s", "--renew-deadline", "1s",
                 "--retry-period", "200ms"]
        a = self.ingressd(f, flags, token="replica-a")
        h.wait_until(lambda: k.metric(a, "ingressd_leader") == 1, what="a leads")
        b = self.ingressd(f, flags, token="replica-b")
        self.assertEqual(k.metric(b, "ingressd_leader"), 0)
        # a loses the API server (its token is revoked): it steps down after the
        # renew deadline, keeps serving, and b takes the lease once it expires.
        api.control("tokens?set=replica-b,test-token")
        h.wait_until(lambda: k.metric(a, "ingressd_leader") == 0, timeout=4, what="a steps down")
        h.wait_until(lambda: k.metric(b, "ingressd_leader") == 1, timeout=6, what="b leads")
        self.assertEqual(k.served_by(a, "web.example.com"), "alpaca")
        self.assertEqual(k.metric(a, "ingressd_leader_transitions_total"), 2)


DEPLOY = os.path.join(h.REPO, "deploy", "kubernetes")


def parse_request(path, method, watch):
    """An API request as RBAC sees it: (group, resource, verb, namespace, name); None for discovery (a
    non-resource URL every authenticated user may GET: the system:discovery ClusterRole)."""
    parts = [p for p in path.split("/") if p]
    if method == "GET" and (parts in (["version"], ["api"], ["apis"]) or (parts[0] == "api" and len(parts) == 2)
                            or (parts[0] == "apis" and len(parts) <= 3)):
        return None
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource += "/" + rest[2]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if verb is None:
        verb = "get" if name else ("watch" if watch else "list")
    return group, resource, verb, ns, name


def allowed(rules, req):
    group, resource, verb, _ns, name = req
    for r in rules:
        if group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", []):
            if not r.get("resourceNames") or name in r["resourceNames"]:
                return True
    return False


@unittest.skipUnless(k.KUBECTL, "kubectl is not installed")
class TestDeploy(KubeTestCase):
    def test_manifests_apply_and_rbac_covers_every_request(self):
        # The Gateway API is installed: its kinds, their status and Namespaces are covered too.
        f = self.fixture(tokens=("admin", "ingressd-token"), extra=("--gateway-api",))
        api = f.api("admin")
        # kubectl's client-side dry run needs a server for discovery; the
        # fixture's mirrors the real groups and kinds (no OpenAPI document:
        # --validate=false).
        rc, out, err = k.kubectl(f, ["apply", "--dry-run=client", "--validate=false", "-f", DEPLOY])
        self.assertEqual(rc, 0, err)
        rc, out, err = k.kubectl(f, ["apply", "--validate=false", "-f", DEPLOY])
        self.assertEqual(rc, 0, err)
        for kind, path in (("Deployment", "/apis/apps/v1/namespaces/ingressd/deployments/ingressd"),
                           ("PodDisruptionBudget", "/apis/policy/v1/namespaces/ingressd/poddisruptionbudgets/ingressd"),
                           ("IngressClass", "/apis/networking.k8s.io/v1/ingressclasses/ingressd")):
            self.assertEqual(api.request("GET", path)["kind"], kind)
        dep = api.request("GET", "/apis/apps/v1/namespaces/ingressd/deployments/ingressd")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        self.assertEqual(dep["spec"]["replicas"], 2)
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        ic = api.request("GET", "/apis/networking.k8s.io/v1/ingressclasses/ingressd")
        self.assertEqual(ic["spec"]["controller"], h.CONTROLLER_NAME)
        cluster_rules = api.request("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/ingressd")["rules"]
        ns_rules = api.request("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/ingressd/roles/ingressd")["rules"]

        # The Deployment's own arguments, with the kubeconfig for --in-cluster
        # and loopback ports.
        args = []
        for a in c["args"][1:]:
            name = a.split("=")[0]
            if name in ("--in-cluster", "--bind", "--admin-bind", "--http-port", "--https-port", "--admin-port",
                        "--access-log"):
                continue
            args.append(a)
        args += ["--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "300ms"]
        self.backend(api, "alpaca")
        api.patch("Service", "ingressd", {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}},
                  namespace="ingressd", status=True)
        api.create(h.ingress("web", rules=[h.rule("web.example.com", [h.http_path("/", "alpaca")])]))
        api.create(h.ingress("broken", rules=[h.rule("b.example.com", [h.http_path("/", "missing")])]))
        api.load([h.gateway_class("ingressd"), h.gateway("gw", "ingressd"),
                  h.http_route("route", ["gw"], ["route.example.com"], "alpaca")])
        ing = self.ingressd(f, args, token="ingressd-token", namespace="ingressd")
        # Classless Ingresses are ours because our class is the default one.
        self.assertEqual(k.served_by(ing, "web.example.com"), "alpaca")
        h.wait_until(lambda: (api.get("Ingress", "web").get("status") or {}).get("loadBalancer", {}).get("ingress")
                     == [{"ip": "198.51.100.1"}], what="status from the published Service")
        h.wait_until(lambda: any(e["involvedObject"]["name"] == "broken" for e in api.list("Event", "default")),
                     what="an Event")
        self.assertIsNotNone(api.get("Lease", "ingressd-leader", namespace="ingressd"))
        self.assertEqual(k.served_by(ing, "route.example.com"), "alpaca")
        h.wait_until(lambda: (api.get("HTTPRoute", "route").get("status") or {}).get("parents")
                     and api.get("Gateway", "gw").get("status") and api.get("GatewayClass", "ingressd", None).get("status"),
                     what="Gateway API status written")
        ing.stop()
        reqs = [r for r in api.requests() if r["token"] == "ingressd-token"]
        self.assertTrue(reqs)
        seen = set()
        for r in reqs:
            req = parse_request(r["path"], r["method"], r["watch"])
            if req is None:
                continue
            seen.add(req[:3])
            ok = allowed(cluster_rules, req) or (req[3] == "ingressd" and allowed(ns_rules, req))
            self.assertTrue(ok, "RBAC does not allow %r (%s %s)" % (req, r["method"], r["path"]))
        for want in (("networking.k8s.io", "ingresses", "watch"), ("", "secrets", "list"),
                     ("networking.k8s.io", "ingresses/status", "patch"), ("", "events", "create"),
                     ("coordination.k8s.io", "leases", "update"),
                     ("gateway.networking.k8s.io", "httproutes", "watch"), ("", "namespaces", "list"),
                     ("gateway.networking.k8s.io", "gatewayclasses/status", "patch"),
                     ("gateway.networking.k8s.io", "gateways/status", "patch"),
                     ("gateway.networking.k8s.io", "httproutes/status", "patch")):
            self.assertIn(want, seen)


if __name__ == "__main__":
    unittest.main()
