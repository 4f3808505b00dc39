"""HTTP/2, end to end: regression tests for ingressd's HTTP/2 (nghttp2) over
h2c with prior knowledge (`--h2c`) and over TLS (ALPN h2).

Clients: Python's `h2` package (Debian python3-h2) for well-behaved clients,
frames built by hand (harness.h2_frame: a 9-byte header + payload) for what a
library will not send (CONTINUATION floods, prefaces at odd places), and
Debian's curl (`--http2-prior-knowledge`). Everything on 127.0.0.1; every
process stopped by pid.

Covered: h2c only with --h2c and only at the start of a connection; cookie
fields joined into one Cookie; :authority vs host; 100 multiplexed streams and
SETTINGS_MAX_CONCURRENT_STREAMS; rapid reset (CVE-2023-44487) and CONTINUATION
flood (CVE-2024-27316) closed with GOAWAY while other clients are served; a
client that keeps its window shut (streams reset with CANCEL after
--client-send-timeout-ms, memory bounded); a stalled upload does not stall the
other streams; RST_STREAM(NO_ERROR) after a response that beats its request
body; GOAWAY on SIGTERM; HEAD/204/304 without DATA; chunked and 4 MiB
responses under flow control; the access log's protocol.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

HAVE_H2 = h.h2_available()
if HAVE_H2:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
    import hpack

MiB = 1 << 20
HOST = "a.example.com"


# ----------------------------------------------------------------------------
# clients and upstreams
# ----------------------------------------------------------------------------

class StreamState:
    def __init__(self, sid):
        self.id = sid
        self.headers = None         # dict of the final response head
        self.interim = []           # dicts of the interim (1xx) heads before it
        self.headers_ended = False  # END_STREAM was on the HEADERS frame
        self.data = bytearray()
        self.data_events = 0        # DATA frames seen (with or without payload)
        self.ended = False
        self.reset = None           # RST_STREAM error code received
        self.t_start = time.monotonic()
        self.t_reset = None
        self.t_ended = None
        self.events = []            # event class names, in order
        self.sent = 0               # request body bytes sent

    @property
    def status(self):
        return int(self.headers[":status"]) if self.headers else None

    @property
    def done(self):
        return self.ended or self.reset is not None

    def json(self):
        return json.loads(bytes(self.data))

    def __repr__(self):
        return "Stream(%d status=%s body=%d ended=%s reset=%s events=%s)" % (
            self.id, self.status, len(self.data), self.ended,
            None if self.reset is None else h.H2_ERROR_NAMES.get(self.reset, self.reset), self.events[-6:])


class H2Client:
    """An HTTP/2 client (the h2 package) over h2c (prior knowledge) or TLS (ALPN h2) to 127.0.0.1."""

    def __init__(self, port, tls=False, sni=HOST, settings=None, validate=True, auto_ack=True, timeout=10):
        if tls:
            self.c = h.TlsConn(port, sni, timeout=timeout, context=h.tls_client_context(alpn=["h2"]))
            if self.c.alpn() != "h2":
                raise AssertionError("ALPN chose %r" % self.c.alpn())
        else:
            self.c = h.RawConn(port, timeout=timeout)
        self.sock = self.c.sock
        self.scheme = "https" if tls else "http"
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.uploads = {}  # sid -> [body, offset, end_stream]: sent as the windows allow
        self.terminated = None  # the ConnectionTerminated (GOAWAY) event
        self.closed = False
        self.auto_ack = auto_ack
        self.flush()

    def close(self):
        self.c.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path="/", method="GET", authority=HOST, headers=(), body=None, end_stream=True,
                content_length=True):
        """Opens a stream; a body (bytes) goes out as the flow-control windows allow (see pump)."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme)]
        if authority is not None:
            hdrs.append((":authority", authority))
        hdrs.append((":path", path))
        if body is not None and content_length:
            hdrs.append(("content-length", str(len(body))))
        hdrs += list(headers)
        self.streams[sid] = StreamState(sid)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and body is None)
        if body is not None:
            self.uploads[sid] = [body, 0, end_stream]
        self._push_uploads()
        self.flush()
        return sid

    def _push_uploads(self):
        for sid, up in list(self.uploads.items()):
            body, off, end = up
            st = self.streams[sid]
            if st.done:
                del self.uploads[sid]
                continue
            while off < len(body):
                n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, len(body) - off)
                if n <= 0:
                    break
                self.conn.send_data(sid, body[off:off + n], end_stream=end and off + n == len(body))
                off += n
            up[1] = off
            st.sent = off
            if off >= len(body):
                del self.uploads[sid]

    def uploaded(self, sid):
        up = self.uploads.get(sid)
        return up[1] if up else None

    def pump(self, timeout=0.2):
        """Reads once (up to `timeout`), handles the events, sends what is due. False once the peer closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.handle(self.conn.receive_data(data))
        if self.terminated is None:
            self._push_uploads()
        try:
            self.flush()
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
        return True

    def handle(self, events):
        for ev in events:
            st = self.streams.get(getattr(ev, "stream_id", None))
            if st is not None:
                st.events.append(type(ev).__name__)
            if isinstance(ev, h2.events.InformationalResponseReceived):
                st.interim.append(dict(ev.headers))
            elif isinstance(ev, h2.events.ResponseReceived):
                st.headers = dict(ev.headers)
                if ev.stream_ended is not None:
                    st.headers_ended = True
            elif isinstance(ev, h2.events.DataReceived):
                st.data += ev.data
                st.data_events += 1
                if self.auto_ack and ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st.ended = True
                st.t_ended = time.monotonic()
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st.reset = ev.error_code
                    st.t_reset = time.monotonic()
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev

    def wait(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; streams %r, GOAWAY %r, closed %s" %
                                     (timeout, what, list(self.streams.values())[-8:], self.terminated, self.closed))
            if not self.pump(min(0.2, max(0.01, deadline - time.monotonic()))):
                if not predicate():
                    raise AssertionError("connection closed while waiting for %s; streams %r, GOAWAY %r" %
                                         (what, list(self.streams.values())[-8:], self.terminated))
        return True

    def wait_done(self, sids, timeout=10):
        sids = list(sids)
        self.wait(lambda: all(self.streams[s].done for s in sids), timeout, "streams %s" % sids[:10])
        return [self.streams[s] for s in sids]

    def get(self, path="/", authority=HOST, timeout=10, **kw):
        sid = self.request(path, authority=authority, **kw)
        return self.wait_done([sid], timeout)[0]


class BlackHole:
    """An upstream that accepts connections and never reads or answers (small receive buffer, so the bytes sent
    to it back up quickly)."""

    def __init__(self):
        self.sock = h.listen_loopback(64, rcvbuf=4096)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        for c in self.conns:
            c.close()
        self.sock.close()


def hpack_block(encoder, headers):
    return encoder.encode([(k.encode(), v.encode()) for k, v in headers])


def raw_h2c(port, settings=None, timeout=5):
    """A RawConn that has sent the client preface and SETTINGS."""
    c = h.RawConn(port, timeout=timeout)
    c.send(h.H2_PREFACE + h.h2_settings(settings or {}))
    return c


def curl_prior_knowledge(port, path="/", host=HOST):
    """curl --http2-prior-knowledge; returns (returncode, http_version, status, body, stderr)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", "-H", "Host: " + host,
                        "-w", "\n%{http_version} %{http_code}", "http://127.0.0.1:%d%s" % (port, path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    out = p.stdout.decode("utf-8", "replace")
    body, _, tail = out.rpartition("\n")
    version, _, code = tail.partition(" ")
    return p.returncode, version, code, body, p.stderr.decode("utf-8", "replace")


# ----------------------------------------------------------------------------
# the shared setup
# ----------------------------------------------------------------------------

@unittest.skipUnless(HAVE_H2, "python h2 package not installed (Debian: python3-h2)")
class Http2Case(h.E2ETestCase):
    """Two echo upstreams, a black hole, a Service without endpoints; one ingressd with --h2c shared by the
    class (and its TLS port, with the self-signed default certificate, for ALPN h2)."""

    SEND_TIMEOUT_MS = 1000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alpaca = cls.cres.start_echo("alpaca")
        cls.bandicoot = cls.cres.start_echo("bandicoot")
        cls.hole = BlackHole()
        cls.addClassCleanup(cls.hole.close)
        cls.dir = cls.cres.tempdir()
        h.write_manifests(cls.dir, cls.objects())
        cls.d = cls.cres.start_ingressd(cls.dir, ["--h2c", "--client-send-timeout-ms", str(cls.SEND_TIMEOUT_MS)])

    @classmethod
    def objects(cls):
        objs = h.backend_objects("alpaca", [cls.alpaca.port]) + h.backend_objects("bandicoot", [cls.bandicoot.port])
        objs += h.backend_objects("hole", [cls.hole.port])
        objs.append(h.service("empty"))  # no EndpointSlice: 503
        objs.append(h.ingress("main", rules=[
            h.rule(HOST, [h.http_path("/", "alpaca"), h.http_path("/b", "bandicoot"), h.http_path("/sink", "hole"),
                          h.http_path("/empty", "empty")]),
            h.rule("h.example.com", [h.http_path("/", "bandicoot")]),
        ]))  # no defaultBackend: other hosts get 404
        return objs

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def client(self, port=None, **kw):
        c = H2Client(self.d.http_port if port is None else port, **kw)
        self.addCleanup(c.close)
        return c

    def tls_client(self, **kw):
        c = H2Client(self.d.https_port, tls=True, **kw)
        self.addCleanup(c.close)
        return c

    def metric(self, d, name):
        r = d.admin("/metrics")
        self.assertEqual(r.status, 200)
        return h.metric_value(r.body.decode(), name)

    def assertStillServes(self, d=None):
        """A fresh HTTP/2 connection and a fresh HTTP/1.1 connection are both answered."""
        d = d or self.d
        self.assertTrue(d.alive(), "ingressd exited")
        c = self.client(d.http_port)
        st = c.get("/still-serving")
        self.assertEqual(st.status, 200, st)
        self.assertEqual(st.json()["service"], "alpaca")
        self.assertServedBy(d.get("/", host=HOST), "alpaca")


# ----------------------------------------------------------------------------
# 1. h2c
# ----------------------------------------------------------------------------

class TestH2c(Http2Case):

    def test_curl_prior_knowledge_gets_http2_and_the_routed_backend(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        rc, version, code, body, err = curl_prior_knowledge(self.d.http_port, "/b/curl")
        self.assertEqual(rc, 0, err)
        self.assertEqual((version, code), ("2", "200"))
        j = json.loads(body)
        self.assertEqual(j["service"], "bandicoot")
        self.assertEqual(j["path"], "/b/curl")
        self.assertEqual(j["host"], HOST)

    def test_h2c_with_the_h2_library_and_a_preface_in_pieces(self):
        c = self.client()
        self.assertEqual(c.get("/").json()["service"], "alpaca")
        # The preface split across writes is still h2c.
        with h.RawConn(self.d.http_port) as raw:
            raw.send(h.H2_PREFACE[:5])
            time.sleep(0.1)
            raw.send(h.H2_PREFACE[5:15])
            time.sleep(0.1)
            raw.send(h.H2_PREFACE[15:] + h.h2_settings())
            f = h.read_h2_frame(raw)
            self.assertEqual(f.type, h.H2_SETTINGS, f)
            self.assertEqual(f.flags & h.H2_FLAG_ACK, 0)
            self.assertEqual(f.settings().get(h.H2_SETTINGS_MAX_CONCURRENT_STREAMS), 128)

    def test_preface_after_an_http1_request_is_not_h2c(self):
        with h.RawConn(self.d.http_port) as raw:
            raw.send(h.build_request("GET", "/first", HOST))
            r = raw.read_response()
            self.assertServedBy(r, "alpaca")
            raw.send(h.H2_PREFACE + h.h2_settings())
            raw.sock.settimeout(3)
            try:
                rest = raw.read_until_close()
            except socket.timeout:
                rest = raw.buf
            # An HTTP/1 error (or a bare close), never an HTTP/2 SETTINGS frame.
            self.assertTrue(rest == b"" or rest.startswith(b"HTTP/1.1 4") or rest.startswith(b"HTTP/1.1 5"), rest[:80])
        self.assertStillServes()

    def test_without_h2c_the_preface_is_refused_and_the_server_stays_up(self):
        d = self.start_ingressd(self.dir)
        self.log_on_failure(d)
        with h.RawConn(d.http_port) as raw:
            raw.send(h.H2_PREFACE + h.h2_settings())
            raw.sock.settimeout(3)
            try:
                out = raw.read_until_close()
            except socket.timeout:
                self.fail("the connection stayed open after an HTTP/2 preface without --h2c: %r" % raw.buf[:80])
            self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 4") or out.startswith(b"HTTP/1.1 5"), out[:80])
        if shutil.which("curl") is not None:
            rc, version, code, body, err = curl_prior_knowledge(d.http_port)
            self.assertNotEqual((rc, version, code), (0, "2", "200"))
        self.assertTrue(d.alive())
        self.assertServedBy(d.get("/", host=HOST), "alpaca")
        with self.assertRaises((AssertionError, h2.exceptions.ProtocolError)):  # not h2c: no HTTP/2 answer
            c = H2Client(d.http_port, timeout=2)
            try:
                c.get("/", timeout=2)
            finally:
                c.close()


# ----------------------------------------------------------------------------
# 2, 3. request fields
# ----------------------------------------------------------------------------

class TestRequestFields(Http2Case):

    def check_cookies(self, c):
        st = c.get("/cookies", headers=[("cookie", "a=1"), ("cookie", "b=2")])
        self.assertEqual(st.status, 200, st)
        self.assertEqual(st.json()["headers"].get("Cookie"), ["a=1; b=2"])

    def test_cookie_fields_reach_the_upstream_as_one_header_h2c(self):
        self.check_cookies(self.client())

    def test_cookie_fields_reach_the_upstream_as_one_header_tls(self):
        self.check_cookies(self.tls_client())

    def test_single_cookie_is_passed_as_is(self):
        st = self.client().get("/cookie", headers=[("cookie", "only=1")])
        self.assertEqual(st.json()["headers"].get("Cookie"), ["only=1"])

    def test_authority_and_a_different_host_reset_the_stream_only(self):
        c = self.client(validate=False)
        ok1 = c.request("/before")
        bad = c.request("/mismatch", headers=[("host", "h.example.com")])
        same = c.request("/same", headers=[("host", HOST)])  # equal (case aside): fine
        ok2 = c.request("/after", authority="h.example.com")
        sts = c.wait_done([ok1, bad, same, ok2])
        self.assertEqual(sts[1].reset, h.H2_PROTOCOL_ERROR, sts[1])
        self.assertIsNone(sts[1].headers)
        self.assertEqual(sts[0].json()["service"], "alpaca")
        self.assertEqual(sts[2].json()["service"], "alpaca")
        self.assertEqual(sts[3].json()["service"], "bandicoot")
        self.assertIsNone(c.terminated)
        self.assertEqual(c.get("/later").status, 200)

    def test_host_without_authority_routes_by_host(self):
        c = self.client(validate=False)
        st = c.get("/by-host", authority=None, headers=[("host", "h.example.com")])
        self.assertEqual(st.status, 200, st)
        j = st.json()
        self.assertEqual(j["service"], "bandicoot")
        self.assertEqual(j["host"], "h.example.com")
        self.assertEqual(j["headers"].get("Host"), ["h.example.com"])


# ----------------------------------------------------------------------------
# 4. multiplexing and SETTINGS_MAX_CONCURRENT_STREAMS
# ----------------------------------------------------------------------------

class TestMultiplexing(Http2Case):

    def test_100_concurrent_streams_all_answered(self):
        c = self.client()
        want = {}
        for i in range(100):
            path = ("/b/%d" % i) if i % 2 else ("/p/%d?delay_ms=%d" % (i, 50 if i % 10 == 0 else 0))
            want[c.request(path)] = (path, "bandicoot" if i % 2 else "alpaca")
        sts = c.wait_done(list(want), timeout=20)
        for st in sts:
            self.assertEqual(st.status, 200, st)
            j = st.json()
            self.assertEqual((j["path"], j["service"]), want[st.id], st)
        self.assertIsNone(c.terminated)

    def test_more_than_max_concurrent_streams_are_refused_and_the_connection_survives(self):
        d = self.start_ingressd(self.dir, ["--h2c", "--http2-max-concurrent-streams", "8"])
        self.log_on_failure(d)
        c = self.client(d.http_port)
        # Sent before the server's SETTINGS could arrive: the client cannot know the limit yet.
        sids = [c.request("/slow/%d?delay_ms=300" % i) for i in range(20)]
        sts = c.wait_done(sids, timeout=15)
        ok = [s for s in sts if s.status == 200 and s.ended]
        refused = [s for s in sts if s.reset == h.H2_REFUSED_STREAM]
        self.assertEqual(len(ok) + len(refused), 20, sts)
        self.assertGreaterEqual(len(ok), 8, sts)
        if refused:  # refused rather than queued: those must be the ones beyond the limit
            self.assertLessEqual(len(ok), 8, sts)
        self.assertEqual(c.conn.remote_settings.max_concurrent_streams, 8)
        self.assertIsNone(c.terminated)
        # The connection goes on; a client that respects the limit gets every answer.
        sids = [c.request("/again/%d" % i) for i in range(8)]
        for st in c.wait_done(sids):
            self.assertEqual(st.status, 200, st)


# ----------------------------------------------------------------------------
# 5, 6. floods
# ----------------------------------------------------------------------------

class NormalClientLoop(threading.Thread):
    """An HTTP/2 client on its own connection that keeps sending requests (bounded in time)."""

    def __init__(self, port, max_seconds=15):
        super().__init__(daemon=True)
        self.port, self.max_seconds = port, max_seconds
        self.stop_event = threading.Event()
        self.statuses = []
        self.errors = []

    def stop(self):
        self.stop_event.set()
        self.join(timeout=self.max_seconds + 5)

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        c = None
        try:
            c = H2Client(self.port, timeout=5)
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                try:
                    st = c.get("/normal", timeout=5)
                    self.statuses.append(st.status)
                except Exception as e:  # noqa: BLE001 - recorded
                    self.errors.append(repr(e))
                    c.close()
                    c = H2Client(self.port, timeout=5)
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
        finally:
            if c:
                c.close()


class TestFloods(Http2Case):

    def start_loop(self):
        loop = NormalClientLoop(self.d.http_port)
        loop.start()
        self.addCleanup(loop.stop)
        h.wait_until(lambda: len(loop.statuses) >= 3, what="the normal client's first answers")
        return loop

    def finish_loop(self, loop):
        n = len(loop.statuses)
        h.wait_until(lambda: len(loop.statuses) >= n + 3, what="the normal client's answers after the flood")
        loop.stop()
        self.assertEqual(loop.errors, [])
        self.assertTrue(loop.statuses and all(s == 200 for s in loop.statuses), loop.statuses[-10:])

    def rapid_reset(self, c, limit=5000):
        """HEADERS then RST_STREAM(CANCEL), stream after stream, until a GOAWAY (or `limit`); returns how many."""
        hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", HOST), (":path", "/reset")]
        sent = 0
        deadline = time.monotonic() + 15
        while sent < limit and c.terminated is None and not c.closed and time.monotonic() < deadline:
            try:
                for _ in range(100):
                    sid = c.conn.get_next_available_stream_id()
                    c.conn.send_headers(sid, hdrs, end_stream=True)
                    c.conn.reset_stream(sid, h.H2_CANCEL)
                    sent += 1
                c.flush()
            except (ConnectionResetError, BrokenPipeError):
                break
            except h2.exceptions.ProtocolError:
                break  # the h2 state machine already saw the GOAWAY
            c.pump(0.01)
        # Read what is left: the GOAWAY, then the close.
        end = time.monotonic() + 5
        while not c.closed and time.monotonic() < end:
            c.pump(0.2)
        return sent

    def test_rapid_reset_gets_goaway_and_close(self):
        loop = self.start_loop()
        c = self.client()
        sent = self.rapid_reset(c)
        self.assertIsNotNone(c.terminated, "no GOAWAY after %d rapid resets" % sent)
        # The token bucket is 200 (+33/s): the GOAWAY comes after a few hundred, not thousands.
        self.assertLessEqual(sent, 1000)
        # nghttp2 says INTERNAL_ERROR; ENHANCE_YOUR_CALM would do as well.
        self.assertIn(c.terminated.error_code, (h.H2_ENHANCE_YOUR_CALM, h.H2_INTERNAL_ERROR, h.H2_PROTOCOL_ERROR),
                      c.terminated)
        self.assertTrue(c.closed, "the connection stayed open after the GOAWAY")
        self.finish_loop(loop)
        self.assertStillServes()

    def test_resets_within_the_budget_are_fine(self):
        c = self.client()
        sent = self.rapid_reset(c, limit=100)
        self.assertEqual(sent, 100)
        self.assertIsNone(c.terminated)
        self.assertEqual(c.get("/after-resets").status, 200)

    def assertProtocolClosesMove(self, before):
        h.wait_until(lambda: self.metric(self.d, "ingressd_http2_protocol_closes_total") > before, timeout=2,
                     what="ingressd_http2_protocol_closes_total to move (was %s)" % before)

    # Regression test (was a bug): ingressd_http2_protocol_closes_total counts only NGHTTP2_ERR_FLOODED from nghttp2_session_mem_recv
    # (h2_session.cc on_input). nghttp2's rapid-reset limit queues a GOAWAY and returns no error, so the
    # connection is closed for abuse and the counter stays at 0.
    def test_rapid_reset_moves_the_protocol_closes_metric(self):
        before = self.metric(self.d, "ingressd_http2_protocol_closes_total")
        c = self.client()
        self.rapid_reset(c)
        self.assertIsNotNone(c.terminated)
        self.assertProtocolClosesMove(before)

    def continuation_flood(self, port, n, end_headers_on_last=False, encoder=None):
        """HEADERS without END_HEADERS, then n CONTINUATIONs; returns the RawConn after sending."""
        enc = encoder or hpack.Encoder()
        c = raw_h2c(port)
        self.addCleanup(c.close)
        first = hpack_block(enc, [(":method", "GET"), (":scheme", "http"), (":authority", HOST),
                                  (":path", "/continued")])
        out = h.h2_frame(h.H2_HEADERS, h.H2_FLAG_END_STREAM, 1, first)
        for i in range(n):
            flags = h.H2_FLAG_END_HEADERS if (end_headers_on_last and i == n - 1) else 0
            out += h.h2_frame(h.H2_CONTINUATION, flags, 1, hpack_block(enc, [("x-pad-%d" % i, "v" * 40)]))
        c.send(out)
        return c

    def test_eight_continuations_are_fine(self):
        c = self.continuation_flood(self.d.http_port, 8, end_headers_on_last=True)
        c.send(h.h2_settings(ack=True))
        frames = []
        deadline = time.monotonic() + 5
        while not any(f.type == h.H2_DATA and f.flags & h.H2_FLAG_END_STREAM for f in frames):
            self.assertLess(time.monotonic(), deadline, frames)
            frames.append(h.read_h2_frame(c))
        heads = [f for f in frames if f.type == h.H2_HEADERS and f.stream_id == 1]
        self.assertEqual(len(heads), 1, frames)
        self.assertEqual(hpack.Decoder().decode(heads[0].payload)[0], (":status", "200"))
        self.assertNotIn(h.H2_GOAWAY, [f.type for f in frames])

    def test_continuation_flood_closes_the_connection_after_the_limit(self):
        c = self.continuation_flood(self.d.http_port, 9)  # one beyond the limit of 8
        frames, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed, "still open after 9 CONTINUATION frames: %r" % frames)
        self.assertNotIn(h.H2_HEADERS, [f.type for f in frames], frames)
        self.assertStillServes()

    # Regression test (was a bug): a CONTINUATION flood closes the connection without a GOAWAY (docs/tls.md: "then GOAWAY and close";
    # RFC 9113 §5.4.1). nghttp2_session_mem_recv returns NGHTTP2_ERR_TOO_MANY_CONTINUATIONS without queueing
    # one, and H2Session::on_input only marks the session broken (no nghttp2_session_terminate_session).
    # Reproduction: h2c preface + SETTINGS, HEADERS(stream 1, END_STREAM, no END_HEADERS), 9 CONTINUATION
    # frames without END_HEADERS → SETTINGS, SETTINGS ACK, WINDOW_UPDATE, then EOF.
    def test_continuation_flood_gets_goaway(self):
        c = self.continuation_flood(self.d.http_port, 9)
        frames, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed, frames)
        goaway = [f for f in frames if f.type == h.H2_GOAWAY]
        self.assertTrue(goaway, "closed without a GOAWAY: %r" % frames)
        self.assertNotEqual(goaway[0].error_code, h.H2_NO_ERROR, goaway)

    # Regression test (was a bug): as for rapid reset: NGHTTP2_ERR_TOO_MANY_CONTINUATIONS is not counted in
    # ingressd_http2_protocol_closes_total (only NGHTTP2_ERR_FLOODED is).
    def test_continuation_flood_moves_the_protocol_closes_metric(self):
        before = self.metric(self.d, "ingressd_http2_protocol_closes_total")
        c = self.continuation_flood(self.d.http_port, 9)
        _, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed)
        self.assertProtocolClosesMove(before)

    def test_connection_error_gets_goaway_protocol_error(self):
        c = raw_h2c(self.d.http_port)
        self.addCleanup(c.close)
        c.send(h.h2_frame(h.H2_DATA, 0, 0, b"x"))  # DATA on stream 0: a connection error (RFC 9113 §6.1)
        frames, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed, frames)
        goaway = [f for f in frames if f.type == h.H2_GOAWAY]
        self.assertEqual([f.error_code for f in goaway], [h.H2_PROTOCOL_ERROR], frames)
        self.assertStillServes()

    # Regression test (was a bug): the metric's help says "closed for a protocol error or abuse (flood, rapid reset, bad preface)", but
    # a connection closed with GOAWAY(PROTOCOL_ERROR) (here: DATA on stream 0) does not move it either.
    def test_connection_error_moves_the_protocol_closes_metric(self):
        before = self.metric(self.d, "ingressd_http2_protocol_closes_total")
        c = raw_h2c(self.d.http_port)
        self.addCleanup(c.close)
        c.send(h.h2_frame(h.H2_DATA, 0, 0, b"x"))
        _, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed)
        self.assertProtocolClosesMove(before)

    def test_long_continuation_flood_is_cut_while_others_are_served(self):
        loop = self.start_loop()
        enc = hpack.Encoder()
        c = raw_h2c(self.d.http_port)
        self.addCleanup(c.close)
        c.send(h.h2_frame(h.H2_HEADERS, 0, 1, hpack_block(enc, [(":method", "GET"), (":scheme", "http"),
                                                                  (":authority", HOST), (":path", "/")])))
        sent, closed = 0, False
        deadline = time.monotonic() + 10
        while sent < 10000 and time.monotonic() < deadline:
            try:
                c.send(b"".join(h.h2_frame(h.H2_CONTINUATION, 0, 1, hpack_block(enc, [("x-f", "%d" % (sent + i))]))
                                for i in range(10)))
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            sent += 10
            if c.is_closed(0.005):
                closed = True
                break
        if not closed:
            _, closed = h.read_h2_frames_until_close(c, timeout=5)
        self.assertTrue(closed, "still open after %d CONTINUATION frames" % sent)
        self.assertLess(sent, 10000)
        self.finish_loop(loop)
        self.assertStillServes()


# ----------------------------------------------------------------------------
# 7, 8, 9. flow control, uploads, early responses
# ----------------------------------------------------------------------------

class TestFlowControl(Http2Case):

    def test_streams_of_a_shut_window_are_cancelled_after_the_send_timeout(self):
        c = self.client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        c.wait(lambda: c.conn.local_settings.initial_window_size == 0, 5, "the SETTINGS ACK")
        t0 = time.monotonic()
        sids = [c.request("/?size=60000") for _ in range(4)]
        # Meanwhile a normal client is served.
        other = self.client()
        st = other.get("/?size=60000")
        self.assertEqual((st.status, len(st.data)), (200, 60000))
        sts = c.wait_done(sids, timeout=8)
        for s in sts:
            self.assertEqual(s.reset, h.H2_CANCEL, s)
            self.assertEqual(s.status, 200, s)
            self.assertEqual(len(s.data), 0, s)
            took = s.t_reset - t0
            self.assertGreater(took, 0.7 * self.SEND_TIMEOUT_MS / 1000, s)  # not before the timeout (wait_done bounds it)
        self.assertIsNone(c.terminated)
        # The connection itself goes on.
        c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
        c.flush()
        self.assertEqual(c.get("/after").status, 200)

    @unittest.skipIf(os.environ.get("INGRESSD_SANITIZED"), "RSS says nothing under a sanitizer (ASan keeps freed memory)")
    def test_rss_stays_bounded_with_many_shut_windows(self):
        d = self.start_ingressd(self.dir, ["--h2c", "--client-send-timeout-ms", "1000", "--access-log", "off"])
        self.log_on_failure(d)

        def round_of(n_conns, n_streams):
            conns = []
            for _ in range(n_conns):
                c = self.client(d.http_port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
                conns.append((c, [c.request("/?size=60000&r=%d" % i) for i in range(n_streams)]))
            for c, sids in conns:
                for s in c.wait_done(sids, timeout=10):
                    self.assertEqual(s.reset, h.H2_CANCEL, s)
            return conns

        round_of(2, 8)  # warm-up: allocator arenas, pools
        rss0 = h.proc_rss_kib(d.pid)
        keep = round_of(8, 8)
        rss1 = h.proc_rss_kib(d.pid)
        st = self.client(d.http_port).get("/normal")
        self.assertEqual(st.status, 200)
        keep += round_of(8, 8)
        rss2 = h.proc_rss_kib(d.pid)
        # 64 streams x 60 KB per round would be ~3.8 MB each if kept; the bound is generous.
        self.assertLess(rss1 - rss0, 24 * 1024, (rss0, rss1, rss2))
        self.assertLess(rss2 - rss0, 32 * 1024, (rss0, rss1, rss2))
        self.assertLess(rss2 - rss1, 8 * 1024, (rss0, rss1, rss2))  # a second round does not add up
        self.assertTrue(d.alive())
        del keep

    def test_a_stalled_upload_does_not_stall_the_other_streams(self):
        c = self.client()
        big = b"u" * (8 * MiB)
        s1 = c.request("/sink/upload", method="POST", body=big)
        # Push stream 1 until it stalls: its window shut and no WINDOW_UPDATE for a while (bounded).
        last, last_change = -1, time.monotonic()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            c.pump(0.05)
            sent = c.uploaded(s1)
            if sent is None:
                break  # everything went out (the kernel buffers took it all): fine, still a test of stream 3
            if sent != last:
                last, last_change = sent, time.monotonic()
            elif time.monotonic() - last_change > 0.5:
                break
        self.assertIsNotNone(c.uploaded(s1), "8 MiB went out: nothing stalled (kernel buffers?)")
        self.assertLess(c.streams[s1].sent, len(big))
        body = os.urandom(100 * 1024)
        s3 = c.request("/upload3", method="POST", body=body)
        st = c.wait_done([s3], timeout=10)[0]
        self.assertEqual(st.status, 200, st)
        j = st.json()
        self.assertEqual((j["service"], j["method"], j["body_size"]), ("alpaca", "POST", len(body)))
        self.assertFalse(c.streams[s1].done, c.streams[s1])
        self.assertLess(c.streams[s1].sent, len(big), c.streams[s1])  # still stalled
        self.assertIsNone(c.terminated)

    def check_early_response(self, path, authority, status):
        c = self.client()
        body = b"z" * MiB
        sid = c.request(path, method="POST", authority=authority, body=body)
        st = c.wait_done([sid], timeout=10)[0]
        c.wait(lambda: st.reset is not None or c.closed, 5, "RST_STREAM after the early response")
        self.assertEqual(st.status, status, st)
        self.assertTrue(st.ended, st)
        self.assertEqual(len(st.data), int(st.headers.get("content-length", len(st.data))), st)
        self.assertEqual(st.reset, h.H2_NO_ERROR, st)
        self.assertLess(st.sent, len(body), "the whole body went out before the response: %r" % st)
        self.assertIsNone(c.terminated)
        self.assertEqual(c.get("/after").status, 200)

    def test_404_before_the_request_body_ends_is_followed_by_rst_no_error(self):
        self.check_early_response("/upload", "unknown.example.com", 404)

    def test_503_before_the_request_body_ends_is_followed_by_rst_no_error(self):
        self.check_early_response("/empty/upload", HOST, 503)


# ----------------------------------------------------------------------------
# 10. shutdown
# ----------------------------------------------------------------------------

class TestShutdown(Http2Case):

    def test_idle_connections_get_goaway_on_sigterm(self):
        d = self.start_ingressd(self.dir, ["--h2c", "--shutdown-grace-ms", "1000"])
        self.log_on_failure(d)
        used = self.client(d.http_port)
        self.assertEqual(used.get("/").status, 200)
        fresh = self.client(d.http_port)  # preface and SETTINGS only
        fresh.wait(lambda: fresh.conn.remote_settings.max_concurrent_streams == 128, 5, "server SETTINGS")
        # In flight: raw frames, since the h2 package refuses every frame after a GOAWAY.
        busy = raw_h2c(d.http_port)
        self.addCleanup(busy.close)
        busy.send(h.h2_settings(ack=True) + h.h2_frame(
            h.H2_HEADERS, h.H2_FLAG_END_HEADERS | h.H2_FLAG_END_STREAM, 1,
            hpack_block(hpack.Encoder(), [(":method", "GET"), (":scheme", "http"), (":authority", HOST),
                                          (":path", "/?delay_ms=400")])))
        time.sleep(0.1)
        os.kill(d.pid, signal.SIGTERM)
        for c, last in ((used, 1), (fresh, 0)):
            c.wait(lambda c=c: c.closed, 5, "close after SIGTERM")
            self.assertIsNotNone(c.terminated, "closed without a GOAWAY")
            self.assertEqual(c.terminated.error_code, h.H2_NO_ERROR)
            self.assertEqual(c.terminated.last_stream_id, last)
        # The stream in flight finishes after its GOAWAY (which names it), then the connection closes.
        frames, closed = h.read_h2_frames_until_close(busy, timeout=5)
        self.assertTrue(closed, frames)
        kinds = [(f.type, f.stream_id) for f in frames]
        goaway = [f for f in frames if f.type == h.H2_GOAWAY]
        self.assertEqual([(f.error_code, f.last_stream_id) for f in goaway], [(h.H2_NO_ERROR, 1)], frames)
        self.assertIn((h.H2_HEADERS, 1), kinds, frames)
        heads = [f for f in frames if f.type == h.H2_HEADERS]
        self.assertEqual(hpack.Decoder().decode(heads[0].payload)[0], (":status", "200"))
        self.assertTrue(any(f.type == h.H2_DATA and f.stream_id == 1 and f.flags & h.H2_FLAG_END_STREAM
                            for f in frames), frames)
        self.assertEqual(d.popen.wait(timeout=5), 0)


    # Regression test (was a bug): a busy HTTP/2 connection gets its GOAWAY only at its next I/O (ClientConn::pump_h2 checks
    # w_.stopping()), not at SIGTERM: the worker's shutdown loop calls close_when_idle() for idle connections
    # only. Until the in-flight response comes (here 800 ms), the client is not told to stop, and a new stream
    # it opens meanwhile is accepted (the late GOAWAY names it). Reproduction: h2c, HEADERS for
    # /?delay_ms=800, SIGTERM 100 ms later → frames: HEADERS(1), GOAWAY(last=1), DATA(1, END_STREAM).
    def test_busy_connection_gets_goaway_at_sigterm_not_after_its_response(self):
        d = self.start_ingressd(self.dir, ["--h2c", "--shutdown-grace-ms", "3000"])
        self.log_on_failure(d)
        busy = raw_h2c(d.http_port)
        self.addCleanup(busy.close)
        busy.send(h.h2_settings(ack=True) + h.h2_frame(
            h.H2_HEADERS, h.H2_FLAG_END_HEADERS | h.H2_FLAG_END_STREAM, 1,
            hpack_block(hpack.Encoder(), [(":method", "GET"), (":scheme", "http"), (":authority", HOST),
                                          (":path", "/?delay_ms=800")])))
        time.sleep(0.1)
        os.kill(d.pid, signal.SIGTERM)
        frames, closed = h.read_h2_frames_until_close(busy, timeout=5)
        self.assertTrue(closed, frames)
        kinds = [(f.type, f.stream_id) for f in frames]
        self.assertIn((h.H2_GOAWAY, 0), kinds, frames)
        self.assertIn((h.H2_HEADERS, 1), kinds, frames)
        self.assertLess(kinds.index((h.H2_GOAWAY, 0)), kinds.index((h.H2_HEADERS, 1)), frames)


# ----------------------------------------------------------------------------
# 11, 12. responses and the access log
# ----------------------------------------------------------------------------

class HintsUpstream(threading.Thread):
    """An HTTP/1.1 upstream that answers every request with two 103 Early Hints (the first with a hop-by-hop
    Keep-Alive field) and then `200 ok`. Bounded: stops on close() or after 60 s."""

    RESPONSE = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n"
                b"Keep-Alive: timeout=5\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload; as=script\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = h.listen_loopback(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.start()

    def run(self):
        deadline = time.monotonic() + 60
        conns = []
        while not self.stopped.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            conns.append(c)
            threading.Thread(target=self.serve, args=(c, deadline), daemon=True).start()
        for c in conns:
            c.close()

    def serve(self, c, deadline):
        c.settimeout(0.5)
        buf = b""
        while not self.stopped.is_set() and time.monotonic() < deadline:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                _, _, buf = buf.partition(b"\r\n\r\n")  # GET requests only: no body
                c.sendall(self.RESPONSE)

    def close(self):
        self.stopped.set()
        self.sock.close()


class TestInterimResponses(Http2Case):
    """1xx responses from the upstream reach HTTP/2 clients as non-final HEADERS (RFC 9113 §8.1)."""

    @classmethod
    def setUpClass(cls):
        cls.hints = HintsUpstream()
        cls.addClassCleanup(cls.hints.close)
        super().setUpClass()

    @classmethod
    def objects(cls):
        objs = super().objects() + h.backend_objects("hints", [cls.hints.port])
        objs.append(h.ingress("hints", rules=[h.rule("hints.example.com", [h.http_path("/", "hints")])]))
        return objs

    def test_early_hints_pass_on_in_order_without_hop_by_hop_fields(self):
        for c in (self.client(), self.tls_client()):
            for _ in range(2):  # the upstream connection is reused for the second request
                st = c.get("/page", authority="hints.example.com")
                self.assertEqual(st.status, 200, st)
                self.assertEqual(bytes(st.data), b"ok")
                self.assertEqual([(i.get(":status"), i.get("link")) for i in st.interim],
                                 [("103", "</style.css>; rel=preload; as=style"),
                                  ("103", "</app.js>; rel=preload; as=script")], st.interim)
                self.assertNotIn("keep-alive", st.interim[0])
                self.assertEqual(st.events[:3], ["InformationalResponseReceived", "InformationalResponseReceived",
                                                 "ResponseReceived"], st.events)

    def test_http11_clients_get_the_early_hints_too(self):
        with self.d.conn() as c:
            c.send(h.build_request("GET", "/page", "hints.example.com"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual([(s, hd.get("Link")) for s, hd in r.interim],
                             [(103, "</style.css>; rel=preload; as=style"), (103, "</app.js>; rel=preload; as=script")])
            self.assertIsNone(r.interim[0][1].get("Keep-Alive"))


class TestResponses(Http2Case):

    def assertNoBody(self, st):
        self.assertTrue(st.ended, st)
        self.assertTrue(st.headers_ended, "END_STREAM not on HEADERS: %r" % st)
        self.assertEqual(st.data_events, 0, st)
        self.assertEqual(bytes(st.data), b"")

    def test_head_204_304_have_no_data_frames(self):
        c = self.client()
        head = c.request("/head", method="HEAD")
        s204 = c.request("/?status=204")
        s304 = c.request("/?status=304")
        sts = c.wait_done([head, s204, s304])
        self.assertEqual([s.status for s in sts], [200, 204, 304], sts)
        for s in sts:
            self.assertNoBody(s)
        self.assertGreater(int(sts[0].headers.get("content-length", "0")), 0, sts[0].headers)
        for s in sts[1:]:
            self.assertNotIn("content-length", s.headers)
        for s in sts:
            self.assertNotIn("connection", s.headers)
            self.assertNotIn("transfer-encoding", s.headers)

    def test_head_204_304_over_tls(self):
        c = self.tls_client()
        sts = c.wait_done([c.request("/head", method="HEAD"), c.request("/?status=204"), c.request("/?status=304")])
        for s in sts:
            self.assertNoBody(s)

    def test_100_continue_is_passed_on_before_the_body_is_sent(self):
        # The client sends its head with `expect: 100-continue` and holds the body back; the upstream's
        # 100 Continue must reach it as a non-final HEADERS frame (RFC 9113 §8.1), then the final response.
        for c in (self.client(), self.tls_client()):
            body = b"hello, continue"
            sid = c.request("/continue", method="POST", end_stream=False,
                            headers=[("content-length", str(len(body))), ("expect", "100-continue")])
            st = c.streams[sid]
            c.wait(lambda st=st: st.interim or st.done, 5, "the 100 Continue")
            self.assertEqual([i.get(":status") for i in st.interim], ["100"], st)
            self.assertIsNone(st.headers, "a final response before the body was sent: %r" % st)
            c.conn.send_data(sid, body, end_stream=True)
            c.flush()
            st = c.wait_done([sid])[0]
            self.assertEqual(st.status, 200, st)
            self.assertEqual(st.json()["body_size"], len(body))
            self.assertEqual(st.json()["service"], "alpaca")

    def test_chunked_upstream_response_arrives_intact(self):
        c = self.client()
        json_sid = c.request("/chunky?chunked=1")
        sized_sid = c.request("/chunky?chunked=1&size=300001")
        js, sized = c.wait_done([json_sid, sized_sid])
        self.assertEqual(js.status, 200)
        self.assertEqual(js.json()["path"], "/chunky?chunked=1")
        self.assertNotIn("transfer-encoding", js.headers)
        self.assertEqual(bytes(sized.data), b"x" * 300001)

    def test_4mib_body_with_a_small_window_opened_gradually(self):
        c = self.client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384}, auto_ack=False)
        c.wait(lambda: c.conn.local_settings.initial_window_size == 16384, 5, "the SETTINGS ACK")
        sid = c.request("/?size=%d" % (4 * MiB))
        st = c.streams[sid]
        deadline = time.monotonic() + 20
        acked = 0
        while not st.done:
            self.assertLess(time.monotonic(), deadline, st)
            self.assertTrue(c.pump(0.2), st)
            # Open the windows by what was read, a little at a time.
            while acked < len(st.data) and not st.done:
                n = min(4096, len(st.data) - acked)
                c.conn.increment_flow_control_window(n, stream_id=sid)
                c.conn.increment_flow_control_window(n)
                acked += n
            c.flush()
        self.assertTrue(st.ended, st)
        self.assertEqual(st.status, 200)
        self.assertEqual(int(st.headers["content-length"]), 4 * MiB)
        self.assertEqual(bytes(st.data), b"x" * (4 * MiB))

    def test_access_log_says_http2(self):
        c = self.client()
        marker = "/access-log-h2-%d" % os.getpid()
        self.assertEqual(c.get(marker).status, 200)

        def line():
            for ln in self.d.log().splitlines():
                if marker in ln and ln.lstrip().startswith("{"):
                    return json.loads(ln)
            return None
        entry = h.wait_until(line, what="the access log line for %s" % marker)
        self.assertEqual(entry.get("protocol"), "HTTP/2.0", entry)
        self.assertEqual(entry.get("status"), 200, entry)
        self.assertIn('"protocol":"HTTP/2.0"', [ln for ln in self.d.log().splitlines() if marker in ln][0])


if __name__ == "__main__":
    unittest.main()
