"""TLS termination, end to end (issue #4).

Certificates are made with the openssl CLI (a root CA → intermediate → leaf
chain, self-signed leaves, a wildcard, a leaf whose validity ended in 2020 by
`openssl ca -startdate/-enddate`). Clients: Python's ssl module, `openssl
s_client` and curl. Everything on 127.0.0.1; every process stopped by pid.

Covered: certificate choice by SNI (exact, wildcard of one label, default:
self-signed or --default-ssl-certificate; tls[] without hosts), full chains,
Host routing independent of SNI, bad Secrets (missing, malformed PEM, key not
matching, expired, names not covering the host) reported with the Ingress and
the Secret while other hosts keep serving, conflicts between Ingresses,
Secret rotation under load, TLS 1.2/1.3 only, session resumption by ticket,
ALPN, plain HTTP sent to the HTTPS port, the 308 redirect to https (ACME
challenge, hosts without TLS, --ssl-redirect=false, --redirect-https-port),
X-Forwarded-Proto/Port, HSTS, --https-port 0, large bodies over TLS.

HTTP/2 (h2 by ALPN) tests run unless INGRESSD_TEST_H2=0.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

H2_ENABLED = os.environ.get("INGRESSD_TEST_H2", "1") == "1"  # set to 0 to skip the HTTP/2 tests

HAVE_H2 = h.h2_available()
if HAVE_H2:
    import h2.config  # noqa: F401
    import h2.connection  # noqa: F401
    import h2.events  # noqa: F401
    import h2.settings  # noqa: F401

DEFAULT_CN = "ingressd default certificate"
MiB = 1 << 20


def rule_to(host, service, extra=()):
    """A host rule: "/" → service, plus (path, service) pairs."""
    paths = [h.http_path("/", service)] + [h.http_path(p, s) for p, s in extra]
    return h.rule(host, paths)


def broken_tls_ingress():
    """An Ingress whose every host names a bad Secret: missing, malformed PEM, key not matching, expired,
    names not covering the host (the Secrets themselves are made by each test)."""
    return h.with_tls(
        h.ingress("broken", rules=[rule_to(x, "alpaca") for x in
                                   ("missing.example.com", "malformed.example.com", "mismatch.example.com",
                                    "old.example.com", "wrongname.example.com")]),
        [(["missing.example.com"], "does-not-exist"), (["malformed.example.com"], "malformed-tls"),
         (["mismatch.example.com"], "mismatch-tls"), (["old.example.com"], "old-tls"),
         (["wrongname.example.com"], "other-tls")])


def start_ingressd_raw(res, manifest_dir, https_port, extra_args=()):
    """Like Resources.start_ingressd but with a chosen --https-port (0 = no TLS listener)."""
    return res.launch_ingressd(["--manifests", manifest_dir], manifest_dir, extra_args, https_port=https_port)


def diag_with(config, reason, *words):
    """The /config diagnostics with `reason` whose message and object contain every word."""
    out = []
    for d in config.get("diagnostics", []):
        text = d.get("object", "") + " " + d.get("message", "")
        if d.get("reason") == reason and all(w in text for w in words):
            out.append(d)
    return out


def replace_atomically(path, text):
    """Writes a sibling temp file and renames it over `path` (as kubelet and editors with swap files do)."""
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(tmp, path)


def manifests_text(objects):
    return "".join("---\n" + json.dumps(o, indent=2) + "\n" for o in objects)


class TlsCase(h.E2ETestCase):
    """Certificates and two echo upstreams shared by the class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which(h.OPENSSL) is None:
            raise unittest.SkipTest("openssl CLI not found")
        cls.certdir = cls.cres.tempdir(prefix="ingressd-e2e-certs-")
        f = cls.factory = h.CertFactory(cls.certdir)
        cls.root = f.ca("root")
        cls.inter = f.ca("intermediate", signer=cls.root)
        cls.cert_a = f.leaf("a", ["a.example.com"], signer=cls.inter)          # chain: leaf + intermediate
        cls.cert_w = f.leaf("w", ["*.w.example.com"])                           # wildcard, self-signed
        cls.cert_n = f.leaf("n", ["n.example.com", "n2.example.com"])           # for a tls[] entry without hosts
        cls.cert_other = f.leaf("other", ["somewhere.else.test"])               # names cover none of ours
        cls.cert_x = f.leaf("x", ["x.example.com"])
        cls.cert_old = f.expired_leaf("old", ["old.example.com"], signer=cls.root)
        cls.alpaca = cls.cres.start_echo("alpaca")
        cls.bandicoot = cls.cres.start_echo("bandicoot")

    def backends(self):
        return h.backend_objects("alpaca", [self.alpaca.port]) + h.backend_objects("bandicoot", [self.bandicoot.port])

    def assertDefaultCert(self, der, msg=None):
        self.assertIn(DEFAULT_CN, h.der_subject(der), msg)

    def assertServedOverTls(self, port, host, service, sni=None, serial=None):
        r = h.https_request(port, host=host, sni=sni)
        self.assertServedBy(r, service)
        if serial is not None:
            self.assertEqual(r.peer_serial, serial)
        return r


class TestTlsServing(TlsCase):
    """One ingressd (self-signed default) serving a mix of good and bad tls entries."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = cls.cres.tempdir()
        f = cls.factory
        key_other = f.leaf("keyother", ["mismatch.example.com"])
        cert_mismatch = f.leaf("mismatch", ["mismatch.example.com"])
        objs = h.backend_objects("alpaca", [cls.alpaca.port]) + h.backend_objects("bandicoot", [cls.bandicoot.port])
        objs += [
            h.cert_secret("a-tls", cls.cert_a, chain=True),
            h.cert_secret("w-tls", cls.cert_w, encoding="data"),  # base64 in data
            h.cert_secret("n-tls", cls.cert_n),
            h.cert_secret("other-tls", cls.cert_other),
            h.cert_secret("old-tls", cls.cert_old),
            h.tls_secret("malformed-tls", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                                          "-----END CERTIFICATE-----\n", cls.cert_x.key_pem()),
            h.tls_secret("mismatch-tls", cert_mismatch.crt_pem(), key_other.key_pem()),
        ]
        objs.append(h.with_tls(
            h.ingress("main", rules=[rule_to("a.example.com", "alpaca", [("/b", "bandicoot")]),
                                     rule_to("x.w.example.com", "bandicoot"),
                                     rule_to("notls.example.com", "bandicoot")]),
            [(["a.example.com"], "a-tls"), (["*.w.example.com"], "w-tls")]))
        objs.append(h.with_tls(h.ingress("nosecret", rules=[rule_to("nosecret.example.com", "alpaca")]),
                               [(["nosecret.example.com"], None)]))
        objs.append(h.with_tls(h.ingress("nohosts", rules=[rule_to("n.example.com", "alpaca"),
                                                           rule_to("n2.example.com", "bandicoot")]),
                               [(None, "n-tls")]))
        objs.append(broken_tls_ingress())
        h.write_manifests(cls.dir, objs)
        cls.d = cls.cres.start_ingressd(cls.dir)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    # --- certificate choice -------------------------------------------------

    def test_exact_sni_serves_the_full_chain(self):
        rc, out = h.s_client(self.d.https_port, ["-showcerts"], sni="a.example.com")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count("-----BEGIN CERTIFICATE-----"), 2, out)
        self.assertIn("CN = a.example.com", out)
        self.assertIn("CN = ingressd test intermediate", out)
        # The root alone is enough to verify (the intermediate comes from the server).
        ctx = h.tls_client_context(cafile=self.root.crt)
        with h.TlsConn(self.d.https_port, "a.example.com", context=ctx) as c:
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")
            self.assertEqual(c.peer_serial(), self.cert_a.serial)

    def test_curl_with_the_root_ca_only(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", self.root.crt, "--resolve",
                            "a.example.com:%d:127.0.0.1" % self.d.https_port,
                            "https://a.example.com:%d/b/x" % self.d.https_port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["service"], "bandicoot")

    def test_wildcard_covers_one_label(self):
        r = self.assertServedOverTls(self.d.https_port, "x.w.example.com", "bandicoot", serial=self.cert_w.serial)
        self.assertEqual(r.peer_serial, self.cert_w.serial)
        # Two labels below, or the bare suffix: the default certificate (Host routes anyway: 404 or not).
        for sni in ("y.x.w.example.com", "w.example.com"):
            with h.TlsConn(self.d.https_port, sni) as c:
                self.assertDefaultCert(c.peer_der(), sni)

    def test_no_sni_and_unknown_names_get_the_self_signed_default(self):
        with h.TlsConn(self.d.https_port, None) as c:
            der = c.peer_der()
            self.assertDefaultCert(der)
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")  # no SNI: Host still routes
        with h.TlsConn(self.d.https_port, "unknown.test") as c:
            self.assertEqual(c.peer_der(), der)  # the same certificate for the whole run
        # Logged at start-up, with its serial.
        serial = h.der_serial(der).lower()
        self.assertIn("self-signed", self.d.log())
        self.assertIn(serial.lstrip("0"), self.d.log().lower())

    def test_sni_is_case_insensitive_and_trailing_dot(self):
        with h.TlsConn(self.d.https_port, "A.Example.COM") as c:
            self.assertEqual(c.peer_serial(), self.cert_a.serial)
        rc, out = h.s_client(self.d.https_port, [], sni="a.example.com.")
        self.assertEqual(rc, 0, out)
        self.assertIn("subject=CN = a.example.com\n", out)

    def test_tls_entry_without_hosts_uses_the_rule_hosts(self):
        self.assertServedOverTls(self.d.https_port, "n.example.com", "alpaca", serial=self.cert_n.serial)
        self.assertServedOverTls(self.d.https_port, "n2.example.com", "bandicoot", serial=self.cert_n.serial)
        # And they are TLS hosts for the redirect.
        self.assertEqual(self.d.get("/", host="n2.example.com").status, 308)

    def test_tls_entry_without_secret_gets_the_default_and_redirects(self):
        with h.TlsConn(self.d.https_port, "nosecret.example.com") as c:
            self.assertDefaultCert(c.peer_der())
            c.send(h.build_request("GET", "/", "nosecret.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")
        self.assertEqual(self.d.get("/", host="nosecret.example.com").status, 308)
        self.assertEqual(diag_with(self.d.config(), "SecretNotFound", "default/nosecret"), [])

    def test_host_routes_after_the_handshake_not_sni(self):
        with h.TlsConn(self.d.https_port, "a.example.com") as c:
            self.assertEqual(c.peer_serial(), self.cert_a.serial)
            c.send(h.build_request("GET", "/", "x.w.example.com"))
            self.assertServedBy(c.read_response(), "bandicoot")
            c.send(h.build_request("GET", "/b/1", "a.example.com"))
            self.assertServedBy(c.read_response(), "bandicoot")
            c.send(h.build_request("GET", "/", "notls.example.com"))
            self.assertServedBy(c.read_response(), "bandicoot")
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")

    # --- bad input ------------------------------------------------------------

    def test_bad_secrets_are_reported_and_those_hosts_get_the_default(self):
        cfg = self.d.config()
        dump = json.dumps(cfg.get("diagnostics"), indent=1)
        for reason, secret in (("SecretNotFound", "does-not-exist"), ("InvalidCertificate", "malformed-tls"),
                               ("InvalidCertificate", "mismatch-tls"), ("CertificateExpired", "old-tls"),
                               ("CertificateNameMismatch", "other-tls")):
            found = diag_with(cfg, reason, "Ingress default/broken", secret)
            self.assertEqual(len(found), 1, "%s for %s in %s" % (reason, secret, dump))
        log = self.d.log()
        for secret in ("does-not-exist", "malformed-tls", "mismatch-tls", "old-tls", "other-tls"):
            self.assertTrue(any("default/broken" in line and secret in line for line in log.splitlines()),
                            "%s not in the log:\n%s" % (secret, log))
        # Each bad host: the default certificate, and requests still served.
        for host in ("missing.example.com", "malformed.example.com", "mismatch.example.com", "old.example.com"):
            with h.TlsConn(self.d.https_port, host) as c:
                self.assertDefaultCert(c.peer_der(), host)
                c.send(h.build_request("GET", "/", host))
                self.assertServedBy(c.read_response(), "alpaca")
        # A name mismatch is only a warning: that certificate is served.
        self.assertServedOverTls(self.d.https_port, "wrongname.example.com", "alpaca", serial=self.cert_other.serial)
        # Other hosts keep their certificates.
        self.assertServedOverTls(self.d.https_port, "a.example.com", "alpaca", serial=self.cert_a.serial)
        self.assertServedOverTls(self.d.https_port, "x.w.example.com", "bandicoot", serial=self.cert_w.serial)

    def test_ingress_status_stays_accepted_with_a_bad_secret(self):
        states = {i["ingress"]: i["state"] for i in self.d.config()["ingresses"]}
        self.assertEqual(states.get("default/main"), "Accepted")

    # --- protocol -------------------------------------------------------------

    def test_tls12_and_tls13_only(self):
        for flag, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = h.s_client(self.d.https_port, [flag], sni="a.example.com")
            self.assertEqual(rc, 0, out)
            self.assertIn("Protocol  : " + proto if flag == "-tls1_2" else "TLSv1.3", out)
        # The client is allowed TLS 1.1 (security level 0), the server refuses it.
        for flag in ("-tls1_1", "-tls1"):
            rc, out = h.s_client(self.d.https_port, [flag, "-cipher", "DEFAULT@SECLEVEL=0"], sni="a.example.com")
            self.assertNotEqual(rc, 0, out)
            self.assertNotIn("no protocols available", out)
        ctx = h.tls_client_context(max_version=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            with h.TlsConn(self.d.https_port, "a.example.com", context=ctx):
                pass
        self.assertServedOverTls(self.d.https_port, "a.example.com", "alpaca")  # still up

    def test_python_negotiates_tls13_with_an_aead_cipher(self):
        with h.TlsConn(self.d.https_port, "a.example.com") as c:
            self.assertEqual(c.version(), "TLSv1.3")
        ctx = h.tls_client_context(max_version=ssl.TLSVersion.TLSv1_2)
        with h.TlsConn(self.d.https_port, "a.example.com", context=ctx) as c:
            self.assertEqual(c.version(), "TLSv1.2")
            name, _, _ = c.sock.cipher()
            self.assertTrue(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name)

    def test_session_resumption_by_ticket(self):
        req = b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n"
        for flag in ("-tls1_2", "-tls1_3"):
            sess = os.path.join(self.tempdir(), "sess.pem")
            rc, out = h.s_client(self.d.https_port, [flag, "-sess_out", sess, "-ign_eof"], sni="a.example.com",
                                 input=req)
            self.assertEqual(rc, 0, out)
            self.assertIn("New,", out)
            self.assertTrue(os.path.getsize(sess) > 0)
            rc, out = h.s_client(self.d.https_port, [flag, "-sess_in", sess, "-ign_eof"], sni="a.example.com",
                                 input=req)
            self.assertEqual(rc, 0, out)
            self.assertIn("Reused,", out, "%s: no resumption:\n%s" % (flag, out))
            self.assertIn('"service":"alpaca"', out.replace(" ", ""))

    def test_alpn(self):
        ctx = h.tls_client_context(alpn=["http/1.1"])
        with h.TlsConn(self.d.https_port, "a.example.com", context=ctx) as c:
            self.assertEqual(c.alpn(), "http/1.1")
        if H2_ENABLED:
            # HTTP/2 built: preferred when the client offers it, in either order.
            for offer in (["h2", "http/1.1"], ["http/1.1", "h2"]):
                ctx = h.tls_client_context(alpn=offer)
                with h.TlsConn(self.d.https_port, "a.example.com", context=ctx) as c:
                    self.assertEqual(c.alpn(), "h2", offer)
            rc, out = h.s_client(self.d.https_port, ["-alpn", "h2,http/1.1"], sni="a.example.com")
            self.assertIn("ALPN protocol: h2", out)
        # No ALPN at all: HTTP/1.1.
        with h.TlsConn(self.d.https_port, "a.example.com") as c:
            self.assertIsNone(c.alpn())
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")

    def test_plain_http_to_the_https_port_is_closed(self):
        with h.RawConn(self.d.https_port, timeout=3) as c:
            c.send(h.build_request("GET", "/", "a.example.com"))
            data = b""
            try:
                data = c.read_until_close()
            except (socket.timeout, OSError):
                self.fail("the server did not close a plain-HTTP connection on the HTTPS port")
            self.assertNotIn(b"HTTP/1.1 200", data)
        # Garbage and an immediate close, too.
        with h.RawConn(self.d.https_port, timeout=3) as c:
            c.send(b"SSH-2.0-OpenSSH_9.2\r\n")
            self.assertTrue(c.is_closed(timeout=3))
        with h.RawConn(self.d.https_port, timeout=3):
            pass
        self.assertTrue(self.d.alive())
        self.assertServedOverTls(self.d.https_port, "a.example.com", "alpaca")

    def test_keep_alive_and_large_bodies_over_tls(self):
        with h.TlsConn(self.d.https_port, "a.example.com", timeout=10) as c:
            c.send(h.build_request("GET", "/?size=%d" % MiB, "a.example.com"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), MiB)
            body = os.urandom(MiB)
            c.send(h.build_request("POST", "/upload", "a.example.com", body=body))
            r = c.read_response()
            self.assertServedBy(r, "alpaca")
            self.assertEqual(r.json()["body_size"], MiB)
            # Chunked upload.
            c.send(b"POST /c HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.json()["body_size"], 5)
            for _ in range(20):
                c.send(h.build_request("GET", "/", "a.example.com"))
                self.assertServedBy(c.read_response(), "alpaca")

    def test_pipelined_requests_over_tls(self):
        # More than the 64 KiB read mark in one burst: reading must resume from what OpenSSL holds.
        n = 100
        pad = "p" * 1000
        burst = b"".join(h.build_request("GET", "/pipe/%d" % i, "a.example.com", headers={"X-Pad": pad})
                         for i in range(n))
        with h.TlsConn(self.d.https_port, "a.example.com", timeout=10) as c:
            c.send(burst)
            for i in range(n):
                r = c.read_response()
                self.assertServedBy(r, "alpaca")
                self.assertEqual(r.json()["path"], "/pipe/%d" % i)

    def _memory_tls(self):
        """A TLS client over a raw socket (ssl.MemoryBIO): the test decides what goes on the wire and when,
        down to one TLS record per byte and a TCP FIN right behind the request."""
        raw = socket.create_connection(("127.0.0.1", self.d.https_port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="a.example.com")
        for _ in range(100):
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                chunk = raw.recv(65536)
                self.assertTrue(chunk, "the server closed during the handshake")
                inc.write(chunk)
        raw.sendall(out.read())
        return raw, obj, inc, out

    def _memory_tls_read_all(self, raw, obj, inc):
        """Everything the server sends until it closes."""
        got = b""
        while True:
            chunk = raw.recv(65536)
            if chunk:
                inc.write(chunk)
            else:
                inc.write_eof()
            try:
                while True:
                    d = obj.read(65536)
                    if not d:
                        return got
                    got += d
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return got
            if not chunk:
                return got

    def _echo_path(self, got):
        """The path the echo upstream saw, from one whole 200 response with a Content-Length."""
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), got[:200])
        length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                  if line.lower().startswith(b"content-length:")]
        self.assertEqual(len(length), 1, head)
        self.assertEqual(len(body), length[0])
        return json.loads(body)["path"]

    def test_request_and_fin_in_one_flight_over_tls(self):
        # The request's records and the client's FIN reach the server in one go: the read that finds the
        # socket short is not the end of it; the request is answered, then the connection closes.
        raw, obj, inc, out = self._memory_tls()
        with raw:
            obj.write(h.build_request("GET", "/fin", "a.example.com"))
            raw.sendall(out.read())
            raw.shutdown(socket.SHUT_WR)
            got = self._memory_tls_read_all(raw, obj, inc)
        self.assertEqual(self._echo_path(got), "/fin")

    def test_request_one_byte_per_tls_record(self):
        # Every byte of the head in a record (and a TCP segment) of its own, some sent together: reading goes
        # on across records until the head is whole, however the records fall into reads.
        raw, obj, inc, out = self._memory_tls()
        with raw:
            req = h.build_request("GET", "/bytes", "a.example.com", headers={"Connection": "close"})
            for i, b in enumerate(req):
                obj.write(bytes([b]))
                if i % 7 == 0:
                    raw.sendall(out.read())
                    time.sleep(0.001)
            raw.sendall(out.read())
            got = self._memory_tls_read_all(raw, obj, inc)
        self.assertEqual(self._echo_path(got), "/bytes")

    def test_late_reader_gets_the_whole_large_response(self):
        with h.TlsConn(self.d.https_port, "a.example.com", timeout=10) as c:
            c.send(h.build_request("GET", "/?size=%d" % (8 * MiB), "a.example.com"))
            time.sleep(0.5)  # the server fills the socket buffers and meets EAGAIN in the middle of a record
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), 8 * MiB)
            self.assertEqual(r.body.count(b"x"), 8 * MiB)
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")

    def test_tls_metrics(self):
        before = self.metrics()
        h.s_client(self.d.https_port, ["-tls1_2"], sni="a.example.com")
        with h.TlsConn(self.d.https_port, "a.example.com"):
            pass
        with h.RawConn(self.d.https_port, timeout=3) as c:
            c.send(h.build_request("GET", "/", "a.example.com"))
            c.read_until_close()
        after = h.wait_until(lambda: (lambda m: m if m.get("ingressd_tls_handshake_errors_total", 0) >
                                      before.get("ingressd_tls_handshake_errors_total", 0) else None)(self.metrics()),
                             what="a handshake error counted")
        for k in ('ingressd_tls_handshakes_total{version="TLSv1.2"}', 'ingressd_tls_handshakes_total{version="TLSv1.3"}',
                  'ingressd_connections_accepted_total{protocol="https"}'):
            self.assertGreater(after.get(k, 0), before.get(k, 0), k)
        expiry = {k: v for k, v in after.items() if k.startswith("ingressd_tls_certificate_expiry_timestamp_seconds")}
        self.assertIn('ingressd_tls_certificate_expiry_timestamp_seconds{secret="default/a-tls"}', expiry, expiry)
        self.assertTrue(all(v > time.time() for v in expiry.values()), expiry)

    def metrics(self):
        r = self.d.admin("/metrics")
        self.assertEqual(r.status, 200)
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    # --- headers and redirects -----------------------------------------------

    def test_forwarded_headers_over_tls(self):
        r = h.https_request(self.d.https_port, host="a.example.com",
                            headers={"X-Forwarded-Proto": "http", "X-Forwarded-Port": "1"})
        hdrs = r.json()["headers"]
        self.assertEqual(hdrs["X-Forwarded-Proto"], ["https"])
        self.assertEqual(hdrs["X-Forwarded-Port"], [str(self.d.https_port)])
        self.assertEqual(hdrs["X-Forwarded-Host"], ["a.example.com"])
        # Plain HTTP: http and the http port (a host without TLS, so no redirect).
        r = self.d.get("/", host="notls.example.com", headers={"X-Forwarded-Proto": "https"})
        hdrs = r.json()["headers"]
        self.assertEqual(hdrs["X-Forwarded-Proto"], ["http"])
        self.assertEqual(hdrs["X-Forwarded-Port"], [str(self.d.http_port)])

    def test_no_hsts_without_the_flag(self):
        r = h.https_request(self.d.https_port, host="a.example.com")
        self.assertNotIn("Strict-Transport-Security", r.headers)

    def test_redirect_to_https_for_tls_hosts(self):
        port = self.d.https_port
        r = self.d.get("/some/path?q=1&r=%2F", host="a.example.com")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://a.example.com:%d/some/path?q=1&r=%%2F" % port)
        self.assertNotIn("Strict-Transport-Security", r.headers)
        # Wildcard tls host; Host with a port.
        r = self.d.get("/", host="x.w.example.com:%d" % self.d.http_port)
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://x.w.example.com:%d/" % port)
        # A POST keeps its method by 308.
        r = self.d.request("POST", "/form", host="a.example.com", body=b"x=1")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://a.example.com:%d/form" % port)
        # Keep-alive survives a redirect without a body.
        with self.d.conn() as c:
            c.send(h.build_request("GET", "/1", "a.example.com"))
            self.assertEqual(c.read_response().status, 308)
            c.send(h.build_request("GET", "/", "notls.example.com"))
            self.assertServedBy(c.read_response(), "bandicoot")
            c.send(h.build_request("HEAD", "/2", "a.example.com"))
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 308)
            self.assertEqual(r.body, b"")

    def test_redirect_normalises_the_host_and_takes_absolute_form(self):
        port = self.d.https_port
        r = self.d.get("/x", host="A.Example.COM")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://a.example.com:%d/x" % port)
        r = self.d.get("http://a.example.com/abs?q=2", host="a.example.com")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://a.example.com:%d/abs?q=2" % port)

    def test_acme_challenge_is_not_redirected(self):
        r = self.d.get("/.well-known/acme-challenge/token123", host="a.example.com")
        self.assertServedBy(r, "alpaca")
        self.assertEqual(r.json()["path"], "/.well-known/acme-challenge/token123")

    def test_hosts_without_tls_are_not_redirected(self):
        self.assertServedBy(self.d.get("/", host="notls.example.com"), "bandicoot")
        # No rule, no tls: the 404 of no route, not a redirect.
        self.assertNotEqual(self.d.get("/", host="nothing.test").status, 308)


class TestTlsOptions(TlsCase):
    """One ingressd per test, for flags and changing manifests."""

    def basic_objects(self, extra=()):
        objs = self.backends() + [h.cert_secret("a-tls", self.cert_a, chain=True)]
        objs.append(h.with_tls(h.ingress("main", rules=[rule_to("a.example.com", "alpaca"),
                                                        rule_to("notls.example.com", "bandicoot")]),
                               [(["a.example.com"], "a-tls")]))
        return objs + list(extra)

    def start(self, objs, extra_args=()):
        d = self.tempdir()
        h.write_manifests(d, objs)
        ing = self.start_ingressd(d, list(extra_args))
        self.log_on_failure(ing)
        return ing

    def test_hsts_only_on_https_when_asked(self):
        value = "max-age=31536000; includeSubDomains"
        d = self.start(self.basic_objects(), ["--hsts", value])
        r = h.https_request(d.https_port, host="a.example.com")
        self.assertServedBy(r, "alpaca")
        self.assertEqual(r.headers.get_all("Strict-Transport-Security"), [value])
        r = h.https_request(d.https_port, host="notls.example.com", sni="a.example.com")
        self.assertEqual(r.headers.get("Strict-Transport-Security"), value)
        # Never on plain HTTP: proxied, or the redirect.
        r = d.get("/", host="notls.example.com")
        self.assertServedBy(r, "bandicoot")
        self.assertNotIn("Strict-Transport-Security", r.headers)
        r = d.get("/", host="a.example.com")
        self.assertEqual(r.status, 308)
        self.assertNotIn("Strict-Transport-Security", r.headers)

    def test_hsts_on_https_responses_made_by_ingressd(self):
        d = self.start(self.basic_objects(), ["--hsts", "max-age=600"])
        r = h.https_request(d.https_port, host="no-route.test", sni="a.example.com")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers.get("Strict-Transport-Security"), "max-age=600")

    def test_stalled_handshake_is_closed_by_the_header_timeout(self):
        d = self.start(self.basic_objects(), ["--client-header-timeout-ms", "300"])
        with h.RawConn(d.https_port, timeout=5) as idle, h.RawConn(d.https_port, timeout=5) as partial:
            partial.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
            self.assertTrue(idle.is_closed(timeout=5), "a silent TLS client was not closed")
            self.assertTrue(partial.is_closed(timeout=5), "a TLS client stalled mid-ClientHello was not closed")
        self.assertServedOverTls(d.https_port, "a.example.com", "alpaca", serial=self.cert_a.serial)

    def read_slowly(self, conn, host, size):
        """Asks for `size` bytes and reads them in 32 KiB steps 20 ms apart (a client that keeps reading, slowly);
        returns the number of bytes received before the response ended or the connection closed."""
        conn.send(h.build_request("GET", "/?size=%d" % size, host))
        version, status, reason, headers = conn.read_head()
        self.assertEqual(status, 200)
        got = len(conn.buf)
        conn.buf = b""
        deadline = time.monotonic() + 30
        while got < size and time.monotonic() < deadline:
            try:
                chunk = conn.sock.recv(32768)
            except OSError:
                break
            if not chunk:
                break
            got += len(chunk)
            time.sleep(0.02)
        return got

    def test_slow_reader_plain_http_control(self):
        d = self.start(self.basic_objects(), ["--client-send-timeout-ms", "800"])
        with h.RawConn(d.http_port, timeout=10) as c:
            self.assertEqual(self.read_slowly(c, "notls.example.com", 4 * MiB), 4 * MiB)

    # Regression: after write() meets EAGAIN the socket's MBs of kernel buffer drain at the client's pace and no
    # EPOLLOUT comes for a while; the send timeout must count from the client's reading (the kernel's queue
    # shrinking), not from ingressd's last write.
    def test_slow_reader_is_not_cut_by_the_send_timeout(self):
        d = self.start(self.basic_objects(), ["--client-send-timeout-ms", "800"])
        with h.TlsConn(d.https_port, "a.example.com", timeout=10) as c:
            self.assertEqual(self.read_slowly(c, "a.example.com", 4 * MiB), 4 * MiB)

    def test_http2_false_selects_http11_by_alpn(self):
        d = self.start(self.basic_objects(), ["--http2=false"])
        ctx = h.tls_client_context(alpn=["h2", "http/1.1"])
        with h.TlsConn(d.https_port, "a.example.com", context=ctx) as c:
            self.assertEqual(c.alpn(), "http/1.1")
            c.send(h.build_request("GET", "/", "a.example.com"))
            self.assertServedBy(c.read_response(), "alpaca")
        rc, out = h.s_client(d.https_port, ["-alpn", "h2,http/1.1"], sni="a.example.com")
        self.assertIn("ALPN protocol: http/1.1", out)

    def test_ssl_redirect_false(self):
        d = self.start(self.basic_objects(), ["--ssl-redirect=false"])
        self.assertServedBy(d.get("/x?y=1", host="a.example.com"), "alpaca")
        self.assertServedOverTls(d.https_port, "a.example.com", "alpaca", serial=self.cert_a.serial)

    def test_redirect_https_port(self):
        d = self.start(self.basic_objects(), ["--redirect-https-port", "443"])
        r = d.get("/p?q", host="a.example.com")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "https://a.example.com/p?q")
        d2 = self.start(self.basic_objects(), ["--redirect-https-port", "9443"])
        r = d2.get("/p", host="a.example.com")
        self.assertEqual(r.headers["Location"], "https://a.example.com:9443/p")
        # X-Forwarded-Port is still the port ingressd listens on for TLS.
        r = h.https_request(d2.https_port, host="a.example.com")
        self.assertEqual(r.json()["headers"]["X-Forwarded-Port"], [str(d2.https_port)])

    def test_https_port_zero_disables_tls(self):
        d = self.tempdir()
        h.write_manifests(d, self.basic_objects())
        ing = start_ingressd_raw(self.res, d, 0)
        self.log_on_failure(ing)
        self.assertServedBy(ing.get("/", host="a.example.com"), "alpaca")  # no TLS: no redirect
        self.assertNotIn("https://", ing.log())

    def test_default_ssl_certificate_flag(self):
        dflt = self.factory.leaf("dflt", ["default.example.com"])
        objs = self.basic_objects([h.cert_secret("dflt", dflt, namespace="infra")])
        d = self.start(objs, ["--default-ssl-certificate", "infra/dflt"])
        for sni in (None, "unknown.test"):
            with h.TlsConn(d.https_port, sni) as c:
                self.assertEqual(c.peer_serial(), dflt.serial)
        self.assertServedOverTls(d.https_port, "a.example.com", "alpaca", serial=self.cert_a.serial)
        self.assertNotIn("no --default-ssl-certificate", d.log())

    def test_missing_default_ssl_certificate(self):
        d = self.start(self.basic_objects(), ["--default-ssl-certificate", "infra/nope"])
        found = diag_with(d.config(), "SecretNotFound", "infra/nope")
        self.assertEqual(len(found), 1, d.config().get("diagnostics"))
        with h.TlsConn(d.https_port, "unknown.test") as c:
            self.assertDefaultCert(c.peer_der())
        self.assertServedOverTls(d.https_port, "a.example.com", "alpaca", serial=self.cert_a.serial)

    def test_conflict_older_ingress_wins(self):
        older, newer = self.factory.leaf("older", ["c.example.com"]), self.factory.leaf("newer", ["c.example.com"])
        objs = self.backends() + [h.cert_secret("older-tls", older), h.cert_secret("newer-tls", newer)]
        # "a-newer" sorts first by name; "z-older" is older.
        objs.append(h.with_tls(h.ingress("a-newer", rules=[rule_to("c.example.com", "alpaca")]),
                               [(["c.example.com"], "newer-tls")], created="2024-06-01T00:00:00Z"))
        objs.append(h.with_tls(h.ingress("z-older", rules=[rule_to("c.example.com", "alpaca")]),
                               [(["c.example.com"], "older-tls")], created="2023-01-01T00:00:00Z"))
        d = self.start(objs)
        with h.TlsConn(d.https_port, "c.example.com") as c:
            self.assertEqual(c.peer_serial(), older.serial)
        found = diag_with(d.config(), "Conflict", "Ingress default/a-newer", "c.example.com", "default/older-tls")
        self.assertEqual(len(found), 1, d.config().get("diagnostics"))

    def test_secret_added_later_is_picked_up(self):
        objs = self.backends() + [h.with_tls(h.ingress("main", rules=[rule_to("a.example.com", "alpaca")]),
                                             [(["a.example.com"], "a-tls")])]
        mdir = self.tempdir()
        h.write_manifests(mdir, objs)
        d = self.start_ingressd(mdir)
        self.log_on_failure(d)
        with h.TlsConn(d.https_port, "a.example.com") as c:
            self.assertDefaultCert(c.peer_der())
        before = d.reloads()
        h.write_manifests(mdir, [h.cert_secret("a-tls", self.cert_a, chain=True)], filename="secret.yaml")
        d.wait_reload(before)
        h.wait_until(lambda: h.https_request(d.https_port, host="a.example.com").peer_serial == self.cert_a.serial,
                     what="the new certificate")

    def test_secret_rotation_under_load(self):
        v1 = self.factory.leaf("rot1", ["rot.example.com"])
        v2 = self.factory.leaf("rot2", ["rot.example.com"])
        mdir = self.tempdir()
        h.write_manifests(mdir, self.backends() + [
            h.with_tls(h.ingress("rot", rules=[rule_to("rot.example.com", "alpaca")]), [(None, "rot-tls")])])
        secret_path = h.write_manifests(mdir, [h.cert_secret("rot-tls", v1)], filename="secret.yaml")
        d = self.start_ingressd(mdir)
        self.log_on_failure(d)

        # A keep-alive connection opened before the change.
        keep = h.TlsConn(d.https_port, "rot.example.com", timeout=5)
        self.addCleanup(keep.close)
        keep.send(h.build_request("GET", "/", "rot.example.com"))
        self.assertServedBy(keep.read_response(), "alpaca")
        self.assertEqual(keep.peer_serial(), v1.serial)

        results, failures = [], []
        stop = threading.Event()

        def loop():
            deadline = time.monotonic() + 20
            ctx = h.tls_client_context(tickets=False)
            while not stop.is_set() and time.monotonic() < deadline and len(results) < 2000:
                try:
                    with h.TlsConn(d.https_port, "rot.example.com", timeout=5, context=ctx) as c:
                        der = c.peer_der()
                        c.send(h.build_request("GET", "/", "rot.example.com"))
                        r = c.read_response()
                        if r.status != 200:
                            failures.append("status %d" % r.status)
                        results.append(der)
                except Exception as e:  # noqa: BLE001 - any failure counts
                    failures.append("%s: %s" % (type(e).__name__, e))

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            h.wait_until(lambda: len(results) >= 5, timeout=10, what="handshakes before the change")
            before = d.reloads()
            replace_atomically(secret_path, manifests_text([h.cert_secret("rot-tls", v2)]))
            d.wait_reload(before)
            n_at_reload = len(results)
            h.wait_until(lambda: len(results) >= n_at_reload + 5, timeout=10, what="handshakes after the change")
        finally:
            stop.set()
            t.join(timeout=10)
        self.assertEqual(failures, [])
        serials = []
        for der in results:  # distinct certificates only: one openssl run each
            if not serials or serials[-1][0] != der:
                serials.append((der, h.der_serial(der)))
        names = [s for _, s in serials]
        self.assertEqual(names, [v1.serial, v2.serial], "certificates seen, in order: %r" % names)
        # The connection opened before the change still works (and keeps its certificate).
        keep.send(h.build_request("GET", "/after", "rot.example.com"))
        self.assertServedBy(keep.read_response(), "alpaca")
        self.assertEqual(keep.peer_serial(), v1.serial)

    def test_broken_secret_edit_keeps_the_last_good_certificate(self):
        v1 = self.factory.leaf("brk1", ["brk.example.com"])
        mdir = self.tempdir()
        h.write_manifests(mdir, self.backends() + [
            h.with_tls(h.ingress("brk", rules=[rule_to("brk.example.com", "alpaca")]), [(None, "brk-tls")])])
        secret_path = h.write_manifests(mdir, [h.cert_secret("brk-tls", v1)], filename="secret.yaml")
        d = self.start_ingressd(mdir)
        self.log_on_failure(d)
        self.assertServedOverTls(d.https_port, "brk.example.com", "alpaca", serial=v1.serial)
        before = d.reloads()
        # Valid YAML, invalid certificate: the Secret is taken, its certificate refused; the host gets the default.
        replace_atomically(secret_path, manifests_text([h.tls_secret("brk-tls", "junk", v1.key_pem())]))
        cfg = d.wait_reload(before)
        self.assertEqual(len(diag_with(cfg, "InvalidCertificate", "Ingress default/brk", "brk-tls")), 1,
                         cfg.get("diagnostics"))
        with h.TlsConn(d.https_port, "brk.example.com") as c:
            self.assertDefaultCert(c.peer_der())
        self.assertTrue(d.alive())


class TestCheckCommand(TlsCase):
    """`ingressd check DIR` names the Ingress and the Secret for every certificate problem."""

    def write_broken(self):
        d = self.tempdir()
        f = self.factory
        other_key = f.leaf("ck-otherkey", ["mismatch.example.com"])
        objs = self.backends() + [
            h.tls_secret("malformed-tls", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                         self.cert_x.key_pem()),
            h.tls_secret("mismatch-tls", self.cert_x.crt_pem(), other_key.key_pem()),
            h.cert_secret("old-tls", self.cert_old),
            h.cert_secret("other-tls", self.cert_other),
        ]
        objs.append(broken_tls_ingress())
        h.write_manifests(d, objs)
        return d

    def test_check_reports_a_missing_secret(self):
        rc, out, err = h.run_cli(["check", self.write_broken()])
        text = out + err
        self.assertTrue(any("Ingress default/broken" in line and "does-not-exist" in line
                            for line in text.splitlines()), text)

    def test_check_reports_certificate_problems(self):
        rc, out, err = h.run_cli(["check", self.write_broken()])
        text = out + err
        for secret in ("malformed-tls", "mismatch-tls", "old-tls", "other-tls"):
            self.assertTrue(any("Ingress default/broken" in line and secret in line for line in text.splitlines()),
                            "%s not reported:\n%s" % (secret, text))
        self.assertEqual(rc, 1, text)  # errors: exit 1

    def test_check_json_gives_the_reasons(self):
        rc, out, err = h.run_cli(["check", self.write_broken(), "-o", "json"])
        reasons = {d.get("reason") for d in json.loads(out).get("diagnostics", [])}
        for r in ("SecretNotFound", "InvalidCertificate", "CertificateExpired", "CertificateNameMismatch"):
            self.assertIn(r, reasons, out)


# ----------------------------------------------------------------------------
# HTTP/2 (ALPN h2): switched on with INGRESSD_TEST_H2=1 once it is built
# ----------------------------------------------------------------------------

@unittest.skipUnless(H2_ENABLED, "INGRESSD_TEST_H2=0: HTTP/2 tests skipped")
class TestHttp2(TlsCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not HAVE_H2:
            raise unittest.SkipTest("python h2 package not installed (Debian: python3-h2)")
        cls.dir = cls.cres.tempdir()
        objs = h.backend_objects("alpaca", [cls.alpaca.port]) + h.backend_objects("bandicoot", [cls.bandicoot.port])
        objs += [h.cert_secret("a-tls", cls.cert_a, chain=True), h.cert_secret("w-tls", cls.cert_w)]
        objs.append(h.with_tls(
            h.ingress("main", rules=[rule_to("a.example.com", "alpaca", [("/b", "bandicoot")]),
                                     rule_to("x.w.example.com", "bandicoot")]),
            [(["a.example.com"], "a-tls"), (["*.w.example.com"], "w-tls")]))
        h.write_manifests(cls.dir, objs)
        cls.d = cls.cres.start_ingressd(cls.dir)

    def setUp(self):
        super().setUp()
        self.log_on_failure(self.d)

    def h2_conn(self, sni="a.example.com", window=None):
        ctx = h.tls_client_context(alpn=["h2"])
        c = h.TlsConn(self.d.https_port, sni, timeout=10, context=ctx)
        self.addCleanup(c.close)
        self.assertEqual(c.alpn(), "h2")
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        if window is not None:
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        c.sock.sendall(conn.data_to_send())
        return c, conn

    def exchange(self, c, conn, streams, ack=True, deadline_s=20):
        """Reads until every stream in `streams` ended; returns {stream: (headers dict, body bytes)}."""
        out = {s: [{}, bytearray(), False] for s in streams}
        deadline = time.monotonic() + deadline_s
        while not all(v[2] for v in out.values()):
            if time.monotonic() > deadline:
                self.fail("h2 streams did not finish: %r" % {s: (v[0], len(v[1]), v[2]) for s, v in out.items()})
            data = c.sock.recv(65536)
            if not data:
                self.fail("connection closed")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    out[ev.stream_id][0] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    out[ev.stream_id][1] += ev.data
                    if ack:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    out[ev.stream_id][2] = True
                elif isinstance(ev, h2.events.StreamReset):
                    self.fail("stream %d reset: %r" % (ev.stream_id, ev))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.fail("GOAWAY: %r" % ev)
            pending = conn.data_to_send()
            if pending:
                c.sock.sendall(pending)
        return {s: (v[0], bytes(v[1])) for s, v in out.items()}

    def test_multiplexed_streams_route_by_authority_and_path(self):
        c, conn = self.h2_conn()
        reqs = {1: ("a.example.com", "/"), 3: ("a.example.com", "/b/x"), 5: ("x.w.example.com", "/"),
                7: ("a.example.com", "/?delay_ms=200")}
        for sid, (host, path) in reqs.items():
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path)],
                              end_stream=True)
        c.sock.sendall(conn.data_to_send())
        got = self.exchange(c, conn, list(reqs))
        want = {1: "alpaca", 3: "bandicoot", 5: "bandicoot", 7: "alpaca"}
        for sid, (hdrs, body) in got.items():
            self.assertEqual(hdrs.get(":status"), "200", (sid, hdrs))
            j = json.loads(body)
            self.assertEqual(j["service"], want[sid], (sid, j))
            self.assertEqual(j["headers"]["X-Forwarded-Proto"], ["https"])
            self.assertEqual(j["path"], reqs[sid][1])

    def test_post_body(self):
        c, conn = self.h2_conn()
        body = os.urandom(200000)  # more than the default 65,535-byte window: needs the server's WINDOW_UPDATEs
        conn.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "a.example.com"),
                              (":path", "/upload"), ("content-length", str(len(body)))])
        c.sock.sendall(conn.data_to_send())
        sent = 0
        deadline = time.monotonic() + 20
        while sent < len(body):
            self.assertLess(time.monotonic(), deadline, "the server never opened the window")
            n = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size, len(body) - sent)
            if n > 0:
                conn.send_data(1, body[sent:sent + n], end_stream=sent + n == len(body))
                sent += n
                c.sock.sendall(conn.data_to_send())
                continue
            data = c.sock.recv(65536)
            self.assertTrue(data, "connection closed")
            for ev in conn.receive_data(data):
                self.assertNotIsInstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated))
            c.sock.sendall(conn.data_to_send())
        got = self.exchange(c, conn, [1])
        hdrs, resp = got[1]
        self.assertEqual(hdrs.get(":status"), "200")
        j = json.loads(resp)
        self.assertEqual(j["method"], "POST")
        self.assertEqual(j["body_size"], len(body))

    def test_large_response_respects_flow_control(self):
        c, conn = self.h2_conn(window=16384)
        conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "a.example.com"),
                              (":path", "/?size=%d" % MiB)], end_stream=True)
        conn.send_headers(3, [(":method", "GET"), (":scheme", "https"), (":authority", "a.example.com"),
                              (":path", "/b/small")], end_stream=True)
        c.sock.sendall(conn.data_to_send())
        got = self.exchange(c, conn, [1, 3])  # h2 raises FlowControlError if the server overruns a window
        self.assertEqual(got[1][0].get(":status"), "200")
        self.assertEqual(len(got[1][1]), MiB)
        self.assertEqual(json.loads(got[3][1])["service"], "bandicoot")

    def test_curl_http2(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2", "--cacert", self.root.crt, "--resolve",
                            "a.example.com:%d:127.0.0.1" % self.d.https_port, "-o", "/dev/null", "-w",
                            "%{http_version} %{http_code}", "https://a.example.com:%d/" % self.d.https_port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(), "2 200")


if __name__ == "__main__":
    unittest.main()
