"""Operator-mode test helpers: the fixture API server as a process, a small
HTTPS client for it, kubeconfig files, and ingressd started against it.

Standard library only; every process is owned by a harness.Resources object
and stopped by pid.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

try:
    from . import harness as h
except ImportError:
    import harness as h

FIXTURE = os.path.join(h.HERE, "kube_fixture.py")
KUBECTL = shutil.which("kubectl")

# kind -> (api prefix, plural, namespaced)
PATHS = {
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    "IngressClass": ("/apis/networking.k8s.io/v1", "ingressclasses", False),
    "Service": ("/api/v1", "services", True),
    "Secret": ("/api/v1", "secrets", True),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "Event": ("/api/v1", "events", True),
    "Namespace": ("/api/v1", "namespaces", False),
    "GatewayClass": ("/apis/gateway.networking.k8s.io/v1", "gatewayclasses", False),
    "Gateway": ("/apis/gateway.networking.k8s.io/v1", "gateways", True),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes", True),
    "GRPCRoute": ("/apis/gateway.networking.k8s.io/v1", "grpcroutes", True),
    "ReferenceGrant": ("/apis/gateway.networking.k8s.io/v1beta1", "referencegrants", True),
}


def object_path(kind, namespace=None, name=None):
    prefix, plural, namespaced = PATHS[kind]
    p = prefix
    if namespaced and namespace:
        p += "/namespaces/" + namespace
    p += "/" + plural
    if name:
        p += "/" + name
    return p


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body[:300]))
        self.status = status
        self.body = body


class KubeApi:
    """A client for the fixture (or any API server) with one bearer token."""

    def __init__(self, port, ca, token):
        self.port, self.token = port, token
        self.ctx = ssl.create_default_context(cafile=ca)

    def request(self, method, path, body=None, content_type="application/json", timeout=10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)
        try:
            headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read().decode()
            if r.status >= 300:
                raise ApiError(r.status, raw)
            return json.loads(raw) if raw.strip() else None
        finally:
            conn.close()

    def create(self, obj):
        ns = obj["metadata"].get("namespace", "default")
        return self.request("POST", object_path(obj["kind"], ns), obj)

    def get(self, kind, name, namespace="default"):
        return self.request("GET", object_path(kind, namespace, name))

    def list(self, kind, namespace=None):
        return self.request("GET", object_path(kind, namespace))["items"]

    def patch(self, kind, name, patch, namespace="default", status=False):
        p = object_path(kind, namespace, name) + ("/status" if status else "")
        return self.request("PATCH", p, patch, "application/merge-patch+json")

    def delete(self, kind, name, namespace="default"):
        return self.request("DELETE", object_path(kind, namespace, name))

    def control(self, what, method="POST", body=None):
        return self.request(method, "/_test/" + what, body)

    def load(self, objects):
        return self.control("load", body={"apiVersion": "v1", "kind": "List", "items": list(objects)})

    def requests(self):
        return self.control("requests", "GET")["requests"]

    def write_requests(self):
        return [r for r in self.requests() if r["method"] != "GET"]


class Fixture(h.Proc):
    def __init__(self, popen, log_path, port, certdir, tokens):
        super().__init__(popen, log_path, "kube-fixture")
        self.port, self.certdir, self.tokens = port, certdir, list(tokens)
        self.ca = os.path.join(certdir, "ca.crt")

    @property
    def server(self):
        return "https://127.0.0.1:%d" % self.port

    def api(self, token=None):
        return KubeApi(self.port, self.ca, token or self.tokens[0])


def make_certs(res):
    sys.path.insert(0, h.HERE)
    import kube_fixture  # noqa: E402
    d = res.tempdir(prefix="ingressd-kube-certs-")
    kube_fixture.make_certs(d)
    return d


def start_fixture(res, certdir, tokens=("test-token",), port=None, extra=()):
    port = port or h.free_port()
    args = [sys.executable, FIXTURE, "--port", str(port), "--certdir", certdir] + \
        sum((["--token", t] for t in tokens), []) + list(extra)
    popen, log_path = res.spawn(args, "kube-fixture-%d" % port)
    f = Fixture(popen, log_path, port, certdir, tokens)
    res.procs.append(f)
    h.wait_port(port, timeout=10, proc=popen)
    return f


def write_kubeconfig(directory, server, ca, token=None, token_file=None, name="kubeconfig", exec_=None,
                     ca_inline=False, namespace=None, client_cert=None, client_key=None, insecure=False):
    """A kubeconfig with one context; the credential is a token, a token file, an exec plugin or a client
    certificate (client_cert/client_key: paths, embedded as -data)."""
    import base64
    user = {}
    if client_cert:
        with open(client_cert, "rb") as f:
            user["client-certificate-data"] = base64.b64encode(f.read()).decode()
        with open(client_key, "rb") as f:
            user["client-key-data"] = base64.b64encode(f.read()).decode()
    if token:
        user["token"] = token
    if token_file:
        user["tokenFile"] = token_file
    if exec_:
        user["exec"] = exec_
    cluster = {"server": server}
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif ca_inline:
        with open(ca, "rb") as f:
            cluster["certificate-authority-data"] = base64.b64encode(f.read()).decode()
    else:
        cluster["certificate-authority"] = ca
    ctx = {"cluster": "fixture", "user": "tester"}
    if namespace:
        ctx["namespace"] = namespace
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": "fixture",
        "clusters": [{"name": "fixture", "cluster": cluster}],
        "users": [{"name": "tester", "user": user}],
        "contexts": [{"name": "fixture", "context": ctx}],
    }
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)  # JSON is YAML
    return path


def start_ingressd_kube(res, kubeconfig, extra_args=(), wait_ready=True, timeout=10):
    """ingressd serve --kubeconfig ...; waits for the admin port, and for /readyz when asked."""
    return res.launch_ingressd(["--kubeconfig", kubeconfig], kubeconfig, ["--access-log", "off"] + list(extra_args),
                               wait_for=("admin",), ready=wait_ready, timeout=timeout, tag="ingressd-kube")


def kubectl(fixture, args, token=None, timeout=30):
    """Runs the real kubectl against the fixture; returns (rc, stdout, stderr)."""
    cmd = [KUBECTL, "--server", fixture.server, "--certificate-authority", fixture.ca,
           "--token", token or fixture.tokens[0]] + list(args)
    env = dict(os.environ, KUBECONFIG="/dev/null", HOME=os.environ.get("HOME", "/tmp"))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def metric(ingressd, name, labels=None):
    """The value of one sample in /metrics (None when absent)."""
    text = ingressd.admin("/metrics").body.decode()
    want = name
    if labels:
        want += "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def served_by(ingressd, host, path="/"):
    """The service that answered, or the status code as an int when it was not 200."""
    r = ingressd.get(path, host=host)
    if r.status != 200:
        return r.status
    return r.json()["service"]


def wait_served(ingressd, host, want, path="/", timeout=5.0):
    last = []

    def check():
        last[:] = [served_by(ingressd, host, path)]
        return last[0] == want
    try:
        return h.wait_until(check, timeout=timeout, what="%s%s served by %r" % (host, path, want))
    except AssertionError as e:
        raise AssertionError("%s (last: %r)" % (e, last[0] if last else None)) from None
