"""Ingress classes, namespaces and conflicts, end to end (docs/routing.md).

- Two ingressd processes with different --controller-name on one folder: each
  serves only the Ingresses of its own IngressClass (field or the deprecated
  kubernetes.io/ingress.class annotation; the field wins) and 404s the rest.
- Default class: an IngressClass of ours marked is-default-class takes
  class-less Ingresses, even with --ignore-classless; without it the flag
  decides (file mode serves class-less Ingresses by default).
- Namespaces: a Service is looked up in the Ingress's own namespace only;
  --watch-namespace limits the Ingresses served and /config lists the others
  as Ignored.
- Conflicts: the same host + path + pathType in two Ingresses goes to the
  older creationTimestamp, else to the first namespace/name, whatever the file
  names; /config carries a Conflict diagnostic naming both.
"""

import os
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h


def states(srv):
    """{namespace/name: state} from /config."""
    return {s["ingress"]: s["state"] for s in srv.config()["ingresses"]}


def with_timestamp(obj, ts):
    obj["metadata"]["creationTimestamp"] = ts
    return obj


# ----------------------------------------------------------------------------
# two controllers, one folder
# ----------------------------------------------------------------------------

class TwoControllers(h.E2ETestCase):
    ALPHA = "example.com/alpha"
    BETA = "example.com/beta"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        objs = []
        for name in ("svc-a", "svc-b", "svc-legacy", "svc-field"):
            e = cls.cres.start_echo(name)
            objs += h.backend_objects(name, [e.port])
        objs += [
            h.ingress_class("alpha", controller=cls.ALPHA),
            h.ingress_class("beta", controller=cls.BETA),
            h.ingress("ing-a", class_name="alpha", rules=[h.rule("a.example.com", [h.http_path("/", "svc-a")])]),
            h.ingress("ing-b", class_name="beta", rules=[h.rule("b.example.com", [h.http_path("/", "svc-b")])]),
            h.ingress("ing-legacy", annotations={"kubernetes.io/ingress.class": "beta"},
                      rules=[h.rule("legacy.example.com", [h.http_path("/", "svc-legacy")])]),
            # the field wins over the annotation
            h.ingress("ing-field", class_name="alpha", annotations={"kubernetes.io/ingress.class": "beta"},
                      rules=[h.rule("field.example.com", [h.http_path("/", "svc-field")])]),
        ]
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.alpha = cls.cres.start_ingressd(cls.dir, ["--controller-name", cls.ALPHA])
        cls.beta = cls.cres.start_ingressd(cls.dir, ["--controller-name", cls.BETA])

    # host → (service from alpha, service from beta); None = 404
    TABLE = [
        ("a.example.com", "svc-a", None),
        ("b.example.com", None, "svc-b"),
        ("legacy.example.com", None, "svc-legacy"),
        ("field.example.com", "svc-field", None),
    ]

    def test_each_controller_serves_only_its_own_class(self):
        for host, from_alpha, from_beta in self.TABLE:
            for srv, want, who in ((self.alpha, from_alpha, "alpha"), (self.beta, from_beta, "beta")):
                with self.subTest(host=host, controller=who):
                    r = srv.get("/x", host)
                    if want is None:
                        self.assertEqual(r.status, 404, r)
                    else:
                        self.assertServedBy(r, want)

    def test_config_marks_the_other_class_ignored(self):
        self.assertEqual(states(self.alpha), {
            "default/ing-a": "Accepted", "default/ing-b": "Ignored",
            "default/ing-legacy": "Ignored", "default/ing-field": "Accepted"})
        self.assertEqual(states(self.beta), {
            "default/ing-a": "Ignored", "default/ing-b": "Accepted",
            "default/ing-legacy": "Accepted", "default/ing-field": "Ignored"})

    def test_legacy_annotation_with_ingress_class_flag(self):
        # --ingress-class NAME: the annotation may name it even without an IngressClass object.
        d = self.tempdir()
        e = self.start_echo("svc-custom")
        h.write_manifests(d, h.backend_objects("svc-custom", [e.port]) + [
            h.ingress("custom", annotations={"kubernetes.io/ingress.class": "custom"},
                      rules=[h.rule("custom.example.com", [h.http_path("/", "svc-custom")])])])
        srv = self.start_ingressd(d, ["--controller-name", self.ALPHA, "--ingress-class", "custom"])
        self.assertServedBy(srv.get("/", "custom.example.com"), "svc-custom")
        other = self.start_ingressd(d, ["--controller-name", self.ALPHA])
        self.assertEqual(other.get("/", "custom.example.com").status, 404)


# ----------------------------------------------------------------------------
# default class and class-less Ingresses
# ----------------------------------------------------------------------------

class DefaultClass(h.E2ETestCase):
    HOST = "classless.example.com"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = cls.cres.start_echo("svc-classless")

    def serve(self, classes, extra_args=()):
        d = self.tempdir()
        h.write_manifests(d, h.backend_objects("svc-classless", [self.echo.port]) + list(classes) + [
            h.ingress("classless", rules=[h.rule(self.HOST, [h.http_path("/", "svc-classless")])])])
        srv = self.start_ingressd(d, list(extra_args))
        self.log_on_failure(srv)
        return srv

    def test_default_class_of_ours_serves_classless_even_with_ignore_classless(self):
        srv = self.serve([h.ingress_class("ours", default=True)], ["--ignore-classless"])
        self.assertServedBy(srv.get("/", self.HOST), "svc-classless")
        self.assertEqual(states(srv)["default/classless"], "Accepted")

    def test_default_class_of_another_controller_does_not_make_classless_ours(self):
        srv = self.serve([h.ingress_class("ours"),
                          h.ingress_class("theirs", controller="example.com/other", default=True)],
                         ["--ignore-classless"])
        self.assertEqual(srv.get("/", self.HOST).status, 404)
        self.assertEqual(states(srv)["default/classless"], "Ignored")

    def test_default_annotation_must_be_true(self):
        srv = self.serve([h.ingress_class("ours", annotations={
            "ingressclass.kubernetes.io/is-default-class": "false"})], ["--ignore-classless"])
        self.assertEqual(srv.get("/", self.HOST).status, 404)

    def test_without_default_class_ignore_classless_drops_classless(self):
        srv = self.serve([h.ingress_class("ours")], ["--ignore-classless"])
        self.assertEqual(srv.get("/", self.HOST).status, 404)
        self.assertEqual(states(srv)["default/classless"], "Ignored")

    def test_without_the_flag_classless_is_served(self):
        srv = self.serve([h.ingress_class("ours")])
        self.assertServedBy(srv.get("/", self.HOST), "svc-classless")
        srv = self.serve([])
        self.assertServedBy(srv.get("/", self.HOST), "svc-classless")


# ----------------------------------------------------------------------------
# namespaces
# ----------------------------------------------------------------------------

class Namespaces(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo_a = cls.cres.start_echo("bandicoot", namespace="team-a")
        cls.echo_b = cls.cres.start_echo("bandicoot", namespace="team-b")
        cls.echo_only_b = cls.cres.start_echo("only-b", namespace="team-b")
        objs = (h.backend_objects("bandicoot", [cls.echo_a.port], namespace="team-a") +
                h.backend_objects("bandicoot", [cls.echo_b.port], namespace="team-b") +
                h.backend_objects("only-b", [cls.echo_only_b.port], namespace="team-b"))
        objs += [
            h.ingress("web", namespace="team-a", rules=[h.rule("a.example.com", [h.http_path("/", "bandicoot")])]),
            h.ingress("web", namespace="team-b", rules=[h.rule("b.example.com", [h.http_path("/", "bandicoot")])]),
            h.ingress("cross", namespace="team-a", rules=[h.rule("cross.example.com", [h.http_path("/", "only-b")])]),
            h.ingress("own", namespace="team-b", rules=[h.rule("onlyb.example.com", [h.http_path("/", "only-b")])]),
        ]
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.srv = cls.cres.start_ingressd(cls.dir)

    def test_each_host_reaches_its_own_namespace(self):
        for host, echo in (("a.example.com", self.echo_a), ("b.example.com", self.echo_b)):
            with self.subTest(host=host):
                r = self.srv.get("/", host)
                self.assertServedBy(r, "bandicoot")
                self.assertEqual(r.json()["namespace"], echo.namespace)
                self.assertEqual(r.json()["pod"], echo.pod)

    def test_service_of_another_namespace_is_not_reachable(self):
        # control: the Service works from its own namespace
        r = self.srv.get("/", "onlyb.example.com")
        self.assertServedBy(r, "only-b")
        self.assertEqual(r.json()["namespace"], "team-b")
        r = self.srv.get("/", "cross.example.com")
        self.assertEqual(r.status, 503, r)
        diags = [d for d in self.srv.config()["diagnostics"]
                 if d["object"] == "Ingress team-a/cross" and d["reason"] == "BackendUnavailable"]
        self.assertTrue(diags, self.srv.config()["diagnostics"])
        self.assertIn("team-a/only-b", diags[0]["message"])

    def test_watch_namespace(self):
        srv = self.start_ingressd(self.dir, ["--watch-namespace", "team-a"])
        self.log_on_failure(srv)
        r = srv.get("/", "a.example.com")
        self.assertServedBy(r, "bandicoot")
        self.assertEqual(r.json()["namespace"], "team-a")
        for host in ("b.example.com", "onlyb.example.com"):
            with self.subTest(host=host):
                self.assertEqual(srv.get("/", host).status, 404)
        st = {s["ingress"]: s for s in srv.config()["ingresses"]}
        for ing in ("team-b/web", "team-b/own"):
            with self.subTest(ingress=ing):
                self.assertIn(ing, st)
                self.assertEqual(st[ing]["state"], "Ignored", st[ing])
        self.assertEqual(st["team-a/web"]["state"], "Accepted")

    def test_watch_namespace_repeated(self):
        srv = self.start_ingressd(self.dir, ["--watch-namespace", "team-a", "--watch-namespace", "team-b"])
        self.assertEqual(srv.get("/", "a.example.com").json()["namespace"], "team-a")
        self.assertEqual(srv.get("/", "b.example.com").json()["namespace"], "team-b")


# ----------------------------------------------------------------------------
# conflicts
# ----------------------------------------------------------------------------

class Conflicts(h.E2ETestCase):
    HOST = "conflict.example.com"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = {ns: cls.cres.start_echo("web", namespace=ns) for ns in ("team-a", "team-b")}

    def claim(self, namespace, name, ts=None):
        ing = h.ingress(name, namespace=namespace, rules=[h.rule(self.HOST, [h.http_path("/app", "web")])])
        return with_timestamp(ing, ts) if ts else ing

    def serve(self, first, second):
        """first in 1-first.yaml, second in 2-second.yaml (read in that order)."""
        d = self.tempdir()
        h.write_manifests(d, h.backend_objects("web", [self.echo["team-a"].port], namespace="team-a") +
                          h.backend_objects("web", [self.echo["team-b"].port], namespace="team-b"),
                          "0-services.yaml")
        h.write_manifests(d, [first], "1-first.yaml")
        h.write_manifests(d, [second], "2-second.yaml")
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        return d, srv

    def assert_winner(self, srv, winner, loser):
        """winner/loser: namespace/name; the winner's namespace answers, /config says why."""
        r = srv.get("/app/x", self.HOST)
        self.assertServedBy(r, "web")
        self.assertEqual(r.json()["namespace"], winner.split("/")[0], "expected %s to win" % winner)
        cfg = srv.config()
        conflicts = [d for d in cfg["diagnostics"] if d["reason"] == "Conflict"]
        self.assertEqual(len(conflicts), 1, cfg["diagnostics"])
        text = conflicts[0]["object"] + " " + conflicts[0]["message"]
        self.assertIn(winner, text)
        self.assertIn(loser, text)
        self.assertEqual(conflicts[0]["object"], "Ingress " + loser)
        st = {s["ingress"]: s["state"] for s in cfg["ingresses"]}
        self.assertEqual(st[winner], "Accepted")
        self.assertNotEqual(st[loser], "Accepted")
        routes = [(x["host"], x["path"], x["ingress"]) for x in cfg["routes"]["routes"]]
        self.assertEqual(routes, [(self.HOST, "/app", winner)])

    def swap_read_order(self, d, srv):
        """Renames 1-first.yaml to 3-first.yaml (one rename), then waits for the reload."""
        before = srv.reloads()
        os.rename(os.path.join(d, "1-first.yaml"), os.path.join(d, "3-first.yaml"))
        srv.sighup()
        srv.wait_reload(before)
        self.assertEqual(sorted(os.listdir(d)), ["0-services.yaml", "2-second.yaml", "3-first.yaml"])

    def test_older_creation_timestamp_wins_regardless_of_names(self):
        # team-a/aaa-new would win by name; team-b/zzz-old is older.
        new = self.claim("team-a", "aaa-new", "2024-05-01T00:00:00Z")
        old = self.claim("team-b", "zzz-old", "2023-01-01T00:00:00Z")
        for first, second in ((new, old), (old, new)):
            with self.subTest(first=first["metadata"]["name"]):
                d, srv = self.serve(first, second)
                self.assert_winner(srv, "team-b/zzz-old", "team-a/aaa-new")
                self.swap_read_order(d, srv)
                self.assert_winner(srv, "team-b/zzz-old", "team-a/aaa-new")

    def test_without_timestamps_first_namespace_name_wins(self):
        a = self.claim("team-a", "zulu")
        b = self.claim("team-b", "alpha")
        for first, second in ((a, b), (b, a)):
            with self.subTest(first=first["metadata"]["namespace"]):
                d, srv = self.serve(first, second)
                self.assert_winner(srv, "team-a/zulu", "team-b/alpha")
                self.swap_read_order(d, srv)
                self.assert_winner(srv, "team-a/zulu", "team-b/alpha")

    def test_timestamps_compare_as_instants(self):
        # RFC 3339 allows offsets and fractional seconds (Go's time.RFC3339 parses both);
        # the older instant wins, not the smaller string.
        cases = [
            # (team-a/aaa-new ts, team-b/zzz-old ts): team-b is older each time
            ("2024-03-01T08:00:00Z", "2024-03-01T09:00:00+02:00"),   # 07:00Z
            ("2024-03-01T08:00:00.5Z", "2024-03-01T08:00:00Z"),
        ]
        for ts_new, ts_old in cases:
            with self.subTest(newer=ts_new, older=ts_old):
                _, srv = self.serve(self.claim("team-a", "aaa-new", ts_new), self.claim("team-b", "zzz-old", ts_old))
                self.assert_winner(srv, "team-b/zzz-old", "team-a/aaa-new")


if __name__ == "__main__":
    unittest.main()
