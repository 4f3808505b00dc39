"""ingressd's data plane and reloads, end to end.

Reloads (file change under load, broken edits, SIGHUP), endpoint failures
(refused connections, no ready endpoint, missing Service), WebSocket
tunnelling, message framing (chunked both ways, HTTP/1.0 clients, 1 MiB
bodies, pipelining, Expect: 100-continue, 204/304/HEAD, responses delimited
by the upstream's close), strict parsing (400/431/501 and
the connection closed), forwarding headers, hop-by-hop headers, Host,
upstream timeout (504), path normalisation, HTTP/1.0 without Host, and the
admin endpoints.
"""

import base64
import hashlib
import json
import os
import socket
import threading
import time
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ----------------------------------------------------------------------------
# a tiny upstream that answers Expect: 100-continue properly (to test the relay)
# ----------------------------------------------------------------------------

class ScriptedUpstream(threading.Thread):
    """A hand-written upstream on 127.0.0.1:port, one request per connection, served in turn.
    For a path starting with /until-close it answers 200 with no Content-Length and no
    Transfer-Encoding and closes the connection (the body ends at the close, RFC 9112 §6.3
    item 8). Otherwise it sends '100 Continue' if the request asks for it, reads the
    Content-Length body and answers 200 with JSON {"continue_sent": bool, "body_size": N}.
    Bounded: stops after max_conns connections, 120 s, or stop()."""

    UNTIL_CLOSE_BODY = b"hello, this body ends when the connection closes\n" * 3

    def __init__(self, max_conns=200):
        super().__init__(daemon=True)
        self.sock = h.listen_loopback(16)
        self.port = self.sock.getsockname()[1]
        self.max_conns = max_conns
        self.stopped = threading.Event()

    def stop(self):
        self.stopped.set()
        self.join(timeout=3)
        self.sock.close()

    def run(self):
        served = 0
        deadline = time.monotonic() + 120
        while not self.stopped.is_set() and served < self.max_conns and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            served += 1
            try:
                self.serve(c)
            except Exception:  # noqa: BLE001 - a test will see the failure on its side
                pass
            finally:
                c.close()

    @staticmethod
    def serve(c):
        c.settimeout(3)
        buf = b""
        for _ in range(1000):
            if b"\r\n\r\n" in buf:
                break
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        if lines[0].split(" ")[1].startswith("/until-close"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + ScriptedUpstream.UNTIL_CLOSE_BODY)
            return  # the caller closes the connection right away
        sent = False
        if hdrs.get("expect", "").lower() == "100-continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            sent = True
        n = int(hdrs.get("content-length", "0"))
        for _ in range(100000):
            if len(rest) >= n:
                break
            d = c.recv(65536)
            if not d:
                break
            rest += d
        body = json.dumps({"service": "continue-upstream", "continue_sent": sent, "body_size": len(rest)}).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n%s" % (len(body), body))


# ----------------------------------------------------------------------------
# WebSocket frames (RFC 6455 §5)
# ----------------------------------------------------------------------------

def ws_frame(payload, opcode=0x1, mask=True):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    out = bytearray([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        out.append(mbit | n)
    elif n < 65536:
        out.append(mbit | 126)
        out += n.to_bytes(2, "big")
    else:
        out.append(mbit | 127)
        out += n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        out += key
        out += bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return bytes(out)


def ws_read_frame(conn):
    b0, b1 = conn.read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(conn.read_exact(2), "big")
    elif n == 127:
        n = int.from_bytes(conn.read_exact(8), "big")
    key = conn.read_exact(4) if b1 & 0x80 else None
    payload = conn.read_exact(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, bool(b0 & 0x80), bool(b1 & 0x80), payload


# ----------------------------------------------------------------------------
# one shared ingressd for the stateless tests
# ----------------------------------------------------------------------------

class ProxyCase(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.cres
        cls.alpaca = r.start_echo("alpaca")
        cls.bandicoot = r.start_echo("bandicoot")
        cls.default = r.start_echo("be-default")
        cls.live = r.start_echo("live")
        cls.scripted = ScriptedUpstream()
        cls.scripted.start()
        cls.addClassCleanup(cls.scripted.stop)
        dead = [h.free_port(), h.free_port()]
        objs = []
        objs += h.backend_objects("alpaca", [cls.alpaca.port])
        objs += h.backend_objects("bandicoot", [cls.bandicoot.port])
        objs += h.backend_objects("be-default", [cls.default.port])
        objs += h.backend_objects("flaky", [dead[0], cls.live.port])          # one refusing, one live
        objs += h.backend_objects("flaky2", [dead[0], dead[1], cls.live.port])  # two refusing, one live
        objs += h.backend_objects("dead", dead)                               # only refusing endpoints
        objs += h.backend_objects("noready", [cls.live.port], ready=False)    # no ready endpoint
        objs += h.backend_objects("scripted", [cls.scripted.port])
        p = h.http_path
        objs.append(h.ingress("proxy", default_backend="be-default", rules=[
            h.rule("alpaca.test", [p("/", "alpaca")]),
            h.rule("bandicoot.test", [p("/", "bandicoot")]),
            h.rule("paths.test", [p("/admin", "bandicoot"), p("/", "alpaca")]),
            h.rule("flaky.test", [p("/", "flaky")]),
            h.rule("flaky2.test", [p("/", "flaky2")]),
            h.rule("dead.test", [p("/", "dead")]),
            h.rule("noready.test", [p("/", "noready")]),
            h.rule("missing.test", [p("/", "no-such-service")]),
            h.rule("scripted.test", [p("/", "scripted")]),
        ]))
        cls.dir = r.tempdir()
        h.write_manifests(cls.dir, objs)
        cls.srv = r.start_ingressd(cls.dir, workers=2)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.srv)

    def echo_json(self, r, service=None):
        self.assertEqual(r.status, 200, r)
        j = r.json()
        if service:
            self.assertEqual(j["service"], service)
        return j


class Endpoints(ProxyCase):
    def test_refused_endpoint_is_skipped(self):
        # Short client timeouts: a stalled retry must fail this test quickly, not hang it.
        for host, keep_alive in (("flaky.test", False), ("flaky2.test", False), ("flaky.test", True)):
            with self.subTest(host=host, keep_alive=keep_alive):
                if keep_alive:
                    with self.srv.conn(timeout=1.5) as c:
                        for i in range(8):
                            c.send(h.build_request("GET", "/k%d" % i, host))
                            self.echo_json(c.read_response(), "live")
                else:
                    for i in range(8):
                        self.echo_json(self.srv.get("/n%d" % i, host, timeout=1.5), "live")

    def test_only_refusing_endpoints_is_502(self):
        for _ in range(3):
            r = self.srv.get("/", "dead.test")
            self.assertEqual(r.status, 502, r)
            self.assertIn("Server", r.headers)

    def test_no_ready_endpoint_is_503(self):
        r = self.srv.get("/", "noready.test")
        self.assertEqual(r.status, 503, r)

    def test_missing_service_is_503(self):
        r = self.srv.get("/", "missing.test")
        self.assertEqual(r.status, 503, r)

    def test_error_response_keeps_the_connection(self):
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/", "missing.test"))
            self.assertEqual(c.read_response().status, 503)
            c.send(h.build_request("GET", "/", "alpaca.test"))
            self.echo_json(c.read_response(), "alpaca")


class WebSocket(ProxyCase):
    def test_websocket_echo(self):
        key = base64.b64encode(os.urandom(16)).decode()
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/ws", "alpaca.test", [
                ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", "13")]))
            version, status, reason, hdrs = c.read_head()
            self.assertEqual(status, 101, (status, reason, hdrs))
            self.assertEqual(hdrs.get("Sec-WebSocket-Accept"), accept)
            self.assertEqual((hdrs.get("Upgrade") or "").lower(), "websocket")
            self.assertIn("upgrade", (hdrs.get("Connection") or "").lower())
            for msg in ("hello", "second message", "é" * 100, "x" * 70000):
                c.send(ws_frame(msg))
                op, fin, masked, payload = ws_read_frame(c)
                self.assertEqual((op, fin, masked), (0x1, True, False))
                self.assertEqual(payload.decode("utf-8"), msg)
            c.send(ws_frame(b"\x03\xe8bye", opcode=0x8))
            op, _, _, payload = ws_read_frame(c)
            self.assertEqual(op, 0x8)
            self.assertEqual(payload, b"\x03\xe8bye")

    def test_tunnel_closes_when_the_upstream_closes(self):
        # The echo closes its side right after echoing a close frame; the proxy must then
        # close the client side too. Thirty short sessions, so that a timing-dependent miss shows.
        for i in range(30):
            with self.srv.conn() as c:
                key = base64.b64encode(os.urandom(16)).decode()
                c.send(h.build_request("GET", "/ws%d" % i, "alpaca.test", [
                    ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                    ("Sec-WebSocket-Version", "13")]))
                self.assertEqual(c.read_head()[1], 101)
                c.send(ws_frame(b"ping %d" % i))
                self.assertEqual(ws_read_frame(c)[3], b"ping %d" % i)
                c.send(ws_frame(b"\x03\xe8", opcode=0x8))
                self.assertEqual(ws_read_frame(c)[0], 0x8)
                self.assertTrue(c.is_closed(timeout=1.0),
                                "session %d: the client side stayed open after the upstream closed" % i)


class Framing(ProxyCase):
    def test_chunked_request_body_is_forwarded(self):
        sizes = [1, 4096, 10000, 65536]
        with self.srv.conn() as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: alpaca.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            for n in sizes:
                c.send(b"%x\r\n%s\r\n" % (n, b"y" * n))
                time.sleep(0.01)
            c.send(b"0\r\n\r\n")
            j = self.echo_json(c.read_response(), "alpaca")
            self.assertEqual(j["body_size"], sum(sizes))
            self.assertEqual(j["headers"].get("Transfer-Encoding"), ["chunked"])
            # the connection stays usable
            c.send(h.build_request("GET", "/after", "alpaca.test"))
            self.assertEqual(self.echo_json(c.read_response())["path"], "/after")

    def test_chunked_request_with_extension_and_trailer(self):
        with self.srv.conn() as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: alpaca.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
            j = self.echo_json(c.read_response(), "alpaca")
            self.assertEqual(j["body_size"], 11)

    def test_chunked_response_http11(self):
        with self.srv.conn() as c:
            for q in ("?chunked=1", "?chunked=1&size=100001"):
                c.send(h.build_request("GET", "/" + q, "alpaca.test"))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.chunked, r.headers)
                self.assertNotIn("Content-Length", r.headers)
                if "size" in q:
                    self.assertEqual(r.body, b"x" * 100001)
                else:
                    self.assertEqual(r.json()["path"], "/" + q)

    def test_chunked_response_http10_client(self):
        for q in ("?chunked=1", "?chunked=1&size=100001"):
            with self.subTest(q=q), self.srv.conn() as c:
                c.send(h.build_request("GET", "/" + q, "alpaca.test", version="HTTP/1.0"))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertFalse(r.chunked)
                self.assertNotIn("Transfer-Encoding", r.headers)
                self.assertTrue(r.version in ("HTTP/1.0", "HTTP/1.1"))
                # read_response read until close: the body is de-chunked and the connection closed
                self.assertTrue(c.eof or c.is_closed(timeout=2))
                if "size" in q:
                    self.assertEqual(r.body, b"x" * 100001)
                else:
                    self.assertEqual(json.loads(r.body)["path"], "/" + q)

    def test_large_response_1mib(self):
        n = 1 << 20
        with self.srv.conn(timeout=10) as c:
            c.send(h.build_request("GET", "/?size=%d" % n, "alpaca.test"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("Content-Length"), str(n))
            self.assertEqual(len(r.body), n)
            self.assertEqual(r.body, b"x" * n)
            c.send(h.build_request("GET", "/?size=%d&chunked=1" % n, "alpaca.test"))
            r = c.read_response()
            self.assertTrue(r.chunked)
            self.assertEqual(r.body, b"x" * n)

    def test_large_request_1mib(self):
        n = 1 << 20
        body = os.urandom(n)
        with self.srv.conn(timeout=10) as c:
            c.send(h.build_request("POST", "/big", "alpaca.test", body=body))
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["body_size"], n)
            # the same, chunked in 64 KiB pieces
            c.send(b"PUT /big HTTP/1.1\r\nHost: alpaca.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, n, 65536):
                piece = body[i:i + 65536]
                c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            c.send(b"0\r\n\r\n")
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["body_size"], n)

    def test_204_and_304_responses(self):
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/?status=204", "alpaca.test"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (204, b""))
            # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204 response.
            self.assertNotIn("Content-Length", r.headers, r.headers)
            c.send(h.build_request("GET", "/?status=304", "alpaca.test"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (304, b""))
            c.send(h.build_request("GET", "/after", "alpaca.test"))
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["path"], "/after")

    def test_head_framing_matches_get(self):
        with self.srv.conn() as c:
            c.send(h.build_request("HEAD", "/?size=1234", "alpaca.test"))
            r = c.read_response("HEAD")
            self.assertEqual((r.status, r.headers.get("Content-Length")), (200, "1234"))
            # The GET would be chunked, of unknown length: HEAD must not claim a length of 0.
            c.send(h.build_request("HEAD", "/?size=1234&chunked=1", "alpaca.test"))
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.headers.get("Content-Length"), "0", r.headers)
            c.send(h.build_request("GET", "/after", "alpaca.test"))
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["path"], "/after")

    def test_response_delimited_by_close(self):
        # An upstream response without Content-Length or chunked ends when the upstream closes.
        # HTTP/1.1 clients get it re-chunked, HTTP/1.0 clients get it until close. Ten of each,
        # so that a timing-dependent miss of the upstream's close shows.
        for version in ("HTTP/1.1", "HTTP/1.0"):
            for i in range(10):
                try:
                    r = self.srv.request("GET", "/until-close/%d" % i, "scripted.test", version=version, timeout=1.0)
                except socket.timeout:
                    self.fail("%s request %d: the response did not end within 1 s of the upstream's close"
                              % (version, i))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, ScriptedUpstream.UNTIL_CLOSE_BODY)
                self.assertEqual(r.chunked, version == "HTTP/1.1")

    def test_pipelined_requests_answered_in_order(self):
        reqs = [
            h.build_request("GET", "/p1", "alpaca.test"),
            h.build_request("POST", "/p2", "bandicoot.test", body=b"z" * 3000),
            h.build_request("GET", "/p3", "missing.test"),
            h.build_request("HEAD", "/p4", "alpaca.test"),
            h.build_request("GET", "/p5?chunked=1", "bandicoot.test"),
            h.build_request("GET", "/p6", "alpaca.test"),
        ]
        with self.srv.conn() as c:
            c.send(b"".join(reqs))
            r1 = c.read_response()
            self.assertEqual(self.echo_json(r1, "alpaca")["path"], "/p1")
            r2 = c.read_response()
            j2 = self.echo_json(r2, "bandicoot")
            self.assertEqual((j2["path"], j2["body_size"]), ("/p2", 3000))
            self.assertEqual(c.read_response().status, 503)
            r4 = c.read_response("HEAD")
            self.assertEqual(r4.status, 200)
            self.assertEqual(r4.body, b"")
            self.assertEqual(self.echo_json(c.read_response(), "bandicoot")["path"], "/p5?chunked=1")
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["path"], "/p6")

    def test_expect_100_continue_through_echo(self):
        """The client waits for 100 Continue (as curl does, up to 1 s) before it sends the body."""
        with self.srv.conn() as c:
            c.send(b"POST /e HTTP/1.1\r\nHost: alpaca.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            c.sock.settimeout(1.0)
            try:
                version, status, _, _ = c.read_head()
            except socket.timeout:
                status = None
            c.sock.settimeout(5)
            c.send(b"hello")
            if status is None:
                r = c.read_response()
                self.assertEqual(r.json()["body_size"], 5)
                self.fail("no 100 Continue within 1 s: the client had to send the body blind")
            self.assertEqual(status, 100)
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["body_size"], 5)

    def test_expect_100_continue_relayed_from_upstream(self):
        with self.srv.conn() as c:
            c.send(b"POST /e HTTP/1.1\r\nHost: scripted.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            c.sock.settimeout(2.0)
            version, status, _, _ = c.read_head()
            self.assertEqual(status, 100)
            c.sock.settimeout(5)
            c.send(b"hello")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"service": "continue-upstream", "continue_sent": True, "body_size": 5})


class StrictParsing(ProxyCase):
    CASES = [
        ("bad request line", b"GARBAGE\r\n\r\n", 400),
        ("double space in request line", b"GET  / HTTP/1.1\r\nHost: alpaca.test\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: alpaca.test\r\nX-A : b\r\n\r\n", 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: alpaca.test\r\nX-A: b\r\n c\r\n\r\n", 400),
        ("Content-Length and Transfer-Encoding",
         b"POST / HTTP/1.1\r\nHost: alpaca.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         400),
        ("two Host headers", b"GET / HTTP/1.1\r\nHost: alpaca.test\r\nHost: bandicoot.test\r\n\r\n", 400),
        ("bare LF everywhere", b"GET / HTTP/1.1\nHost: alpaca.test\n\n", 400),
        ("bare LF in one header", b"GET / HTTP/1.1\r\nHost: alpaca.test\nX-A: b\r\n\r\n", 400),
        ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: alpaca.test\r\nX-A: a\x00b\r\n\r\n", 400),
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        ("two different Content-Lengths",
         b"POST / HTTP/1.1\r\nHost: alpaca.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        ("encoded slash in path", b"GET /a%2Fb HTTP/1.1\r\nHost: alpaca.test\r\n\r\n", 400),
        ("encoded backslash in path", b"GET /a%5cb HTTP/1.1\r\nHost: alpaca.test\r\n\r\n", 400),
        ("header section over the limit",
         b"GET / HTTP/1.1\r\nHost: alpaca.test\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", 431),
        ("too many header fields",
         b"GET / HTTP/1.1\r\nHost: alpaca.test\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
         431),
        ("Transfer-Encoding: gzip, chunked",
         b"POST / HTTP/1.1\r\nHost: alpaca.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ]

    def test_malformed_requests_are_refused_and_closed(self):
        for name, raw, status in self.CASES:
            with self.subTest(name):
                with self.srv.conn() as c:
                    c.send(raw)
                    r = c.read_response()
                    self.assertEqual(r.status, status, r)
                    self.assertEqual((r.headers.get("Connection") or "").lower(), "close", r.headers)
                    self.assertTrue(c.is_closed(timeout=2), "the connection should be closed after %d" % status)

    def test_malformed_request_after_a_good_one(self):
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/ok", "alpaca.test") + b"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n")
            self.echo_json(c.read_response(), "alpaca")
            self.assertEqual(c.read_response().status, 400)
            self.assertTrue(c.is_closed(timeout=2))


class Headers(ProxyCase):
    def test_forwarding_headers(self):
        r = self.srv.get("/", "alpaca.test")
        j = self.echo_json(r, "alpaca")
        hd = j["headers"]
        self.assertEqual(hd.get("X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(hd.get("X-Real-Ip"), ["127.0.0.1"])
        self.assertEqual(hd.get("X-Forwarded-Proto"), ["http"])
        self.assertEqual(hd.get("X-Forwarded-Host"), ["alpaca.test"])
        self.assertEqual(hd.get("X-Forwarded-Port"), [str(self.srv.http_port)])

    def test_forwarding_headers_from_client_are_appended_or_replaced(self):
        r = self.srv.get("/", "alpaca.test", headers=[
            ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.test"),
            ("X-Forwarded-Port", "1"), ("X-Real-IP", "198.51.100.9")])
        hd = self.echo_json(r)["headers"]
        self.assertEqual(hd.get("X-Forwarded-For"), ["203.0.113.7, 127.0.0.1"])
        self.assertEqual(hd.get("X-Real-Ip"), ["127.0.0.1"])
        self.assertEqual(hd.get("X-Forwarded-Proto"), ["http"])
        self.assertEqual(hd.get("X-Forwarded-Host"), ["alpaca.test"])
        self.assertEqual(hd.get("X-Forwarded-Port"), [str(self.srv.http_port)])

    def test_several_x_forwarded_for_fields_are_all_kept(self):
        # RFC 9110 §5.3: several field lines of one list-valued field are one comma-separated list.
        r = self.srv.get("/", "alpaca.test", headers=[("X-Forwarded-For", "203.0.113.7"),
                                                      ("X-Forwarded-For", "198.51.100.1")])
        hd = self.echo_json(r)["headers"]
        self.assertEqual(hd.get("X-Forwarded-For"), ["203.0.113.7, 198.51.100.1, 127.0.0.1"])

    def test_hop_by_hop_headers_are_not_forwarded(self):
        r = self.srv.get("/", "alpaca.test", headers=[
            ("Connection", "keep-alive, X-Hop, X-Other-Hop"), ("X-Hop", "secret"), ("X-Other-Hop", "2"),
            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Proxy-Connection", "keep-alive"),
            ("Upgrade", "h2c"), ("X-End", "kept"), ("Proxy-Authorization", "Basic Zm9vOmJhcg==")])
        hd = self.echo_json(r)["headers"]
        for gone in ("X-Hop", "X-Other-Hop", "Keep-Alive", "Te", "Proxy-Connection", "Upgrade",
                     "Proxy-Authorization"):
            self.assertNotIn(gone, hd, hd)
        self.assertNotIn("keep-alive", [v.lower() for v in hd.get("Connection", [])])
        self.assertEqual(hd.get("X-End"), ["kept"])

    def test_end_to_end_headers_and_user_agent_unchanged(self):
        r = self.srv.get("/", "alpaca.test", headers=[
            ("User-Agent", "Go-http-client/1.1"), ("Accept", "text/html;q=0.9, */*"), ("X-Multi", "a"),
            ("X-Multi", "b"), ("Cookie", "a=1; b=2")])
        hd = self.echo_json(r)["headers"]
        self.assertEqual(hd.get("User-Agent"), ["Go-http-client/1.1"])
        self.assertEqual(hd.get("Accept"), ["text/html;q=0.9, */*"])
        self.assertEqual(hd.get("X-Multi"), ["a", "b"])
        self.assertEqual(hd.get("Cookie"), ["a=1; b=2"])

    def test_host_passed_unchanged(self):
        for host in ("alpaca.test", "Alpaca.TEST", "alpaca.test:%d" % self.srv.http_port, "alpaca.test."):
            with self.subTest(host=host):
                j = self.echo_json(self.srv.get("/", host), "alpaca")
                self.assertEqual(j["host"], host)
                self.assertEqual(j["headers"].get("Host"), [host])

    def test_response_headers(self):
        r = self.srv.get("/", "alpaca.test")
        for name in ("Content-Length", "Content-Type", "Date", "Server"):
            self.assertIn(name, r.headers)
        self.assertEqual(len(r.headers.get_all("Date")), 1)
        self.assertEqual(r.headers.get("Content-Type"), "application/json")

    def test_upstream_close_does_not_close_the_client(self):
        with self.srv.conn() as c:
            c.send(h.build_request("GET", "/?close=1", "alpaca.test"))
            r = c.read_response()
            self.echo_json(r, "alpaca")
            c.send(h.build_request("GET", "/again", "alpaca.test"))
            self.assertEqual(self.echo_json(c.read_response(), "alpaca")["path"], "/again")

    def test_backend_protocol_and_method(self):
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                body = b"" if method in ("POST", "PUT", "PATCH") else None
                j = self.echo_json(self.srv.request(method, "/m", "alpaca.test", body=body))
                self.assertEqual((j["method"], j["proto"], j["path"]), (method, "HTTP/1.1", "/m"))


class Paths(ProxyCase):
    def test_dot_segments_are_normalised_before_routing(self):
        cases = [
            ("/a/../admin", "bandicoot", "/admin"),
            ("/a/./b/../../admin/x", "bandicoot", "/admin/x"),
            ("/%61dmin", "bandicoot", "/admin"),          # unreserved characters are decoded
            ("/a/../admin?x=%2F&y=../z", "bandicoot", "/admin?x=%2F&y=../z"),  # the query is left alone
            ("/admin/../other", "alpaca", "/other"),
            ("/../../admin", "bandicoot", "/admin"),
        ]
        for raw, svc, seen in cases:
            with self.subTest(path=raw):
                j = self.echo_json(self.srv.get(raw, "paths.test"), svc)
                self.assertEqual(j["path"], seen)

    def test_encoded_slash_is_400(self):
        r = self.srv.get("/admin%2F..%2Fx", "paths.test")
        self.assertEqual(r.status, 400, r)

    def test_http10_without_host_goes_to_the_default_backend(self):
        with self.srv.conn() as c:
            c.send(b"GET /legacy HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
            r = c.read_response()
        j = self.echo_json(r, "be-default")
        self.assertEqual(j["path"], "/legacy")

    def test_http10_keep_alive(self):
        with self.srv.conn() as c:
            c.send(b"GET /one HTTP/1.0\r\nHost: alpaca.test\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            self.assertEqual(self.echo_json(r, "alpaca")["path"], "/one")
            self.assertEqual((r.headers.get("Connection") or "").lower(), "keep-alive")
            c.send(b"GET /two HTTP/1.0\r\nHost: alpaca.test\r\n\r\n")
            r = c.read_response()
            self.assertEqual(self.echo_json(r, "alpaca")["path"], "/two")
            self.assertTrue(c.is_closed(timeout=2))

    def test_absolute_form_target(self):
        r = self.srv.request("GET", "http://alpaca.test/abs?q=1", host="alpaca.test")
        j = self.echo_json(r, "alpaca")
        self.assertEqual(j["path"], "/abs?q=1")

    def test_absolute_form_target_wins_over_host(self):
        # RFC 9112 §3.2.2: Host is ignored; the target's authority routes and is the one Host forwarded.
        r = self.srv.request("GET", "http://alpaca.test/abs", host="unknown.test")
        j = self.echo_json(r, "alpaca")
        self.assertEqual(j["host"], "alpaca.test")
        self.assertEqual(j["headers"].get("Host"), ["alpaca.test"])


class Admin(ProxyCase):
    def test_admin_endpoints(self):
        r = self.srv.admin("/healthz")
        self.assertEqual(r.status, 200)
        r = self.srv.admin("/readyz")
        self.assertEqual(r.status, 200)
        cfg = self.srv.config()
        for key in ("reloads", "lastError", "objects", "ingresses", "diagnostics", "routes"):
            self.assertIn(key, cfg)
        self.assertGreaterEqual(cfg["reloads"], 1)
        self.assertEqual(cfg["lastError"], "")
        self.assertEqual(cfg["objects"]["Ingress"], 1)
        self.assertEqual(cfg["objects"]["Service"], 8)
        self.assertEqual({s["ingress"]: s["state"] for s in cfg["ingresses"]}, {"default/proxy": "Accepted"})
        # the missing Service is reported
        self.assertTrue(any("no-such-service" in d.get("message", json.dumps(d)) for d in cfg["diagnostics"]),
                        cfg["diagnostics"])
        r = self.srv.admin("/debug/routes")
        self.assertEqual(r.status, 200)
        text = r.body.decode()
        for host in ("alpaca.test", "paths.test", "flaky.test"):
            self.assertIn(host, text)
        r = self.srv.admin("/debug/routes?format=json")
        self.assertEqual(r.status, 200)
        self.assertIn("routes", r.json())
        r = self.srv.admin("/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn("ingressd_requests_total", r.body.decode())
        self.assertEqual(self.srv.admin("/nope").status, 404)


# ----------------------------------------------------------------------------
# upstream timeout: its own ingressd
# ----------------------------------------------------------------------------

class UpstreamTimeout(h.E2ETestCase):
    def test_slow_upstream_is_504(self):
        slow = self.start_echo("slow")
        d = self.tempdir()
        h.write_manifests(d, h.backend_objects("slow", [slow.port]) + [h.ingress("t", default_backend="slow")])
        srv = self.start_ingressd(d, ["--upstream-read-timeout-ms", "500"])
        self.log_on_failure(srv)
        self.assertEqual(srv.get("/?delay_ms=100", "t").status, 200)
        t0 = time.monotonic()
        r = srv.get("/?delay_ms=2000", "t")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertLess(took, 1.8)
        self.assertGreaterEqual(took, 0.4)
        # and the proxy still serves
        self.assertEqual(srv.get("/", "t").status, 200)


# ----------------------------------------------------------------------------
# reloads: one ingressd per test
# ----------------------------------------------------------------------------

class Reload(h.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alpha = cls.cres.start_echo("alpha")
        cls.beta = cls.cres.start_echo("beta")

    def setUp(self):
        super().setUp()
        self.dir = self.tempdir()
        h.write_manifests(self.dir, h.backend_objects("alpha", [self.alpha.port]) +
                          h.backend_objects("beta", [self.beta.port]), "services.yaml")
        self.ing_path = self.write_ingress("alpha")
        self.srv = self.start_ingressd(self.dir, workers=2)
        self.log_on_failure(self.srv)

    def write_ingress(self, svc):
        return h.write_manifests(self.dir, [h.ingress("reload", rules=[h.rule("reload.test", [
            h.http_path("/", svc)])])], "ingress.yaml")

    def served_by(self):
        r = self.srv.get("/", "reload.test")
        return r.json()["service"] if r.status == 200 else r.status

    def test_in_place_rewrite_never_serves_a_half_written_file(self):
        # An editor or `cat > file` truncates first and writes after: ingressd
        # must wait for the writer to close the file (found by bench/run's
        # endpoint-churn-inplace scenario: 503s while the file was empty).
        path = os.path.join(self.dir, "services.yaml")
        import json as _json
        objs = h.backend_objects("alpha", [self.alpha.port]) + h.backend_objects("beta", [self.beta.port])
        text = "\n---\n".join(_json.dumps(o) for o in objs)
        failures = 0
        last = None
        self.assertEqual(self.served_by(), "alpha")
        for _ in range(4):
            with open(path, "w", encoding="utf-8") as f:  # truncated to nothing, still open
                # While the file is empty (longer than the reload hold-off):
                deadline = time.monotonic() + 0.4
                while time.monotonic() < deadline:
                    r = self.srv.get("/", "reload.test")
                    got = r.json()["service"] if r.status == 200 else (r.status, r.body[:80])
                    if got != "alpha":
                        failures += 1
                        last = got
                    time.sleep(0.02)
                f.write(text)
        time.sleep(0.3)
        self.assertEqual(self.served_by(), "alpha")
        self.assertEqual(failures, 0, "last answer: %r" % (last,))

    def test_reload_under_load(self):
        loops = [h.RequestLoop(self.srv.http_port, "reload.test", keep_alive=ka, max_seconds=8, max_requests=200000)
                 for ka in (True, False)]
        for l in loops:
            l.start()
        self.addCleanup(lambda: [l.stop() for l in loops])
        time.sleep(0.3)
        switched_at = None
        for target in ("beta", "alpha", "beta", "alpha", "beta"):
            n = self.srv.reloads()
            self.write_ingress(target)
            self.srv.wait_reload(n)
            switched_at = time.monotonic()
            self.assertEqual(self.served_by(), target)
            time.sleep(0.45)
        for l in loops:
            l.stop()
        for l in loops:
            l.join(timeout=5)
            self.assertFalse(l.is_alive())
        for l in loops:
            kind = "keep-alive" if l.keep_alive else "new connections"
            self.assertEqual(l.failures, [], "%s: %d failures of %d" % (kind, len(l.failures), len(l.results)))
            self.assertGreater(len(l.results), 20, kind)
            self.assertEqual({s for _, _, s in l.results}, {"alpha", "beta"}, kind)
            after = [s for t, _, s in l.results if t > switched_at]
            self.assertTrue(after, "%s: no request after the last switch (%d results)" % (kind, len(l.results)))
            self.assertEqual(set(after), {"beta"}, kind)

    def test_broken_edit_keeps_the_previous_route(self):
        self.assertEqual(self.served_by(), "alpha")
        with open(self.ing_path, encoding="utf-8") as f:
            good = f.read()
        # 1. invalid YAML
        n = self.srv.reloads()
        h.write_file(self.ing_path, "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: reload\n"
                                    "spec: [\n")
        cfg = self.srv.wait_reload(n)
        self.assertIn("ingress.yaml", cfg["lastError"])
        self.assertIn("error", cfg["lastError"])
        self.assertEqual(self.served_by(), "alpha")
        # 2. unknown field (and the backend changed: the change must not apply)
        n = self.srv.reloads()
        h.write_file(self.ing_path, good.replace('"spec": {', '"spec": {\n    "service": {"name": "beta"},'))
        cfg = self.srv.wait_reload(n)
        self.assertIn('strict decoding error: unknown field "spec.service"', cfg["lastError"])
        self.assertIn("ingress.yaml:", cfg["lastError"])
        self.assertEqual(self.served_by(), "alpha")
        self.assertEqual(self.srv.admin("/readyz").status, 200)
        # 3. a good edit applies and clears the error
        n = self.srv.reloads()
        self.write_ingress("beta")
        cfg = self.srv.wait_reload(n)
        self.assertEqual(cfg["lastError"], "")
        self.assertEqual(self.served_by(), "beta")
        # 4. deleting the file removes the route
        n = self.srv.reloads()
        os.remove(self.ing_path)
        self.srv.wait_reload(n)
        self.assertEqual(self.served_by(), 404)

    def test_sighup_reloads(self):
        n = self.srv.reloads()
        self.srv.sighup()
        self.srv.wait_reload(n)
        h.wait_until(lambda: "configuration loaded (SIGHUP)" in self.srv.log(), timeout=2, what="SIGHUP log line")
        self.assertTrue(self.srv.alive())
        self.assertEqual(self.served_by(), "alpha")
        # a change plus SIGHUP: the new route is served right after the SIGHUP reload
        n = self.srv.reloads()
        self.write_ingress("beta")
        self.srv.sighup()
        self.srv.wait_reload(n)
        h.wait_until(lambda: self.served_by() == "beta", timeout=2, what="beta after SIGHUP")

    def test_atomic_rename_is_picked_up(self):
        tmp = os.path.join(self.dir, ".ingress.yaml.tmp")
        h.write_manifests(self.dir, [h.ingress("reload", rules=[h.rule("reload.test", [
            h.http_path("/", "beta")])])], ".ingress.yaml.tmp")
        n = self.srv.reloads()
        os.replace(tmp, self.ing_path)
        self.srv.wait_reload(n)
        self.assertEqual(self.served_by(), "beta")

    def test_configmap_style_symlink_swap(self):
        """The kubelet's AtomicWriter: files are symlinks through ..data, which is swapped by a rename."""
        d = self.tempdir()
        def version(tag, svc):
            vd = os.path.join(d, "..%s" % tag)
            os.mkdir(vd)
            h.write_manifests(vd, h.backend_objects("alpha", [self.alpha.port]) +
                              h.backend_objects("beta", [self.beta.port]), "services.yaml")
            h.write_manifests(vd, [h.ingress("cm", rules=[h.rule("cm.test", [h.http_path("/", svc)])])],
                              "ingress.yaml")
            os.symlink("..%s" % tag, os.path.join(d, "..data_tmp"))
            os.replace(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
        version("v1", "alpha")
        for f in ("services.yaml", "ingress.yaml"):
            os.symlink(os.path.join("..data", f), os.path.join(d, f))
        srv = self.start_ingressd(d)
        self.log_on_failure(srv)
        self.assertEqual(srv.get("/", "cm.test").json()["service"], "alpha")
        version("v2", "beta")
        h.wait_until(lambda: srv.get("/", "cm.test").json()["service"] == "beta", timeout=3,
                     what="the swapped ConfigMap version to be served")


if __name__ == "__main__":
    unittest.main()
