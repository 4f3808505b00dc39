"""A fixture Kubernetes API server for ingressd's operator-mode tests.

Python 3 standard library only. It speaks the real protocol, closely enough
for ingressd's client and for the real `kubectl`:

- HTTPS with a test CA made by `openssl` (make_certs), bearer-token auth
  (401 otherwise; the token may be a set, so that a test can tell replicas
  apart, or rotate one);
- discovery: /version, /api, /api/v1, /apis, /apis/GROUP/VERSION;
- GET/LIST with resourceVersion, limit/continue pagination (pages come from
  a snapshot taken at the first page; an expired token answers 410), and
  fieldSelector equality on type / metadata.name / metadata.namespace;
- WATCH (?watch=1) as a chunked stream of JSON lines from a resourceVersion,
  with BOOKMARK events when allowWatchBookmarks=true, ended at timeoutSeconds;
  a resourceVersion older than the compaction point gets an ERROR event with
  code 410 (or, with `gone_as_status`, an HTTP 410);
- POST (generateName too), PUT (409 on a stale resourceVersion), PATCH
  (application/merge-patch+json, 409 on a stale metadata.resourceVersion in
  the patch; application/strategic-merge-patch+json is
  treated as a merge patch, which is the same for the maps and atomic lists
  these tests change), DELETE, and PATCH/PUT of the status subresource
  (writes to the main resource keep the status as it was, and writes to
  /status change only status, as the API server does);
- server-set fields on every object: uid, resourceVersion, generation,
  creationTimestamp, managedFields.

Test controls (same auth), all POST unless said:
  /_test/interleave?path=P             before the next PATCH of path P, apply the
                                      body (a merge patch of the object's status)
                                      as another client's write: a patch with
                                      a resourceVersion precondition gets 409
  /_test/gateway-api?on=1|0[&versions=v1,v1beta1]
                                      install (or remove, with their objects)
                                      the Gateway API CRDs of those versions
  /_test/drop-watches[?mid_event=1]   end every open watch stream (mid_event:
                                      after half of an event line)
  /_test/load                         create the objects of a List body at once
  /_test/compact                      nothing older than now can be watched
                                      or continued (410)
  /_test/block-watches?on=1|0         new watches get 503 while on
  /_test/requests (GET)               the log of requests
  /_test/tokens?set=a,b               the accepted tokens
  /_test/bookmark-interval?s=N
  /_test/expire-continues?n=N         the next N continue tokens are expired (410)

Run: python3 kube_fixture.py --port P --certdir DIR --token T [--token T2]
"""

import argparse
import base64
import copy
import datetime
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

# (group, version, plural) -> (kind, namespaced, has_status)
RESOURCES = {
    ("", "v1", "namespaces"): ("Namespace", False, True),
    ("", "v1", "services"): ("Service", True, True),
    ("", "v1", "secrets"): ("Secret", True, False),
    ("", "v1", "events"): ("Event", True, False),
    ("", "v1", "endpoints"): ("Endpoints", True, False),
    ("", "v1", "configmaps"): ("ConfigMap", True, False),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True, True),
    ("networking.k8s.io", "v1", "ingressclasses"): ("IngressClass", False, False),
    ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", True, False),
    ("coordination.k8s.io", "v1", "leases"): ("Lease", True, False),
    # for `kubectl apply -f deploy/kubernetes/`
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True, False),
    ("apps", "v1", "deployments"): ("Deployment", True, True),
    ("policy", "v1", "poddisruptionbudgets"): ("PodDisruptionBudget", True, True),
    ("rbac.authorization.k8s.io", "v1", "clusterroles"): ("ClusterRole", False, False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"): ("ClusterRoleBinding", False, False),
    ("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True, False),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True, False),
}
# The Gateway API's CRDs (standard channel, as v1.2 serves them), present
# with --gateway-api or after /_test/gateway-api?on=1.
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_RESOURCES = {
    (GATEWAY_GROUP, "v1", "gatewayclasses"): ("GatewayClass", False, True),
    (GATEWAY_GROUP, "v1", "gateways"): ("Gateway", True, True),
    (GATEWAY_GROUP, "v1", "httproutes"): ("HTTPRoute", True, True),
    (GATEWAY_GROUP, "v1", "grpcroutes"): ("GRPCRoute", True, True),
    (GATEWAY_GROUP, "v1beta1", "gatewayclasses"): ("GatewayClass", False, True),
    (GATEWAY_GROUP, "v1beta1", "gateways"): ("Gateway", True, True),
    (GATEWAY_GROUP, "v1beta1", "httproutes"): ("HTTPRoute", True, True),
    (GATEWAY_GROUP, "v1beta1", "referencegrants"): ("ReferenceGrant", True, False),
}
SHORT = {"services": ["svc"], "ingresses": ["ing"], "namespaces": ["ns"], "endpoints": ["ep"],
         "configmaps": ["cm"], "events": ["ev"]}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_certs(directory):
    """A CA and a server certificate for 127.0.0.1/localhost, with openssl. Returns (ca, cert, key) paths."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca_crt = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    key, csr, crt = (os.path.join(directory, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(directory, "ext.cnf")
    run = lambda args: subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      timeout=30)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
         "-days", "2", "-subj", "/CN=ingressd-test-ca"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
         "/CN=kube-apiserver"])
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
         "-days", "2", "-extfile", ext])
    # A client certificate (CN = the user name), for kubeconfigs that
    # authenticate with client-certificate(-data) and client-key(-data).
    ckey, ccsr, ccrt = (os.path.join(directory, n) for n in ("client.key", "client.csr", "client.crt"))
    cext = os.path.join(directory, "client-ext.cnf")
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", ckey, "-out", ccsr, "-subj",
         "/CN=ingressd-client"])
    with open(cext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    run(["openssl", "x509", "-req", "-in", ccsr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", ccrt,
         "-days", "2", "-extfile", cext])
    return ca_crt, crt, key


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$"):  # strategic-merge directives: not modelled
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


def selector_matches(obj, selector):
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if field_value(obj, k.strip()) == v.strip():
                return False
        else:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if field_value(obj, k.strip()) != v.strip():
                return False
    return True


class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 100
        self.compacted = 0
        self.objects = {}  # (g, v, plural, ns, name) -> obj
        self.history = []  # (rv, type, (g, v, plural), ns, obj)
        self.continues = {}  # token -> (rv, [items])
        self.requests = []
        self.drop_generation = 0
        self.drop_mid_event = False
        self.block_watches = False
        self.bookmark_interval = 1.0
        self.expire_continues = 0  # the next N continue requests get 410
        self.interleave = {}  # path -> a status merge patch applied just before the next PATCH of that path

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, typ, res, ns, obj):
        self.history.append((int(obj["metadata"]["resourceVersion"]), typ, res, ns, copy.deepcopy(obj)))
        if len(self.history) > 100000:
            del self.history[:50000]
        self.lock.notify_all()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-fixture/1"

    def log_message(self, fmt, *args):  # quiet; the request log is in the store
        if os.environ.get("KUBE_FIXTURE_VERBOSE"):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def setup(self):
        super().setup()
        # Replies are written as head then body: without this, Nagle's
        # algorithm and the client's delayed ACK add 40 ms to each.
        import socket
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def store(self):
        return self.server.store

    # ---------------------------------------------------------------- replies
    def reply(self, code, obj, content_type="application/json"):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, code, reason, message, details=None):
        self.reply(code, status_obj(code, reason, message, details))

    def body_json(self):
        raw = self.raw_body
        if not raw:
            return None
        return json.loads(raw.decode())

    def auth_ok(self):
        h = self.headers.get("Authorization") or ""
        tok = h[len("Bearer "):] if h.startswith("Bearer ") else None
        self.token = tok
        if tok in self.server.tokens:
            return True
        # Or a client certificate signed by the test CA: the user is its CN.
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        if tok is None and cert:
            cn = dict(x[0] for x in cert.get("subject", ())).get("commonName")
            if cn and ("cert:" + cn) in self.server.tokens:
                self.token = "cert:" + cn
                return True
        self.fail(401, "Unauthorized", "Unauthorized")
        return False

    # --------------------------------------------------------------- routing
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        # Read the body whatever the method (kubectl sends DELETE with
        # DeleteOptions), so that the next request on the connection is framed.
        n = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(n) if n else b""
        try:
            if not self.auth_ok():
                return
            u = urllib.parse.urlsplit(self.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            parts = [p for p in u.path.split("/") if p]
            if parts and parts[0] == "_test":
                return self.control(method, parts[1:], q)
            with self.store.lock:
                self.store.requests.append({"method": method, "path": u.path, "token": self.token,
                                            "watch": q.get("watch") in ("1", "true"),
                                            "contentType": self.headers.get("Content-Type"),
                                            "time": time.time()})
            if u.path == "/version":
                return self.reply(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fixture",
                                        "platform": "linux/amd64"})
            if u.path == "/api":
                return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": "127.0.0.1"}]})
            if u.path == "/apis":
                return self.reply(200, self.group_list())
            if parts[:1] == ["api"] and len(parts) == 2:
                return self.reply(200, self.resource_list("", parts[1]))
            if parts[:1] == ["apis"] and len(parts) == 2:
                g = parts[1]
                for grp in self.group_list()["groups"]:
                    if grp["name"] == g:
                        return self.reply(200, grp)
                return self.fail(404, "NotFound", "the server could not find the requested resource")
            if parts[:1] == ["apis"] and len(parts) == 3:
                rl = self.resource_list(parts[1], parts[2])
                if not rl["resources"]:
                    return self.fail(404, "NotFound", "the server could not find the requested resource")
                return self.reply(200, rl)
            return self.resource(method, parts, q)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            try:
                self.fail(500, "InternalError", "fixture error: %r" % (e,))
            except OSError:
                pass

    def group_list(self):
        groups = {}
        for (g, v, _), _info in RESOURCES.items():
            if g:
                groups.setdefault(g, set()).add(v)
        out = []
        for g in sorted(groups):
            vs = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in sorted(groups[g])]
            out.append({"name": g, "versions": vs, "preferredVersion": vs[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    def resource_list(self, group, version):
        res = []
        for (g, v, plural), (kind, namespaced, has_status) in sorted(RESOURCES.items()):
            if g != group or v != version:
                continue
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            res.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                        "verbs": verbs, "shortNames": SHORT.get(plural, [])})
            if has_status:
                res.append({"name": plural + "/status", "singularName": "", "namespaced": namespaced,
                            "kind": kind, "verbs": ["get", "patch", "update"]})
        gv = "%s/%s" % (group, version) if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}

    # ---------------------------------------------------------------- controls
    def control(self, method, parts, q):
        st = self.store
        name = parts[0] if parts else ""
        with st.lock:
            if name == "drop-watches":
                st.drop_mid_event = q.get("mid_event") == "1"
                st.drop_generation += 1
                st.lock.notify_all()
            elif name == "load":
                # Bulk creation (a List body), for tests that need many
                # objects in place before ingressd starts.
                for obj in (self.body_json() or {}).get("items", []):
                    g, _, v = obj["apiVersion"].rpartition("/")
                    res = next(r for r, info in RESOURCES.items() if r[0] == g and r[1] == v and info[0] == obj["kind"])
                    obj = copy.deepcopy(obj)
                    m = obj["metadata"]
                    ns = (m.get("namespace") or "default") if RESOURCES[res][1] else ""
                    if ns:
                        m["namespace"] = ns
                    m.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1,
                             resourceVersion=str(st.next_rv()))
                    st.objects[res + (ns, m["name"])] = obj
                    st.record("ADDED", res, ns, obj)
            elif name == "interleave":
                st.interleave[q["path"]] = self.body_json() or {}
            elif name == "gateway-api":
                versions = q.get("versions", "v1,v1beta1").split(",")
                chosen = {r: info for r, info in GATEWAY_RESOURCES.items() if r[1] in versions}
                if q.get("on", "1") == "1":
                    RESOURCES.update(chosen)
                else:
                    for r in list(RESOURCES):
                        if r[0] == GATEWAY_GROUP:
                            del RESOURCES[r]
                    for key in [key for key in st.objects if key[0] == GATEWAY_GROUP]:
                        del st.objects[key]
                    st.lock.notify_all()  # the watches of a CRD that goes away end (watch())
            elif name == "compact":
                st.compacted = st.rv
                st.continues.clear()
            elif name == "block-watches":
                st.block_watches = q.get("on", "1") == "1"
            elif name == "requests":
                return self.reply(200, {"requests": list(st.requests)})
            elif name == "tokens":
                self.server.tokens = set(t for t in q.get("set", "").split(",") if t)
            elif name == "expire-continues":
                st.expire_continues = int(q.get("n", "1"))
            elif name == "bookmark-interval":
                st.bookmark_interval = float(q.get("s", "1"))
            elif name == "state":
                return self.reply(200, {"rv": st.rv, "compacted": st.compacted, "objects": len(st.objects)})
            else:
                return self.fail(404, "NotFound", "no such control")
        return self.reply(200, {"ok": True})

    # --------------------------------------------------------------- resources
    def parse_resource_path(self, parts):
        """-> (group, version, plural, namespace, name, subresource) or None."""
        if parts[:1] == ["api"] and len(parts) >= 3:
            g, v, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            g, v, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces" and (len(rest) > 2 or False):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (g, v, plural) not in RESOURCES:
            return None
        return g, v, plural, ns, name, sub

    def resource(self, method, parts, q):
        p = self.parse_resource_path(parts)
        if p is None:
            return self.fail(404, "NotFound", "the server could not find the requested resource")
        g, v, plural, ns, name, sub = p
        kind, namespaced, has_status = RESOURCES[(g, v, plural)]
        if not namespaced:
            ns = None
        res = (g, v, plural)
        api_version = "%s/%s" % (g, v) if g else v
        if name is None:
            if method == "GET":
                if q.get("watch") in ("1", "true"):
                    return self.watch(res, kind, api_version, ns, q)
                return self.list(res, kind, api_version, ns, q)
            if method == "POST":
                return self.create(res, kind, api_version, ns, q)
            return self.fail(405, "MethodNotAllowed", "method not allowed")
        if sub not in (None, "status") or (sub == "status" and not has_status):
            return self.fail(404, "NotFound", "no such subresource")
        key = (g, v, plural, ns or "", name)
        st = self.store
        with st.lock:
            cur = st.objects.get(key)
            if method == "GET":
                if cur is None:
                    return self.fail(404, "NotFound", '%s "%s" not found' % (plural, name),
                                     {"name": name, "kind": plural})
                return self.reply(200, cur)
            if method == "DELETE":
                if cur is None:
                    return self.fail(404, "NotFound", '%s "%s" not found' % (plural, name),
                                     {"name": name, "kind": plural})
                del st.objects[key]
                gone = copy.deepcopy(cur)
                gone["metadata"]["resourceVersion"] = str(st.next_rv())
                st.record("DELETED", res, ns or "", gone)
                return self.reply(200, gone)
            if cur is None:
                return self.fail(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural})
            body = self.body_json() or {}
            if method == "PUT":
                want_rv = (body.get("metadata") or {}).get("resourceVersion")
                if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                    return self.fail(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been '
                                     'modified; please apply your changes to the latest version and try again'
                                     % (plural, name))
                new = body
            elif method == "PATCH":
                between = st.interleave.pop(urllib.parse.urlsplit(self.path).path, None)
                if between is not None:  # another client's status write comes first
                    cur = copy.deepcopy(cur)
                    cur["status"] = merge_patch(cur.get("status"), between)
                    cur["metadata"]["resourceVersion"] = str(st.next_rv())
                    st.objects[key] = cur
                    st.record("MODIFIED", res, ns or "", cur)
                # A resourceVersion in the patch is a precondition, as the API server treats it.
                want_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
                if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                    return self.fail(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been '
                                     'modified; please apply your changes to the latest version and try again'
                                     % (plural, name))
                new = merge_patch(cur, body)
            else:
                return self.fail(405, "MethodNotAllowed", "method not allowed")
            new = copy.deepcopy(new)
            new["apiVersion"], new["kind"] = api_version, kind
            meta = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "name", "namespace"):
                if k in cur["metadata"]:
                    meta[k] = cur["metadata"][k]
            if sub == "status":
                keep = copy.deepcopy(cur)
                keep["status"] = new.get("status")
                keep["metadata"] = cur["metadata"] if method == "PATCH" else keep["metadata"]
                new = keep
            elif has_status:
                if "status" in cur:
                    new["status"] = cur["status"]
                else:
                    new.pop("status", None)
            if new == cur:
                return self.reply(200, cur)  # no-op writes do not bump resourceVersion
            new = copy.deepcopy(new)
            new["metadata"]["resourceVersion"] = str(st.next_rv())
            if sub is None and new.get("spec") != cur.get("spec"):
                new["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
            st.objects[key] = new
            st.record("MODIFIED", res, ns or "", new)
            return self.reply(200, new)

    def create(self, res, kind, api_version, ns, q):
        body = self.body_json()
        if not isinstance(body, dict):
            return self.fail(400, "BadRequest", "body is not a JSON object")
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            return self.fail(422, "Invalid", "metadata.name: Required value")
        if ns is None and RESOURCES[res][1]:
            ns = meta.get("namespace") or "default"
        if meta.get("namespace") and ns and meta["namespace"] != ns:
            return self.fail(400, "BadRequest", "the namespace of the object does not match the namespace of the URL")
        st = self.store
        with st.lock:
            key = res + (ns or "", name)
            if key in st.objects:
                return self.fail(409, "AlreadyExists", '%s "%s" already exists' % (res[2], name),
                                 {"name": name, "kind": res[2]})
            if q.get("dryRun"):
                return self.reply(201, body)
            obj = copy.deepcopy(body)
            obj["apiVersion"], obj["kind"] = api_version, kind
            m = obj["metadata"]
            if ns:
                m["namespace"] = ns
            m.pop("resourceVersion", None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = now_rfc3339()
            m["generation"] = 1
            m["managedFields"] = [{"manager": self.headers.get("User-Agent", "unknown").split("/")[0],
                                   "operation": "Update", "apiVersion": api_version, "time": now_rfc3339(),
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
            if RESOURCES[res][2] and kind != "Namespace":
                obj.pop("status", None)
                if kind in ("Ingress", "Service"):
                    obj["status"] = {"loadBalancer": {}}
            m["resourceVersion"] = str(st.next_rv())
            st.objects[key] = obj
            st.record("ADDED", res, ns or "", obj)
            return self.reply(201, obj)

    def matching(self, res, ns, selector):
        st = self.store
        items = []
        for key in sorted(st.objects):
            if key[:3] != res or (ns is not None and key[3] != ns):
                continue
            if selector_matches(st.objects[key], selector):
                items.append(st.objects[key])
        return items

    def list(self, res, kind, api_version, ns, q):
        st = self.store
        limit = int(q.get("limit") or 0)
        selector = q.get("fieldSelector", "")
        with st.lock:
            cont = q.get("continue")
            if cont and st.expire_continues > 0:
                st.expire_continues -= 1
                st.continues.pop(cont, None)
            if cont:
                entry = st.continues.get(cont)
                if entry is None:
                    return self.fail(410, "Expired", "The provided continue parameter is too old to display a "
                                     "consistent list result. You can start a new list without the continue "
                                     "parameter.")
                list_rv, items = entry
            else:
                list_rv, items = st.rv, [copy.deepcopy(o) for o in self.matching(res, ns, selector)]
            page, rest = (items[:limit], items[limit:]) if limit else (items, [])
            meta = {"resourceVersion": str(list_rv)}
            if rest:
                token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
                st.continues[token] = (list_rv, rest)
                meta["continue"] = token
                meta["remainingItemCount"] = len(rest)
        lst = {"kind": kind + "List", "apiVersion": api_version, "metadata": meta, "items": page}
        return self.reply(200, lst)

    def watch(self, res, kind, api_version, ns, q):
        st = self.store
        selector = q.get("fieldSelector", "")
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(q.get("timeoutSeconds") or 1800)
        rv_param = q.get("resourceVersion") or "0"
        deadline = time.monotonic() + timeout
        with st.lock:
            if st.block_watches:
                return self.fail(503, "ServiceUnavailable", "watches are blocked by the test")
            from_rv = int(rv_param) if rv_param.isdigit() else 0
            gone = from_rv != 0 and from_rv < st.compacted
            if gone and self.server.gone_as_status:
                return self.fail(410, "Expired", "too old resource version: %d (%d)" % (from_rv, st.compacted))
            my_drop = st.drop_generation
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

        def send(obj, cut=False):
            data = (json.dumps(obj) + "\n").encode()
            if cut:
                data = data[:len(data) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def end():
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass

        try:
            if gone:
                send({"type": "ERROR", "object": status_obj(410, "Expired", "too old resource version: %d (%d)" %
                                                            (from_rv, st.compacted))})
                return end()
            pending = []
            with st.lock:
                if from_rv == 0:
                    for o in self.matching(res, ns, selector):
                        pending.append({"type": "ADDED", "object": copy.deepcopy(o)})
                    from_rv = st.rv
                sent_rv = from_rv
            last_bookmark = time.monotonic()
            while True:
                for ev in pending:
                    send(ev)
                pending = []
                with st.lock:
                    while True:
                        if res not in RESOURCES:
                            return end()
                        if st.drop_generation != my_drop:
                            if st.drop_mid_event:
                                # Half an event line in a complete chunk, then the
                                # connection ends without the last chunk.
                                send({"type": "MODIFIED", "object": {"metadata": {"name": "cut"}}}, cut=True)
                            self.connection.shutdown(2)
                            return
                        for (rv, typ, r, ens, obj) in st.history:
                            if rv <= sent_rv or r != res or (ns is not None and ens != ns):
                                continue
                            if selector_matches(obj, selector):
                                pending.append({"type": typ, "object": obj})
                        if st.history:
                            sent_rv = max(sent_rv, st.history[-1][0])
                        if pending:
                            break
                        now = time.monotonic()
                        if now >= deadline:
                            return end()
                        if bookmarks and now - last_bookmark >= st.bookmark_interval:
                            break
                        st.lock.wait(min(0.2, deadline - now, max(0.01, st.bookmark_interval - (now - last_bookmark))))
                    cur_rv = st.rv
                if not pending and bookmarks:
                    send({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                                                         "metadata": {"resourceVersion": str(cur_rv)}}})
                    last_bookmark = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, tokens, certdir, gone_as_status=False):
        super().__init__(addr, Handler)
        self.store = Store()
        self.tokens = set(tokens)
        self.gone_as_status = gone_as_status
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.load_cert_chain(os.path.join(certdir, "server.crt"), os.path.join(certdir, "server.key"))
        self.ssl_ctx.load_verify_locations(os.path.join(certdir, "ca.crt"))
        self.ssl_ctx.verify_mode = ssl.CERT_OPTIONAL  # client certificates are one way to authenticate

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the connection's own thread, so that a
        # client that connects and says nothing does not stall accept().
        request.settimeout(30)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        tls.settimeout(None)
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if os.environ.get("KUBE_FIXTURE_VERBOSE"):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--certdir", required=True)
    ap.add_argument("--token", action="append", default=[],
                    help="an accepted bearer token; cert:CN accepts a client certificate with that CN")
    ap.add_argument("--make-certs", action="store_true")
    ap.add_argument("--gone-as-status", action="store_true")
    ap.add_argument("--gateway-api", action="store_true", help="serve the Gateway API CRDs from the start")
    a = ap.parse_args()
    if a.gateway_api:
        RESOURCES.update(GATEWAY_RESOURCES)
    if a.make_certs:
        make_certs(a.certdir)
    srv = Server(("127.0.0.1", a.port), a.token, a.certdir, a.gone_as_status)
    print("kube fixture listening on https://127.0.0.1:%d" % a.port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
