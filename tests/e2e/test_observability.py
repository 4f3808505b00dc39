"""ingressd's observability, end to end: /metrics, the access log, X-Request-ID.

- /metrics is checked with a strict Prometheus text-format 0.0.4 parser written
  here (HELP/TYPE before samples, name and label syntax, escapes, contiguous
  families, no duplicate series, cumulative histograms with +Inf == _count).
- Per-route counters move by exactly what was sent, for several routes, methods
  and status classes (upstream 2xx/4xx/5xx, no route 404, no endpoint 503,
  refused endpoint 502); byte counters equal the bytes on the wire; histogram
  counts move; labels never carry request data.
- Config and process families; reloads counted; counters survive a reload.
- The access log in JSON and text, off, sampled; X-Request-ID passed through or
  generated, and the same id in the log.

Run: INGRESSD_BIN=/work/main/build/ingressd python3 -m unittest -v tests/e2e/test_observability.py
"""

import json
import math
import os
import re
import subprocess
import time
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h


# ----------------------------------------------------------------------------
# a strict Prometheus text format 0.0.4 parser
# ----------------------------------------------------------------------------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(AssertionError):
    pass


def parse_float(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError("%s: value %r is not a float" % (where, s))
    return float(s)


def _parse_labels(s, i, where):
    """Parses `{a="b",...}` starting at s[i] == '{'. Returns (dict, index after '}')."""
    assert s[i] == "{"
    i += 1
    labels = {}
    n = len(s)
    while True:
        if i < n and s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, s[i:i + 20]))
        name = m.group(0)
        if name.startswith("__"):
            raise ParseError("%s: reserved label name %r" % (where, name))
        if name in labels:
            raise ParseError("%s: label %r given twice" % (where, name))
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %r" % (where, name))
        i += 2
        val = []
        while True:
            if i >= n:
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                if i + 1 >= n:
                    raise ParseError("%s: dangling backslash" % where)
                e = s[i + 1]
                if e == "\\":
                    val.append("\\")
                elif e == '"':
                    val.append('"')
                elif e == "n":
                    val.append("\n")
                else:
                    raise ParseError("%s: invalid escape \\%s in label value" % (where, e))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            if c == "\n":
                raise ParseError("%s: raw newline in label value" % where)
            val.append(c)
            i += 1
        labels[name] = "".join(val)
        if i < n and s[i] == ",":
            i += 1
            continue
        if i < n and s[i] == "}":
            return labels, i + 1
        raise ParseError("%s: expected , or } in label set" % where)


def family_of(sample_name, families):
    """The declared family a sample name belongs to (histogram/summary suffixes)."""
    if sample_name in families and families[sample_name]["type"] not in ("histogram",):
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[: -len(suffix)]
            f = families.get(base)
            if f and (f["type"] == "histogram" or (f["type"] == "summary" and suffix != "_bucket")):
                return base
    return sample_name


def parse_prometheus(text):
    """Parses and validates an exposition. Returns
    {family: {"type", "help", "samples": [(name, labels dict, value)]}}; raises ParseError."""
    if text and not text.endswith("\n"):
        raise ParseError("exposition does not end with a newline")
    families = {}
    closed = set()  # families whose samples ended
    current = None  # family of the previous sample
    series = set()
    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        where = "line %d (%r)" % (lineno, line[:120])
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.match(name):
                    raise ParseError("%s: bad metric name" % where)
                f = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if f["samples"] or name in closed:
                    raise ParseError("%s: %s after the family's samples" % (where, parts[1]))
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        raise ParseError("%s: second HELP" % where)
                    help_text = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", help_text.replace("\\\\", "")):
                        raise ParseError("%s: invalid escape in HELP" % where)
                    f["help"] = help_text
                else:
                    if f["type"] is not None:
                        raise ParseError("%s: second TYPE" % where)
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ParseError("%s: bad TYPE" % where)
                    f["type"] = parts[3]
                if current is not None and current != name:
                    closed.add(current)
                    current = None
            continue  # other comments are allowed
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise ParseError("%s: bad sample name" % where)
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        if i >= len(line) or line[i] != " ":
            raise ParseError("%s: expected a space before the value" % where)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or rest[0] == "":
            raise ParseError("%s: expected value [timestamp]" % where)
        value = parse_float(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError("%s: bad timestamp" % where)
        fam = family_of(name, families)
        f = families.get(fam)
        if f is None or f["type"] is None:
            raise ParseError("%s: sample without a preceding TYPE for %s" % (where, fam))
        if fam in closed:
            raise ParseError("%s: samples of %s are not contiguous" % (where, fam))
        if current is not None and current != fam:
            closed.add(current)
        current = fam
        if f["type"] == "histogram" and name == fam:
            raise ParseError("%s: histogram sample without _bucket/_sum/_count" % where)
        if "le" in labels and not (f["type"] == "histogram" and name.endswith("_bucket")):
            raise ParseError("%s: le label outside histogram buckets" % where)
        if f["type"] == "counter" and not value >= 0:
            raise ParseError("%s: negative or NaN counter" % where)
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise ParseError("%s: duplicate series" % where)
        series.add(key)
        f["samples"].append((name, labels, value))
    for fam, f in families.items():
        if f["type"] is None and f["samples"]:
            raise ParseError("%s has samples but no TYPE" % fam)
        if f["type"] == "histogram":
            _check_histogram(fam, f["samples"])
    return families


def _check_histogram(fam, samples):
    groups = {}
    for name, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                raise ParseError("%s bucket without le: %r" % (fam, labels))
            g["buckets"].append((parse_float(labels["le"], fam + " le"), value))
        elif name == fam + "_sum":
            g["sum"] = value
        elif name == fam + "_count":
            g["count"] = value
    for rest, g in groups.items():
        where = "%s%r" % (fam, dict(rest))
        b = g["buckets"]
        if not b:
            raise ParseError("%s: no buckets" % where)
        les = [le for le, _ in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError("%s: le values not strictly increasing: %r" % (where, les))
        if les[-1] != math.inf:
            raise ParseError("%s: no le=\"+Inf\" bucket" % where)
        for (_, a), (_, c) in zip(b, b[1:]):
            if c < a:
                raise ParseError("%s: buckets not cumulative: %r" % (where, b))
        if g["count"] is None or g["sum"] is None:
            raise ParseError("%s: _count or _sum missing" % where)
        if b[-1][1] != g["count"]:
            raise ParseError("%s: +Inf bucket %r != _count %r" % (where, b[-1][1], g["count"]))
        if not g["sum"] >= 0:
            raise ParseError("%s: negative _sum" % where)


class Scrape:
    """One parsed /metrics answer, with lookups."""

    def __init__(self, text):
        self.text = text
        self.families = parse_prometheus(text)

    def samples(self, name):
        fam = family_of(name, self.families)
        f = self.families.get(fam)
        return [(l, v) for n, l, v in (f["samples"] if f else []) if n == name]

    def value(self, name, **match):
        """Sum of the samples of `name` whose labels include `match` (0 when none)."""
        return sum(v for l, v in self.samples(name) if all(l.get(k) == x for k, x in match.items()))

    def has(self, name, **match):
        return any(all(l.get(k) == x for k, x in match.items()) for l, _ in self.samples(name))


def scrape(srv):
    r = srv.admin("/metrics")
    if r.status != 200:
        raise AssertionError("/metrics answered %d" % r.status)
    ct = r.headers.get("Content-Type") or ""
    if "text/plain" not in ct or "version=0.0.4" not in ct:
        raise AssertionError("/metrics Content-Type %r" % ct)
    return Scrape(r.body.decode("utf-8"))


# ----------------------------------------------------------------------------
# requests with exact byte counts
# ----------------------------------------------------------------------------

def exchange(port, method, path, host, headers=None, body=None):
    """One request with Connection: close; returns (request bytes, response bytes, Response)."""
    hdrs = [("Connection", "close")] + list(headers or [])
    raw = h.build_request(method, path, host, hdrs, body)
    with h.RawConn(port) as c:
        c.send(raw)
        data = c.read_until_close()
    c2 = _Replay(data)
    resp = c2.read_response(method)
    return len(raw), len(data), resp


class _Replay(h.RawConn):
    """Parses a response from bytes already received."""

    def __init__(self, data):  # noqa: D401 - no socket
        self.buf = data
        self.eof = True
        self.sock = None

    def close(self):
        pass


def wait_lines(path, n, timeout=3.0):
    """Waits until the file has at least n complete lines; returns them (bytes, without newline)."""
    def ready():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        lines = data.split(b"\n")[:-1]
        return lines if len(lines) >= n else None
    return h.wait_until(ready, timeout=timeout, what="%d access-log lines in %s" % (n, path))


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\n")[:-1]
    except FileNotFoundError:
        return []


LOG_FIELDS = ("time", "client", "method", "host", "path", "protocol", "status", "bytes_in", "bytes_out",
              "duration_ms", "upstream", "upstream_ms", "ingress", "rule_host", "rule_path", "service", "request_id")

# docs/observability.md: time client "method host path protocol" status bytes_in bytes_out duration_ms
#                        upstream upstream_ms ingress service request_id
TEXT_LINE = re.compile(r'(?P<time>\S+) (?P<client>\S+) "(?P<method>\S+) (?P<host>\S+) (?P<path>\S+) '
                       r'(?P<protocol>HTTP/1\.[01])" (?P<status>\d+) (?P<bytes_in>\d+) (?P<bytes_out>\d+) '
                       r'(?P<duration_ms>\d+\.\d{3}) (?P<upstream>\S+) (?P<upstream_ms>-?\d+\.\d{3}) '
                       r'(?P<ingress>\S+) (?P<service>\S+) (?P<request_id>\S+)\Z')
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
HEX32 = re.compile(r"[0-9a-f]{32}\Z")


# ----------------------------------------------------------------------------
# the shared setup
# ----------------------------------------------------------------------------

A_HOST, B_HOST = "a.obs.test", "b.obs.test"


def manifests(echo_a, echo_b, refused_port):
    p = h.http_path
    objs = []
    objs += h.backend_objects("echo-a", [echo_a.port])
    objs += h.backend_objects("echo-b", [echo_b.port])
    objs += h.backend_objects("refused", [refused_port])
    objs.append(h.service("ghost"))  # a Service with no endpoints at all
    objs.append(h.ingress("obs-a", rules=[h.rule(A_HOST, [p("/app", "echo-a"), p("/ghost", "ghost"),
                                                          p("/refused", "refused")])]))
    objs.append(h.ingress("obs-b", rules=[h.rule(B_HOST, [p("/api", "echo-b", path_type="Exact")])]))
    return objs


def route_labels(ingress, host, path, service):
    return {"ingress": "default/" + ingress, "host": host, "path": path, "service": "default/" + service}


ROUTE_A = route_labels("obs-a", A_HOST, "/app", "echo-a")
ROUTE_GHOST = route_labels("obs-a", A_HOST, "/ghost", "ghost")
ROUTE_REFUSED = route_labels("obs-a", A_HOST, "/refused", "refused")
ROUTE_B = route_labels("obs-b", B_HOST, "/api", "echo-b")
NO_ROUTE = {"ingress": "", "host": "", "path": "", "service": ""}


class ObsCase(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.cres
        cls.echo_a = r.start_echo("echo-a")
        cls.echo_b = r.start_echo("echo-b")
        cls.refused_port = h.free_port()
        cls.dir = r.tempdir()
        h.write_manifests(cls.dir, manifests(cls.echo_a, cls.echo_b, cls.refused_port))

    def start_logged(self, *extra, log_name="access.log"):
        """An ingressd over the shared manifests with --access-log FILE (plus extra flags)."""
        path = os.path.join(self.tempdir(), log_name)
        srv = self.start_ingressd(self.dir, ["--access-log", path] + list(extra))
        self.log_on_failure(srv)
        return srv, path


# ----------------------------------------------------------------------------
# /metrics
# ----------------------------------------------------------------------------

class Metrics(ObsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.cres.start_ingressd(cls.dir, ["--access-log", "off"])

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.srv)

    def test_parser_rejects_malformed_expositions(self):
        good = ("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n"
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n")
        parse_prometheus(good)
        bad = [
            "x 1\n",                                                        # no TYPE
            "# TYPE x gauge\nx 1\nx 2\n",                                  # duplicate series
            "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 1\n",    # not contiguous
            "# TYPE x gauge\nx{a=\"\\q\"} 1\n",                            # bad escape
            "# TYPE x gauge\nx{1a=\"b\"} 1\n",                             # bad label name
            "# TYPE x gauge\nx one\n",                                     # bad value
            "# TYPE x gauge\nx 1\n# HELP x late\n",                        # HELP after samples
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",   # no +Inf
            "# TYPE x gauge\nx 1",                                         # no final newline
        ]
        for text in bad:
            with self.assertRaises(ParseError, msg=text):
                parse_prometheus(text)

    def test_metrics_parse_strictly_and_families_are_typed(self):
        s = scrape(self.srv)
        expected = {
            "ingressd_requests_total": "counter",
            "ingressd_request_bytes_total": "counter",
            "ingressd_response_bytes_total": "counter",
            "ingressd_request_duration_seconds": "histogram",
            "ingressd_upstream_response_seconds": "histogram",
            "ingressd_connections_accepted_total": "counter",
            "ingressd_connections_active": "gauge",
            "ingressd_upstream_errors_total": "counter",
            "ingressd_upstream_retries_total": "counter",
            "ingressd_endpoint_ejections_total": "counter",
            "ingressd_access_log_dropped_total": "counter",
            "ingressd_config_reloads_total": "counter",
            "ingressd_config_objects": "gauge",
            "ingressd_config_routes": "gauge",
            "ingressd_config_diagnostics": "gauge",
            "ingressd_config_ready": "gauge",
            "process_resident_memory_bytes": "gauge",
            "process_open_fds": "gauge",
            "process_cpu_seconds_total": "counter",
            "process_start_time_seconds": "gauge",
            "ingressd_build_info": "gauge",
        }
        for name, typ in expected.items():
            self.assertIn(name, s.families, name)
            self.assertEqual(s.families[name]["type"], typ, name)
            self.assertTrue(s.families[name]["help"], "%s has no HELP" % name)

    def test_request_counters_move_exactly(self):
        port = self.srv.http_port
        # (route labels, method, path, host, body, expected status, reaches upstream)
        plan = [
            (ROUTE_A, "GET", "/app/x", A_HOST, None, 200, True),
            (ROUTE_A, "GET", "/app/y", A_HOST, None, 200, True),
            (ROUTE_A, "GET", "/app", A_HOST, None, 200, True),
            (ROUTE_A, "GET", "/app/z?status=404", A_HOST, None, 404, True),
            (ROUTE_A, "GET", "/app/z?status=404", A_HOST, None, 404, True),
            (ROUTE_A, "POST", "/app/p?status=503", A_HOST, b"0123456789", 503, True),
            (ROUTE_A, "POST", "/app/p?status=503", A_HOST, b"abcdefghijklmnopqrst", 503, True),
            (ROUTE_B, "HEAD", "/api", B_HOST, None, 200, True),
            (ROUTE_B, "HEAD", "/api", B_HOST, None, 200, True),
            (ROUTE_B, "DELETE", "/api?status=404", B_HOST, None, 404, True),
            (ROUTE_B, "PUT", "/api", B_HOST, b"put-body", 200, True),
            (ROUTE_GHOST, "GET", "/ghost", A_HOST, None, 503, False),
            (ROUTE_GHOST, "GET", "/ghost/1", A_HOST, None, 503, False),
            (NO_ROUTE, "GET", "/nothing", "c.obs.test", None, 404, False),
            (NO_ROUTE, "GET", "/api/deeper", B_HOST, None, 404, False),   # host known, Exact path no match
            (NO_ROUTE, "OPTIONS", "/", A_HOST, None, 404, False),
        ]
        before = scrape(self.srv)
        want_req = {}
        want_bytes = {}
        want_count = {}
        want_up = {}
        for labels, method, path, host, body, status, upstream in plan:
            sent, got, resp = exchange(port, method, path, host, body=body)
            self.assertEqual(resp.status, status, (method, path, host, resp))
            cls = "%dxx" % (status // 100)
            k = (tuple(sorted(labels.items())), method, cls)
            want_req[k] = want_req.get(k, 0) + 1
            rk = tuple(sorted(labels.items()))
            bi, bo = want_bytes.get(rk, (0, 0))
            want_bytes[rk] = (bi + sent, bo + got)
            want_count[rk] = want_count.get(rk, 0) + 1
            want_up[rk] = want_up.get(rk, 0) + (1 if upstream else 0)
        after = scrape(self.srv)
        for (rk, method, cls), n in want_req.items():
            match = dict(rk, method=method, status_class=cls)
            self.assertEqual(after.value("ingressd_requests_total", **match) -
                             before.value("ingressd_requests_total", **match), n, match)
            # one series, not several
            self.assertEqual(len([1 for l, _ in after.samples("ingressd_requests_total")
                                  if all(l.get(a) == b for a, b in match.items())]), 1, match)
        for rk, (bi, bo) in want_bytes.items():
            m = dict(rk)
            self.assertEqual(after.value("ingressd_request_bytes_total", **m) -
                             before.value("ingressd_request_bytes_total", **m), bi, ("bytes in", m))
            self.assertEqual(after.value("ingressd_response_bytes_total", **m) -
                             before.value("ingressd_response_bytes_total", **m), bo, ("bytes out", m))
            self.assertEqual(after.value("ingressd_request_duration_seconds_count", **m) -
                             before.value("ingressd_request_duration_seconds_count", **m), want_count[rk], m)
            self.assertEqual(after.value("ingressd_upstream_response_seconds_count", **m) -
                             before.value("ingressd_upstream_response_seconds_count", **m), want_up[rk], m)
            self.assertGreaterEqual(after.value("ingressd_request_duration_seconds_sum", **m),
                                    before.value("ingressd_request_duration_seconds_sum", **m))
        # path_type and service_port come from the Ingress too
        self.assertTrue(after.has("ingressd_requests_total", path_type="Exact", service_port="8080", **ROUTE_B))
        self.assertTrue(after.has("ingressd_requests_total", path_type="Prefix", service_port="8080", **ROUTE_A))

    def test_labels_never_carry_request_data(self):
        port = self.srv.http_port
        weird_path = "/app/PathMarker7q9z/%7Ecafe;x=1?QueryMarker3k1=v"
        weird_ua = "UserAgentMarker5t2w/1.0 (\"quoted\" {braces} \\back)"
        for host, path in ((A_HOST, weird_path), ("HostMarker8m4v.invalid", weird_path), (B_HOST, weird_path)):
            _, _, r = exchange(port, "GET", path, host, headers=[("User-Agent", weird_ua),
                                                                 ("X-Request-ID", "IdMarker2p6n")])
            self.assertIn(r.status, (200, 404), r)
        _, _, r = exchange(port, "FOOMARKER", "/app/x", A_HOST)
        self.assertEqual(r.status, 200, r)
        s = scrape(self.srv)
        for marker in ("PathMarker7q9z", "QueryMarker3k1", "UserAgentMarker5t2w", "HostMarker8m4v",
                       "IdMarker2p6n", "FOOMARKER", "cafe"):
            self.assertNotIn(marker, s.text)
        self.assertTrue(s.has("ingressd_requests_total", method="OTHER", **ROUTE_A))
        # every label value of the route families is from the config (or empty, or a fixed set)
        allowed = {"ingress": {"", "default/obs-a", "default/obs-b"},
                   "host": {"", A_HOST, B_HOST},
                   "path": {"", "/app", "/ghost", "/refused", "/api"},
                   "service": {"", "default/echo-a", "default/echo-b", "default/ghost", "default/refused"},
                   "method": {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"},
                   "status_class": {"none", "1xx", "2xx", "3xx", "4xx", "5xx"}}
        for fam in ("ingressd_requests_total", "ingressd_request_bytes_total", "ingressd_response_bytes_total",
                    "ingressd_request_duration_seconds", "ingressd_upstream_response_seconds"):
            for _, labels, _ in s.families[fam]["samples"]:
                for k, vals in allowed.items():
                    if k in labels:
                        self.assertIn(labels[k], vals, (fam, k, labels))

    def test_upstream_errors_and_ejections(self):
        before = scrape(self.srv)
        for _ in range(3):
            _, _, r = exchange(self.srv.http_port, "GET", "/refused", A_HOST)
            self.assertEqual(r.status, 502, r)
        after = scrape(self.srv)
        d = lambda name, **m: after.value(name, **m) - before.value(name, **m)  # noqa: E731
        self.assertEqual(d("ingressd_upstream_errors_total", cause="connect"), 3)
        self.assertEqual(d("ingressd_upstream_errors_total", cause="timeout"), 0)
        self.assertEqual(d("ingressd_endpoint_ejections_total"), 1)
        self.assertEqual(d("ingressd_requests_total", method="GET", status_class="5xx", **ROUTE_REFUSED), 3)
        self.assertEqual(d("ingressd_upstream_response_seconds_count", **ROUTE_REFUSED), 0)

    def test_active_connections_gauge(self):
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/app/keep", A_HOST))
            self.assertEqual(c.read_response().status, 200)
            s = scrape(self.srv)
            self.assertGreaterEqual(s.value("ingressd_connections_active", protocol="http1"), 1)
            self.assertEqual(s.value("ingressd_connections_active", protocol="websocket"), 0)
        h.wait_until(lambda: scrape(self.srv).value("ingressd_connections_active", protocol="http1") == 0,
                     what="active connections back to 0")

    def test_config_and_process_families(self):
        s = scrape(self.srv)
        self.assertEqual(s.value("ingressd_config_objects", kind="Ingress"), 2)
        self.assertEqual(s.value("ingressd_config_objects", kind="Service"), 4)
        self.assertEqual(s.value("ingressd_config_routes"), 4)
        self.assertEqual(s.value("ingressd_config_ready"), 1)
        self.assertGreaterEqual(s.value("ingressd_config_reloads_total"), 1)
        self.assertGreater(s.value("process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(s.value("process_open_fds"), 3)
        self.assertGreaterEqual(s.value("process_cpu_seconds_total"), 0)
        start = s.value("process_start_time_seconds")
        self.assertLess(abs(time.time() - start), 600, start)
        rc, out, _ = h.run_cli(["version"])
        version = out.split()[-1]
        self.assertEqual(s.samples("ingressd_build_info"), [({"version": version}, 1.0)])


class Reloads(ObsCase):
    def test_reload_counters_and_counters_survive_reloads(self):
        d = self.tempdir()
        objs = manifests(self.echo_a, self.echo_b, self.refused_port)
        only_a = [o for o in objs if not (o["kind"] == "Ingress" and o["metadata"]["name"] == "obs-b")]
        h.write_manifests(d, only_a)
        srv = self.start_ingressd(d, ["--access-log", "off"])
        self.log_on_failure(srv)
        s0 = scrape(srv)
        self.assertEqual(s0.value("ingressd_config_objects", kind="Ingress"), 1)
        self.assertEqual(s0.value("ingressd_config_routes"), 3)
        for _ in range(3):
            self.assertEqual(exchange(srv.http_port, "GET", "/app", A_HOST)[2].status, 200)
        n0 = srv.reloads()
        self.assertEqual(s0.value("ingressd_config_reloads_total"), n0)

        h.write_manifests(d, objs)  # adds Ingress obs-b
        srv.wait_reload(n0)
        s1 = scrape(srv)
        self.assertEqual(s1.value("ingressd_config_reloads_total"), srv.reloads())
        self.assertGreater(s1.value("ingressd_config_reloads_total", result="clean"),
                           s0.value("ingressd_config_reloads_total", result="clean"))
        self.assertEqual(s1.value("ingressd_config_objects", kind="Ingress"), 2)
        self.assertEqual(s1.value("ingressd_config_routes"), 4)
        # a counter of a route that is still there does not reset on a reload
        self.assertEqual(s1.value("ingressd_requests_total", method="GET", status_class="2xx", **ROUTE_A), 3)
        for _ in range(2):
            self.assertEqual(exchange(srv.http_port, "GET", "/app", A_HOST)[2].status, 200)
        s2 = scrape(srv)
        self.assertEqual(s2.value("ingressd_requests_total", method="GET", status_class="2xx", **ROUTE_A), 5)

        # a broken object: counted as a reload with errors, with a diagnostic
        n1 = srv.reloads()
        bad = h.ingress("broken", rules=[h.rule("x.obs.test", [h.http_path("/", "echo-a", path_type="Bogus")])])
        h.write_manifests(d, [bad], filename="broken.yaml")
        srv.wait_reload(n1)
        s3 = scrape(srv)
        self.assertEqual(s3.value("ingressd_config_reloads_total", result="with_errors") -
                         s2.value("ingressd_config_reloads_total", result="with_errors"), srv.reloads() - n1)
        self.assertGreaterEqual(s3.value("ingressd_config_diagnostics", severity="error"), 1)

        # SIGHUP reloads too
        n2 = srv.reloads()
        srv.sighup()
        srv.wait_reload(n2)
        self.assertGreater(scrape(srv).value("ingressd_config_reloads_total"),
                           s3.value("ingressd_config_reloads_total"))

    def test_unreadable_manifests_count_once_as_with_errors(self):
        top = self.tempdir()
        d = os.path.join(top, "manifests")
        h.write_manifests(d, manifests(self.echo_a, self.echo_b, self.refused_port))
        srv = self.start_ingressd(d, ["--access-log", "off"])
        self.log_on_failure(srv)
        s0 = scrape(srv)
        os.rename(d, os.path.join(top, "gone"))  # the folder cannot be read any more
        time.sleep(0.4)  # let the watcher's reload (if any) happen first
        for _ in range(2):
            n = srv.reloads()
            srv.sighup()
            srv.wait_reload(n)
        s1 = scrape(srv)
        total = srv.reloads()
        clean0 = s0.value("ingressd_config_reloads_total", result="clean")
        self.assertEqual(s1.value("ingressd_config_reloads_total", result="clean"), clean0,
                         "no clean load happened; the clean counter must not move")
        self.assertEqual(s1.value("ingressd_config_reloads_total"), total)
        self.assertEqual(s1.value("ingressd_config_reloads_total", result="with_errors"), total - clean0)
        self.assertEqual(s1.value("ingressd_config_routes"), 4)  # the previous table stays in force
        self.assertEqual(exchange(srv.http_port, "GET", "/app", A_HOST)[2].status, 200)


# ----------------------------------------------------------------------------
# access log
# ----------------------------------------------------------------------------

class AccessLogJson(ObsCase):
    def test_one_json_line_per_request_with_all_fields(self):
        srv, path = self.start_logged()
        port = srv.http_port
        plan = [
            # method, target, host, headers, body, status, route (ingress, rule_host, rule_path, service)
            ("GET", "/app/one?x=1", A_HOST, [("X-Request-ID", "rid-1")], None, 200,
             ("default/obs-a", A_HOST, "/app", "default/echo-a:8080")),
            ("POST", "/app/two?status=404", A_HOST, [("X-Request-ID", "rid-2")], b"hello", 404,
             ("default/obs-a", A_HOST, "/app", "default/echo-a:8080")),
            ("HEAD", "/api", B_HOST, [("X-Request-ID", "rid-3")], None, 200,
             ("default/obs-b", B_HOST, "/api", "default/echo-b:8080")),
            ("GET", "/api?status=503", B_HOST, [("X-Request-ID", "rid-4")], None, 503,
             ("default/obs-b", B_HOST, "/api", "default/echo-b:8080")),
            ("GET", "/nowhere", "c.obs.test", [("X-Request-ID", "rid-5")], None, 404, ("", "", "", "")),
        ]
        sent = []
        for method, target, host, hdrs, body, status, route in plan:
            t0 = time.time()
            bi, bo, r = exchange(port, method, target, host, headers=hdrs, body=body)
            self.assertEqual(r.status, status, r)
            sent.append((bi, bo, t0))
        lines = wait_lines(path, len(plan))
        time.sleep(0.3)
        lines = read_lines(path)
        self.assertEqual(len(lines), len(plan), lines)
        for line, (method, target, host, hdrs, body, status, route), (bi, bo, t0) in zip(lines, plan, sent):
            e = json.loads(line.decode("utf-8"))
            self.assertEqual(sorted(e), sorted(LOG_FIELDS), e)
            self.assertRegex(e["time"], TIME_RE)
            self.assertEqual(e["client"], "127.0.0.1")
            self.assertEqual(e["method"], method)
            self.assertEqual(e["host"], host)
            self.assertEqual(e["path"], target)
            self.assertEqual(e["protocol"], "HTTP/1.1")
            self.assertEqual(e["status"], status)
            self.assertEqual(e["bytes_in"], bi, e)
            self.assertEqual(e["bytes_out"], bo, e)
            self.assertIsInstance(e["duration_ms"], (int, float))
            self.assertGreaterEqual(e["duration_ms"], 0)
            self.assertLess(e["duration_ms"], 5000)
            self.assertEqual((e["ingress"], e["rule_host"], e["rule_path"], e["service"]), route)
            self.assertEqual(e["request_id"], dict(hdrs)["X-Request-ID"])
            if route[0]:
                echo = self.echo_a if route[1] == A_HOST else self.echo_b
                self.assertEqual(e["upstream"], "127.0.0.1:%d" % echo.port)
                self.assertGreaterEqual(e["upstream_ms"], 0)
                self.assertLessEqual(e["upstream_ms"], e["duration_ms"])
            else:
                self.assertEqual(e["upstream"], "")
        self.assertEqual(srv.admin("/metrics").status, 200)

    def test_no_endpoint_503_names_the_route_and_service(self):
        # The metrics put this request under service="default/ghost"; the log should agree.
        srv, path = self.start_logged()
        _, _, r = exchange(srv.http_port, "GET", "/ghost/x", A_HOST)
        self.assertEqual(r.status, 503)
        e = json.loads(wait_lines(path, 1)[0])
        self.assertEqual((e["ingress"], e["rule_host"], e["rule_path"], e["upstream"]),
                         ("default/obs-a", A_HOST, "/ghost", ""))
        self.assertEqual(e["service"], "default/ghost:8080", e)

    def test_json_line_is_valid_utf8_json_for_any_header_bytes(self):
        # obs-text (bytes 0x80-0xFF) is allowed in a field value (RFC 9110 §5.5); the JSON line must stay
        # valid UTF-8 JSON (RFC 8259 §8.1). The no-endpoint route answers locally, so no upstream sees it.
        srv, path = self.start_logged()
        raw = (b"GET /ghost HTTP/1.1\r\nHost: " + A_HOST.encode() +
               b"\r\nX-Request-ID: id-\xff\xfe-\xc3(\r\nConnection: close\r\n\r\n")
        with srv.conn() as c:
            c.send(raw)
            c.read_until_close()
        line = wait_lines(path, 1)[0]
        try:
            e = json.loads(line.decode("utf-8"))  # strict UTF-8
        except (UnicodeDecodeError, ValueError) as ex:
            self.fail("access-log line is not UTF-8 JSON (%s): %r" % (ex, line))
        self.assertTrue(e["request_id"].startswith("id-"), e)

    def test_weird_request_data_is_escaped(self):
        srv, path = self.start_logged()
        ua = "agent \"with\" quotes\\ and {braces}"
        _, _, r = exchange(srv.http_port, "GET", '/app/a"b?q="x"', A_HOST,
                           headers=[("User-Agent", ua), ("X-Request-ID", 'id "quoted" \\ \t tab')])
        self.assertEqual(r.status, 200)
        e = json.loads(wait_lines(path, 1)[0].decode("utf-8"))
        self.assertEqual(e["path"], '/app/a"b?q="x"')
        self.assertEqual(e["request_id"], 'id "quoted" \\ \t tab')


class AccessLogText(ObsCase):
    def test_one_text_line_per_request_in_documented_order(self):
        srv, path = self.start_logged("--access-log-format", "text")
        plan = [
            ("GET", "/app/t?x=1", A_HOST, "tid-1", 200, "default/obs-a", "default/echo-a:8080", self.echo_a.port),
            ("DELETE", "/api?status=404", B_HOST, "tid-2", 404, "default/obs-b", "default/echo-b:8080",
             self.echo_b.port),
            ("GET", "/none", "c.obs.test", "tid-3", 404, "-", "-", None),
        ]
        sent = []
        for method, target, host, rid, status, *_ in plan:
            bi, bo, r = exchange(srv.http_port, method, target, host, headers=[("X-Request-ID", rid)])
            self.assertEqual(r.status, status)
            sent.append((bi, bo))
        wait_lines(path, len(plan))
        time.sleep(0.3)
        lines = read_lines(path)
        self.assertEqual(len(lines), len(plan), lines)
        for line, (method, target, host, rid, status, ing, svc, port), (bi, bo) in zip(lines, plan, sent):
            m = TEXT_LINE.match(line.decode("utf-8"))
            self.assertIsNotNone(m, line)
            f = m.groupdict()
            self.assertRegex(f["time"], TIME_RE)
            self.assertEqual((f["client"], f["method"], f["host"], f["path"], f["protocol"]),
                             ("127.0.0.1", method, host, target, "HTTP/1.1"))
            self.assertEqual((int(f["status"]), int(f["bytes_in"]), int(f["bytes_out"])), (status, bi, bo))
            self.assertEqual((f["ingress"], f["service"], f["request_id"]), (ing, svc, rid))
            if port:
                self.assertEqual(f["upstream"], "127.0.0.1:%d" % port)
                self.assertGreaterEqual(float(f["upstream_ms"]), 0)
            else:
                self.assertEqual(f["upstream"], "-")

    def test_text_fields_stay_unambiguous_with_client_controlled_values(self):
        # X-Request-ID is free text (spaces, quotes); a text line must still split into the documented fields.
        srv, path = self.start_logged("--access-log-format", "text")
        _, _, r = exchange(srv.http_port, "GET", "/app/q", A_HOST, headers=[("X-Request-ID", 'a b "c" d')])
        self.assertEqual(r.status, 200)
        line = wait_lines(path, 1)[0].decode("utf-8")
        self.assertIsNotNone(TEXT_LINE.match(line), "text line does not parse into its fields: %r" % line)


class AccessLogModes(ObsCase):
    def test_off_writes_nothing(self):
        cwd = self.tempdir()
        http_port, admin_port = h.free_port(), h.free_port()
        args = [h.BIN, "serve", "--manifests", self.dir, "--http-port", str(http_port), "--https-port",
                str(h.free_port()), "--admin-port", str(admin_port), "--bind", "127.0.0.1", "--workers", "1",
                "--access-log", "off"]
        out_path = os.path.join(self.tempdir(), "stdout")
        with open(out_path, "wb") as out:
            p = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
        self.addCleanup(h.stop_process, p)
        h.wait_port(http_port, proc=p)
        h.wait_port(admin_port, proc=p)
        for i in range(20):
            self.assertEqual(exchange(http_port, "GET", "/app/offmarker%d" % i, A_HOST)[2].status, 200)
        time.sleep(0.6)  # more than two flush periods
        h.stop_process(p)
        self.assertEqual(os.listdir(cwd), [])
        with open(out_path, "rb") as f:
            self.assertEqual(f.read(), b"")

    def test_default_is_stdout(self):
        srv = self.start_ingressd(self.dir)
        exchange(srv.http_port, "GET", "/app/stdoutmarker", A_HOST)
        h.wait_until(lambda: any(l.startswith("{") and "stdoutmarker" in l for l in srv.log().splitlines()),
                     timeout=3, what="a JSON access line on stdout")

    def test_sample_logs_about_one_in_n(self):
        srv, path = self.start_logged("--access-log-sample", "10")
        with srv.conn() as c:
            for i in range(100):
                c.send(h.build_request("GET", "/app/s%d" % i, A_HOST))
                self.assertEqual(c.read_response().status, 200)
        time.sleep(0.6)
        lines = read_lines(path)
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 30)
        for line in lines:
            json.loads(line)
        # metrics are not sampled
        self.assertEqual(scrape(srv).value("ingressd_requests_total", **ROUTE_A), 100)

    def test_sampled_out_request_does_not_leak_into_the_next_line(self):
        # Keep-alive: a good request (maybe sampled out), then a malformed one (400). The 400's line must not
        # carry the previous request's method/host/path.
        srv, path = self.start_logged("--access-log-sample", "2")
        for i in range(40):
            with srv.conn() as c:
                c.send(h.build_request("GET", "/app/prev%d" % i, A_HOST))
                self.assertEqual(c.read_response().status, 200)
                c.send(b"GET /app/x HTTP/1.1\r\nHost: " + A_HOST.encode() + b"\r\nno colon here\r\n\r\n")
                self.assertEqual(c.read_response().status, 400)
        time.sleep(0.6)
        for line in read_lines(path):
            e = json.loads(line)
            if e["status"] == 400:
                self.assertNotIn("/prev", e["path"], e)


# ----------------------------------------------------------------------------
# X-Request-ID
# ----------------------------------------------------------------------------

class RequestId(ObsCase):
    def test_client_id_passes_unchanged_and_is_logged(self):
        srv, path = self.start_logged()
        rid = "client-id-0123_ABC.xyz"
        _, _, r = exchange(srv.http_port, "GET", "/app/rid", A_HOST, headers=[("X-Request-ID", rid)])
        self.assertEqual(r.json()["headers"]["X-Request-Id"], [rid])
        e = json.loads(wait_lines(path, 1)[0])
        self.assertEqual(e["request_id"], rid)

    def test_generated_id_is_32_hex_reaches_upstream_and_log_and_differs(self):
        srv, path = self.start_logged()
        ids = []
        with srv.conn() as c:  # keep-alive: the id must still be per request
            for i in range(5):
                c.send(h.build_request("GET", "/app/gen%d" % i, A_HOST))
                r = c.read_response()
                got = r.json()["headers"].get("X-Request-Id")
                self.assertIsNotNone(got, r.json())
                self.assertEqual(len(got), 1, got)
                self.assertRegex(got[0], HEX32)
                ids.append(got[0])
        _, _, r = exchange(srv.http_port, "GET", "/api", B_HOST)
        ids.append(r.json()["headers"]["X-Request-Id"][0])
        self.assertEqual(len(set(ids)), len(ids), ids)
        lines = wait_lines(path, 6)
        logged = [json.loads(l)["request_id"] for l in lines]
        self.assertEqual(logged, ids)

    def test_empty_client_id_is_replaced_not_duplicated(self):
        # An empty X-Request-ID carries no id: the upstream should see exactly one, the generated one.
        srv, path = self.start_logged()
        _, _, r = exchange(srv.http_port, "GET", "/app/empty-id", A_HOST, headers=[("X-Request-ID", "")])
        got = r.json()["headers"].get("X-Request-Id")
        e = json.loads(wait_lines(path, 1)[0])
        self.assertRegex(e["request_id"], HEX32)
        self.assertEqual(got, [e["request_id"]])


if __name__ == "__main__":
    unittest.main()
