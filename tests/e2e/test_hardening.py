"""Hardening of the data plane, end to end (docs/proxy.md).

1. Request smuggling and malformed HTTP: each refused (400, 414, 431...) with
   the connection closed and nothing reaching the upstream, which is a raw TCP
   upstream that records every byte it receives. For chunked bodies with a
   valid head, the upstream may see the head but never the bad bytes nor a
   request pipelined after them.
2. The response side is strict towards a misbehaving upstream: 502 to the
   client, or the client connection closed once the head was sent; bytes an
   upstream sends beyond a response never answer the next request.
3. Limits: --max-body-bytes (413), --max-connections (503 + close; per
   process, also with 2 workers),
   --max-requests-per-backend (503), --client-header-timeout-ms (408),
   --client-idle-timeout-ms (close).
4. Failing upstreams: passive health (ejection), a GET retried after a reset,
   a POST with a body never retried.
5. Lifecycle: SIGTERM with --shutdown-delay-ms.
6. Hitless reloads: request loops and an open WebSocket while the Ingress is
   rewritten 20 times and an EndpointSlice changes.
"""

import base64
import json
import os
import select
import signal
import socket
import struct
import threading
import time
import unittest

try:
    from . import harness as h
    from .test_proxy import ws_frame, ws_read_frame
except ImportError:  # run as a script from this folder
    import harness as h
    from test_proxy import ws_frame, ws_read_frame


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


# ----------------------------------------------------------------------------
# a raw TCP upstream that records every byte it receives
# ----------------------------------------------------------------------------

class RawUpstream(threading.Thread):
    """An upstream on 127.0.0.1 written by hand, one thread per connection.

    Every byte received is recorded (`received()`), with the request line of every
    complete head (`heads`) and of every complete request, body included (`completed`).
    mode "ok": valid requests (Content-Length or chunked bodies) get OK_RESPONSE,
    keep-alive; a path listed in `scripts` gets its script instead: a list of bytes
    to send and floats to sleep, after which the connection is closed (unless the
    last step is "keep").
    mode "reset": reads a head, then closes with SO_LINGER 0 (an RST).
    Bounded: accept loop stops after stop() or 120 s; each connection after 5 s of silence."""

    def __init__(self, mode="ok", scripts=None, name="raw"):
        super().__init__(daemon=True)
        self.mode = mode
        self.scripts = dict(scripts or {})
        self.name = name
        self.sock = h.listen_loopback(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self._bytes = bytearray()
        self.heads = []       # request lines (str) of complete heads
        self.completed = []   # request lines of requests read whole (body included)
        self.accepted = 0
        self.conns = []

    # records ------------------------------------------------------------
    def clear(self):
        with self.lock:
            self._bytes = bytearray()
            self.heads = []
            self.completed = []

    def received(self):
        with self.lock:
            return bytes(self._bytes)

    def paths(self, which="heads"):
        with self.lock:
            lines = list(self.heads if which == "heads" else self.completed)
        return [l.split(" ")[1] if " " in l else l for l in lines]

    # lifecycle ----------------------------------------------------------
    def stop(self):
        self.stopped.set()
        self.join(timeout=3)
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def run(self):
        deadline = time.monotonic() + 120
        while not self.stopped.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve_safely, args=(c,), daemon=True).start()

    # one connection -----------------------------------------------------
    def _recv(self, c):
        d = c.recv(65536)
        if d:
            with self.lock:
                self._bytes += d
        return d

    def _serve_safely(self, c):
        try:
            c.settimeout(5)
            self._serve(c)
        except Exception:  # noqa: BLE001 - the test sees the outcome on its side
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _fill(self, c, buf, need):
        """Reads until `need(buf)` is true; returns buf, or None on EOF."""
        for _ in range(100000):
            if need(buf):
                return buf
            d = self._recv(c)
            if not d:
                return None
            buf += d
        return None

    def _serve(self, c):
        buf = b""
        for _ in range(10000):  # requests on this connection
            buf = self._fill(c, buf, lambda b: b"\r\n\r\n" in b)
            if buf is None:
                return
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            with self.lock:
                self.heads.append(lines[0])
            if self.mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                return
            hdrs = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                buf = self._read_chunked(c, buf)
            else:
                n = int(hdrs.get("content-length", "0"))
                buf = self._fill(c, buf, lambda b: len(b) >= n)
                if buf is not None:
                    buf = buf[n:]
            if buf is None:
                return
            with self.lock:
                self.completed.append(lines[0])
            path = lines[0].split(" ")[1] if " " in lines[0] else ""
            script = self.scripts.get(path.split("?")[0])
            if script is None:
                c.sendall(OK_RESPONSE)
                continue
            for step in script:
                if isinstance(step, (int, float)):
                    time.sleep(step)
                elif isinstance(step, bytes):
                    c.sendall(step)
            if script and script[-1] == "keep":
                continue  # keep the connection for the next request
            return

    def _read_chunked(self, c, buf):
        for _ in range(100000):
            buf = self._fill(c, buf, lambda b: b"\r\n" in b)
            if buf is None:
                return None
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                buf = self._fill(c, buf, lambda b: b"\r\n" in b)  # no trailers from ingressd
                return None if buf is None else buf.partition(b"\r\n")[2]
            buf = self._fill(c, buf, lambda b: len(b) >= size + 2)
            if buf is None:
                return None
            buf = buf[size + 2:]
        return None


def start_raw(test_or_cls, mode="ok", scripts=None, cls_scope=False):
    u = RawUpstream(mode, scripts)
    u.start()
    if cls_scope:
        test_or_cls.addClassCleanup(u.stop)
    else:
        test_or_cls.addCleanup(u.stop)
    return u


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

def metrics(srv):
    """{name or name{labels}: float} from /metrics."""
    r = srv.admin("/metrics")
    if r.status != 200:
        raise AssertionError("/metrics answered %d" % r.status)
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        out[k] = float(v)
    return out


def read_outcome(c):
    """One response on a RawConn, or None when the connection closes first."""
    try:
        return c.read_response()
    except h.ConnectionClosed:
        return None


def ws_handshake(c, path, host):
    key = base64.b64encode(os.urandom(16)).decode()
    c.send(h.build_request("GET", path, host, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]))
    return c.read_head()[1]


def one_backend_ingress(dirpath, name, port):
    objs = h.backend_objects(name, [port])
    objs.append(h.ingress("hard", default_backend=name))
    h.write_manifests(dirpath, objs)


# ----------------------------------------------------------------------------
# 1. request smuggling / malformed HTTP
# ----------------------------------------------------------------------------

AFTER = b"GET /smuggled HTTP/1.1\r\nHost: raw.test\r\n\r\n"  # pipelined after each bad request


class RequestSmuggling(h.E2ETestCase):
    """One ingressd whose default backend is the raw upstream: any request that got
    past the parser would reach it."""

    # (name, bytes, expected status)
    HEAD_CASES = [
        ("Content-Length and Transfer-Encoding",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding and Content-Length",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        ("two differing Content-Lengths",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("Content-Length list of differing values",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
        ("Transfer-Encoding last coding not chunked",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding chunked then another field",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
         b"0\r\n\r\n", 400),
        ("chunked twice",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding in HTTP/1.0",
         b"POST /x HTTP/1.0\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("obs-fold", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: b\r\n  c\r\n\r\n", 400),
        ("obs-fold with a tab", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: b\r\n\tc\r\n\r\n", 400),
        ("space before the colon", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A : b\r\n\r\n", 400),
        ("tab before the colon", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A\t: b\r\n\r\n", 400),
        ("space before the colon of Content-Length",
         b"POST /x HTTP/1.1\r\nHost: raw.test\r\nContent-Length : 4\r\n\r\nabcd", 400),
        ("NUL in a header value", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: a\x00b\r\n\r\n", 400),
        ("CR in a header value", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: a\rb\r\n\r\n", 400),
        ("LF in a header value", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: a\nb\r\n\r\n", 400),
        ("CTL 0x01 in a header value", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: a\x01b\r\n\r\n", 400),
        ("DEL in a header value", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nX-A: a\x7fb\r\n\r\n", 400),
        ("bare LF line endings", b"GET /x HTTP/1.1\nHost: raw.test\n\n", 400),
        ("bare LF after the request line", b"GET /x HTTP/1.1\nHost: raw.test\r\n\r\n", 400),
        ("bare LF ending the head", b"GET /x HTTP/1.1\r\nHost: raw.test\r\n\n", 400),
        ("request line over 16 KiB", b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: raw.test\r\n\r\n", 414),
        ("101 header fields",
         b"GET /x HTTP/1.1\r\nHost: raw.test\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
        ("invalid method token (\"(\")", b"G(T /x HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("invalid method token (\"@\")", b"GE@T /x HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("invalid method token (8-bit)", b"G\xc9T /x HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("empty method", b" /x HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("two Host headers", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nHost: evil.test\r\n\r\n", 400),
        ("two identical Host headers", b"GET /x HTTP/1.1\r\nHost: raw.test\r\nhost: raw.test\r\n\r\n", 400),
        ("Host list", b"GET /x HTTP/1.1\r\nHost: raw.test, evil.test\r\n\r\n", 400),
        ("HTTP/1.1 without Host", b"GET /x HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        ("%2F in the path", b"GET /a%2Fb HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("%2f in the path", b"GET /a%2fb HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
        ("%2F in an absolute-form path", b"GET http://raw.test/a%2Fb HTTP/1.1\r\nHost: raw.test\r\n\r\n", 400),
    ]

    # chunked bodies under a valid head: the bad bytes must never be forwarded
    CHUNK_CASES = [
        ("invalid chunk size zz", b"zz\r\nhello\r\n0\r\n\r\n"),
        ("chunk size overflow", b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        ("chunk size with 0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("negative chunk size", b"-5\r\nhello\r\n0\r\n\r\n"),
        ("chunk extension over 4 KiB", b"5;e=" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after the chunk size", b"5\nhello\r\n0\r\n\r\n"),
        ("chunk data longer than its size", b"3\r\nhello\r\n0\r\n\r\n"),
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.up = start_raw(cls, cls_scope=True)
        cls.dir = cls.cres.tempdir()
        one_backend_ingress(cls.dir, "raw", cls.up.port)
        cls.srv = cls.cres.start_ingressd(cls.dir, workers=2)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.srv)
        self.up.clear()

    def test_control_valid_requests_reach_the_upstream(self):
        """Without this the zero-byte assertions below would prove nothing."""
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/ok", "raw.test"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"ok\n"))
            c.send(b"POST /chunked HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5;e=1\r\nhello\r\n0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
        h.wait_until(lambda: self.up.paths("completed") == ["/ok", "/chunked"], timeout=2,
                     what="both requests at the upstream")

    def assertNothingForwarded(self, name):
        time.sleep(0.05)  # a forwarded byte would have left ingressd before the close we just saw
        got = self.up.received()
        self.assertEqual(got, b"", "%s: the upstream received %r" % (name, got[:300]))

    def test_malformed_heads_are_refused_closed_and_not_forwarded(self):
        for name, raw, status in self.HEAD_CASES:
            with self.subTest(name):
                self.up.clear()
                with self.srv.conn(timeout=3) as c:
                    c.send(raw + AFTER)
                    r = read_outcome(c)
                    self.assertIsNotNone(r, "%s: closed without a response" % name)
                    self.assertEqual(r.status, status, r)
                    self.assertEqual((r.headers.get("Connection") or "").lower(), "close", r.headers)
                    self.assertTrue(c.is_closed(timeout=2), "%s: the connection stayed open" % name)
                self.assertNothingForwarded(name)

    def test_bad_chunked_bodies_are_not_forwarded(self):
        for name, body in self.CHUNK_CASES:
            with self.subTest(name):
                self.up.clear()
                with self.srv.conn(timeout=3) as c:
                    c.send(b"POST /chunky HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n" + body + AFTER)
                    r = read_outcome(c)
                    if r is not None:
                        self.assertEqual(r.status, 400, r)
                        self.assertTrue(c.is_closed(timeout=2), "%s: the connection stayed open" % name)
                    # nothing else comes on this connection
                    self.assertTrue(c.eof or c.is_closed(timeout=2))
                    self.assertEqual(c.buf, b"", "%s: more bytes after the refusal: %r" % (name, c.buf[:200]))
                time.sleep(0.05)
                got = self.up.received()
                head, sep, rest = got.partition(b"\r\n\r\n")
                if got:
                    self.assertTrue(head.startswith(b"POST /chunky HTTP/1.1\r\n"), got[:300])
                self.assertEqual(rest, b"", "%s: body bytes reached the upstream: %r" % (name, rest[:300]))
                self.assertNotIn(b"/smuggled", got, name)
                self.assertEqual(self.up.paths("completed"), [], name)

    def test_bad_chunk_after_good_chunks_stops_the_body(self):
        """A valid first chunk may be forwarded; the bad one and what follows must not."""
        with self.srv.conn(timeout=3) as c:
            c.send(b"POST /chunky2 HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nfirst\r\nzz\r\nSECOND\r\n0\r\n\r\n" + AFTER)
            r = read_outcome(c)
            if r is not None:
                self.assertEqual(r.status, 400, r)
            self.assertTrue(c.eof or c.is_closed(timeout=2))
        time.sleep(0.05)
        got = self.up.received()
        for bad in (b"SECOND", b"zz", b"/smuggled", b"0\r\n\r\n"):
            self.assertNotIn(bad, got)
        self.assertEqual(self.up.paths("completed"), [])

    def test_malformed_request_after_a_good_one_on_keep_alive(self):
        with self.srv.conn(timeout=3) as c:
            c.send(h.build_request("GET", "/first", "raw.test") +
                   b"POST /x HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"0\r\n\r\n" + AFTER)
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response().status, 400)
            self.assertTrue(c.is_closed(timeout=2))
        time.sleep(0.05)
        self.assertEqual(self.up.paths("heads"), ["/first"])


# ----------------------------------------------------------------------------
# 2. a misbehaving upstream
# ----------------------------------------------------------------------------

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


class StrictResponses(h.E2ETestCase):
    GOOD_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    SCRIPTS = {
        "/garbage-status": [b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok"],
        "/garbage": [b"this is not http at all\r\n\r\n"],
        "/cl-te": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
        "/te-cl": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
        "/two-cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"],
        "/bare-lf": [b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"],
        "/bare-lf-one": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: b\r\n\r\nok"],
        "/close-before-head": [],
        "/partial-head": [b"HTTP/1.1 200 OK\r\nContent-Le"],
        "/bad-chunk": [GOOD_HEAD + b"5\r\nfirst\r\n", 0.3, b"zz\r\nsecond\r\n0\r\n\r\n"],
        "/bad-chunk-at-once": [GOOD_HEAD + b"5\r\nfirst\r\nzz\r\nsecond\r\n0\r\n\r\n"],
        "/short-length": [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", 0.2],
        # bytes after a complete response, the connection kept open: never to be read as the next response
        "/extra-now": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + EVIL, "keep"],
        "/extra-later": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0.1, EVIL, "keep"],
        "/head-with-body": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", "keep"],
        "/304-with-body": [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nEVIL!", "keep"],
        "/204-with-body": [b"HTTP/1.1 204 No Content\r\n\r\nEVIL!", "keep"],
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.up = start_raw(cls, scripts=cls.SCRIPTS, cls_scope=True)
        cls.dir = cls.cres.tempdir()
        one_backend_ingress(cls.dir, "raw", cls.up.port)
        cls.srv = cls.cres.start_ingressd(cls.dir, workers=1)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.srv)

    def test_invalid_response_heads_are_502(self):
        for path in ("/garbage-status", "/garbage", "/cl-te", "/te-cl", "/two-cl", "/bare-lf", "/bare-lf-one",
                     "/close-before-head", "/partial-head"):
            with self.subTest(path), self.srv.conn(timeout=3) as c:
                c.send(h.build_request("GET", path, "raw.test"))
                r = read_outcome(c)
                self.assertIsNotNone(r, "%s: closed without a response" % path)
                self.assertEqual(r.status, 502, r)
                self.assertNotIn(b"ok", r.body)
        # and the proxy still serves
        self.assertEqual(self.srv.get("/fine", "raw.test").status, 200)

    def assertCutShort(self, c, path):
        """The client must not be able to take the body for a whole one: the connection closes."""
        try:
            body = c._read_chunked()
        except h.ConnectionClosed:
            return
        except ValueError as e:
            self.fail("%s: garbage forwarded to the client: %s (buffer %r)" % (path, e, c.buf[:100]))
        self.fail("%s: the client got a complete body %r from an invalid upstream body" % (path, body))

    def test_invalid_chunk_mid_stream_closes_the_client(self):
        with self.srv.conn(timeout=3) as c:
            c.send(h.build_request("GET", "/bad-chunk", "raw.test"))
            _, status, _, hdrs = c.read_head()
            self.assertEqual(status, 200)
            self.assertIn("chunked", (hdrs.get("Transfer-Encoding") or "").lower())
            self.assertCutShort(c, "/bad-chunk")
            self.assertTrue(c.eof or c.is_closed(timeout=2))

    def test_invalid_chunk_in_the_first_read(self):
        """Head and bad chunk together: a 502, or the head then a close; never a complete response."""
        with self.srv.conn(timeout=3) as c:
            c.send(h.build_request("GET", "/bad-chunk-at-once", "raw.test"))
            try:
                _, status, _, _ = c.read_head()
            except h.ConnectionClosed:
                return  # closed: acceptable (nothing misleading was sent)
            if status == 502:
                return
            self.assertEqual(status, 200)
            self.assertCutShort(c, "/bad-chunk-at-once")

    def test_bytes_after_a_response_never_answer_the_next_request(self):
        """Response queue poisoning: what an upstream sends beyond a response must not be
        taken as the response to the next request (one worker: the pool would be shared)."""
        for path, method in (("/extra-now", "GET"), ("/extra-later", "GET"), ("/head-with-body", "HEAD"),
                             ("/304-with-body", "GET"), ("/204-with-body", "GET")):
            with self.subTest(path), self.srv.conn(timeout=3) as c:
                c.send(h.build_request(method, path, "raw.test"))
                r = c.read_response(method)
                self.assertIn(r.status, (200, 204, 304), r)
                self.assertNotIn(b"EVIL", r.body)
                time.sleep(0.2)
                for i in range(2):  # the same client connection, then a new one
                    if i == 0:
                        c.send(h.build_request("GET", "/next", "raw.test"))
                        r2 = c.read_response()
                    else:
                        r2 = self.srv.get("/next", "raw.test")
                    self.assertEqual((r2.status, r2.body), (200, b"ok\n"), "after %s: %r" % (path, r2))

    def test_truncated_length_body_closes_the_client(self):
        with self.srv.conn(timeout=3) as c:
            c.send(h.build_request("GET", "/short-length", "raw.test"))
            _, status, _, hdrs = c.read_head()
            self.assertEqual((status, hdrs.get("Content-Length")), (200, "100"))
            with self.assertRaises(h.ConnectionClosed):
                c.read_exact(100)


# ----------------------------------------------------------------------------
# 3. limits
# ----------------------------------------------------------------------------

class Limits(h.E2ETestCase):
    def serve(self, name, port, args, workers=1):
        d = self.tempdir()
        one_backend_ingress(d, name, port)
        srv = self.start_ingressd(d, args, workers=workers)
        self.log_on_failure(srv)
        return srv

    def test_max_body_bytes(self):
        up = start_raw(self)
        srv = self.serve("raw", up.port, ["--max-body-bytes", "1000"])
        # at the limit: served
        r = srv.request("POST", "/at-limit", "raw.test", body=b"a" * 1000)
        self.assertEqual(r.status, 200, r)
        h.wait_until(lambda: "/at-limit" in up.paths("completed"), timeout=2, what="the request at the limit")
        # a declared length over the limit: 413, nothing forwarded
        up.clear()
        with srv.conn() as c:
            c.send(h.build_request("POST", "/too-big", "raw.test", body=b"b" * 2000))
            r = read_outcome(c)
            self.assertIsNotNone(r, "closed without a 413")
            self.assertEqual(r.status, 413, r)
            self.assertTrue(c.is_closed(timeout=2))
        time.sleep(0.05)
        self.assertEqual(up.received(), b"")
        # a chunked body that grows over the limit: 413 or a close; the upstream never gets a whole request
        up.clear()
        with srv.conn() as c:
            c.send(b"POST /chunked-too-big HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(4):
                try:
                    c.send(b"258\r\n" + b"c" * 600 + b"\r\n")  # 4 x 600 bytes
                except OSError:
                    break
                time.sleep(0.02)
            try:
                c.send(b"0\r\n\r\n")
            except OSError:
                pass
            r = read_outcome(c)
            if r is not None:
                self.assertEqual(r.status, 413, r)
            self.assertTrue(c.eof or c.is_closed(timeout=2))
        time.sleep(0.05)
        got = up.received()
        self.assertEqual(up.paths("completed"), [])
        self.assertLessEqual(got.count(b"c"), 1000, "more than --max-body-bytes reached the upstream")

    def test_max_connections(self):
        echo = self.start_echo("busy")
        srv = self.serve("busy", echo.port, ["--max-connections", "4"], workers=1)
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        for i in range(4):
            c = srv.conn(timeout=3)
            conns.append(c)
            c.send(h.build_request("GET", "/c%d" % i, "busy.test"))
            self.assertEqual(c.read_response().status, 200)
        with srv.conn(timeout=3) as fifth:
            r = read_outcome(fifth)
            self.assertIsNotNone(r, "the 5th connection was closed without a 503")
            self.assertEqual(r.status, 503, r)
            self.assertTrue(fifth.eof or fifth.is_closed(timeout=2), "the 5th connection stayed open")
        for i, c in enumerate(conns):
            c.send(h.build_request("GET", "/again%d" % i, "busy.test"))
            self.assertEqual(c.read_response().status, 200, "connection %d after the refusal" % i)
        self.assertGreaterEqual(metrics(srv).get("ingressd_connections_refused_total", 0), 1)
        # a slot freed is a slot available again
        conns.pop().close()

        def new_one_served():
            with srv.conn(timeout=2) as c:
                c.send(h.build_request("GET", "/later", "busy.test"))
                r = read_outcome(c)
                return r is not None and r.status == 200
        h.wait_until(new_one_served, timeout=3, interval=0.1, what="a connection accepted after one closed")

    def test_max_connections_counts_the_process_not_a_worker(self):
        """--max-connections is per process (docs, --help): with 2 workers, 4 connections
        must all be served whichever worker the kernel hands them to (SO_REUSEPORT)."""
        echo = self.start_echo("busy")
        srv = self.serve("busy", echo.port, ["--max-connections", "4"], workers=2)
        for trial in range(5):
            conns = []
            try:
                for i in range(4):
                    c = srv.conn(timeout=3)
                    conns.append(c)
                    c.send(h.build_request("GET", "/t%d-c%d" % (trial, i), "busy.test"))
                    r = read_outcome(c)
                    self.assertIsNotNone(r, "trial %d: connection %d closed without a response" % (trial, i + 1))
                    self.assertEqual(r.status, 200, "trial %d: connection %d of 4 refused: %r" % (trial, i + 1, r))
            finally:
                for c in conns:
                    c.close()
            h.wait_until(lambda: sum(v for k, v in metrics(srv).items() if k.startswith("ingressd_connections_active")) == 0, timeout=2,
                         what="the connections to be gone")

    def test_max_requests_per_backend(self):
        slow = self.start_echo("slow")
        other = self.start_echo("other")
        d = self.tempdir()
        objs = h.backend_objects("slow", [slow.port]) + h.backend_objects("other", [other.port])
        objs.append(h.ingress("lim", rules=[h.rule("slow.test", [h.http_path("/", "slow")]),
                                            h.rule("other.test", [h.http_path("/", "other")])]))
        h.write_manifests(d, objs)
        srv = self.start_ingressd(d, ["--max-requests-per-backend", "1"], workers=1)
        self.log_on_failure(srv)
        result = {}

        def first():
            try:
                result["r"] = srv.get("/?delay_ms=1000", "slow.test", timeout=5)
            except Exception as e:  # noqa: BLE001
                result["e"] = e
        t = threading.Thread(target=first, daemon=True)
        t.start()
        self.addCleanup(t.join, 5)
        time.sleep(0.3)
        t0 = time.monotonic()
        r = srv.get("/second", "slow.test", timeout=3)
        self.assertEqual(r.status, 503, r)
        self.assertLess(time.monotonic() - t0, 0.5, "the 503 should not wait for the slow request")
        # another backend is not limited by this one
        self.assertEqual(srv.get("/", "other.test").status, 200)
        t.join(5)
        self.assertNotIn("e", result)
        self.assertEqual(result["r"].status, 200, result["r"])
        # the slot is released
        self.assertEqual(srv.get("/third", "slow.test").status, 200)

    def test_client_header_timeout(self):
        echo = self.start_echo("e")
        srv = self.serve("e", echo.port, ["--client-header-timeout-ms", "500"])
        # half a head, then nothing
        with srv.conn(timeout=3) as c:
            t0 = time.monotonic()
            c.send(b"GET / HTTP/1.1\r\nHost: e.test\r\nX-Half: ")
            r = read_outcome(c)
            took = time.monotonic() - t0
            self.assertIsNotNone(r, "closed without a 408")
            self.assertEqual(r.status, 408, r)
            self.assertTrue(c.eof or c.is_closed(timeout=2))
            self.assertGreaterEqual(took, 0.4)
            self.assertLess(took, 1.5)
        # a client that dribbles a header line every 150 ms: the limit is on the whole head
        with srv.conn(timeout=3) as c:
            t0 = time.monotonic()
            c.send(b"GET / HTTP/1.1\r\nHost: e.test\r\n")
            for i in range(20):
                readable, _, _ = select.select([c.sock], [], [], 0.15)
                if readable:
                    break
                try:
                    c.send(b"X-Drip-%d: 1\r\n" % i)
                except OSError:
                    break
            r = read_outcome(c)
            took = time.monotonic() - t0
            self.assertIsNotNone(r, "closed without a 408")
            self.assertEqual(r.status, 408, r)
            self.assertLess(took, 1.5, "a dribbling client kept the head open")
            self.assertTrue(c.eof or c.is_closed(timeout=2))

    def test_client_idle_timeout(self):
        echo = self.start_echo("e")
        srv = self.serve("e", echo.port, ["--client-idle-timeout-ms", "500"])
        # requests 200 ms apart keep the connection
        with srv.conn(timeout=3) as c:
            for i in range(5):
                c.send(h.build_request("GET", "/busy%d" % i, "e.test"))
                self.assertEqual(c.read_response().status, 200)
                time.sleep(0.2)
            # then idle: closed after ~500 ms
            t0 = time.monotonic()
            self.assertTrue(c.is_closed(timeout=3), "an idle keep-alive connection stayed open")
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 0.2)  # 0.2 s already spent idle in the loop above
            self.assertLess(took, 1.5)
        # a connection that never sends anything is idle too
        with srv.conn(timeout=3) as c:
            t0 = time.monotonic()
            self.assertTrue(c.is_closed(timeout=3), "a silent connection stayed open")
            self.assertLess(time.monotonic() - t0, 1.5)


# ----------------------------------------------------------------------------
# 4. failing upstreams
# ----------------------------------------------------------------------------

class FailingUpstreams(h.E2ETestCase):
    def test_passive_health_ejects_a_dead_endpoint(self):
        live = self.start_echo("flaky")
        dead = h.free_port()
        d = self.tempdir()
        h.write_manifests(d, h.backend_objects("flaky", [dead, live.port]) + [h.ingress("f", default_backend="flaky")])
        srv = self.start_ingressd(d, ["--eject-after-failures", "2", "--eject-ms", "2000"], workers=1)
        self.log_on_failure(srv)
        with srv.conn() as c:
            for i in range(6):
                c.send(h.build_request("GET", "/warm%d" % i, "flaky.test"))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["pod"], live.pod)
        m1 = metrics(srv)
        self.assertGreaterEqual(m1["ingressd_endpoint_ejections_total"], 1, m1)
        self.assertGreaterEqual(m1["ingressd_upstream_errors_total{cause=\"connect\"}"], 2, m1)
        t_ejected = time.monotonic()
        for i in range(20):
            r = srv.get("/after%d" % i, "flaky.test")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["pod"], live.pod)
        m2 = metrics(srv)
        self.assertLess(time.monotonic() - t_ejected, 1.8, "too slow to be inside the ejection")
        self.assertEqual(m2["ingressd_upstream_errors_total{cause=\"connect\"}"], m1["ingressd_upstream_errors_total{cause=\"connect\"}"],
                         "connect attempts to an ejected endpoint")
        # the ejection ends: the endpoint is tried again (and still no request fails)
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t_ejected)))
        for i in range(4):
            self.assertEqual(srv.get("/later%d" % i, "flaky.test").status, 200)
        m3 = metrics(srv)
        self.assertGreater(m3["ingressd_upstream_errors_total{cause=\"connect\"}"], m2["ingressd_upstream_errors_total{cause=\"connect\"}"],
                           "the ejected endpoint was never tried again after --eject-ms")

    def reset_and_healthy(self):
        bad = start_raw(self, mode="reset")
        good = start_raw(self)
        d = self.tempdir()
        objs = [h.service("mixed"), h.endpoint_slice("mixed", bad.port), h.endpoint_slice("mixed", good.port),
                h.ingress("m", default_backend="mixed")]
        h.write_manifests(d, objs)
        # no ejection: every request must meet the resetting endpoint in turn
        srv = self.start_ingressd(d, ["--eject-after-failures", "0"], workers=1)
        self.log_on_failure(srv)
        return bad, good, srv

    def test_get_reset_after_the_head_is_retried(self):
        bad, good, srv = self.reset_and_healthy()
        for i in range(4):  # round robin over two endpoints: two of these meet the reset
            r = srv.get("/get%d" % i, "mixed.test")
            self.assertEqual(r.status, 200, "GET %d: %r" % (i, r))
        self.assertTrue(any(p.startswith("/get") for p in bad.paths("heads")), "the resetting endpoint saw no GET")
        self.assertEqual(sorted(good.paths("completed")), ["/get%d" % i for i in range(4)])
        self.assertGreaterEqual(metrics(srv)["ingressd_upstream_retries_total"], 1)

    def test_post_reset_after_the_head_is_never_retried(self):
        bad, good, srv = self.reset_and_healthy()
        outcomes = {}
        for i in range(4):
            path = "/post%d" % i
            r = srv.request("POST", path, "mixed.test", body=b"p" * 100)
            outcomes[path] = r.status
            time.sleep(0.05)
        at_bad = [p for p in bad.paths("heads") if p.startswith("/post")]
        self.assertTrue(at_bad, "no POST met the resetting endpoint: %r" % outcomes)
        for p in at_bad:
            self.assertEqual(outcomes[p], 502, "%s was reset by the upstream: %r" % (p, outcomes))
            self.assertNotIn(p, good.paths("heads"), "%s was retried on the healthy endpoint" % p)
        for p, status in outcomes.items():
            if p not in at_bad:
                self.assertEqual(status, 200, outcomes)


# ----------------------------------------------------------------------------
# 5. lifecycle
# ----------------------------------------------------------------------------

class Lifecycle(h.E2ETestCase):
    def test_sigterm_with_shutdown_delay(self):
        echo = self.start_echo("life")
        d = self.tempdir()
        one_backend_ingress(d, "life", echo.port)
        srv = self.start_ingressd(d, ["--shutdown-delay-ms", "1000", "--shutdown-grace-ms", "5000"], workers=1)
        self.log_on_failure(srv)
        inflight = {}

        def slow():
            try:
                inflight["r"] = srv.get("/?delay_ms=1500", "life.test", timeout=6)
            except Exception as e:  # noqa: BLE001
                inflight["e"] = e
            inflight["t"] = time.monotonic()
        ka = srv.conn(timeout=3)  # a keep-alive connection opened before the signal
        self.addCleanup(ka.close)
        ka.send(h.build_request("GET", "/before", "life.test"))
        self.assertEqual(ka.read_response().status, 200)
        t = threading.Thread(target=slow, daemon=True)
        t.start()
        self.addCleanup(t.join, 6)
        time.sleep(0.1)
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        h.wait_until(lambda: srv.admin("/readyz").status == 503, timeout=0.3, interval=0.01,
                     what="/readyz 503 right after SIGTERM")
        # the HTTP port accepts and serves during the delay
        for at in (0.1, 0.4, 0.75):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            r = srv.get("/during", "life.test", timeout=2)
            self.assertEqual(r.status, 200, "%.2f s after SIGTERM: %r" % (time.monotonic() - t0, r))
            ka.send(h.build_request("GET", "/during-ka", "life.test"))
            self.assertEqual(ka.read_response().status, 200, "keep-alive, %.2f s after SIGTERM" % (time.monotonic() - t0))
        self.assertLess(time.monotonic() - t0, 0.95, "the checks ran late: the delay proof is void")
        self.assertTrue(srv.alive())
        # after the delay: no new connection is served (the in-flight request is still running)
        time.sleep(max(0.0, t0 + 1.15 - time.monotonic()))
        self.assertNotIn("t", inflight, "the in-flight request finished too early for this check")
        try:
            r = srv.get("/after-delay", "life.test", timeout=1)
        except (ConnectionRefusedError, ConnectionResetError, h.ConnectionClosed):
            r = None
        self.assertIsNone(r, "a new request was served after the shutdown delay: %r" % (r,))
        # the idle keep-alive connection is closed once the delay is over
        self.assertTrue(ka.is_closed(timeout=1), "an idle keep-alive connection outlived the shutdown delay")
        # the in-flight request completes
        t.join(6)
        self.assertNotIn("e", inflight)
        self.assertEqual(inflight["r"].status, 200, inflight["r"])
        # and the process exits 0 within the grace period
        try:
            rc = srv.popen.wait(timeout=5)
        except Exception:  # noqa: BLE001
            self.fail("ingressd did not exit within the grace period")
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, srv.log()[-2000:])
        self.assertGreaterEqual(took, 0.95, "exited before the shutdown delay")
        self.assertLess(took, 3.0)


# ----------------------------------------------------------------------------
# 6. hitless reloads
# ----------------------------------------------------------------------------

class WebSocketLoop(threading.Thread):
    """One WebSocket through ingressd; a message every 100 ms, each echo checked."""

    def __init__(self, port, host, max_seconds=30.0):
        super().__init__(daemon=True)
        self.port, self.host, self.max_seconds = port, host, max_seconds
        self.stop_event = threading.Event()
        self.sent = 0
        self.echoed = 0
        self.failures = []
        self.conn = None

    def stop(self):
        self.stop_event.set()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        try:
            self.conn = h.RawConn(self.port, timeout=2.0)
            status = ws_handshake(self.conn, "/ws", self.host)
            if status != 101:
                self.failures.append("handshake answered %d" % status)
                return
            for i in range(100000):
                if self.stop_event.is_set() or time.monotonic() > deadline:
                    break
                msg = ("message %d " % i).encode() + os.urandom(8).hex().encode()
                self.conn.send(ws_frame(msg))
                self.sent += 1
                op, fin, _, payload = ws_read_frame(self.conn)
                if (op, fin, payload) != (0x1, True, msg):
                    self.failures.append("message %d: got %r" % (i, (op, fin, payload[:80])))
                    return
                self.echoed += 1
                self.stop_event.wait(0.1)
        except Exception as e:  # noqa: BLE001
            self.failures.append("after %d echoes: %s: %s" % (self.echoed, type(e).__name__, e))

    def close(self):
        if self.conn is not None:
            self.conn.close()


class HitlessReload(h.E2ETestCase):
    def test_reloads_under_load_with_a_websocket(self):
        alpha = self.start_echo("alpha")
        alpha2 = self.start_echo("alpha")  # a second endpoint of alpha, added and removed
        beta = self.start_echo("beta")
        d = self.tempdir()

        def write_services(with_alpha2):
            objs = h.backend_objects("alpha", [alpha.port]) + h.backend_objects("beta", [beta.port])
            if with_alpha2:
                objs.append(h.endpoint_slice("alpha", alpha2.port, name="alpha-extra"))
            h.write_manifests(d, objs, "services.yaml")

        def write_ingress(svc):
            h.write_manifests(d, [h.ingress("hitless", rules=[h.rule("reload.test", [h.http_path("/", svc)])])],
                              "ingress.yaml")

        write_services(False)
        write_ingress("alpha")
        srv = self.start_ingressd(d, workers=2)
        self.log_on_failure(srv)

        ws = WebSocketLoop(srv.http_port, "reload.test")
        loops = [h.RequestLoop(srv.http_port, "reload.test", keep_alive=ka, max_seconds=30, max_requests=500000)
                 for ka in (True, False)]
        workers = loops + [ws]

        def stop_all():
            for w in workers:
                w.stop()
            for w in workers:
                w.join(timeout=5)
            ws.close()
        self.addCleanup(stop_all)
        for w in workers:
            w.start()
        time.sleep(0.3)

        def reload_with(change):
            n = srv.reloads()
            change()
            cfg = srv.wait_reload(n)
            self.assertEqual(cfg["lastError"], "")

        with_alpha2 = False
        for i in range(20):
            target = "beta" if i % 2 == 0 else "alpha"
            reload_with(lambda: write_ingress(target))
            r = srv.get("/check%d" % i, "reload.test")
            self.assertServedBy(r, target, "right after rewrite %d" % (i + 1))
            if i % 4 == 1:  # the EndpointSlice of alpha changes: alpha2 in, then out, ...
                with_alpha2 = not with_alpha2
                reload_with(lambda: write_services(with_alpha2))
            time.sleep(0.1)
        # the last rewrite routes to alpha; alpha2, back in its slice, is really served
        if not with_alpha2:
            reload_with(lambda: write_services(True))
        h.wait_until(lambda: srv.get("/", "reload.test").json()["pod"] == alpha2.pod, timeout=3,
                     interval=0.01, what="alpha2 to be served")
        time.sleep(0.2)
        for w in workers:
            w.stop()
        for w in workers:
            w.join(timeout=5)
            self.assertFalse(w.is_alive())
        for l in loops:
            kind = "keep-alive" if l.keep_alive else "new connections"
            self.assertEqual(l.failures[:5], [], "%s: %d failures of %d" % (kind, len(l.failures), len(l.results)))
            self.assertGreater(len(l.results), 50, kind)
            self.assertEqual({s for _, _, s in l.results}, {"alpha", "beta"}, kind)
        self.assertEqual(ws.failures, [], "the WebSocket after %d echoes" % ws.echoed)
        self.assertGreaterEqual(ws.echoed, 20)
        self.assertEqual(ws.echoed, ws.sent)
        # the WebSocket is still open after all of it
        msg = b"still there?"
        ws.conn.send(ws_frame(msg))
        self.assertEqual(ws_read_frame(ws.conn)[3], msg)
        ws.conn.send(ws_frame(b"\x03\xe8", opcode=0x8))
        self.assertEqual(ws_read_frame(ws.conn)[0], 0x8)


if __name__ == "__main__":
    unittest.main()


class InPlaceRewrites(h.E2ETestCase):
    """A manifest rewritten in place (truncate, then write, as `cat > file` or a careless script does) must
    never be read half done: no request may fail while the EndpointSlice file is rewritten ten times a second,
    in step with the reload hold-off (the worst case), and a file really emptied is still believed in the end."""

    def test_in_place_rewrites_lose_no_request(self):
        a1 = self.start_echo("alpha")
        a2 = self.start_echo("alpha")
        d = self.tempdir()
        h.write_manifests(d, [h.service("alpha"),
                              h.ingress("inplace", rules=[h.rule("inplace.test", [h.http_path("/", "alpha")])])],
                          "ingress.yaml")
        slice_path = os.path.join(d, "slice.yaml")

        def slice_text(port):
            return "---\n" + json.dumps(h.endpoint_slice("alpha", port, name="alpha-slice")) + "\n"

        with open(slice_path, "w") as f:
            f.write(slice_text(a1.port))
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        loop = h.RequestLoop(srv.http_port, "inplace.test", keep_alive=True, max_seconds=20, max_requests=500000)
        loop.start()
        self.addCleanup(loop.join, 5)
        self.addCleanup(loop.stop)
        time.sleep(0.2)
        for i in range(30):
            with open(slice_path, "w") as f:  # O_TRUNC, then the write: a reader can see it empty
                f.write(slice_text(a2.port if i % 2 == 0 else a1.port))
            time.sleep(0.1)
        time.sleep(0.5)
        loop.stop()
        loop.join(timeout=5)
        statuses = {}
        for _, status, _ in loop.results:
            statuses[status] = statuses.get(status, 0) + 1
        self.assertEqual(loop.failures[:5], [])
        self.assertEqual(set(statuses), {200}, "statuses while the slice was rewritten in place: %r" % statuses)
        self.assertGreater(len(loop.results), 100)
        self.assertEqual({p for _, _, p in loop.results}, {"alpha"})
        # Really emptied: believed after about a second of waiting for a writer that never comes.
        with open(slice_path, "w"):
            pass
        h.wait_until(lambda: srv.get("/", "inplace.test").status == 503, timeout=5, interval=0.05,
                     what="the emptied EndpointSlice file to take effect")
