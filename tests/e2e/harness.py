"""End-to-end test harness for ingressd.

Standard library only. Everything runs on 127.0.0.1. Every process the tests
start is registered with a Resources object and stopped by pid (terminate,
then kill after a timeout) when the test or the test class ends, whether it
passed or not.

The binary comes from $INGRESSD_BIN (default /work/main/build/ingressd).
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("INGRESSD_BIN", "/work/main/build/ingressd")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(REPO, "examples")
SEED_EXAMPLES = os.path.normpath(os.path.join(REPO, "..", "shared", "seed", "examples"))

DEFAULT_TIMEOUT = 5.0
CONTROLLER_NAME = "ingressd.dev/ingress-controller"


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def listen_loopback(backlog=64, rcvbuf=None, accept_timeout=0.2):
    """A listening TCP socket on 127.0.0.1 (a free port: .getsockname()[1]) for test servers: accept() times
    out after accept_timeout so their loops can check a stop flag; rcvbuf shrinks the receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.settimeout(accept_timeout)
    return sock


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Polls predicate() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" %
                                 (timeout, what, (": last error %r" % last_exc) if last_exc else ""))
        time.sleep(interval)


def wait_port(port, timeout=DEFAULT_TIMEOUT, proc=None):
    """Waits until 127.0.0.1:port accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process %d exited with %s before port %d opened" % (proc.pid, proc.returncode, port))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            s.close()
            return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError("port %d did not open within %.1fs" % (port, timeout))
        time.sleep(0.02)


def stop_process(proc, timeout=3.0):
    """Stops one process by pid: SIGTERM, then SIGKILL after `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def run_cli(args, timeout=10):
    """Runs `ingressd ARGS...` to completion; returns (rc, stdout, stderr)."""
    p = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------

def service(name, namespace="default", port=8080, target_port=8080, port_name=None):
    p = {"port": port, "targetPort": target_port}
    if port_name:
        p["name"] = port_name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [p]},
    }


def endpoint_slice(service_name, port, namespace="default", ready=True, name=None, addresses=("127.0.0.1",),
                   port_name=None):
    """One EndpointSlice for `service_name` whose endpoints listen on `port`."""
    p = {"port": port}
    if port_name:
        p["name"] = port_name
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or "%s-%d" % (service_name, port),
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [p],
        "endpoints": [{"addresses": list(addresses), "conditions": {"ready": ready}}],
    }


def backend_objects(name, ports, namespace="default", ready=True, port_name=None):
    """A Service plus one EndpointSlice per echo port."""
    objs = [service(name, namespace=namespace, port_name=port_name)]
    for p in ports:
        objs.append(endpoint_slice(name, p, namespace=namespace, ready=ready, port_name=port_name))
    return objs


def svc_backend(name, port=8080):
    if isinstance(port, str):
        return {"service": {"name": name, "port": {"name": port}}}
    return {"service": {"name": name, "port": {"number": port}}}


def http_path(path, service_name, path_type="Prefix", port=8080):
    return {"path": path, "pathType": path_type, "backend": svc_backend(service_name, port)}


def rule(host, paths):
    r = {"http": {"paths": list(paths)}}
    if host is not None:
        r["host"] = host
    return r


def ingress(name, namespace="default", default_backend=None, rules=None, class_name=None, annotations=None):
    spec = {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default_backend is not None:
        spec["defaultBackend"] = svc_backend(default_backend) if isinstance(default_backend, str) else default_backend
    if rules:
        spec["rules"] = list(rules)
    meta = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def ingress_class(name, controller=CONTROLLER_NAME, annotations=None, default=False):
    """An IngressClass; default=True adds ingressclass.kubernetes.io/is-default-class: "true"."""
    meta = {"name": name}
    if annotations or default:
        meta["annotations"] = dict(annotations or {})
        if default:
            meta["annotations"]["ingressclass.kubernetes.io/is-default-class"] = "true"
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta,
        "spec": {"controller": controller},
    }


GATEWAY_V1 = "gateway.networking.k8s.io/v1"


def gateway_class(name, controller=CONTROLLER_NAME):
    return {"apiVersion": GATEWAY_V1, "kind": "GatewayClass", "metadata": {"name": name},
            "spec": {"controllerName": controller}}


def gateway(name, class_name, namespace="default", listeners=None):
    """A Gateway; by default one HTTP listener on port 80 named "http" (routes of its own namespace)."""
    return {"apiVersion": GATEWAY_V1, "kind": "Gateway", "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name,
                     "listeners": listeners or [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def http_route(name, parents, hostnames, service, namespace="default", port=8080, path="/"):
    """An HTTPRoute with one rule: PathPrefix `path` to Service `service`. parents: Gateway names (or parentRef
    dicts)."""
    refs = [{"name": p} if isinstance(p, str) else p for p in parents]
    return {"apiVersion": GATEWAY_V1, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": refs, "hostnames": list(hostnames),
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                                "backendRefs": [{"name": service, "port": port}]}]}}


def write_file(path, text):
    """Rewrites a file in place (open, truncate, write, close), like an editor without a swap rename."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_manifests(directory, objects, filename="objects.yaml"):
    """Writes objects as a multi-document YAML file (each document in JSON form, which is YAML)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    if filename.endswith(".json"):
        if len(objects) == 1:
            text = json.dumps(objects[0], indent=2) + "\n"
        else:
            text = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2) + "\n"
    else:
        text = "".join("---\n" + json.dumps(o, indent=2) + "\n" for o in objects)
    write_file(path, text)
    return path


# --------------------------------------------------------------------------
# raw HTTP/1.x client
# --------------------------------------------------------------------------

class Headers:
    """An ordered list of (name, value) with case-insensitive lookup."""

    def __init__(self, items=None):
        self.items = list(items or [])

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self.items:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.items if k.lower() == n]

    def __contains__(self, name):
        return self.get(name) is not None

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __repr__(self):
        return "Headers(%r)" % (self.items,)


class Response:
    def __init__(self, version, status, reason, headers, body, interim=None, chunked=False):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.interim = interim or []  # [(status, Headers)] of 1xx responses before this one
        self.chunked = chunked

    def __iter__(self):  # (status, headers, body) = response
        return iter((self.status, self.headers, self.body))

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Response(%s %d %s, %r, body=%r)" % (self.version, self.status, self.reason, self.headers,
                                                    self.body[:200])


class ConnectionClosed(Exception):
    pass


class RawConn:
    """A client connection to 127.0.0.1:port speaking HTTP/1.x by hand."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("connection closed by peer")
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by peer")
        self.buf += chunk

    def read_line(self):
        for _ in range(100000):
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) > 1 << 20:
                raise AssertionError("line too long")
            self._fill()
        raise AssertionError("read_line did not finish")

    def read_exact(self, n):
        for _ in range(1000000):
            if len(self.buf) >= n:
                out, self.buf = self.buf[:n], self.buf[n:]
                return out
            self._fill()
        raise AssertionError("read_exact did not finish")

    def read_until_close(self):
        for _ in range(1000000):
            try:
                self._fill()
            except ConnectionClosed:
                out, self.buf = self.buf, b""
                return out
        raise AssertionError("read_until_close did not finish")

    def read_head(self):
        """Reads a status line and header section; returns (version, status, reason, Headers)."""
        line = self.read_line()
        parts = line.rstrip(b"\r\n").decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("bad status line %r" % line)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        items = []
        for _ in range(1000):
            h = self.read_line()
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode("latin-1").partition(":")
            items.append((k, v.strip()))
        else:
            raise AssertionError("too many header lines")
        return version, status, reason, Headers(items)

    def read_response(self, method="GET", allow_interim=True):
        """Reads one final response (collecting 1xx interim responses before it)."""
        interim = []
        for _ in range(10):
            version, status, reason, headers = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append((status, headers))
                if not allow_interim:
                    return Response(version, status, reason, headers, b"", interim)
                continue
            break
        else:
            raise AssertionError("too many interim responses")
        chunked = False
        if method == "HEAD" or status in (101, 204, 304):
            body = b""
        elif "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            chunked = True
            body = self._read_chunked()
        elif headers.get("Content-Length") is not None:
            body = self.read_exact(int(headers.get("Content-Length")))
        else:
            body = self.read_until_close()
        return Response(version, status, reason, headers, body, interim, chunked)

    def _read_chunked(self):
        out = []
        for _ in range(1000000):
            size_line = self.read_line().strip()
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                for _ in range(100):  # trailers
                    t = self.read_line()
                    if t in (b"\r\n", b"\n"):
                        return b"".join(out)
                raise AssertionError("too many trailer lines")
            out.append(self.read_exact(size))
            crlf = self.read_exact(2)
            if crlf != b"\r\n":
                raise AssertionError("chunk not followed by CRLF: %r" % crlf)
        raise AssertionError("too many chunks")

    def is_closed(self, timeout=2.0):
        """True when the peer closes the connection (EOF or reset) within timeout, with nothing more sent."""
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            self.eof = True
            return True
        self.buf += chunk
        return False


def build_request(method, path, host=None, headers=None, body=None, version="HTTP/1.1"):
    """Builds request bytes. headers: dict or list of pairs. body: bytes/str or None."""
    lines = ["%s %s %s" % (method, path, version)]
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    lines += ["%s: %s" % (k, v) for k, v in hdrs]
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def http_request(port, method="GET", path="/", host="localhost", headers=None, body=None, version="HTTP/1.1",
                 timeout=DEFAULT_TIMEOUT):
    """One request on a new connection; returns a Response, which unpacks as (status, headers, body)."""
    with RawConn(port, timeout=timeout) as c:
        c.send(build_request(method, path, host, headers, body, version))
        return c.read_response(method)


def admin_get(port, path, timeout=DEFAULT_TIMEOUT):
    return http_request(port, "GET", path, host="127.0.0.1", timeout=timeout)


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

class Proc:
    def __init__(self, popen, log_path, name):
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.name = name

    def log(self):
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        stop_process(self.popen)


class Echo(Proc):
    def __init__(self, popen, log_path, name, port, namespace):
        super().__init__(popen, log_path, name)
        self.port = port
        self.namespace = namespace

    @property
    def pod(self):
        return "%s-%d" % (self.name, self.port)


class Ingressd(Proc):
    def __init__(self, popen, log_path, manifests, http_port, https_port, admin_port):
        super().__init__(popen, log_path, "ingressd")
        self.manifests = manifests
        self.http_port = http_port
        self.https_port = https_port
        self.admin_port = admin_port

    def request(self, method="GET", path="/", host="localhost", headers=None, body=None, version="HTTP/1.1",
                timeout=DEFAULT_TIMEOUT):
        return http_request(self.http_port, method, path, host, headers, body, version, timeout)

    def get(self, path="/", host="localhost", **kw):
        return self.request("GET", path, host, **kw)

    def conn(self, timeout=DEFAULT_TIMEOUT):
        return RawConn(self.http_port, timeout=timeout)

    def admin(self, path):
        return admin_get(self.admin_port, path)

    def config(self):
        r = self.admin("/config")
        if r.status != 200:
            raise AssertionError("/config answered %d" % r.status)
        return r.json()

    def reloads(self):
        return self.config()["reloads"]

    def wait_reload(self, after, timeout=3.0):
        """Waits until /config reports more than `after` reloads; returns the /config JSON."""
        return wait_until(lambda: (lambda c: c if c["reloads"] > after else None)(self.config()),
                          timeout=timeout, what="a reload after #%d" % after)

    def sighup(self):
        os.kill(self.pid, signal.SIGHUP)


class Resources:
    """Owns processes and temp dirs; close() stops and removes them all."""

    def __init__(self):
        self.procs = []
        self.tmpdirs = []

    def tempdir(self, prefix="ingressd-e2e-"):
        td = tempfile.TemporaryDirectory(prefix=prefix)
        self.tmpdirs.append(td)
        return td.name

    def _logfile(self, name):
        d = self.tempdir(prefix="ingressd-e2e-log-")
        return os.path.join(d, name + ".log")

    def spawn(self, args, log_name, env=None):
        """Starts args with stdout and stderr in a log file; env: variables added to the environment."""
        log_path = self._logfile(log_name)
        with open(log_path, "wb") as logf:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     close_fds=True, env=dict(os.environ, **env) if env else None)
        return popen, log_path

    def _lost_port_race(self, proc, log_path):
        """(lost, log tail): lost is True when proc exited because a port free_port() chose was taken meanwhile
        (by a test running in parallel): then the caller tries again with other ports."""
        if proc.poll() is None:
            return False, ""
        try:
            with open(log_path, errors="replace") as f:
                log = f.read()[-2000:]
        except OSError:
            log = ""
        return "Address already in use" in log, log

    def start_echo(self, name, port=None, namespace=None, log_requests=False):
        """`ingressd echo`; log_requests: it logs every request it answers (INGRESSD_ECHO_LOG_REQUESTS=1), as the
        Gateway API suite's echo-basic does, so a test can look for a request in Echo.log()."""
        for attempt in range(3):
            p = port or free_port()
            args = [BIN, "echo", "--name", name, "--port", str(p)]
            if namespace:
                args += ["--namespace", namespace]
            popen, log_path = self.spawn(args, "echo-%s-%d" % (name, p),
                                         env={"INGRESSD_ECHO_LOG_REQUESTS": "1"} if log_requests else None)
            e = Echo(popen, log_path, name, p, namespace or "default")
            self.procs.append(e)
            try:
                wait_port(p, proc=popen)
                return e
            except AssertionError:
                if port or attempt == 2 or not self._lost_port_race(popen, log_path)[0]:
                    raise

    def launch_ingressd(self, source_args, key, extra_args=(), workers=1, https_port=None,
                        wait_for=("http", "admin"), ready=True, timeout=DEFAULT_TIMEOUT, tag="ingressd"):
        """`ingressd serve SOURCE_ARGS` on free loopback ports (https_port: a chosen one, 0 = none), waiting for
        the listeners named in wait_for and then /readyz when `ready`. A port taken by another test between
        free_port() and ingressd's bind (tests run in parallel) is retried with new ports; any other early exit
        fails with ingressd's log. Every way of starting ingressd in the suites goes through here."""
        for attempt in range(3):
            http_port, admin_port = free_port(), free_port()
            tls_port = free_port() if https_port is None else https_port
            args = [BIN, "serve"] + list(source_args) + [
                "--http-port", str(http_port), "--https-port", str(tls_port), "--admin-port", str(admin_port),
                "--bind", "127.0.0.1"]
            if workers:
                args += ["--workers", str(workers)]
            args += list(extra_args or [])
            popen, log_path = self.spawn(args, "%s-%d" % (tag, http_port))
            d = Ingressd(popen, log_path, key, http_port, tls_port, admin_port)
            self.procs.append(d)
            try:
                for port in [{"http": http_port, "admin": admin_port}[w] for w in wait_for]:
                    wait_port(port, proc=popen, timeout=timeout)
                break
            except AssertionError as e:
                lost, log = self._lost_port_race(popen, log_path)
                if lost and attempt < 2:
                    continue
                raise AssertionError("%s; ingressd's log:\n%s" % (e, log)) from None
        if ready:
            wait_until(lambda: d.admin("/readyz").status == 200, timeout=timeout, what="/readyz 200")
        return d

    def start_ingressd(self, manifest_dir, extra_args=None, workers=1, wait_ready=True):
        return self.launch_ingressd(["--manifests", manifest_dir], manifest_dir, extra_args, workers,
                                    wait_for=("http", "admin") if wait_ready else (), ready=wait_ready)

    def close(self):
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        self.procs = []
        for td in reversed(self.tmpdirs):
            try:
                td.cleanup()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        self.tmpdirs = []


class E2ETestCase(unittest.TestCase):
    """Base class: per-test resources (self.res) and per-class resources (cls.cres), both cleaned up always."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("ingressd binary not found at %s (set INGRESSD_BIN)" % BIN)
        cls.cres = Resources()
        cls.addClassCleanup(cls.cres.close)

    def setUp(self):
        super().setUp()
        self.res = Resources()
        self.addCleanup(self.res.close)

    # conveniences for the per-test scope
    def tempdir(self):
        return self.res.tempdir()

    def start_echo(self, name, port=None, namespace=None):
        return self.res.start_echo(name, port, namespace)

    def start_ingressd(self, manifest_dir, extra_args=None, workers=1, wait_ready=True):
        return self.res.start_ingressd(manifest_dir, extra_args, workers, wait_ready)

    # assertions
    def assertServedBy(self, resp, service_name, msg=None):
        self.assertEqual(resp.status, 200, msg or "expected 200 from %s, got %r" % (service_name, resp))
        self.assertEqual(resp.json()["service"], service_name, msg)

    def log_on_failure(self, proc):
        """Prints a process log when the test fails (for diagnosis)."""
        def dump():
            outcome = getattr(self, "_outcome", None)
            failed = False
            if outcome is not None:
                result = getattr(outcome, "result", None)
                errs = list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
                failed = any(t is self for t, _ in errs)
            if failed:
                print("\n----- log of %s (pid %d) -----\n%s" % (proc.name, proc.pid, proc.log()[-4000:]))
        self.addCleanup(dump)


class RequestLoop(threading.Thread):
    """Sends requests until stopped (bounded by max_requests and max_seconds); records results."""

    def __init__(self, port, host, path="/", keep_alive=True, max_requests=5000, max_seconds=10.0):
        super().__init__(daemon=True)
        self.port, self.host, self.path, self.keep_alive = port, host, path, keep_alive
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.stop_event = threading.Event()
        self.results = []  # (monotonic time, status, service or None)
        self.failures = []  # (monotonic time, description)

    def stop(self):
        self.stop_event.set()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        for _ in range(self.max_requests):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                break
            t = time.monotonic()
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=3.0)
                conn.send(build_request("GET", self.path, self.host,
                                        None if self.keep_alive else {"Connection": "close"}))
                r = conn.read_response()
                svc = None
                if r.status == 200:
                    svc = r.json().get("service")
                self.results.append((t, r.status, svc))
                if r.status != 200:
                    self.failures.append((t, "status %d: %r" % (r.status, r.body[:200])))
                if not self.keep_alive or (r.headers.get("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - record any failure
                self.failures.append((t, "%s: %s" % (type(e).__name__, e)))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


# --------------------------------------------------------------------------
# module-level shortcuts (a process started here belongs to `resources`,
# which the caller must close; the TestCase methods above do that for you)
# --------------------------------------------------------------------------

def start_echo(name, port=None, namespace=None, resources=None):
    return resources.start_echo(name, port, namespace)


def start_ingressd(manifest_dir, extra_args=None, workers=1, resources=None, wait_ready=True):
    return resources.start_ingressd(manifest_dir, extra_args, workers, wait_ready)


# --------------------------------------------------------------------------
# TLS: certificates made with the openssl CLI, kubernetes.io/tls Secrets,
# Ingress spec.tls, TLS clients (ssl module and openssl s_client)
# --------------------------------------------------------------------------

import ssl  # noqa: E402 - kept with the TLS helpers

OPENSSL = os.environ.get("OPENSSL", "openssl")


class CertFiles:
    """A certificate and its key on disk (PEM), with its serial as the openssl CLI prints it (upper-case hex)."""

    def __init__(self, name, crt, key, serial, chain=None):
        self.name, self.crt, self.key, self.serial = name, crt, key, serial
        self.chain = chain  # leaf + intermediates file (for a leaf signed by an intermediate)

    def crt_pem(self):
        with open(self.crt, "r", encoding="ascii") as f:
            return f.read()

    def key_pem(self):
        with open(self.key, "r", encoding="ascii") as f:
            return f.read()

    def chain_pem(self):
        with open(self.chain or self.crt, "r", encoding="ascii") as f:
            return f.read()

    def __repr__(self):
        return "CertFiles(%s, serial %s)" % (self.name, self.serial)


def openssl(args, input=None, timeout=20, check=True):
    """Runs the openssl CLI; returns (rc, stdout, stderr) as text."""
    p = subprocess.run([OPENSSL] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("openssl %s failed (%d): %s" % (" ".join(args), p.returncode, err))
    return p.returncode, out, err


class CertFactory:
    """Makes EC P-256 keys and certificates with the openssl CLI in `directory`: roots, intermediates, leaves
    (self-signed or signed by a CA), leaves whose validity is entirely in the past (by `openssl ca -startdate
    -enddate`), each with a chosen serial."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self._next_serial = 0x1000

    def _path(self, name, ext):
        return os.path.join(self.dir, "%s.%s" % (name, ext))

    def _serial(self, serial):
        if serial is None:
            self._next_serial += 1
            serial = self._next_serial
        return serial

    @staticmethod
    def serial_of(crt_path, inform="PEM"):
        _, out, _ = openssl(["x509", "-inform", inform, "-in", crt_path, "-noout", "-serial"])
        return out.strip().split("=", 1)[1].upper()

    def _ext_file(self, name, hosts, ca):
        path = self._path(name, "ext")
        lines = ["[v3]"]
        if ca:
            lines += ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign",
                      "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        else:
            lines += ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                      "extendedKeyUsage=serverAuth", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        if hosts:
            lines.append("subjectAltName=" + ",".join("DNS:" + x for x in hosts))
        with open(path, "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _csr(self, name, cn):
        key, csr = self._path(name, "key"), self._path(name, "csr")
        openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", "/CN=" + cn])
        return key, csr

    def _sign(self, name, csr, signer, hosts, ca, serial, days):
        crt = self._path(name, "crt")
        ext = self._ext_file(name, hosts, ca)
        args = ["x509", "-req", "-in", csr, "-out", crt, "-days", str(days), "-sha256", "-set_serial", str(serial),
                "-extfile", ext, "-extensions", "v3"]
        if signer is None:
            args += ["-signkey", self._path(name, "key")]
        else:
            args += ["-CA", signer.crt, "-CAkey", signer.key]
        openssl(args)
        return crt

    def ca(self, name, signer=None, serial=None, days=365):
        """A root CA (self-signed) or, with signer, an intermediate CA."""
        serial = self._serial(serial)
        key, csr = self._csr(name, "ingressd test " + name)
        crt = self._sign(name, csr, signer, None, True, serial, days)
        return CertFiles(name, crt, key, self.serial_of(crt))

    def leaf(self, name, hosts, signer=None, serial=None, days=30, cn=None):
        """A server certificate for `hosts` (subjectAltName DNS names), self-signed or signed by `signer`.
        When signer is an intermediate, .chain is leaf + intermediate."""
        serial = self._serial(serial)
        key, csr = self._csr(name, cn or (hosts[0] if hosts else name))
        crt = self._sign(name, csr, signer, hosts, False, serial, days)
        chain = None
        if signer is not None:
            chain = self._path(name, "chain.crt")
            with open(crt, "r", encoding="ascii") as a, open(signer.crt, "r", encoding="ascii") as b, \
                    open(chain, "w", encoding="ascii") as out:
                out.write(a.read() + b.read())
        return CertFiles(name, crt, key, self.serial_of(crt), chain)

    def expired_leaf(self, name, hosts, signer, serial=None, start="20200101000000Z", end="20200102000000Z"):
        """A leaf valid only between start and end (in the past), signed by the CA `signer` with `openssl ca`."""
        serial = self._serial(serial)
        key, csr = self._csr(name, hosts[0])
        cadir = self._path(name, "cadb")
        os.makedirs(cadir, exist_ok=True)
        with open(os.path.join(cadir, "index.txt"), "w", encoding="ascii"):
            pass
        with open(os.path.join(cadir, "serial"), "w", encoding="ascii") as f:
            f.write("%X\n" % serial if len("%X" % serial) % 2 == 0 else "0%X\n" % serial)
        cfg = os.path.join(cadir, "ca.cnf")
        with open(cfg, "w", encoding="ascii") as f:
            f.write("[ca]\ndefault_ca = CA_default\n[CA_default]\ndir = %s\ndatabase = $dir/index.txt\n"
                    "new_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\npolicy = policy_any\n"
                    "unique_subject = no\n[policy_any]\ncommonName = supplied\n" % cadir)
        crt = self._path(name, "crt")
        ext = self._ext_file(name, hosts, False)
        openssl(["ca", "-batch", "-config", cfg, "-cert", signer.crt, "-keyfile", signer.key, "-in", csr, "-out", crt,
                 "-startdate", start, "-enddate", end, "-extfile", ext, "-extensions", "v3", "-notext"])
        return CertFiles(name, crt, key, self.serial_of(crt))


def tls_secret(name, crt_pem, key_pem, namespace="default", encoding="stringData", secret_type="kubernetes.io/tls"):
    """A Secret with tls.crt and tls.key, as plain text in stringData or base64 in data."""
    meta = {"name": name, "namespace": namespace}
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": secret_type}
    if encoding == "data":
        import base64
        obj["data"] = {"tls.crt": base64.b64encode(crt_pem.encode("ascii")).decode("ascii"),
                       "tls.key": base64.b64encode(key_pem.encode("ascii")).decode("ascii")}
    else:
        obj["stringData"] = {"tls.crt": crt_pem, "tls.key": key_pem}
    return obj


def cert_secret(name, cert, namespace="default", encoding="stringData", chain=False):
    """tls_secret from CertFiles (chain=True: tls.crt holds leaf + intermediates)."""
    return tls_secret(name, cert.chain_pem() if chain else cert.crt_pem(), cert.key_pem(), namespace, encoding)


def with_tls(ing, entries, created=None):
    """Sets spec.tls of an ingress() dict: entries are (hosts or None, secretName or None); returns it.
    created: a metadata.creationTimestamp (RFC 3339)."""
    tls = []
    for hosts, secret_name in entries:
        e = {}
        if hosts:
            e["hosts"] = list(hosts)
        if secret_name:
            e["secretName"] = secret_name
        tls.append(e)
    ing["spec"]["tls"] = tls
    if created:
        ing["metadata"]["creationTimestamp"] = created
    return ing


def tls_client_context(cafile=None, alpn=None, min_version=None, max_version=None, tickets=True):
    """A client SSLContext. Without cafile no verification (most tests look at which certificate came back)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


class TlsConn(RawConn):
    """RawConn over TLS to 127.0.0.1:port; server_name is the SNI (None: no SNI)."""

    def __init__(self, port, server_name=None, timeout=DEFAULT_TIMEOUT, context=None, session=None):
        ctx = context or tls_client_context()
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            raw.settimeout(timeout)
            self.sock = ctx.wrap_socket(raw, server_hostname=server_name, session=session)
        except BaseException:
            raw.close()
            raise
        self.buf = b""
        self.eof = False

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def peer_serial(self):
        return der_serial(self.peer_der())

    def alpn(self):
        return self.sock.selected_alpn_protocol()

    def version(self):
        return self.sock.version()


def der_serial(der):
    """The serial of a DER certificate, as `openssl x509 -serial` prints it (upper-case hex)."""
    _, out, _ = openssl(["x509", "-inform", "DER", "-noout", "-serial"], input=der)
    return out.strip().split("=", 1)[1].upper()


def der_subject(der):
    _, out, _ = openssl(["x509", "-inform", "DER", "-noout", "-subject"], input=der)
    return out.strip()


def https_request(port, method="GET", path="/", host="localhost", sni=None, headers=None, body=None,
                  timeout=DEFAULT_TIMEOUT, context=None):
    """One request over a new TLS connection (SNI defaults to host); returns a Response with .peer_serial."""
    with TlsConn(port, server_name=host if sni is None else (sni or None), timeout=timeout, context=context) as c:
        c.send(build_request(method, path, host, headers, body))
        r = c.read_response(method)
        r.peer_serial = c.peer_serial()
        return r


def s_client(port, args=(), sni=None, input=b"", timeout=15):
    """Runs `openssl s_client -connect 127.0.0.1:port [-servername sni] ARGS` with `input` on stdin (then EOF);
    returns (rc, stdout + stderr)."""
    cmd = ["s_client", "-connect", "127.0.0.1:%d" % port]
    if sni:
        cmd += ["-servername", sni]
    rc, out, err = openssl(cmd + list(args), input=input, timeout=timeout, check=False)
    return rc, out + err


# --------------------------------------------------------------------------
# HTTP/2 frames by hand (RFC 9113 §4.1: a 9-byte header + payload), for what
# a well-behaved client library will not send: floods, bad sequences, raw
# prefaces. Standard library only; header blocks come from the caller (HPACK).
# --------------------------------------------------------------------------

import struct  # noqa: E402 - kept with the HTTP/2 helpers

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

H2_DATA, H2_HEADERS, H2_PRIORITY, H2_RST_STREAM, H2_SETTINGS, H2_PUSH_PROMISE, H2_PING, H2_GOAWAY, \
    H2_WINDOW_UPDATE, H2_CONTINUATION = range(10)
H2_FRAME_NAMES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
                  6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
H2_FLAG_END_STREAM = 0x1
H2_FLAG_ACK = 0x1
H2_FLAG_END_HEADERS = 0x4
H2_FLAG_PADDED = 0x8
H2_FLAG_PRIORITY = 0x20

H2_NO_ERROR, H2_PROTOCOL_ERROR, H2_INTERNAL_ERROR, H2_FLOW_CONTROL_ERROR, H2_SETTINGS_TIMEOUT, \
    H2_STREAM_CLOSED, H2_FRAME_SIZE_ERROR, H2_REFUSED_STREAM, H2_CANCEL, H2_COMPRESSION_ERROR, H2_CONNECT_ERROR, \
    H2_ENHANCE_YOUR_CALM, H2_INADEQUATE_SECURITY, H2_HTTP_1_1_REQUIRED = range(14)
H2_ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
                  4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
                  9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY",
                  13: "HTTP_1_1_REQUIRED"}

H2_SETTINGS_HEADER_TABLE_SIZE = 0x1
H2_SETTINGS_ENABLE_PUSH = 0x2
H2_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
H2_SETTINGS_INITIAL_WINDOW_SIZE = 0x4
H2_SETTINGS_MAX_FRAME_SIZE = 0x5
H2_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


def h2_frame(ftype, flags, stream_id, payload=b""):
    """One HTTP/2 frame: length (24 bits), type, flags, stream id (31 bits), payload."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xffff, ftype, flags, stream_id & 0x7fffffff) + bytes(payload)


def h2_settings(settings=None, ack=False):
    """A SETTINGS frame from {identifier: value} (or the ACK, which has no payload)."""
    if ack:
        return h2_frame(H2_SETTINGS, H2_FLAG_ACK, 0)
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return h2_frame(H2_SETTINGS, 0, 0, payload)


def h2_rst_stream(stream_id, code=H2_CANCEL):
    return h2_frame(H2_RST_STREAM, 0, stream_id, struct.pack(">I", code))


def h2_window_update(stream_id, increment):
    return h2_frame(H2_WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment & 0x7fffffff))


def h2_goaway(last_stream_id, code=H2_NO_ERROR, debug=b""):
    return h2_frame(H2_GOAWAY, 0, 0, struct.pack(">II", last_stream_id & 0x7fffffff, code) + debug)


class H2Frame:
    def __init__(self, ftype, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = ftype, flags, stream_id, payload

    @property
    def name(self):
        return H2_FRAME_NAMES.get(self.type, "UNKNOWN_%d" % self.type)

    @property
    def error_code(self):
        """RST_STREAM's or GOAWAY's error code."""
        if self.type == H2_RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == H2_GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self):
        """GOAWAY's last stream id."""
        return struct.unpack(">I", self.payload[:4])[0] & 0x7fffffff if self.type == H2_GOAWAY else None

    def settings(self):
        return dict(struct.unpack(">HI", self.payload[i:i + 6]) for i in range(0, len(self.payload) - 5, 6))

    def __repr__(self):
        extra = ""
        if self.type in (H2_RST_STREAM, H2_GOAWAY):
            extra = " %s" % H2_ERROR_NAMES.get(self.error_code, self.error_code)
        if self.type == H2_GOAWAY:
            extra += " last=%d debug=%r" % (self.last_stream_id, self.payload[8:80])
        return "H2Frame(%s flags=0x%x stream=%d len=%d%s)" % (self.name, self.flags, self.stream_id,
                                                               len(self.payload), extra)


def read_h2_frame(conn):
    """Reads one frame from a RawConn (or TlsConn); raises ConnectionClosed at EOF."""
    hdr = conn.read_exact(9)
    n = (hdr[0] << 16) | (hdr[1] << 8) | hdr[2]
    ftype, flags = hdr[3], hdr[4]
    sid = struct.unpack(">I", hdr[5:9])[0] & 0x7fffffff
    return H2Frame(ftype, flags, sid, conn.read_exact(n) if n else b"")


def read_h2_frames_until_close(conn, timeout=DEFAULT_TIMEOUT, max_frames=100000):
    """Every frame until the peer closes (EOF or reset); returns (frames, closed) — closed False on timeout."""
    frames = []
    deadline = time.monotonic() + timeout
    for _ in range(max_frames):
        left = deadline - time.monotonic()
        if left <= 0:
            return frames, False
        conn.sock.settimeout(left)
        try:
            frames.append(read_h2_frame(conn))
        except ConnectionClosed:
            return frames, True
        except (ConnectionResetError, BrokenPipeError):
            return frames, True
        except socket.timeout:
            return frames, False
    return frames, False


def proc_rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid, "r", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def metric_value(metrics_text, name, labels=None):
    """The value of one sample in Prometheus text (labels: the exact {...} text, or None for no labels)."""
    want = name + (labels or "")
    for line in metrics_text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == want:
            return float(value)
    raise AssertionError("metric %s not found" % want)


def h2_available():
    """Whether Python's `h2` (Debian python3-h2) can be imported. A pyenv interpreter does not see Debian's
    dist-packages, where the pure-Python package lives: it is added to sys.path when needed."""
    import importlib
    import sys
    for attempt in range(2):
        try:
            importlib.import_module("h2.connection")
            importlib.import_module("hpack")
            return True
        except ImportError:
            if attempt == 0 and os.path.isdir("/usr/lib/python3/dist-packages"):
                sys.path.append("/usr/lib/python3/dist-packages")
    return False
