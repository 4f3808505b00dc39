"""The Gateway API conformance suite (kubernetes-sigs/gateway-api conformance/), GATEWAY-HTTP profile, run against
ingressd in file mode.

What is transcribed: every upstream test whose features are all among core (Gateway, HTTPRoute, ReferenceGrant)
and these extended features: HTTPRouteMethodMatching, HTTPRouteQueryParamMatching,
HTTPRouteResponseHeaderModification, HTTPRouteHostRewrite, HTTPRoutePathRewrite, HTTPRoutePathRedirect,
HTTPRoutePortRedirect, HTTPRouteSchemeRedirect, HTTPRouteRequestMirror, HTTPRouteRequestMultipleMirrors,
HTTPRouteRequestPercentageMirror, HTTPRouteRequestTimeout, HTTPRouteBackendTimeout,
HTTPRouteBackendRequestHeaderModification, HTTPRouteCORS, HTTPRouteParentRefPort. One test class per upstream test,
named by its ShortName, with one test method; t.Run subtests are subTests; the tables of requests and expectations
are upstream's, entry for entry, written with the suite's own field names (Request, ExpectedRequest, Response,
Backend, Namespace, RedirectRequest, BackendSetResponseHeaders, MirroredTo) so that they can be compared with the Go
source line by line. Upstream commit and licence: gateway_conformance/README.md.

How the suite's cluster is played in file mode:

- Each class writes its own folder: gateway_conformance/base/manifests.yaml (the base: GatewayClass `ingressd`,
  Namespaces, Gateways, Services) plus only its own test's YAML, as upstream does (the suite applies one test's
  manifests at a time), then starts one `ingressd serve --manifests DIR`. {GATEWAY_CLASS_NAME} becomes `ingressd`
  and {GATEWAY_CONTROLLER_NAME} ingressd's controller name, as the suite substitutes them.
- The Deployments are `ingressd echo` processes (one per backend, for the whole module, started with
  INGRESSD_ECHO_LOG_REQUESTS=1 so that their log says "Echoing back request made to ..." as echo-basic's does); the
  test writes each Service's EndpointSlices (127.0.0.1 and the echo's port, one slice per Service port name — the
  Service's h2c and WebSocket ports of infra-backend-v1 go to the same echo). An echo's pod name is
  `<deployment>-<port>`, so upstream's "the pod name starts with the Backend" holds.
- The Secrets the suite makes at start-up (gateway-conformance-web-backend/certificate for "*",
  gateway-conformance-infra/tls-validity-checks-certificate for "*", "*.org", "*.wildcard.org") are made with openssl
  (self-signed, CN "default", as upstream's).
- The Gateway's address: Gateway listeners on port 80 are ingressd's --http-port and those on 443 its
  --https-port; the client connects there and sends what the suite's Go client sends to a Gateway on port 80/443:
  Host is the request's Host or else the address without a port (127.0.0.1), User-Agent Go-http-client/1.1,
  Accept-Encoding gzip, Connection: close (DisableKeepAlives), header names canonicalized (Header.Set),
  Content-Length: 0 for POST/PUT/PATCH without a body, and always an X-Echo-Set-Header (empty unless the case has
  BackendSetResponseHeaders). status.addresses is not checked: in file mode ingressd has no address of its own.
  All Gateways of our class share the one HTTP port, so HTTPRouteMultipleGateways, which tells two Gateways apart by
  address, runs one ingressd per Gateway with the other Gateway left out of what that ingressd serves.
- Requests are compared as http.CompareRoundTrip does (see compare_round_trip) and repeated until
  RequiredConsecutiveSuccesses (3) in a row pass, within GWCONF_CONSISTENCY_SECONDS (default 3 s: a file-mode
  configuration does not change after /readyz or after a reload). Redirects are never followed (every upstream case
  that expects one sets UnfollowRedirect).
- Status assertions read `ingressd check -o json DIR`, key "gatewayStatus": [{kind, namespace, name, status}] with
  status in the API's shape, and assert what upstream's kubernetes.* helpers assert (condition type, status and
  reason, never the message; parentRef group/kind/name/namespace as parentsForRouteMatch compares them;
  listeners' supportedKinds, attachedRoutes and conditions as gatewayListenersMatch does). observedGeneration: the
  test writes metadata.generation where upstream relies on the API server's (1, then 2 after a change) and requires
  every condition's observedGeneration to equal it; objects without metadata.generation count as generation 0, so an
  absent observedGeneration passes for them.
- Objects upstream patches or deletes through the API server are rewritten in the test's file in place (ingressd
  reloads; the test waits for /config's reload count).

Not run (skipTest with the reason): HTTPRouteListenerPortMatching, whose listeners are on 8080 and 8090.
"""

import concurrent.futures
import copy
import dataclasses
import json
import math
import os
import random
import re
import ssl
import threading
import time
import unittest
import urllib.parse
import uuid

try:
    from . import harness as h
except ImportError:  # run as a script from this folder
    import harness as h

CONFORMANCE_DIR = os.path.join(h.HERE, "gateway_conformance")
GATEWAY_CLASS_NAME = "ingressd"
CONTROLLER_NAME = h.CONTROLLER_NAME
GROUP = "gateway.networking.k8s.io"

# conformance/utils/suite/consts.go
INFRA_NS = "gateway-conformance-infra"
APP_BACKEND_NS = "gateway-conformance-app-backend"
WEB_BACKEND_NS = "gateway-conformance-web-backend"
INFRA_GATEWAY_NAME = "gateway-conformance-infra-test"
V1, V2, V3 = "infra-backend-v1", "infra-backend-v2", "infra-backend-v3"

GW_HOST = "127.0.0.1"  # the Gateway's address as the client's URL (and so its Host) has it for ports 80 and 443
GO_UA = "Go-http-client/1.1"

# conformance/utils/config/timeout.go, shortened where file mode makes waiting pointless
MAX_TIME_TO_CONSISTENCY = float(os.environ.get("GWCONF_CONSISTENCY_SECONDS", "3"))
REQUIRED_CONSECUTIVE_SUCCESSES = 3
DEFAULT_POLL_INTERVAL = 0.1
REQUEST_TIMEOUT = 10.0  # a round trip; also how long a mirrored request is looked for in a mirror's log

PORT_SKIP = "listener ports other than 80/443 in file mode: not yet"

# The base manifests' Deployments (one echo each) and their Services' port names.
DEPLOYMENTS = [(INFRA_NS, V1), (INFRA_NS, V2), (INFRA_NS, V3), (APP_BACKEND_NS, "app-backend-v1"),
               (APP_BACKEND_NS, "app-backend-v2"), (WEB_BACKEND_NS, "web-backend")]
BASE_SERVICE_PORT_NAMES = {V1: ["first-port", "second-port", "third-port"]}


# ----------------------------------------------------------------------------
# the suite's types (conformance/utils/http, roundtripper), field names kept
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class Request:
    Host: str = ""
    Method: str = ""
    Path: str = ""
    Headers: dict = None
    UnfollowRedirect: bool = False
    Body: str = ""


@dataclasses.dataclass
class ExpectedRequest:
    Request: Request = dataclasses.field(default_factory=Request)
    AbsentHeaders: list = None


@dataclasses.dataclass
class Response:
    StatusCode: int = 0
    StatusCodes: list = None
    Headers: dict = None
    ValidHeaderValues: dict = None
    AbsentHeaders: list = None
    IgnoreWhitespace: bool = False


@dataclasses.dataclass
class RedirectRequest:
    Scheme: str = ""
    Host: str = ""
    Port: str = ""
    Path: str = ""


@dataclasses.dataclass
class BackendRef:
    Name: str = ""
    Namespace: str = ""


@dataclasses.dataclass
class MirroredBackend:
    BackendRef: BackendRef = None
    Percent: int = None


@dataclasses.dataclass
class ExpectedResponse:
    Request: Request = dataclasses.field(default_factory=Request)
    ExpectedRequest: ExpectedRequest = None
    RedirectRequest: RedirectRequest = None
    BackendSetResponseHeaders: dict = None
    Response: Response = dataclasses.field(default_factory=Response)
    Backend: str = ""
    Namespace: str = ""
    MirroredTo: list = None
    TestCaseName: str = ""

    def name(self, i):
        """GetTestCaseName."""
        if self.TestCaseName:
            return self.TestCaseName
        s = "%d request to '%s%s'%s" % (i, self.Request.Host, self.Request.Path,
                                        " with headers" if self.Request.Headers is not None else "")
        if self.Backend:
            return s + " should go to " + self.Backend
        codes = self.Response.StatusCodes or ([self.Response.StatusCode] if self.Response.StatusCode else [])
        return s + " should receive one of %s" % codes


@dataclasses.dataclass
class CapturedRequest:
    Path: str = ""
    Host: str = ""
    Method: str = ""
    Protocol: str = ""
    Headers: dict = None
    Namespace: str = ""
    Pod: str = ""


@dataclasses.dataclass
class CapturedResponse:
    StatusCode: int = 0
    Protocol: str = ""
    Headers: dict = None  # lower-case name -> [values, one per field line]
    RedirectRequest: RedirectRequest = None


@dataclasses.dataclass
class RoundTripRequest:
    """roundtripper.Request: what the client sends."""
    Scheme: str = "http"
    Method: str = "GET"
    Host: str = ""
    Path: str = "/"
    RawQuery: str = ""
    Headers: dict = None
    UnfollowRedirect: bool = False
    Body: str = ""
    ServerName: str = ""
    ServerCertificate: str = None  # PEM file the server's certificate must chain to (HTTPS)


def canonical_header_key(name):
    """Go's textproto.CanonicalMIMEHeaderKey (Header.Set canonicalizes what the tests write)."""
    if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
        return name
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def is_redirect(code):
    return code in (300, 301, 302, 303, 304, 305, 307, 308)


def is_timeout_error(code):
    return code in (408, 504)


def add_query_param(raw_url, name, value):
    """addQueryParam: url.Parse, query.Set, query.Encode (keys sorted)."""
    parts = urllib.parse.urlsplit(raw_url)
    q = {}
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        q.setdefault(k, []).append(v)
    q[name] = [value]
    query = urllib.parse.urlencode([(k, v) for k in sorted(q) for v in q[k]])
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


REQUEST_ID_QUERY_PARAM = "gateway-api-conformance-request-id"


def add_request_id_query_param(er, request_id):
    """ExpectedResponse.AddRequestIDQueryParam."""
    path = add_query_param(er.Request.Path, REQUEST_ID_QUERY_PARAM, request_id)
    if er.ExpectedRequest is not None:
        if er.ExpectedRequest.Request.Path == "":
            er.ExpectedRequest.Request.Path = path
        else:
            er.ExpectedRequest.Request.Path = add_query_param(er.ExpectedRequest.Request.Path,
                                                              REQUEST_ID_QUERY_PARAM, request_id)
    er.Request.Path = path


def make_request(expected, scheme="http"):
    """http.MakeRequest: fills in the defaults (GET, status 200) in `expected` and returns what to send."""
    if not expected.Request.Method:
        expected.Request.Method = "GET"
    codes = list(expected.Response.StatusCodes or [])
    if expected.Response.StatusCode and expected.Response.StatusCode not in codes:
        codes.append(expected.Response.StatusCode)
    expected.Response.StatusCodes = codes or [200]
    path, _, query = expected.Request.Path.partition("?")
    headers = {}
    for name, value in (expected.Request.Headers or {}).items():
        headers[canonical_header_key(name)] = value
    backend_set = ["%s:%s" % (n, v) for n, v in (expected.BackendSetResponseHeaders or {}).items()]
    headers["X-Echo-Set-Header"] = ",".join(backend_set)
    return RoundTripRequest(Scheme=scheme, Method=expected.Request.Method, Host=expected.Request.Host,
                            Path=path or "/", RawQuery=query, Headers=headers,
                            UnfollowRedirect=expected.Request.UnfollowRedirect, Body=expected.Request.Body)


def go_match_hostname(pattern, host):
    """crypto/x509 matchHostnames: same number of labels, '*' only as the whole leftmost one."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    pp, hp = pattern.split("."), host.split(".")
    if len(pp) != len(hp):
        return False
    return all((i == 0 and p == "*") or p == hp[i] for i, p in enumerate(pp))


def split_host_port(netloc):
    """url.URL Hostname() and Port() of an authority (userinfo dropped, brackets of IPv6 removed)."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    host, colon, port = hostport.rpartition(":")
    if colon and port.isdigit():
        return host, port
    if colon and port == "":
        return host, ""
    return hostport, ""


def capture_round_trip(srv, rt):
    """roundtripper.DefaultRoundTripper.CaptureRoundTrip against ingressd's HTTP (or HTTPS) port."""
    method = rt.Method or "GET"
    target = rt.Path + ("?" + rt.RawQuery if rt.RawQuery else "")
    hdrs = [("Host", rt.Host or GW_HOST), ("User-Agent", GO_UA)]
    body = rt.Body.encode("utf-8") if rt.Body else None
    if body is None and method in ("POST", "PUT", "PATCH"):
        hdrs.append(("Content-Length", "0"))
    for name in sorted(rt.Headers or {}):
        hdrs.append((name, rt.Headers[name]))
    if method != "HEAD":
        hdrs.append(("Accept-Encoding", "gzip"))
    hdrs.append(("Connection", "close"))
    raw = h.build_request(method, target, None, hdrs, body)
    if rt.Scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # Go's rules, below: OpenSSL will not match "*.org"
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(rt.ServerCertificate)
        conn = h.TlsConn(srv.https_port, server_name=rt.ServerName, timeout=REQUEST_TIMEOUT, context=ctx)
        cert = conn.sock.getpeercert()
        sans = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        if not any(go_match_hostname(p, rt.ServerName) for p in sans):
            conn.close()
            raise AssertionError("x509: certificate is valid for %s, not %s" % (sans, rt.ServerName))
    else:
        conn = h.RawConn(srv.http_port, timeout=REQUEST_TIMEOUT)
    with conn:
        conn.send(raw)
        resp = conn.read_response(method)
    headers = {}
    for k, v in resp.headers.items:
        headers.setdefault(k.lower(), []).append(v)
    creq = CapturedRequest()
    if (headers.get("content-type") or [""])[0] == "application/json":
        try:
            j = json.loads(resp.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("unexpected error reading response: %s" % e) from None
        creq = CapturedRequest(Path=j.get("path", ""), Host=j.get("host", ""), Method=j.get("method", ""),
                               Protocol=j.get("proto", ""), Headers=j.get("headers"),
                               Namespace=j.get("namespace", ""), Pod=j.get("pod", ""))
    else:
        creq.Method = method  # assume it made the right request if the service being called isn't echoing
    cres = CapturedResponse(StatusCode=resp.status, Protocol=resp.version, Headers=headers)
    if is_redirect(resp.status):
        loc = (headers.get("location") or [None])[0]
        if loc is None:
            raise AssertionError("http: no Location header in response")
        base = "%s://%s%s" % (rt.Scheme, GW_HOST, target)
        u = urllib.parse.urlsplit(urllib.parse.urljoin(base, loc))
        host, port = split_host_port(u.netloc)
        cres.RedirectRequest = RedirectRequest(Scheme=u.scheme, Host=host, Port=port,
                                               Path=urllib.parse.unquote(u.path))
    return creq, cres


def compare_round_trip(rt, creq, cres, expected):
    """http.CompareRoundTrip, line by line; returns an error string or None."""
    expected = copy.deepcopy(expected)
    codes = expected.Response.StatusCodes
    if is_timeout_error(cres.StatusCode) and any(is_timeout_error(c) for c in codes):
        return None
    if cres.StatusCode not in codes:
        return "expected status code to be one of %s, got %d. CRes: %s" % (codes, cres.StatusCode, cres)
    if cres.StatusCode in (200, 204):  # 204 is a valid response for CORS requests
        if expected.ExpectedRequest is None:
            expected.ExpectedRequest = ExpectedRequest(Request=copy.deepcopy(expected.Request))
        er = expected.ExpectedRequest.Request
        if er.Method == "":
            er.Method = "GET"
        if er.Host != "" and er.Host != creq.Host:
            return "expected host to be %s, got %s" % (er.Host, creq.Host)
        if er.Path != creq.Path:
            return "expected path to be %s, got %s" % (er.Path, creq.Path)
        if er.Method != creq.Method:
            return "expected method to be %s, got %s" % (er.Method, creq.Method)
        if expected.Namespace != creq.Namespace:
            return "expected namespace to be %s, got %s" % (expected.Namespace, creq.Namespace)
        req_headers = {k.lower(): v for k, v in (creq.Headers or {}).items()}
        if er.Headers is not None:
            if creq.Headers is None:
                return "no headers captured, expected %d" % len(er.Headers)
            for name, want in er.Headers.items():
                got = req_headers.get(name.lower())
                if got is None:
                    return "expected %s header to be set, actual headers: %s" % (name, creq.Headers)
                if ",".join(got) != want:
                    return "expected %s header to be set to %s, got %s" % (name, want, ",".join(got))
        r = expected.Response
        if r.Headers or r.ValidHeaderValues:
            for name, wants in (r.ValidHeaderValues or {}).items():
                got = cres.Headers.get(name.lower())
                if got is None:
                    return "expected %s header to be set, actual headers: %s" % (name, cres.Headers)
                got = ",".join(got)
                if r.IgnoreWhitespace:
                    got, wants = got.replace(" ", ""), [w.replace(" ", "") for w in wants]
                if got not in wants:
                    return "expected %s header to be set to one of %s, got %s" % (name, wants, got)
            for name, want in (r.Headers or {}).items():
                got = cres.Headers.get(name.lower())
                if got is None:
                    return "expected %s header to be set, actual headers: %s" % (name, cres.Headers)
                got = ",".join(got)
                if r.IgnoreWhitespace:
                    got, want = got.replace(" ", ""), want.replace(" ", "")
                if got != want:
                    return "expected %s header to be set to %s, got %s" % (name, want, got)
        for name in r.AbsentHeaders or []:
            if name.lower() in cres.Headers:
                return "expected %s header to not be set, got %s" % (name, cres.Headers[name.lower()])
        for name in expected.ExpectedRequest.AbsentHeaders or []:
            if name.lower() in req_headers:
                return "expected %s header to not be set, got %s" % (name, req_headers[name.lower()])
        if not creq.Pod.startswith(expected.Backend):
            return "expected pod name to start with %s, got %s" % (expected.Backend, creq.Pod)
    elif is_redirect(cres.StatusCode):
        want = expected.RedirectRequest
        if want is None:
            return None
        got = cres.RedirectRequest
        # setRedirectRequestDefaults
        if want.Host == "":
            want.Host = got.Host
        if want.Scheme == "":
            want.Scheme = rt.Scheme
        if want.Path == "":
            want.Path = rt.Path
        if want.Host != got.Host:
            return "expected redirected hostname to be %r, got %r" % (want.Host, got.Host)
        if want.Port == "":
            # Well known schemes like "http" and "https" MAY skip setting any port.
            if got.Scheme.lower() == "http" and got.Port not in ("80", ""):
                return "for http scheme, expected redirected port to be 80 or not set, got %r" % got.Port
            if got.Scheme.lower() == "https" and got.Port not in ("443", ""):
                return "for https scheme, expected redirected port to be 443 or not set, got %r" % got.Port
        elif want.Port != got.Port:
            return "expected redirected port to be %r, got %r" % (want.Port, got.Port)
        if want.Scheme != got.Scheme:
            return "expected redirected scheme to be %r, got %r" % (want.Scheme, got.Scheme)
        if want.Path != got.Path:
            return "expected redirected path to be %r, got %r" % (want.Path, got.Path)
    return None


def await_convergence(fn, what, required=REQUIRED_CONSECUTIVE_SUCCESSES, timeout=None):
    """http.AwaitConvergence: fn() -> error or None, until `required` successes in a row."""
    deadline = time.monotonic() + (MAX_TIME_TO_CONSISTENCY if timeout is None else timeout)
    successes = attempts = 0
    last = None
    while True:
        try:
            last = fn()
        except Exception as e:  # noqa: BLE001 - a failed round trip: not ready yet
            last = "request failed: %s: %s" % (type(e).__name__, e)
        attempts += 1
        if last is None:
            successes += 1
            if successes >= required:
                return
            continue
        successes = 0
        if time.monotonic() >= deadline:
            raise AssertionError("%s: no %d consecutive successes after %d attempts; last: %s"
                                 % (what, required, attempts, last))
        time.sleep(DEFAULT_POLL_INTERVAL)


# ----------------------------------------------------------------------------
# manifests: upstream's YAML, split into documents for the few edits the
# tests make (the harness is standard library only: no YAML parser)
# ----------------------------------------------------------------------------

def render(text):
    return text.replace("{GATEWAY_CLASS_NAME}", GATEWAY_CLASS_NAME).replace("{GATEWAY_CONTROLLER_NAME}",
                                                                           CONTROLLER_NAME)


class YamlDocs:
    """A multi-document YAML file as upstream wrote it, split at its `---` lines. Documents are found by kind and
    metadata name/namespace (read from the top-level `kind:` and the two-space-indented keys under `metadata:`,
    which is how every upstream file is written); a replacement may be JSON (which is YAML)."""

    def __init__(self, text):
        self.docs = [d for d in re.split(r"(?m)^---[ \t]*\n", text) if d.strip()]

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(f.read())

    @staticmethod
    def key(doc):
        if doc.lstrip().startswith("{"):
            o = json.loads(doc)
            m = o.get("metadata", {})
            return o.get("kind"), m.get("namespace"), m.get("name")
        kind = re.search(r'(?m)^kind:\s*"?([A-Za-z]+)"?\s*$', doc)
        meta = re.search(r"(?m)^metadata:[ \t]*\n((?:(?:  .*)?\n)*)", doc + "\n")
        block = meta.group(1) if meta else ""
        name = re.search(r'(?m)^  name:\s*"?([^"\s]+)"?', block)
        ns = re.search(r'(?m)^  namespace:\s*"?([^"\s]+)"?', block)
        return kind and kind.group(1), ns and ns.group(1), name and name.group(1)

    def index(self, kind, name, namespace=None):
        found = [i for i, d in enumerate(self.docs) if self.key(d) == (kind, namespace, name)]
        if len(found) != 1:
            raise AssertionError("%d documents %s %s/%s" % (len(found), kind, namespace, name))
        return found[0]

    def keys(self):
        return [self.key(d) for d in self.docs]

    def doc(self, kind, name, namespace=None):
        return self.docs[self.index(kind, name, namespace)]

    def replace(self, kind, name, namespace, text):
        self.docs[self.index(kind, name, namespace)] = text if text.endswith("\n") else text + "\n"

    def remove(self, kind, name, namespace=None):
        del self.docs[self.index(kind, name, namespace)]

    def edit(self, kind, name, namespace, old, new):
        i = self.index(kind, name, namespace)
        if self.docs[i].count(old) != 1:
            raise AssertionError("%r occurs %d times in %s %s/%s" % (old, self.docs[i].count(old), kind, namespace,
                                                                     name))
        self.docs[i] = self.docs[i].replace(old, new)

    def set_generation(self, kind, name, namespace, generation):
        """metadata.generation, as the API server keeps it."""
        i = self.index(kind, name, namespace)
        d = re.sub(r"(?m)^  generation: \d+\n", "", self.docs[i])
        self.docs[i] = re.sub(r"(?m)^metadata:[ \t]*\n", "metadata:\n  generation: %d\n" % generation, d, count=1)

    def skip_readiness(self, kind, name, namespace=None):
        return 'gateway-api/skip-this-for-readiness: "true"' in self.doc(kind, name, namespace)

    def text(self):
        return render("---\n".join(self.docs))


# ----------------------------------------------------------------------------
# the module's backends and certificates
# ----------------------------------------------------------------------------

MODULE = {}


def setUpModule():
    if not os.access(h.BIN, os.X_OK):
        raise unittest.SkipTest("ingressd binary not found at %s (set INGRESSD_BIN)" % h.BIN)
    res = h.Resources()
    unittest.addModuleCleanup(res.close)
    MODULE["echoes"] = {name: res.start_echo(name, namespace=ns, log_requests=True) for ns, name in DEPLOYMENTS}
    factory = h.CertFactory(os.path.join(res.tempdir(), "certs"))
    # kubernetes.MustCreateSelfSignedCertSecret: self-signed, CN "default", serverAuth, these SANs
    MODULE["web_cert"] = factory.leaf("web-backend-certificate", ["*"], cn="default")
    MODULE["infra_cert"] = factory.leaf("tls-validity-checks-certificate", ["*", "*.org", "*.wildcard.org"],
                                        cn="default")


def backend_objects(extra_services=()):
    """EndpointSlices for the base Services (and `extra_services`: (namespace, service, deployment, port names) of
    a test's own Services that select a Deployment), as the EndpointSlice controller would write them; the two
    Secrets the suite creates at start-up."""
    echoes = MODULE["echoes"]
    services = [(ns, name, name, BASE_SERVICE_PORT_NAMES.get(name, [None])) for ns, name in DEPLOYMENTS]
    objs = []
    for ns, service, deployment, port_names in list(services) + list(extra_services):
        for pn in port_names:
            objs.append(h.endpoint_slice(service, echoes[deployment].port, namespace=ns,
                                         name="%s-%s" % (service, pn or "port"), port_name=pn))
    objs.append(h.cert_secret("certificate", MODULE["web_cert"], namespace=WEB_BACKEND_NS))
    objs.append(h.cert_secret("tls-validity-checks-certificate", MODULE["infra_cert"], namespace=INFRA_NS))
    return objs


# ----------------------------------------------------------------------------
# status (conformance/utils/kubernetes/helpers.go), from `ingressd check -o json`
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NN:
    Namespace: str
    Name: str


@dataclasses.dataclass
class Condition:
    Type: str
    Status: str = ""  # "" matches any status
    Reason: str = ""  # "" matches any reason


@dataclasses.dataclass
class ParentReference:
    Name: str
    Group: str = None
    Kind: str = None
    Namespace: str = None
    SectionName: str = None


@dataclasses.dataclass
class RouteParentStatus:
    ParentRef: ParentReference
    ControllerName: str
    Conditions: list


@dataclasses.dataclass
class ListenerStatus:
    Name: str
    SupportedKinds: list  # [(group, kind)]
    Conditions: list
    AttachedRoutes: int


HTTPROUTE_KIND = (GROUP, "HTTPRoute")


def parent_ref_to(gw):
    """parentRefTo (httproute-hostname-intersection.go)."""
    return ParentReference(Group=GROUP, Kind="Gateway", Namespace=gw.Namespace, Name=gw.Name)


class GatewayRef:
    """kubernetes.NewGatewayRef(nn, listenerNames...)."""

    def __init__(self, nn, *listener_names):
        self.nn = nn
        self.listener_names = list(listener_names) or [None]


def find_condition(conditions, ctype, status="", reason=""):
    """findConditionInList."""
    for c in conditions or []:
        if c.get("type") == ctype and (status == "" or c.get("status") == status) and \
                (reason == "" or c.get("reason") == reason):
            return True
    return False


def conditions_match(expected, actual):
    """conditionsMatch."""
    actual = actual or []
    if len(actual) < len(expected):
        return False
    return all(find_condition(actual, c.Type, c.Status, c.Reason) for c in expected)


def stale_conditions(generation, conditions):
    """FilterStaleConditions: conditions whose observedGeneration is not the object's generation."""
    return [c for c in conditions or [] if c.get("observedGeneration", 0) != generation]


class GatewayStatus:
    """check's "gatewayStatus", by (kind, namespace, name)."""

    def __init__(self, items, generations):
        self.items = items
        self.generations = generations

    def find(self, kind, nn):
        for o in self.items:
            if o.get("kind") == kind and (o.get("namespace") or "") == (nn.Namespace or "") and \
                    o.get("name") == nn.Name:
                return o.get("status") or {}
        return None

    def generation(self, kind, nn):
        return self.generations.get((kind, nn.Namespace or None, nn.Name), 0)

    def __repr__(self):
        return json.dumps(self.items, indent=1)[:6000]


# ----------------------------------------------------------------------------
# a folder of manifests, and the test case base
# ----------------------------------------------------------------------------

class Folder:
    """One ingressd's manifests: the base, the test's YAML files, the backends' EndpointSlices and the Secrets."""

    def __init__(self, res, manifests, omit_gateways=(), extra_services=(), generations=None):
        self.dir = res.tempdir()
        self.docs = {}
        self.generations = {}
        base = YamlDocs.load(os.path.join(CONFORMANCE_DIR, "base", "manifests.yaml"))
        for name in omit_gateways:
            base.remove("Gateway", name, INFRA_NS)
        self.docs["base-manifests.yaml"] = base
        for f in manifests:
            self.docs[f] = YamlDocs.load(os.path.join(CONFORMANCE_DIR, "tests", f))
        for (kind, ns, name), gen in (generations or {}).items():
            self.set_generation(kind, ns, name, gen)
        for f in self.docs:
            self.write(f)
        h.write_manifests(self.dir, backend_objects(extra_services), "backends.yaml")

    def file_of(self, kind, ns, name):
        for f, docs in self.docs.items():
            if (kind, ns, name) in docs.keys():
                return f
        raise AssertionError("no document %s %s/%s" % (kind, ns, name))

    def set_generation(self, kind, ns, name, gen):
        self.docs[self.file_of(kind, ns, name)].set_generation(kind, name, ns, gen)
        self.generations[(kind, ns, name)] = gen

    def write(self, filename):
        h.write_file(os.path.join(self.dir, filename), self.docs[filename].text())

    def skip_readiness(self, kind, nn):
        for docs in self.docs.values():
            if (kind, nn.Namespace, nn.Name) in docs.keys():
                return docs.skip_readiness(kind, nn.Name, nn.Namespace)
        return False


class GatewayConformanceCase(h.E2ETestCase):
    """One upstream test: its folder, one ingressd serving it (SERVE), status from `check`."""

    MANIFESTS = ()         # upstream YAML files (gateway_conformance/tests/)
    SERVE = True           # False: status assertions only, no ingressd
    OMIT_GATEWAYS = ()     # base Gateways left out of the folder
    EXTRA_SERVICES = ()    # the test's own Services that select a Deployment: (ns, service, deployment, port names)
    GENERATIONS = {}       # (kind, namespace, name) -> metadata.generation the test writes, as the API server would

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = Folder(cls.cres, cls.MANIFESTS, cls.OMIT_GATEWAYS, cls.EXTRA_SERVICES, cls.GENERATIONS)
        cls.dir = cls.folder.dir
        cls.srv = cls.cres.start_ingressd(cls.dir) if cls.SERVE else None

    def setUp(self):
        super().setUp()
        if self.srv is not None:
            self.log_on_failure(self.srv)

    # -- manifests ----------------------------------------------------------

    def rewrite(self, filename, edit, folder=None, srv=None):
        """Edits one of the folder's files in place (edit(YamlDocs)) and waits for ingressd's reload."""
        folder, srv = folder or self.folder, srv or self.srv
        edit(folder.docs[filename])
        before = srv.reloads() if srv is not None else None
        folder.write(filename)
        if srv is not None:
            srv.wait_reload(before, timeout=5)

    # -- status ---------------------------------------------------------------

    def status(self, folder=None):
        folder = folder or self.folder
        rc, out, err = h.run_cli(["check", "-o", "json", folder.dir], timeout=60)
        try:
            j = json.loads(out)
        except ValueError as e:
            raise AssertionError("check -o json (rc %d): not JSON (%s):\n%s%s" % (rc, e, out[:2000], err[:2000]))
        if not isinstance(j, dict) or "gatewayStatus" not in j:
            raise AssertionError("check -o json (rc %d) has no gatewayStatus:\n%s%s" % (rc, out[:2000], err[:2000]))
        return GatewayStatus(j["gatewayStatus"], folder.generations)

    def _object(self, st, kind, nn):
        s = st.find(kind, nn)
        if s is None:
            self.fail("no status for %s %s/%s in check's gatewayStatus:\n%r" % (kind, nn.Namespace, nn.Name, st))
        return s

    def _latest(self, st, kind, nn, conditions, what):
        stale = stale_conditions(st.generation(kind, nn), conditions)
        if stale:
            self.fail("%s %s/%s: expected observedGeneration %d on every condition of %s, stale: %s" % (
                kind, nn.Namespace, nn.Name, st.generation(kind, nn), what, stale))

    def gateway_and_httproutes_must_be_accepted(self, gw_ref, *route_nns, folder=None):
        """GatewayAndHTTPRoutesMustBeAccepted (less WaitForGatewayAddress: the address is ingressd's port)."""
        st = self.status(folder)
        gw = gw_ref.nn
        for route in route_nns:
            parents = [RouteParentStatus(
                ParentRef=ParentReference(Group=GROUP, Kind="Gateway", Name=gw.Name, Namespace=gw.Namespace,
                                          SectionName=listener),
                ControllerName=CONTROLLER_NAME,
                Conditions=[Condition("Accepted", "True", "Accepted")]) for listener in gw_ref.listener_names]
            self.httproute_must_have_parents(route, parents, route.Namespace != gw.Namespace, st=st)
        self.gateway_listeners_must_have_conditions(gw, [Condition("ResolvedRefs", "True"),
                                                         Condition("Accepted", "True"),
                                                         Condition("Programmed", "True")], st=st)

    def httproute_must_have_parents(self, route, parents, namespace_required, st=None):
        """HTTPRouteMustHaveParents / parentsForRouteMatch (sectionName is not compared, as upstream)."""
        st = st or self.status()
        s = self._object(st, "HTTPRoute", route)
        actual = s.get("parents") or []
        for p in actual:
            self._latest(st, "HTTPRoute", route, p.get("conditions"), "parent %s" % p.get("parentRef"))
        for e in parents:
            matched = False
            for a in actual:
                ref = a.get("parentRef") or {}
                if a.get("controllerName") != e.ControllerName or ref.get("group") != e.ParentRef.Group or \
                        ref.get("kind") != e.ParentRef.Kind or ref.get("name") != e.ParentRef.Name:
                    continue
                if ref.get("namespace") != e.ParentRef.Namespace and \
                        (namespace_required or ref.get("namespace") is not None):
                    continue
                if not conditions_match(e.Conditions, a.get("conditions")):
                    continue
                matched = True
            if not matched:
                self.fail("HTTPRoute %s/%s: no parent matches %s (namespace required: %s); parents: %s" % (
                    route.Namespace, route.Name, e, namespace_required, json.dumps(actual, indent=1)))

    def httproute_must_have_condition(self, route, gw, cond, st=None):
        """HTTPRouteMustHaveCondition: a parent naming the Gateway has the condition."""
        st = st or self.status()
        parents = self._object(st, "HTTPRoute", route).get("parents") or []
        found = False
        for p in parents:
            self._latest(st, "HTTPRoute", route, p.get("conditions"), "parent %s" % p.get("parentRef"))
            ref = p.get("parentRef") or {}
            if ref.get("name") == gw.Name and ref.get("namespace") in (None, gw.Namespace):
                found = found or find_condition(p.get("conditions"), cond.Type, cond.Status, cond.Reason)
        if not found:
            self.fail("HTTPRoute %s/%s: no parent %s/%s with %s; parents: %s" % (
                route.Namespace, route.Name, gw.Namespace, gw.Name, cond, json.dumps(parents, indent=1)))

    def httproute_must_have_resolved_refs_true(self, route, gw, st=None):
        """HTTPRouteMustHaveResolvedRefsConditionsTrue."""
        self.httproute_must_have_condition(route, gw, Condition("ResolvedRefs", "True", "ResolvedRefs"), st)

    def httproute_must_have_no_accepted_parents(self, route):
        """HTTPRouteMustHaveNoAcceptedParents: no parents, or exactly one that is Accepted: False."""
        st = self.status()
        parents = self._object(st, "HTTPRoute", route).get("parents") or []
        if not parents:
            return
        self.assertEqual(len(parents), 1, "HTTPRoute %s/%s: more than one parent: %s" % (
            route.Namespace, route.Name, json.dumps(parents, indent=1)))
        self._latest(st, "HTTPRoute", route, parents[0].get("conditions"), "its parent")
        self.assertTrue(conditions_match([Condition("Accepted", "False")], parents[0].get("conditions")),
                        "HTTPRoute %s/%s: its parent is not Accepted: False: %s" % (
                            route.Namespace, route.Name, json.dumps(parents, indent=1)))

    def httproute_must_have_latest_conditions(self, route, st=None):
        st = st or self.status()
        for p in self._object(st, "HTTPRoute", route).get("parents") or []:
            self._latest(st, "HTTPRoute", route, p.get("conditions"), "parent %s" % p.get("parentRef"))

    def gateway_must_have_latest_conditions(self, gw, st=None):
        st = st or self.status()
        self._latest(st, "Gateway", gw, self._object(st, "Gateway", gw).get("conditions"), "the Gateway")

    def gateway_must_have_condition(self, gw, cond, st=None):
        """GatewayMustHaveCondition."""
        st = st or self.status()
        s = self._object(st, "Gateway", gw)
        self._latest(st, "Gateway", gw, s.get("conditions"), "the Gateway")
        self.assertTrue(find_condition(s.get("conditions"), cond.Type, cond.Status, cond.Reason),
                        "Gateway %s/%s has no %s: %s" % (gw.Namespace, gw.Name, cond,
                                                         json.dumps(s.get("conditions"), indent=1)))

    def gateway_must_have_zero_routes(self, gw):
        """GatewayMustHaveZeroRoutes: no listeners, or exactly one with attachedRoutes 0."""
        st = self.status()
        s = self._object(st, "Gateway", gw)
        self._latest(st, "Gateway", gw, s.get("conditions"), "the Gateway")
        listeners = s.get("listeners") or []
        self.assertTrue(not listeners or (len(listeners) == 1 and listeners[0].get("attachedRoutes") == 0),
                        "Gateway %s/%s: want zero listeners or exactly 1 listener with zero routes, got %s" % (
                            gw.Namespace, gw.Name, json.dumps(listeners, indent=1)))

    def gateway_listeners_must_have_conditions(self, gw, conditions, *listener_names, st=None):
        """GatewayListenersMustHaveConditions: every listener (or the named ones) has every condition."""
        st = st or self.status()
        listeners = self._object(st, "Gateway", gw).get("listeners") or []
        missing = set(listener_names)
        for c in conditions:
            for ls in listeners:
                if listener_names and ls.get("name") not in listener_names:
                    continue
                if not find_condition(ls.get("conditions"), c.Type, c.Status, c.Reason):
                    self.fail("Gateway %s/%s listener %s has no %s: %s" % (
                        gw.Namespace, gw.Name, ls.get("name"), c, json.dumps(ls.get("conditions"), indent=1)))
                missing.discard(ls.get("name"))
        self.assertFalse(missing, "Gateway %s/%s: no status for listeners %s" % (gw.Namespace, gw.Name, missing))

    def gateway_status_must_have_listeners(self, gw, listeners, st=None):
        """GatewayStatusMustHaveListeners / gatewayListenersMatch."""
        st = st or self.status()
        s = self._object(st, "Gateway", gw)
        self._latest(st, "Gateway", gw, s.get("conditions"), "the Gateway")
        actual = s.get("listeners") or []
        dump = json.dumps(actual, indent=1)
        self.assertEqual(len(actual), len(listeners), "Gateway %s/%s: expected %d listeners in status, got %s" % (
            gw.Namespace, gw.Name, len(listeners), dump))
        for e in listeners:
            a = next((x for x in actual if x.get("name") == e.Name), None)
            self.assertIsNotNone(a, "Gateway %s/%s: no status for listener %s: %s" % (gw.Namespace, gw.Name,
                                                                                     e.Name, dump))
            kinds = [((k.get("group") or GROUP), k.get("kind")) for k in a.get("supportedKinds") or []]
            if not e.SupportedKinds:
                self.assertEqual(kinds, [], "listener %s: expected no supportedKinds: %s" % (e.Name, dump))
            for kind in e.SupportedKinds:
                self.assertIn(kind, kinds, "listener %s: %s not in supportedKinds: %s" % (e.Name, kind, dump))
            self.assertEqual(a.get("attachedRoutes"), e.AttachedRoutes,
                             "listener %s: attachedRoutes: %s" % (e.Name, dump))
            self.assertTrue(conditions_match(e.Conditions, a.get("conditions")),
                            "listener %s: expected conditions %s: %s" % (e.Name, e.Conditions, dump))

    def gwc_must_have_accepted_condition(self, name, status=""):
        """GWCMustHaveAcceptedConditionTrue (status "True") / ...Any (status "")."""
        st = self.status()
        s = self._object(st, "GatewayClass", NN("", name))
        self._latest(st, "GatewayClass", NN("", name), s.get("conditions"), "the GatewayClass")
        self.assertTrue(find_condition(s.get("conditions"), "Accepted", status),
                        "GatewayClass %s: no Accepted %s: %s" % (name, status or "(any)",
                                                                 json.dumps(s.get("conditions"), indent=1)))

    def gatewayclass_must_have_latest_conditions(self, name):
        st = self.status()
        s = self._object(st, "GatewayClass", NN("", name))
        self._latest(st, "GatewayClass", NN("", name), s.get("conditions"), "the GatewayClass")

    def namespaces_must_be_ready(self, namespaces, folder=None):
        """NamespacesMustBeReady: every Gateway of the namespaces (but those annotated
        gateway-api/skip-this-for-readiness) Accepted and Programmed with the latest generation; the pods (echoes)
        running."""
        folder = folder or self.folder
        st = self.status(folder)
        gateways = [NN(o.get("namespace"), o.get("name")) for o in st.items
                    if o.get("kind") == "Gateway" and o.get("namespace") in namespaces]
        for gw in gateways:
            if folder.skip_readiness("Gateway", gw):
                continue
            s = self._object(st, "Gateway", gw)
            self._latest(st, "Gateway", gw, s.get("conditions"), "the Gateway")
            for t in ("Accepted", "Programmed"):
                self.assertTrue(find_condition(s.get("conditions"), t, "True"),
                                "%s Gateway not %s: %s" % (gw, t, json.dumps(s, indent=1)))
        for ns, name in DEPLOYMENTS:
            if ns in namespaces:
                self.assertTrue(MODULE["echoes"][name].alive(), "echo %s/%s is not running" % (ns, name))

    # -- traffic --------------------------------------------------------------

    def expect(self, tc, srv=None, required=REQUIRED_CONSECUTIVE_SUCCESSES):
        """MakeRequestAndExpectEventuallyConsistentResponse."""
        srv = srv or self.srv
        expected = copy.deepcopy(tc)
        rt = make_request(expected)
        await_convergence(lambda: compare_round_trip(rt, *capture_round_trip(srv, rt), expected),
                          "%s %s%s (Host %r)" % (rt.Method, rt.Path, "?" + rt.RawQuery if rt.RawQuery else "",
                                                 rt.Host), required)

    def expect_tls(self, tc, server_certificate, server_name, srv=None):
        """tls.MakeTLSRequestAndExpectEventuallyConsistentResponse."""
        srv = srv or self.srv
        expected = copy.deepcopy(tc)
        rt = make_request(expected, scheme="https")
        rt.ServerName, rt.ServerCertificate = server_name, server_certificate
        await_convergence(lambda: compare_round_trip(rt, *capture_round_trip(srv, rt), expected),
                          "https %s %s (SNI %s)" % (rt.Method, rt.Path, server_name))

    def gateway_address(self, listener_port, srv=None):
        """The ingressd serving a Gateway listener port: 80 is its --http-port (443, --https-port, is expect_tls's);
        no other port is served in file mode yet."""
        if listener_port != 80:
            raise unittest.SkipTest(PORT_SKIP)
        return srv or self.srv

    def run_cases(self, cases, srv=None):
        for i, tc in enumerate(cases):
            with self.subTest(tc.name(i)):
                self.expect(tc, srv)

    def mirror_log_count(self, mirror, path):
        """How many times the mirror's echo logged "Echoing back request made to PATH to client" (GetMirrorLogRegexp,
        DumpEchoLogs of the Deployment's pods)."""
        ref = mirror.BackendRef
        echo = MODULE["echoes"][ref.Name]
        self.assertEqual(echo.namespace, ref.Namespace, "mirror %s is not in namespace %s" % (ref.Name,
                                                                                          ref.Namespace))
        rx = re.compile("Echoing back request made to %s to client" % re.escape(path))
        return sum(1 for line in echo.log().splitlines() if rx.search(line))

    def expect_mirrored_request(self, mirrors, path):
        """ExpectMirroredRequest: each mirror logs the request within RequestTimeout."""
        for m in mirrors:
            h.wait_until(lambda: self.mirror_log_count(m, path) > 0, timeout=REQUEST_TIMEOUT, interval=0.1,
                         what="the mirrored request %s in the log of %s/%s" % (path, m.BackendRef.Namespace,
                                                                              m.BackendRef.Name))


def listener(name, conditions, attached, kinds=(HTTPROUTE_KIND,)):
    return ListenerStatus(Name=name, SupportedKinds=list(kinds), Conditions=conditions, AttachedRoutes=attached)


# ============================================================================
# the suite's set-up (suite.go Setup): the GatewayClass is accepted, the base
# namespaces' Gateways and pods are ready
# ============================================================================

class SuiteSetup(GatewayConformanceCase):
    SERVE = True

    def test_setup(self):
        self.gwc_must_have_accepted_condition(GATEWAY_CLASS_NAME, "True")
        self.namespaces_must_be_ready([INFRA_NS, APP_BACKEND_NS, WEB_BACKEND_NS])


# ============================================================================
# Gateway tests (core: SupportGateway, SupportReferenceGrant)
# ============================================================================

class GatewayListenerUnsupportedProtocol(GatewayConformanceCase):
    """gateway-invalid-listeners-unsupported-protocol.go. The listeners are on port 1111, but what is asserted is
    the protocol's status (UnsupportedProtocol), which needs no port."""
    MANIFESTS = ["gateway-invalid-listeners-unsupported-protocol.yaml"]
    SERVE = False

    def test_GatewayListenerUnsupportedProtocol(self):
        with self.subTest("Gateway with no accepted listeners should not be accepted and the listener should have "
                          "the Accepted condition set to False with reason UnsupportedProtocol"):
            gwNN = NN(INFRA_NS, "gateway-only-unsupported-protocols")
            self.gateway_must_have_latest_conditions(gwNN)
            self.gateway_must_have_condition(gwNN, Condition("Accepted", "False", "ListenersNotValid"))
            self.gateway_status_must_have_listeners(gwNN, [
                listener("invalid", [Condition("Accepted", "False", "UnsupportedProtocol")], 0, kinds=()),
            ])
        with self.subTest("Gateway with at least one accepted listeners should be accepted and the listeners should "
                          "have the Accepted condition set accordingly"):
            gwNN = NN(INFRA_NS, "gateway-supported-and-unsupported-protocols")
            self.gateway_must_have_latest_conditions(gwNN)
            self.gateway_must_have_condition(gwNN, Condition("Accepted", "True", "ListenersNotValid"))
            self.gateway_status_must_have_listeners(gwNN, [
                listener("http", [Condition("Accepted", "True", "Accepted")], 0),
                listener("invalid", [Condition("Accepted", "False", "UnsupportedProtocol")], 0, kinds=()),
            ])


class GatewayInvalidParametersRef(GatewayConformanceCase):
    MANIFESTS = ["gateway-invalid-parameters-ref.yaml"]
    SERVE = False

    def test_GatewayInvalidParametersRef(self):
        gwNN = NN(INFRA_NS, "gateway-invalid-parameters-ref")
        self.gateway_must_have_latest_conditions(gwNN)
        self.gateway_must_have_condition(gwNN, Condition("Accepted", "False", "InvalidParameters"))


class GatewayInvalidRouteKind(GatewayConformanceCase):
    MANIFESTS = ["gateway-invalid-route-kind.yaml"]
    SERVE = False

    def test_GatewayInvalidRouteKind(self):
        with self.subTest("Gateway listener should have a false ResolvedRefs condition with reason "
                          "InvalidRouteKinds and no supportedKinds"):
            gwNN = NN(INFRA_NS, "gateway-only-invalid-route-kind")
            self.gateway_status_must_have_listeners(gwNN, [
                listener("http", [Condition("ResolvedRefs", "False", "InvalidRouteKinds")], 0, kinds=()),
            ])
        with self.subTest("Gateway listener should have a false ResolvedRefs condition with reason "
                          "InvalidRouteKinds and HTTPRoute must be put in the supportedKinds"):
            gwNN = NN(INFRA_NS, "gateway-supported-and-invalid-route-kind")
            self.gateway_status_must_have_listeners(gwNN, [
                listener("http", [Condition("ResolvedRefs", "False", "InvalidRouteKinds")], 0),
            ])


class GatewayInvalidTLSConfiguration(GatewayConformanceCase):
    MANIFESTS = ["gateway-invalid-tls-configuration.yaml"]
    SERVE = False

    def test_GatewayInvalidTLSConfiguration(self):
        listeners = [listener("https", [Condition("ResolvedRefs", "False", "InvalidCertificateRef")], 0)]
        for name, gw in [
            ("Nonexistent secret referenced as CertificateRef in a Gateway listener",
             "gateway-certificate-nonexistent-secret"),
            ("Unsupported group resource referenced as CertificateRef in a Gateway listener",
             "gateway-certificate-unsupported-group"),
            ("Unsupported kind resource referenced as CertificateRef in a Gateway listener",
             "gateway-certificate-unsupported-kind"),
            ("Malformed secret referenced as CertificateRef in a Gateway listener",
             "gateway-certificate-malformed-secret"),
        ]:
            with self.subTest(name):
                self.gateway_status_must_have_listeners(NN(INFRA_NS, gw), listeners)


GATEWAY_ADD_LISTENER_HTTP = """\
  - name: http
    port: 80
    protocol: HTTP
    hostname: data.test.com
    allowedRoutes:
      namespaces:
        from: All
"""

GATEWAY_REMOVE_LISTENER_HTTPS = """\
  - name: https
    port: 443
    protocol: HTTPS
    hostname: "secure.test.com"
    allowedRoutes:
      namespaces:
        from: All
    tls:
      certificateRefs:
      - group: ""
        kind: Secret
        name: tls-validity-checks-certificate
        namespace: gateway-conformance-infra
"""


class GatewayModifyListeners(GatewayConformanceCase):
    """The Gateways are patched by rewriting the file: a listener appended to gateway-add-listener, the https one
    taken out of gateway-remove-listener; metadata.generation 1, then 2."""
    MANIFESTS = ["gateway-modify-listeners.yaml"]
    GENERATIONS = {("Gateway", INFRA_NS, "gateway-add-listener"): 1,
                   ("Gateway", INFRA_NS, "gateway-remove-listener"): 1}
    F = "gateway-modify-listeners.yaml"

    def test_GatewayModifyListeners(self):
        any_ok = [Condition("Accepted", "True"), Condition("ResolvedRefs", "True")]
        with self.subTest("should be able to add a listener that then becomes available for routing traffic"):
            gwNN = NN(INFRA_NS, "gateway-add-listener")
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_must_have_latest_conditions(gwNN)

            def add(docs):
                doc = docs.doc("Gateway", gwNN.Name, INFRA_NS)
                docs.replace("Gateway", gwNN.Name, INFRA_NS, doc + GATEWAY_ADD_LISTENER_HTTP)
                self.folder.set_generation("Gateway", INFRA_NS, gwNN.Name, 2)
            self.rewrite(self.F, add)
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_status_must_have_listeners(gwNN, [listener("https", any_ok, 1), listener("http", any_ok, 1)])
            self.gateway_must_have_latest_conditions(gwNN)
        with self.subTest("should be able to remove listeners, which would then stop routing the relevant traffic"):
            gwNN = NN(INFRA_NS, "gateway-remove-listener")
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_must_have_latest_conditions(gwNN)

            def remove(docs):
                docs.edit("Gateway", gwNN.Name, INFRA_NS, GATEWAY_REMOVE_LISTENER_HTTPS, "")
                self.folder.set_generation("Gateway", INFRA_NS, gwNN.Name, 2)
            self.rewrite(self.F, remove)
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_status_must_have_listeners(gwNN, [listener("http", any_ok, 1)])
            self.gateway_must_have_latest_conditions(gwNN)


class GatewayNameMaximumLength(GatewayConformanceCase):
    """Only that the 253-character Gateway is reconciled (has status, with the latest observedGeneration)."""
    MANIFESTS = ["gateway-name-maximum-length.yaml"]
    SERVE = False

    def test_GatewayNameMaximumLength(self):
        prefix = "gateway-name-maximum-length-"
        gwNN = NN(INFRA_NS, prefix + "a" * (253 - len(prefix)))
        self.gateway_must_have_latest_conditions(gwNN)


GATEWAY_ALTERNATE_LISTENER = """\
    - name: alternate
      hostname: "foo.com"
      port: 80
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: All
"""


class GatewayObservedGenerationBump(GatewayConformanceCase):
    MANIFESTS = ["gateway-observed-generation-bump.yaml"]
    GENERATIONS = {("Gateway", INFRA_NS, "gateway-observed-generation-bump"): 1}

    def test_GatewayObservedGenerationBump(self):
        gwNN = NN(INFRA_NS, "gateway-observed-generation-bump")
        with self.subTest("observedGeneration should increment"):
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_must_have_latest_conditions(gwNN)

            def mutate(docs):
                doc = docs.doc("Gateway", gwNN.Name, INFRA_NS)
                docs.replace("Gateway", gwNN.Name, INFRA_NS, doc + GATEWAY_ALTERNATE_LISTENER)
                self.folder.set_generation("Gateway", INFRA_NS, gwNN.Name, 2)
            self.rewrite("gateway-observed-generation-bump.yaml", mutate)
            self.namespaces_must_be_ready([INFRA_NS])
            self.gateway_must_have_latest_conditions(gwNN)


class GatewaySecretInvalidReferenceGrant(GatewayConformanceCase):
    MANIFESTS = ["gateway-secret-invalid-reference-grant.yaml"]
    SERVE = False

    def test_GatewaySecretInvalidReferenceGrant(self):
        gwNN = NN(INFRA_NS, "gateway-secret-invalid-reference-grant")
        with self.subTest("Gateway listener should have a false ResolvedRefs condition with reason RefNotPermitted"):
            self.gateway_status_must_have_listeners(gwNN, [
                listener("https", [Condition("ResolvedRefs", "False", "RefNotPermitted")], 0)])


class GatewaySecretMissingReferenceGrant(GatewayConformanceCase):
    MANIFESTS = ["gateway-secret-missing-reference-grant.yaml"]
    SERVE = False

    def test_GatewaySecretMissingReferenceGrant(self):
        gwNN = NN(INFRA_NS, "gateway-secret-missing-reference-grant")
        with self.subTest("Gateway listener should have a false ResolvedRefs condition with reason RefNotPermitted"):
            self.gateway_status_must_have_listeners(gwNN, [
                listener("https", [Condition("ResolvedRefs", "False", "RefNotPermitted")], 0)])


class GatewaySecretReferenceGrantAllInNamespace(GatewayConformanceCase):
    MANIFESTS = ["gateway-secret-reference-grant-all-in-namespace.yaml"]
    SERVE = False

    def test_GatewaySecretReferenceGrantAllInNamespace(self):
        gwNN = NN(INFRA_NS, "gateway-secret-reference-grant-all-in-namespace")
        with self.subTest("Gateway listener should have a true ResolvedRefs condition and a true Programmed "
                          "condition"):
            self.gateway_status_must_have_listeners(gwNN, [listener("https", [
                Condition("Programmed", "True", "Programmed"), Condition("ResolvedRefs", "True")], 0)])


class GatewaySecretReferenceGrantSpecific(GatewayConformanceCase):
    MANIFESTS = ["gateway-secret-reference-grant-specific.yaml"]
    SERVE = False

    def test_GatewaySecretReferenceGrantSpecific(self):
        gwNN = NN(INFRA_NS, "gateway-secret-reference-grant-specific")
        with self.subTest("Gateway listener should have a true ResolvedRefs condition and a true Programmed "
                          "condition"):
            self.gateway_status_must_have_listeners(gwNN, [listener("https", [
                Condition("Programmed", "True", "Programmed"), Condition("ResolvedRefs", "True")], 0)])


class GatewayWithAttachedRoutes(GatewayConformanceCase):
    MANIFESTS = ["gateway-with-attached-routes.yaml"]
    SERVE = False

    def test_GatewayWithAttachedRoutes(self):
        any_ok = [Condition("Accepted", "True"), Condition("ResolvedRefs", "True")]
        with self.subTest("Gateway listener should have one valid http routes attached"):
            gwNN = NN(INFRA_NS, "gateway-with-one-attached-route")
            self.gateway_status_must_have_listeners(gwNN, [listener("http", any_ok, 1)])
        with self.subTest("Gateway listener should have two valid http routes attached"):
            gwNN = NN(INFRA_NS, "gateway-with-two-attached-routes")
            self.gateway_status_must_have_listeners(gwNN, [listener("http", any_ok, 2)])
            self.httproute_must_have_condition(NN(INFRA_NS, "http-route-not-accepted"), gwNN,
                                               Condition("Accepted", "False", "NoMatchingListenerHostname"))
        with self.subTest("Gateway listener should have AttachedRoutes set even when Gateway has unresolved refs"):
            gwNN = NN(INFRA_NS, "unresolved-gateway-with-one-attached-unresolved-route")
            self.gateway_status_must_have_listeners(gwNN, [listener("tls", [
                Condition("Programmed", "False"), Condition("ResolvedRefs", "False")], 1)])
            self.httproute_must_have_condition(NN(INFRA_NS, "http-route-4"), gwNN,
                                               Condition("ResolvedRefs", "False"))


class GatewayClassObservedGenerationBump(GatewayConformanceCase):
    MANIFESTS = ["gatewayclass-observed-generation-bump.yaml"]
    GENERATIONS = {("GatewayClass", None, "gatewayclass-observed-generation-bump"): 1}
    SERVE = False

    def test_GatewayClassObservedGenerationBump(self):
        name = "gatewayclass-observed-generation-bump"
        with self.subTest("observedGeneration should increment"):
            self.gwc_must_have_accepted_condition(name)
            self.gatewayclass_must_have_latest_conditions(name)

            def mutate(docs):
                docs.edit("GatewayClass", name, None, 'description: "old"', 'description: "new"')
                self.folder.set_generation("GatewayClass", None, name, 2)
            self.rewrite("gatewayclass-observed-generation-bump.yaml", mutate)
            self.gwc_must_have_accepted_condition(name)
            self.gatewayclass_must_have_latest_conditions(name)


# ============================================================================
# HTTPRoute tests
# ============================================================================

# The CORS cases' stand-in for "the preflight was answered by the Gateway": no echo JSON, so the captured request
# has only the method (roundtripper: "assume it made the right request if the service being called isn't echoing").
CORS_NOT_ECHOED = ExpectedRequest(Request=Request(Host="", Method="OPTIONS", Path="", Headers=None))


class HTTPRouteCORS(GatewayConformanceCase):
    MANIFESTS = ["httproute-cors.yaml"]

    def test_HTTPRouteCORS(self):
        ns = INFRA_NS
        routeNN1 = NN(ns, "cors-multiple-origins-methods-headers")
        routeNN2 = NN(ns, "cors-wildcard-methods")
        routeNN3 = NN(ns, "cors-wildcard-origin")
        routeNN4 = NN(ns, "cors-wildcard-methods-headers")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN1, routeNN2)
        for r in (routeNN1, routeNN2, routeNN3, routeNN4):
            self.httproute_must_have_resolved_refs_true(r, gwNN)

        def preflight_1(origin):
            return ExpectedResponse(
                Request=Request(Path="/cors-1", Method="OPTIONS", Headers={
                    "Origin": origin,
                    "access-control-request-method": "GET",
                    "access-control-request-headers": "x-header-1, x-header-2",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={
                        "access-control-allow-origin": [origin],
                        "access-control-allow-methods": ["GET, OPTIONS", "OPTIONS, GET"],
                        "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
                        "access-control-expose-headers": ["x-header-3, x-header-4", "x-header-4, x-header-3"],
                        "access-control-max-age": ["3600"],
                        "access-control-allow-credentials": ["true"],
                    },
                    IgnoreWhitespace=True))

        cases = [
            dataclasses.replace(preflight_1("https://www.foo.com"),
                                TestCaseName="CORS preflight request from an exact matching origin should be allowed"),
            dataclasses.replace(preflight_1("https://www.bar.com"),
                                TestCaseName="CORS preflight request from a wildcard matching origin should be "
                                             "allowed"),
            dataclasses.replace(preflight_1("https://xpto.www.bar.com"),
                                TestCaseName="CORS preflight request from a wildcard matching any number of periods "
                                             "left to '*' should be allowed"),
            ExpectedResponse(
                TestCaseName="CORS preflight request from a non-matching origin should not be allowed",
                Request=Request(Path="/cors-1", Method="OPTIONS", Headers={
                    "Origin": "https://foobar.com",
                    "access-control-request-method": "GET",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(StatusCodes=[200, 204, 403], AbsentHeaders=["access-control-allow-origin"])),
            ExpectedResponse(
                TestCaseName="Simple request from an exact matching origin should be allowed",
                Namespace=ns,
                Request=Request(Path="/cors-1", Method="GET", Headers={
                    "Origin": "https://www.foo.com",
                    "access-control-request-method": "GET",
                    "access-control-request-headers": "x-header-1, x-header-2",
                }),
                Response=Response(StatusCode=200, Headers={"access-control-allow-origin": "https://www.foo.com"})),
            ExpectedResponse(
                TestCaseName="Simple request from a wildcard matching origin should be allowed",
                Namespace=ns,
                Request=Request(Path="/cors-1", Method="GET", Headers={
                    "Origin": "https://www.bar.com",
                    "access-control-request-method": "GET",
                    "access-control-request-headers": "x-header-1, x-header-2",
                }),
                Response=Response(StatusCode=200, Headers={"access-control-allow-origin": "https://www.bar.com"})),
            ExpectedResponse(
                TestCaseName="Simple request from a non-matching origin should not be allowed",
                Namespace=ns,
                Request=Request(Path="/cors-1", Method="GET", Headers={
                    "Origin": "https://foobar.com",
                    "access-control-request-method": "GET",
                }),
                Response=Response(AbsentHeaders=["access-control-allow-origin"])),
            ExpectedResponse(
                TestCaseName="CORS preflight request with POST method should be allowed by allowMethods with wildcard",
                Request=Request(Path="/cors-2", Method="OPTIONS", Headers={
                    "Origin": "https://www.foo.com",
                    "access-control-request-method": "POST",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={"access-control-allow-methods": ["POST", "*"]},
                    Headers={"access-control-allow-origin": "https://www.foo.com"},
                    AbsentHeaders=["access-control-allow-credentials"])),
            ExpectedResponse(
                TestCaseName="CORS preflight request should not receive access-control-allow-credentials header "
                             "without access-control-allow-credentials set to true",
                Request=Request(Path="/cors-2", Method="OPTIONS", Headers={
                    "Origin": "https://www.foo.com",
                    "access-control-request-method": "POST",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(StatusCodes=[200, 204], AbsentHeaders=["Access-Control-Allow-Credentials"])),
            ExpectedResponse(
                TestCaseName="CORS preflight request from a wildcard origin should return header with '*' or with "
                             "the requested Origin",
                Namespace="",
                Request=Request(Path="/cors-wildcard-origin", Method="OPTIONS", Headers={
                    "Origin": "https://foobar.com",
                    "access-control-request-method": "PUT",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={
                        "access-control-allow-origin": ["https://foobar.com", "*"],
                        "access-control-allow-methods": ["PUT"],
                    },
                    AbsentHeaders=["Access-Control-Allow-Credentials"])),
            ExpectedResponse(
                TestCaseName="CORS preflight request from a wildcard origin containing a port should return header "
                             "with '*' or with the requested Origin",
                Namespace="",
                Request=Request(Path="/cors-wildcard-origin", Method="OPTIONS", Headers={
                    "Origin": "https://foobar.com:12345",
                    "access-control-request-method": "PUT",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={
                        "access-control-allow-origin": ["https://foobar.com:12345", "*"],
                        "access-control-allow-methods": ["PUT"],
                    },
                    AbsentHeaders=["Access-Control-Allow-Credentials"])),
            ExpectedResponse(
                TestCaseName="Request from a wildcard origin containing a port should return header with '*' or with "
                             "the requested Origin",
                Namespace=ns,
                Request=Request(Path="/cors-wildcard-origin", Method="PUT",
                                Headers={"Origin": "https://foobar.com:12345"}),
                Response=Response(StatusCode=200, ValidHeaderValues={
                    "access-control-allow-origin": ["https://foobar.com:12345", "*"]})),
            ExpectedResponse(
                TestCaseName="Simple request from a wildcard origin should return header with '*' or with the "
                             "requested Origin",
                Namespace=ns,
                Request=Request(Path="/cors-wildcard-origin", Method="PUT", Headers={"Origin": "https://foobar.com"}),
                Response=Response(StatusCode=200,
                                  ValidHeaderValues={"access-control-allow-origin": ["https://foobar.com", "*"]},
                                  AbsentHeaders=["Access-Control-Allow-Credentials"])),
            ExpectedResponse(
                TestCaseName="CORS preflight request requesting specific method and headers should be allowed and "
                             "always echo the origin with allowCredentials set to true",
                Request=Request(Path="/cors-wildcard-methods-headers", Method="OPTIONS", Headers={
                    "Origin": "https://other.foo.com",
                    "access-control-request-method": "PUT",
                    "access-control-request-headers": "x-header-1, x-header-2",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={
                        "access-control-allow-origin": ["https://other.foo.com"],
                        "access-control-allow-methods": ["PUT"],
                        "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
                        "access-control-allow-credentials": ["true"],
                    },
                    IgnoreWhitespace=True)),
            ExpectedResponse(
                TestCaseName="CORS preflight request requesting specific method and headers should hide "
                             "access-control-allow-credentials headers with allowCredentials set to false",
                Request=Request(Path="/cors-wildcard-methods-headers-unauth", Method="OPTIONS", Headers={
                    "Origin": "https://other.foo.com",
                    "access-control-request-method": "PUT",
                    "access-control-request-headers": "x-header-1, x-header-2",
                }),
                ExpectedRequest=copy.deepcopy(CORS_NOT_ECHOED),
                Namespace="",
                Response=Response(
                    StatusCodes=[200, 204],
                    ValidHeaderValues={
                        "access-control-allow-origin": ["https://other.foo.com", "*"],
                        "access-control-allow-methods": ["PUT", "*"],
                        "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1", "*"],
                    },
                    AbsentHeaders=["access-control-allow-credentials"],
                    IgnoreWhitespace=True)),
            ExpectedResponse(
                TestCaseName="CORS request should receive access-control-allow-credentials header with "
                             "allowCredentials set to true",
                Request=Request(Path="/cors-wildcard-methods-headers", Method="GET",
                                Headers={"Origin": "https://other.foo.com"}),
                Namespace=ns,
                Response=Response(StatusCode=200, ValidHeaderValues={
                    "access-control-allow-origin": ["https://other.foo.com"],
                    "access-control-allow-credentials": ["true"]})),
            ExpectedResponse(
                TestCaseName="CORS request should not receive access-control-allow-credentials header without "
                             "allowCredentials set to true",
                Request=Request(Path="/cors-wildcard-methods-headers-unauth", Method="GET",
                                Headers={"Origin": "https://other.foo.com"}),
                Namespace=ns,
                Response=Response(StatusCode=200,
                                  ValidHeaderValues={"access-control-allow-origin": ["https://other.foo.com", "*"]},
                                  AbsentHeaders=["access-control-allow-credentials"])),
        ]
        self.run_cases(cases)


class HTTPRouteCrossNamespace(GatewayConformanceCase):
    MANIFESTS = ["httproute-cross-namespace.yaml"]

    def test_HTTPRouteCrossNamespace(self):
        routeNN = NN(WEB_BACKEND_NS, "cross-namespace")
        gwNN = NN(INFRA_NS, "backend-namespaces")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        with self.subTest("Simple HTTP request should reach web-backend"):
            self.expect(ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=200),
                                         Backend="web-backend", Namespace=WEB_BACKEND_NS))


class HTTPRouteExactPathMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-exact-path-matching.yaml"]

    def test_HTTPRouteExactPathMatching(self):
        ns = INFRA_NS
        routeNN = NN(ns, "exact-matching")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/one"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/two"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/one/example"), Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/two/"), Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/Two"), Response=Response(StatusCode=404)),
        ])


class HTTPRouteHeaderMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-header-matching.yaml"]

    def test_HTTPRouteHeaderMatching(self):
        ns = INFRA_NS
        routeNN = NN(ns, "header-matching")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "one"}), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "two"}), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "two", "Color": "orange"}), Backend=V1,
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "two", "Color": "blue"}), Backend=V2,
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "orange"}),
                             Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/", Headers={"Some-Other-Header": "one"}),
                             Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "blue"}), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "green"}), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "red"}), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "yellow"}), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Color": "purple"}),
                             Response=Response(StatusCode=404)),
        ])


class HTTPRouteHostnameIntersection(GatewayConformanceCase):
    MANIFESTS = ["httproute-hostname-intersection.yaml"]

    def test_HTTPRouteHostnameIntersection(self):
        ns = INFRA_NS
        gwNN = NN(ns, "httproute-hostname-intersection")
        # This test creates an additional Gateway in the gateway-conformance-infra namespace.
        self.namespaces_must_be_ready([ns])
        with self.subTest("HTTPRoutes that do intersect with listener hostnames"):
            routes = [NN(ns, "specific-host-matches-listener-specific-host"),
                      NN(ns, "specific-host-matches-listener-wildcard-host"),
                      NN(ns, "wildcard-host-matches-listener-specific-host"),
                      NN(ns, "wildcard-host-matches-listener-wildcard-host")]
            self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), *routes)
            for routeNN in routes:
                self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
            not_found = Response(StatusCode=404)
            self.run_cases([
                # specific-host-matches-listener-specific-host
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/s1"), Backend=V1, Namespace=ns),
                # Port value within the Host header MUST not be considered while performing match against hostname.
                ExpectedResponse(Request=Request(Host="very.specific.com:1234", Path="/s1"), Backend=V1,
                                 Namespace=ns),
                ExpectedResponse(Request=Request(Host="non.matching.com", Path="/s1"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.nonmatchingwildcard.io", Path="/s1"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.wildcard.io", Path="/s1"), Response=not_found),
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/non-matching-prefix"),
                                 Response=not_found),
                # specific-host-matches-listener-wildcard-host
                ExpectedResponse(Request=Request(Host="foo.wildcard.io", Path="/s2"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="bar.wildcard.io", Path="/s2"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="foo.bar.wildcard.io", Path="/s2"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="non.matching.com", Path="/s2"), Response=not_found),
                ExpectedResponse(Request=Request(Host="wildcard.io", Path="/s2"), Response=not_found),
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/s2"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.wildcard.io", Path="/non-matching-prefix"),
                                 Response=not_found),
                # wildcard-host-matches-listener-specific-host
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/s3"), Backend=V3, Namespace=ns),
                ExpectedResponse(Request=Request(Host="non.matching.com", Path="/s3"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.specific.com", Path="/s3"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.wildcard.io", Path="/s3"), Response=not_found),
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/non-matching-prefix"),
                                 Response=not_found),
                # wildcard-host-matches-listener-wildcard-host
                ExpectedResponse(Request=Request(Host="foo.anotherwildcard.io", Path="/s4"), Backend=V1,
                                 Namespace=ns),
                ExpectedResponse(Request=Request(Host="bar.anotherwildcard.io", Path="/s4"), Backend=V1,
                                 Namespace=ns),
                ExpectedResponse(Request=Request(Host="foo.bar.anotherwildcard.io", Path="/s4"), Backend=V1,
                                 Namespace=ns),
                ExpectedResponse(Request=Request(Host="anotherwildcard.io", Path="/s4"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.wildcard.io", Path="/s4"), Response=not_found),
                ExpectedResponse(Request=Request(Host="very.specific.com", Path="/s4"), Response=not_found),
                ExpectedResponse(Request=Request(Host="foo.anotherwildcard.io", Path="/non-matching-prefix"),
                                 Response=not_found),
            ])
        with self.subTest("HTTPRoutes that do not intersect with listener hostnames"):
            self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN))
            routeNN = NN(ns, "no-intersecting-hosts")
            self.httproute_must_have_parents(routeNN, [RouteParentStatus(
                ParentRef=parent_ref_to(gwNN), ControllerName=CONTROLLER_NAME,
                Conditions=[Condition("Accepted", "False", "NoMatchingListenerHostname")])], True)
            self.run_cases([
                ExpectedResponse(Request=Request(Host="specific.but.wrong.com", Path="/s5"),
                                 Response=Response(StatusCode=404)),
                ExpectedResponse(Request=Request(Host="wildcard.io", Path="/s5"), Response=Response(StatusCode=404)),
            ])
        with self.subTest("HTTPRoutes have to be counted in AttachedRoutes only if they are Accepted"):
            ok = [Condition("Accepted", "True"), Condition("ResolvedRefs", "True")]
            self.gateway_status_must_have_listeners(gwNN, [
                # specific-host-matches-listener-specific-host and wildcard-host-matches-listener-specific-host
                listener("listener-1", ok, 2),
                listener("listener-2", ok, 1),  # wildcard-host-matches-listener-wildcard-host
                listener("listener-3", ok, 1),  # wildcard-host-matches-listener-wildcard-host
            ])
        with self.subTest("HTTPRoutes intersects with an unspecified hostname listener"):
            routes = [NN(ns, "httproute-hostname-intersection-all")]
            gwNN_all = NN(ns, "httproute-hostname-intersection-all")
            self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN_all), *routes)
            for routeNN in routes:
                self.httproute_must_have_resolved_refs_true(routeNN, gwNN_all)
            self.run_cases([
                ExpectedResponse(Request=Request(Host="first.com", Path="/"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="sub.first.com", Path="/"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="second.com", Path="/"), Backend=V2, Namespace=ns),
                ExpectedResponse(Request=Request(Host="sub.second.com", Path="/"), Backend=V2, Namespace=ns),
                # Following should fail since it is not specified on the HTTPRoute
                ExpectedResponse(Request=Request(Host="third.com", Path="/"), Namespace=ns,
                                 Response=Response(StatusCode=404)),
                ExpectedResponse(Request=Request(Host="sub.third.com", Path="/"), Namespace=ns,
                                 Response=Response(StatusCode=404)),
            ])


class HTTPRouteHTTPSListener(GatewayConformanceCase):
    MANIFESTS = ["httproute-https-listener.yaml"]

    def test_HTTPRouteHTTPSListener(self):
        ns = INFRA_NS
        routeNN = NN(ns, "httproute-https-test")
        routeNoHostNN = NN(ns, "httproute-https-test-no-hostname")
        gwNN = NN(ns, "same-namespace-with-https-listener")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN, routeNoHostNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.httproute_must_have_resolved_refs_true(routeNoHostNN, gwNN)
        server_cert = MODULE["infra_cert"].crt  # the Secret tls-validity-checks-certificate's tls.crt
        for i, (host, status_code, backend) in enumerate([
            ("example.org", 200, V1),
            ("unknown-example.org", 404, ""),
            ("second-example.org", 200, V2),
        ]):
            expected = ExpectedResponse(Request=Request(Host=host, Path="/"),
                                        Response=Response(StatusCode=status_code), Backend=backend,
                                        Namespace=INFRA_NS)
            with self.subTest(expected.name(i)):
                self.expect_tls(expected, server_cert, host)


class HTTPRouteInvalidBackendRefUnknownKind(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-backendref-unknown-kind.yaml"]

    def test_HTTPRouteInvalidBackendRefUnknownKind(self):
        routeNN = NN(INFRA_NS, "invalid-backend-ref-unknown-kind")
        gwNN = NN(INFRA_NS, "same-namespace")
        # Both the Gateway and the Route are Accepted.
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        with self.subTest("HTTPRoute with Invalid Kind has a ResolvedRefs Condition with status False and Reason "
                          "InvalidKind"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("ResolvedRefs", "False", "InvalidKind"))
        with self.subTest("HTTP Request to invalid backend with invalid Kind receives a 500"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/v2"),
                                         Response=Response(StatusCode=500)))


class HTTPRouteInvalidCrossNamespaceBackendRef(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-cross-namespace-backend-ref.yaml"]

    def test_HTTPRouteInvalidCrossNamespaceBackendRef(self):
        routeNN = NN(INFRA_NS, "invalid-cross-namespace-backend-ref")
        gwNN = NN(INFRA_NS, "same-namespace")
        # The Route must be Attached.
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        with self.subTest("HTTPRoute with a cross-namespace BackendRef and no ReferenceGrant has a ResolvedRefs "
                          "Condition with status False and Reason RefNotPermitted"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("ResolvedRefs", "False", "RefNotPermitted"))
        with self.subTest("HTTP Request to invalid cross-namespace backend must receive a 500"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=500)))


class HTTPRouteInvalidCrossNamespaceParentRef(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-cross-namespace-parent-ref.yaml"]
    SERVE = False

    def test_HTTPRouteInvalidCrossNamespaceParentRef(self):
        gwNN = NN(INFRA_NS, "same-namespace")
        routeNN = NN(WEB_BACKEND_NS, "invalid-cross-namespace-parent-ref")
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        with self.subTest("HTTPRoute should have an Accepted: false condition with reason NotAllowedByListeners"):
            self.httproute_must_have_condition(routeNN, gwNN,
                                               Condition("Accepted", "False", "NotAllowedByListeners"))
        with self.subTest("Route should not have Parents set in status"):
            self.httproute_must_have_no_accepted_parents(routeNN)
        with self.subTest("Gateway should have 0 Routes attached"):
            self.gateway_must_have_zero_routes(gwNN)


class HTTPRouteInvalidNonExistentBackendRef(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-nonexistent-backendref.yaml"]

    def test_HTTPRouteInvalidNonExistentBackendRef(self):
        routeNN = NN(INFRA_NS, "invalid-nonexistent-backend-ref")
        gwNN = NN(INFRA_NS, "same-namespace")
        # Gateway and Route must be Accepted.
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        with self.subTest("HTTPRoute with only a nonexistent BackendRef has a ResolvedRefs Condition with status "
                          "False and Reason BackendNotFound"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("ResolvedRefs", "False", "BackendNotFound"))
        with self.subTest("HTTP Request to invalid nonexistent backend receive a 500"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=500)))


class HTTPRouteInvalidParentRefNotMatchingSectionName(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-parentref-not-matching-section-name.yaml"]
    SERVE = False

    def test_HTTPRouteInvalidParentRefNotMatchingSectionName(self):
        routeNN = NN(INFRA_NS, "httproute-listener-not-matching-section-name")
        gwNN = NN(INFRA_NS, "same-namespace")
        with self.subTest("HTTPRoute with no matching sectionName in ParentRef has an Accepted Condition with status "
                          "False and Reason NoMatchingParent"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("Accepted", "False", "NoMatchingParent"))
        with self.subTest("Route should not have Parents accepted in status"):
            self.httproute_must_have_no_accepted_parents(routeNN)
        with self.subTest("Gateway should have 0 Routes attached"):
            self.gateway_must_have_zero_routes(gwNN)


class HTTPRouteInvalidParentRefSectionNameNotMatchingPort(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-parentref-section-name-not-matching-port.yaml"]
    SERVE = False

    def test_HTTPRouteInvalidParentRefSectionNameNotMatchingPort(self):
        routeNN = NN(INFRA_NS, "httproute-listener-section-name-not-matching-port")
        gwNN = NN(INFRA_NS, "gateway-with-one-not-matching-port-and-section-name-route")
        with self.subTest("HTTPRoute with sectionName does not match Port in ParentRef has an Accepted Condition "
                          "with status False and Reason NoMatchingParent"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("Accepted", "False", "NoMatchingParent"))
        with self.subTest("Route should not have Parents accepted in status"):
            self.httproute_must_have_no_accepted_parents(routeNN)
        with self.subTest("Gateway should have 0 Routes attached"):
            self.gateway_must_have_zero_routes(gwNN)


class HTTPRouteInvalidReferenceGrant(GatewayConformanceCase):
    MANIFESTS = ["httproute-invalid-reference-grant.yaml"]

    def test_HTTPRouteInvalidReferenceGrant(self):
        routeNN = NN(INFRA_NS, "reference-grant")
        gwNN = NN(INFRA_NS, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        with self.subTest("HTTPRoute with BackendRef in another namespace and no ReferenceGrant covering the Service "
                          "has a ResolvedRefs Condition with status False and Reason RefNotPermitted"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("ResolvedRefs", "False", "RefNotPermitted"))
        with self.subTest("Simple HTTP request not should reach web-backend"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=500),
                                         Backend="web-backend", Namespace=WEB_BACKEND_NS))


class HTTPRouteListenerHostnameMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-listener-hostname-matching.yaml"]

    def test_HTTPRouteListenerHostnameMatching(self):
        ns = INFRA_NS
        # This test creates an additional Gateway in the gateway-conformance-infra namespace.
        self.namespaces_must_be_ready([ns])
        routeNN1, routeNN2, routeNN3 = NN(ns, "backend-v1"), NN(ns, "backend-v2"), NN(ns, "backend-v3")
        gwNN = NN(ns, "httproute-listener-hostname-matching")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-1"), routeNN1)
        self.httproute_must_have_resolved_refs_true(routeNN1, gwNN)
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-2"), routeNN2)
        self.httproute_must_have_resolved_refs_true(routeNN2, gwNN)
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-3", "listener-4"), routeNN3)
        self.httproute_must_have_resolved_refs_true(routeNN3, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Host="bar.com", Path="/"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="foo.bar.com", Path="/"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Host="baz.bar.com", Path="/"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Host="boo.bar.com", Path="/"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Host="multiple.prefixes.bar.com", Path="/"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Host="multiple.prefixes.foo.com", Path="/"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Host="foo.com", Path="/"), Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Host="no.matching.host", Path="/"), Response=Response(StatusCode=404)),
        ])


@unittest.skip(PORT_SKIP)
class HTTPRouteListenerPortMatching(GatewayConformanceCase):
    """Listeners on 80, 8080 and 8090; each port is a separate address (gwAddr80, gwAddr8080, gwAddr8090). The
    table is upstream's; run it once ingressd serves listeners on other ports in file mode."""
    MANIFESTS = ["httproute-listener-port-matching.yaml"]

    def test_HTTPRouteListenerPortMatching(self):
        ns = INFRA_NS
        self.namespaces_must_be_ready([ns])
        routeNN1, routeNN2, routeNN3 = NN(ns, "backend-v1"), NN(ns, "backend-v2"), NN(ns, "backend-v3")
        gwNN = NN(ns, "httproute-listener-port-matching")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-1"), routeNN1)
        self.httproute_must_have_resolved_refs_true(routeNN1, gwNN)
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-2"), routeNN2)
        self.httproute_must_have_resolved_refs_true(routeNN2, gwNN)
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN, "listener-4"), routeNN3)
        self.httproute_must_have_resolved_refs_true(routeNN3, gwNN)
        cases = [
            ExpectedResponse(Request=Request(Host="foo.com", Path="/"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="foo.com:8080", Path="/"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Host="bar.com:8080", Path="/"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Host="foo.com:8090", Path="/"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Host="bar.com:8090", Path="/"), Response=Response(StatusCode=404)),
        ]
        for i, tc in enumerate(cases):
            with self.subTest(tc.name(i)):
                # gwAddr80, gwAddr8080 or gwAddr8090 by the port in the Host
                hostport = tc.Request.Host.split(":")
                self.expect(tc, self.gateway_address(int(hostport[1]) if len(hostport) == 2 else 80))


class HTTPRouteMatchingAcrossRoutes(GatewayConformanceCase):
    MANIFESTS = ["httproute-matching-across-routes.yaml"]

    def test_HTTPRouteMatchingAcrossRoutes(self):
        ns = INFRA_NS
        routeNN1, routeNN2 = NN(ns, "matching-part1"), NN(ns, "matching-part2")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN1, routeNN2)
        self.httproute_must_have_resolved_refs_true(routeNN1, gwNN)
        self.httproute_must_have_resolved_refs_true(routeNN2, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Host="example.com", Path="/"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.com", Path="/example"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.net", Path="/example"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.com", Path="/example", Headers={"Version": "one"}),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.com", Path="/v2"), Backend=V2, Namespace=ns),
            # v2 matches are limited to example.com
            ExpectedResponse(Request=Request(Host="example.net", Path="/v2"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.com", Path="/v2/example"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Host="example.com", Path="/", Headers={"Version": "two"}), Backend=V2,
                             Namespace=ns),
        ])


class HTTPRouteMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-matching.yaml"]

    def test_HTTPRouteMatching(self):
        ns = INFRA_NS
        routeNN = NN(ns, "matching")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/example"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "one"}), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/v2"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/v2/example"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/", Headers={"Version": "two"}), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/v2/"), Backend=V2, Namespace=ns),
            # Not a path segment prefix so should not match /v2.
            ExpectedResponse(Request=Request(Path="/v2example"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/foo/v2/example"), Backend=V1, Namespace=ns),
        ])


class HTTPRouteMethodMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-method-matching.yaml"]

    def test_HTTPRouteMethodMatching(self):
        ns = INFRA_NS
        routeNN = NN(ns, "method-matching")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        cases = [
            ExpectedResponse(Request=Request(Method="POST", Path="/"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Method="GET", Path="/"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Method="HEAD", Path="/"), Response=Response(StatusCode=404)),
        ]
        # Combinations of method matching with other core matches.
        cases += [
            ExpectedResponse(Request=Request(Path="/path1", Method="GET"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "one"}, Path="/", Method="PUT"), Backend=V2,
                             Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "two"}, Path="/path2", Method="POST"), Backend=V3,
                             Namespace=ns),
        ]
        # Ensure that combinations of matches which are OR'd together match even if only one of them is used in the
        # request.
        cases += [
            ExpectedResponse(Request=Request(Path="/path3", Method="PATCH"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "three"}, Path="/path4", Method="DELETE"),
                             Backend=V1, Namespace=ns),
        ]
        # Ensure that combinations of match types which are ANDed together do not match when only a subset of match
        # types is used in the request.
        cases += [
            ExpectedResponse(Request=Request(Path="/", Method="PUT"), Response=Response(StatusCode=404)),
            ExpectedResponse(Request=Request(Path="/path4", Method="DELETE"), Response=Response(StatusCode=404)),
        ]
        # For requests that satisfy multiple matches, ensure precedence order defined by the Gateway API spec is
        # maintained.
        cases += [
            ExpectedResponse(Request=Request(Path="/path5", Method="PATCH"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "four"}, Path="/", Method="PATCH"), Backend=V2,
                             Namespace=ns),
        ]
        self.run_cases(cases)


class HTTPRouteMultipleGateways(GatewayConformanceCase):
    """Two Gateways with their own addresses: in file mode both would be ingressd's one HTTP port, where the two
    dedicated routes' "/" collide. So each subtest gets its own ingressd, serving the base without the other
    Gateway (the shared route's parentRef to it stays unresolved there); status comes from the full folder."""
    MANIFESTS = ["httproute-multiple-gateways.yaml"]
    SERVE = False

    def serve_only(self, gateway):
        other = {"same-namespace": "all-namespaces", "all-namespaces": "same-namespace"}[gateway]
        folder = Folder(self.res, self.MANIFESTS, omit_gateways=[other])
        srv = self.res.start_ingressd(folder.dir)
        self.log_on_failure(srv)
        return srv

    def test_HTTPRouteMultipleGateways(self):
        with self.subTest("Gateway same-namespace"):
            routeNNs = [NN(INFRA_NS, "multiple-gateways-shared-route"), NN(INFRA_NS, "same-namespace-dedicated-route")]
            gwNN = NN(INFRA_NS, "same-namespace")
            self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), *routeNNs)
            srv = self.serve_only("same-namespace")
            with self.subTest("shared route is accessible and routed to infra-backend-v1"):
                self.expect(ExpectedResponse(Request=Request(Path="/shared"), Response=Response(StatusCode=200),
                                             Backend=V1, Namespace=INFRA_NS), srv)
            with self.subTest("dedicated route is accessible and routed to infra-backend-v2"):
                self.expect(ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=200),
                                             Backend=V2, Namespace=INFRA_NS), srv)
        with self.subTest("Gateway all-namespaces"):
            routeNNs = [NN(INFRA_NS, "multiple-gateways-shared-route"), NN(INFRA_NS, "all-namespaces-dedicated-route")]
            gwNN = NN(INFRA_NS, "all-namespaces")
            self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), *routeNNs)
            srv = self.serve_only("all-namespaces")
            with self.subTest("shared route is accessible and routed to infra-backend-v1"):
                self.expect(ExpectedResponse(Request=Request(Path="/shared"), Response=Response(StatusCode=200),
                                             Backend=V1, Namespace=INFRA_NS), srv)
            with self.subTest("dedicated route is accessible and routed to infra-backend-v3"):
                self.expect(ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=200),
                                             Backend=V3, Namespace=INFRA_NS), srv)


class HTTPRouteObservedGenerationBump(GatewayConformanceCase):
    """The patch (rules[0].backendRefs[0].name: infra-backend-v2) is a rewrite of the file; metadata.generation
    1, then 2."""
    MANIFESTS = ["httproute-observed-generation-bump.yaml"]
    GENERATIONS = {("HTTPRoute", INFRA_NS, "observed-generation-bump"): 1}

    def test_HTTPRouteObservedGenerationBump(self):
        routeNN = NN(INFRA_NS, "observed-generation-bump")
        gwNN = NN(INFRA_NS, "same-namespace")
        with self.subTest("observedGeneration should increment"):
            self.namespaces_must_be_ready([INFRA_NS])
            self.httproute_must_have_latest_conditions(routeNN)

            def mutate(docs):
                docs.edit("HTTPRoute", routeNN.Name, INFRA_NS, "    - name: infra-backend-v1\n",
                          "    - name: infra-backend-v2\n")
                self.folder.set_generation("HTTPRoute", INFRA_NS, routeNN.Name, 2)
            self.rewrite("httproute-observed-generation-bump.yaml", mutate)
            self.httproute_must_have_condition(routeNN, gwNN, Condition("Accepted", "True"))
            self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
            self.httproute_must_have_latest_conditions(routeNN)


class HTTPRouteNoBackendRefs(GatewayConformanceCase):
    MANIFESTS = ["httproute-omitted-backendrefs.yaml"]

    def test_HTTPRouteNoBackendRefs(self):
        ns = INFRA_NS
        routeNN = NN(ns, "omitted-backendrefs")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/forward"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/omitted-no-forward"), Response=Response(StatusCode=500)),
            ExpectedResponse(Request=Request(Path="/empty-no-forward"), Response=Response(StatusCode=500)),
        ])


class HTTPRoutePartiallyInvalidViaInvalidReferenceGrant(GatewayConformanceCase):
    MANIFESTS = ["httproute-partially-invalid-via-invalid-reference-grant.yaml"]

    def test_HTTPRoutePartiallyInvalidViaInvalidReferenceGrant(self):
        routeNN = NN(INFRA_NS, "invalid-reference-grant")
        gwNN = NN(INFRA_NS, "same-namespace")
        # Route and Gateway must be Attached.
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        with self.subTest("HTTPRoute with BackendRef in another namespace and no ReferenceGrant covering the Service "
                          "has a ResolvedRefs Condition with status False and Reason RefNotPermitted"):
            self.httproute_must_have_condition(routeNN, gwNN, Condition("ResolvedRefs", "False", "RefNotPermitted"))
        with self.subTest("HTTP Request to invalid backend with missing referenceGrant should receive a 500"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/v2"),
                                         Response=Response(StatusCode=500)))
        with self.subTest("HTTP Request to valid sibling backend should succeed"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=200),
                                         Backend="app-backend-v1", Namespace=APP_BACKEND_NS))


class HTTPRoutePathMatchOrder(GatewayConformanceCase):
    MANIFESTS = ["httproute-path-match-order.yaml"]

    def test_HTTPRoutePathMatchOrder(self):
        ns = INFRA_NS
        routeNN = NN(ns, "path-matching-order")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/match/exact/one"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/match/exact"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/match"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/match/prefix/one/any"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/match/prefix/any"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/match/any"), Backend=V3, Namespace=ns),
        ])


class HTTPRouteQueryParamMatching(GatewayConformanceCase):
    MANIFESTS = ["httproute-query-param-matching.yaml"]

    def test_HTTPRouteQueryParamMatching(self):
        ns = INFRA_NS
        routeNN = NN(ns, "query-param-matching")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        not_found = Response(StatusCode=404)
        cases = [
            ExpectedResponse(Request=Request(Path="/?animal=whale"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?animal=dolphin"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?animal=dolphin&color=blue"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?ANIMAL=Whale"), Backend=V3, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?animal=whale&otherparam=irrelevant"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?animal=dolphin&color=yellow"), Backend=V2, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/?color=blue"), Response=not_found),
            ExpectedResponse(Request=Request(Path="/?animal=dog"), Response=not_found),
            ExpectedResponse(Request=Request(Path="/?animal=whaledolphin"), Response=not_found),
            ExpectedResponse(Request=Request(Path="/"), Response=not_found),
        ]
        # Combinations of query param matching with other core matches.
        cases += [
            ExpectedResponse(Request=Request(Path="/path1?animal=whale"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "one"}, Path="/?animal=whale"), Backend=V2,
                             Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "two"}, Path="/path2?animal=whale"), Backend=V3,
                             Namespace=ns),
        ]
        # Ensure that combinations of matches which are OR'd together match even if only one of them is used in the
        # request.
        cases += [
            ExpectedResponse(Request=Request(Path="/path3?animal=shark"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "three"}, Path="/path4?animal=kraken"), Backend=V1,
                             Namespace=ns),
        ]
        # Ensure that combinations of match types which are ANDed together do not match when only a subset of match
        # types is used in the request.
        cases += [
            ExpectedResponse(Request=Request(Path="/?animal=shark"), Response=not_found),
            ExpectedResponse(Request=Request(Path="/path4?animal=kraken"), Response=not_found),
        ]
        # For requests that satisfy multiple matches, ensure precedence order defined by the Gateway API spec is
        # maintained.
        cases += [
            ExpectedResponse(Request=Request(Path="/path5?animal=hydra"), Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Headers={"version": "four"}, Path="/?animal=hydra"), Backend=V3,
                             Namespace=ns),
        ]
        self.run_cases(cases)


def redirect_case(path, status, ns, **redirect):
    """The shape of every redirect case upstream: UnfollowRedirect, one status, a RedirectRequest, the namespace."""
    return ExpectedResponse(Request=Request(Path=path, UnfollowRedirect=True), Response=Response(StatusCode=status),
                            RedirectRequest=RedirectRequest(**redirect), Namespace=ns)


class HTTPRouteRedirectHostAndStatus(GatewayConformanceCase):
    MANIFESTS = ["httproute-redirect-host-and-status.yaml"]

    def test_HTTPRouteRedirectHostAndStatus(self):
        ns = INFRA_NS
        routeNN = NN(ns, "redirect-host-and-status")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            redirect_case("/hostname-redirect", 302, ns, Host="example.org"),
            redirect_case("/host-and-status", 301, ns, Host="example.org"),
        ])


class HTTPRouteRedirectPath(GatewayConformanceCase):
    MANIFESTS = ["httproute-redirect-path.yaml"]

    def test_HTTPRouteRedirectPath(self):
        ns = INFRA_NS
        routeNN = NN(ns, "redirect-path")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            redirect_case("/original-prefix/lemon", 302, ns, Path="/replacement-prefix/lemon"),
            redirect_case("/full/path/original", 302, ns, Path="/full-path-replacement"),
            redirect_case("/path-and-host", 302, ns, Host="example.org", Path="/replacement-prefix"),
            redirect_case("/path-and-status", 301, ns, Path="/replacement-prefix"),
            redirect_case("/full-path-and-host", 302, ns, Host="example.org", Path="/replacement-full"),
            redirect_case("/full-path-and-status", 301, ns, Path="/replacement-full"),
        ])


class HTTPRouteRedirectPort(GatewayConformanceCase):
    MANIFESTS = ["httproute-redirect-port.yaml"]

    def test_HTTPRouteRedirectPort(self):
        ns = INFRA_NS
        routeNN = NN(ns, "redirect-port")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            redirect_case("/port", 302, ns, Port="8083"),
            redirect_case("/port-and-host", 302, ns, Host="example.org", Port="8083"),
            redirect_case("/port-and-status", 301, ns, Port="8083"),
            redirect_case("/port-and-host-and-status", 302, ns, Port="8083", Host="example.org"),
        ])


class HTTPRouteRedirectScheme(GatewayConformanceCase):
    MANIFESTS = ["httproute-redirect-scheme.yaml"]

    def test_HTTPRouteRedirectScheme(self):
        ns = INFRA_NS
        routeNN = NN(ns, "redirect-scheme")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            redirect_case("/scheme", 302, ns, Scheme="https"),
            redirect_case("/scheme-and-host", 302, ns, Host="example.org", Scheme="https"),
            redirect_case("/scheme-and-status", 301, ns, Scheme="https"),
            redirect_case("/scheme-and-host-and-status", 302, ns, Scheme="https", Host="example.org"),
        ])


class HTTPRouteReferenceGrant(GatewayConformanceCase):
    """The ReferenceGrant is deleted by rewriting the file without it."""
    MANIFESTS = ["httproute-reference-grant.yaml"]

    def test_HTTPRouteReferenceGrant(self):
        routeNN = NN(INFRA_NS, "reference-grant")
        gwNN = NN(INFRA_NS, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        with self.subTest("Simple HTTP request should reach web-backend"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=200),
                                         Backend="web-backend", Namespace=WEB_BACKEND_NS))
        self.rewrite("httproute-reference-grant.yaml",
                     lambda docs: docs.remove("ReferenceGrant", "reference-grant", WEB_BACKEND_NS))
        with self.subTest("Simple HTTP request should return 500 after deleting the relevant reference grant"):
            self.expect(ExpectedResponse(Request=Request(Method="GET", Path="/"), Response=Response(StatusCode=500)))


def request_header_modifier_cases(ns):
    """HTTPRouteRequestHeaderModifier's table (also HTTPRouteBackendRequestHeaderModifier's)."""
    return [
        ExpectedResponse(
            Request=Request(Path="/set", Headers={"Some-Other-Header": "val"}),
            ExpectedRequest=ExpectedRequest(Request=Request(Path="/set", Headers={
                "Some-Other-Header": "val",
                "X-Header-Set": "set-overwrites-values",
            })),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            Request=Request(Path="/set", Headers={"Some-Other-Header": "val", "X-Header-Set": "some-other-value"}),
            ExpectedRequest=ExpectedRequest(Request=Request(Path="/set", Headers={
                "Some-Other-Header": "val",
                "X-Header-Set": "set-overwrites-values",
            })),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            Request=Request(Path="/add", Headers={"Some-Other-Header": "val"}),
            ExpectedRequest=ExpectedRequest(Request=Request(Path="/add", Headers={
                "Some-Other-Header": "val",
                "X-Header-Add": "add-appends-values",
            })),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            Request=Request(Path="/add", Headers={"Some-Other-Header": "val", "X-Header-Add": "some-other-value"}),
            ExpectedRequest=ExpectedRequest(Request=Request(Path="/add", Headers={
                "Some-Other-Header": "val",
                "X-Header-Add": "some-other-value,add-appends-values",
            })),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            Request=Request(Path="/remove", Headers={"X-Header-Remove": "val"}),
            ExpectedRequest=ExpectedRequest(Request=Request(Path="/remove"), AbsentHeaders=["X-Header-Remove"]),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            Request=Request(Path="/multiple", Headers={
                "X-Header-Set-2": "set-val-2",
                "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2",
                "Another-Header": "another-header-val",
            }),
            ExpectedRequest=ExpectedRequest(
                Request=Request(Path="/multiple", Headers={
                    "X-Header-Set-1": "header-set-1",
                    "X-Header-Set-2": "header-set-2",
                    "X-Header-Add-1": "header-add-1",
                    "X-Header-Add-2": "add-val-2,header-add-2",
                    "X-Header-Add-3": "header-add-3",
                    "Another-Header": "another-header-val",
                }),
                AbsentHeaders=["X-Header-Remove-1", "X-Header-Remove-2"]),
            Backend=V1, Namespace=ns),
        ExpectedResponse(
            # The filter uses canonicalized header names, the request uses lowercase names (which Go's Header.Set
            # canonicalizes on the wire, as make_request does).
            Request=Request(Path="/case-insensitivity", Headers={
                "x-header-set": "original-val-set",
                "x-header-add": "original-val-add",
                "x-header-remove": "original-val-remove",
                "Another-Header": "another-header-val",
            }),
            ExpectedRequest=ExpectedRequest(
                Request=Request(Path="/case-insensitivity", Headers={
                    "X-Header-Set": "header-set",
                    "X-Header-Add": "original-val-add,header-add",
                    "Another-Header": "another-header-val",
                }),
                AbsentHeaders=["x-header-remove", "X-Header-Remove"]),
            Backend=V1, Namespace=ns),
    ]


def request_header_modifier_test(t):
    """HTTPRouteRequestHeaderModifier.Test, which HTTPRouteBackendRequestHeaderModifier runs too."""
    ns = INFRA_NS
    routeNN = NN(ns, "request-header-modifier")
    gwNN = NN(ns, "same-namespace")
    t.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
    t.httproute_must_have_resolved_refs_true(routeNN, gwNN)
    t.run_cases(request_header_modifier_cases(ns))


class HTTPRouteRequestHeaderModifier(GatewayConformanceCase):
    MANIFESTS = ["httproute-request-header-modifier.yaml"]

    def test_HTTPRouteRequestHeaderModifier(self):
        request_header_modifier_test(self)


class HTTPRouteBackendRequestHeaderModifier(GatewayConformanceCase):
    """Upstream's Test is HTTPRouteRequestHeaderModifier.Test, with the filters on the backendRefs."""
    MANIFESTS = ["httproute-request-header-modifier-backend.yaml"]

    def test_HTTPRouteBackendRequestHeaderModifier(self):
        request_header_modifier_test(self)


class HTTPRouteRequestHeaderModifierBackendWeights(GatewayConformanceCase):
    MANIFESTS = ["httproute-request-header-modifier-backend-weights.yaml"]

    def test_HTTPRouteRequestHeaderModifierBackendWeights(self):
        ns = INFRA_NS
        routeNN = NN(ns, "request-header-modifier-backend-weights")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        expected = ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=200), Namespace=INFRA_NS)
        req = make_request(copy.deepcopy(expected))
        # Assert request succeeds before checking traffic
        self.expect(expected)
        for _ in range(100):
            creq, _ = capture_round_trip(self.srv, req)
            backends = {k.lower(): v for k, v in (creq.Headers or {}).items()}.get("backend") or []
            self.assertEqual(len(backends), 1, "expected a single 'Backend' header to have been set, got %d"
                             % len(backends))
            self.assertTrue(creq.Pod.startswith(backends[0]),
                            "expected the backendRef to have set the correct headers and sent the request to the "
                            "correct pod, got %r, want %r" % (creq.Pod, backends[0]))


def mirror_to(*names, ns=INFRA_NS, percent=None):
    return [MirroredBackend(BackendRef=BackendRef(Name=n, Namespace=ns), Percent=percent) for n in names]


class MirrorCase(GatewayConformanceCase):
    def run_mirror_cases(self, cases):
        for i, tc in enumerate(cases):
            with self.subTest(tc.name(i)):
                tc = copy.deepcopy(tc)
                add_request_id_query_param(tc, str(uuid.uuid4()))
                self.expect(tc)
                self.expect_mirrored_request(tc.MirroredTo, tc.Request.Path)


class HTTPRouteRequestMirror(MirrorCase):
    MANIFESTS = ["httproute-request-mirror.yaml"]

    def test_HTTPRouteRequestMirror(self):
        ns = INFRA_NS
        routeNN = NN(ns, "request-mirror")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.run_mirror_cases([
            ExpectedResponse(
                Request=Request(Path="/mirror"),
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/mirror")),
                Backend=V1, MirroredTo=mirror_to(V2), Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/mirror-and-modify-headers", Headers={
                    "X-Header-Remove": "remove-val",
                    "X-Header-Add-Append": "append-val-1",
                }),
                ExpectedRequest=ExpectedRequest(
                    Request=Request(Path="/mirror-and-modify-headers", Headers={
                        "X-Header-Add": "header-val-1",
                        "X-Header-Add-Append": "append-val-1,header-val-2",
                        "X-Header-Set": "set-overwrites-values",
                    }),
                    AbsentHeaders=["X-Header-Remove"]),
                Namespace=ns, Backend=V1, MirroredTo=mirror_to(V2)),
        ])


class HTTPRouteRequestMultipleMirrors(MirrorCase):
    MANIFESTS = ["httproute-request-multiple-mirrors.yaml"]

    def test_HTTPRouteRequestMultipleMirrors(self):
        ns = INFRA_NS
        routeNN = NN(ns, "request-multiple-mirrors")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.run_mirror_cases([
            ExpectedResponse(
                Request=Request(Path="/multi-mirror"),
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/multi-mirror")),
                Backend=V1, MirroredTo=mirror_to(V2, V3), Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/multi-mirror-and-modify-request-headers", Headers={
                    "X-Header-Remove": "remove-val",
                    "X-Header-Add-Append": "append-val-1",
                }),
                ExpectedRequest=ExpectedRequest(
                    Request=Request(Path="/multi-mirror-and-modify-request-headers", Headers={
                        "X-Header-Add": "header-val-1",
                        "X-Header-Add-Append": "append-val-1,header-val-2",
                        "X-Header-Set": "set-overwrites-values",
                    }),
                    AbsentHeaders=["X-Header-Remove"]),
                Namespace=ns, Backend=V1, MirroredTo=mirror_to(V2, V3)),
        ])


class HTTPRouteRequestPercentageMirror(MirrorCase):
    """Provisional upstream. 500 requests (10 at a time) per check, up to 5 checks; the mirror's count must be
    within 3 binomial standard deviations of 500 * percent."""
    MANIFESTS = ["httproute-request-percentage-mirror.yaml"]
    CONCURRENT_REQUESTS = 10
    TOLERANCE_STD_DEVS = 3.0
    TOTAL_REQUESTS = 500
    NUM_DISTRIBUTION_CHECKS = 5

    def test_HTTPRouteRequestPercentageMirror(self):
        ns = INFRA_NS
        routeNN = NN(ns, "request-percentage-mirror")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        cases = [
            ExpectedResponse(
                Request=Request(Path="/percent-mirror"), Namespace=ns,
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/percent-mirror")),
                Backend=V1, MirroredTo=mirror_to(V2, percent=20)),
            ExpectedResponse(
                Request=Request(Path="/percent-mirror-fraction"), Namespace=ns,
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/percent-mirror-fraction")),
                Backend=V1, MirroredTo=mirror_to(V2, percent=50)),
            ExpectedResponse(
                Request=Request(Path="/percent-mirror-and-modify-headers", Headers={
                    "X-Header-Remove": "remove-val",
                    "X-Header-Add-Append": "append-val-1",
                }),
                ExpectedRequest=ExpectedRequest(
                    Request=Request(Path="/percent-mirror-and-modify-headers", Headers={
                        "X-Header-Add": "header-val-1",
                        "X-Header-Add-Append": "append-val-1,header-val-2",
                        "X-Header-Set": "set-overwrites-values",
                    }),
                    AbsentHeaders=["X-Header-Remove"]),
                Namespace=ns, Backend=V1, MirroredTo=mirror_to(V2, percent=35)),
        ]
        for i, expected in enumerate(cases):
            with self.subTest(expected.name(i)):
                # Assert request succeeds before doing our distribution check
                self.expect(expected)
                errors = None
                for k in range(self.NUM_DISTRIBUTION_CHECKS):
                    tc = copy.deepcopy(expected)
                    add_request_id_query_param(tc, str(uuid.uuid4()))
                    with concurrent.futures.ThreadPoolExecutor(self.CONCURRENT_REQUESTS) as pool:
                        # RequiredConsecutiveSuccesses = 1: one request each when it passes
                        list(pool.map(lambda _: self.expect(tc, required=1), range(self.TOTAL_REQUESTS)))
                    errors = self.mirrored_requests_distribution(tc)
                    if not errors:
                        break
                    time.sleep(2)
                else:
                    self.fail("Percentage based mirror distribution tests failed: %s" % errors)

    def mirrored_requests_distribution(self, tc):
        """testMirroredRequestsDistribution (the mirrored requests may trail the responses: counted until the count
        stops growing, at most REQUEST_TIMEOUT)."""
        errs = []
        for m in tc.MirroredTo:
            deadline, count = time.monotonic() + REQUEST_TIMEOUT, -1
            while time.monotonic() < deadline:
                n = self.mirror_log_count(m, tc.Request.Path)
                if n == count:
                    break
                count = n
                time.sleep(0.5)
            p = m.Percent / 100.0
            want = self.TOTAL_REQUESTS * p
            margin = self.TOLERANCE_STD_DEVS * math.sqrt(self.TOTAL_REQUESTS * p * (1 - p))
            if not want - margin <= count <= want + margin:
                errs.append("pod %s did not meet the mirroring percentage within tolerance. Expected between %f and "
                            "%f, but got %d" % (m.BackendRef.Name, want - margin, want + margin, count))
        return errs


class HTTPRouteResponseHeaderModifier(GatewayConformanceCase):
    MANIFESTS = ["httproute-response-header-modifier.yaml"]

    def test_HTTPRouteResponseHeaderModifier(self):
        ns = INFRA_NS
        routeNN = NN(ns, "response-header-modifier")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(
                Request=Request(Path="/set"),
                BackendSetResponseHeaders={"Some-Other-Header": "val"},
                Response=Response(Headers={"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/set"),
                BackendSetResponseHeaders={"Some-Other-Header": "val", "X-Header-Set": "some-other-value"},
                Response=Response(Headers={"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/add"),
                BackendSetResponseHeaders={"Some-Other-Header": "val"},
                Response=Response(Headers={"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"}),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/add"),
                BackendSetResponseHeaders={"Some-Other-Header": "val", "X-Header-Add": "some-other-value"},
                Response=Response(Headers={"Some-Other-Header": "val",
                                           "X-Header-Add": "some-other-value,add-appends-values"}),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/remove"),
                BackendSetResponseHeaders={"X-Header-Remove": "val"},
                Response=Response(AbsentHeaders=["X-Header-Remove"]),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/multiple"),
                BackendSetResponseHeaders={
                    "X-Header-Set-2": "set-val-2",
                    "X-Header-Add-2": "add-val-2",
                    "X-Header-Remove-2": "remove-val-2",
                    "Another-Header": "another-header-val",
                    "X-Header-Remove-1": "val",
                },
                Response=Response(
                    Headers={
                        "X-Header-Set-1": "header-set-1",
                        "X-Header-Set-2": "header-set-2",
                        "X-Header-Add-1": "header-add-1",
                        "X-Header-Add-2": "add-val-2,header-add-2",
                        "X-Header-Add-3": "header-add-3",
                        "Another-Header": "another-header-val",
                    },
                    AbsentHeaders=["X-Header-Remove-1", "X-Header-Remove-2"]),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/case-insensitivity"),
                BackendSetResponseHeaders={
                    "x-header-set": "original-val-set",
                    "x-header-add": "original-val-add",
                    "x-header-remove": "original-val-remove",
                    "Another-Header": "another-header-val",
                },
                Response=Response(
                    Headers={
                        "X-Header-Set": "header-set",
                        "X-Header-Add": "original-val-add,header-add",
                        "X-Lowercase-Add": "lowercase-add",
                        "X-Mixedcase-Add-1": "mixedcase-add-1",
                        "X-Mixedcase-Add-2": "mixedcase-add-2",
                        "X-Uppercase-Add": "uppercase-add",
                        "Another-Header": "another-header-val",
                    },
                    AbsentHeaders=["x-header-remove", "X-Header-Remove"]),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/response-and-request-header-modifiers", Headers={
                    "X-Header-Remove": "remove-val",
                    "X-Header-Add-Append": "append-val-1",
                    "X-Header-Echo": "echo",
                }),
                BackendSetResponseHeaders={
                    "X-Header-Set-2": "set-val-2",
                    "X-Header-Add-2": "add-val-2",
                    "X-Header-Remove-2": "remove-val-2",
                    "Another-Header": "another-header-val",
                    "X-Header-Remove-1": "remove-val-1",
                    "X-Header-Echo": "echo",
                },
                ExpectedRequest=ExpectedRequest(
                    Request=Request(Path="/response-and-request-header-modifiers", Headers={
                        "X-Header-Add": "header-val-1",
                        "X-Header-Set": "set-overwrites-values",
                        "X-Header-Add-Append": "append-val-1,header-val-2",
                        "X-Header-Echo": "echo",
                    }),
                    AbsentHeaders=["X-Header-Remove"]),
                Response=Response(
                    Headers={
                        "X-Header-Set-1": "header-set-1",
                        "X-Header-Set-2": "header-set-2",
                        "X-Header-Add-1": "header-add-1",
                        "X-Header-Add-2": "add-val-2,header-add-2",
                        "Another-Header": "another-header-val",
                        "X-Header-Echo": "echo",
                    },
                    AbsentHeaders=["X-Header-Remove-1", "X-Header-Remove-2"]),
                Backend=V1, Namespace=ns),
        ])


class HTTPRouteRewriteHost(GatewayConformanceCase):
    MANIFESTS = ["httproute-rewrite-host.yaml"]

    def test_HTTPRouteRewriteHost(self):
        ns = INFRA_NS
        routeNN = NN(ns, "rewrite-host")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(
                Request=Request(Path="/one", Host="rewrite.example"),
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/one", Host="one.example.org")),
                Backend=V1, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/two", Host="rewrite.example"),
                ExpectedRequest=ExpectedRequest(Request=Request(Path="/two", Host="example.org")),
                Backend=V2, Namespace=ns),
            ExpectedResponse(
                Request=Request(Path="/rewrite-host-and-modify-headers", Host="rewrite.example", Headers={
                    "X-Header-Remove": "remove-val",
                    "X-Header-Add-Append": "append-val-1",
                }),
                ExpectedRequest=ExpectedRequest(
                    Request=Request(Path="/rewrite-host-and-modify-headers", Host="test.example.org", Headers={
                        "X-Header-Add": "header-val-1",
                        "X-Header-Add-Append": "append-val-1,header-val-2",
                        "X-Header-Set": "set-overwrites-values",
                    }),
                    AbsentHeaders=["X-Header-Remove"]),
                Backend=V2, Namespace=ns),
        ])


class HTTPRouteRewritePath(GatewayConformanceCase):
    MANIFESTS = ["httproute-rewrite-path.yaml"]

    def test_HTTPRouteRewritePath(self):
        ns = INFRA_NS
        routeNN = NN(ns, "rewrite-path")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        modified = {
            "X-Header-Add": "header-val-1",
            "X-Header-Add-Append": "append-val-1,header-val-2",
            "X-Header-Set": "set-overwrites-values",
        }
        sent = {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Set": "set-val"}
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/prefix/one/two"),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/one/two")),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/strip-prefix/three"),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/three")),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/strip-prefix"),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/")),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/full/one/two"),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/one")),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/full/rewrite-path-and-modify-headers/test", Headers=dict(sent)),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/test", Headers=dict(modified)),
                                                             AbsentHeaders=["X-Header-Remove"]),
                             Backend=V1, Namespace=ns),
            ExpectedResponse(Request=Request(Path="/prefix/rewrite-path-and-modify-headers/one", Headers=dict(sent)),
                             ExpectedRequest=ExpectedRequest(Request=Request(Path="/prefix/one",
                                                                             Headers=dict(modified)),
                                                             AbsentHeaders=["X-Header-Remove"]),
                             Backend=V1, Namespace=ns),
        ])


def manual_endpoint_slice(name, service, address_type, port=None, addresses=()):
    """One of httproute-service-types.yaml's EndpointSlices (port name first-port), as upstream's YAML has it
    (port 3000, no endpoints) or as setupEndpointSlices patches it (infra-backend-v1's pods: here its echo)."""
    obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": INFRA_NS, "labels": {"kubernetes.io/service-name": service}},
        "addressType": address_type,
        "ports": [{"name": "first-port", "port": port or 3000, "protocol": "TCP"}],
    }
    if addresses:
        obj["endpoints"] = [{"addresses": list(addresses),
                             "conditions": {"ready": True, "serving": True, "terminating": False},
                             "targetRef": {"kind": "Pod", "name": MODULE["echoes"][V1].pod, "namespace": INFRA_NS}}]
    return obj


class HTTPRouteServiceTypes(GatewayConformanceCase):
    """`headless` selects infra-backend-v1's pods: its EndpointSlice is written as the controller would; the manual
    slices are patched (setupEndpointSlices) by rewriting them with infra-backend-v1's echo (IPv4 only: the echo
    has no IPv6 address, and upstream leaves a family without pod IPs alone)."""
    MANIFESTS = ["httproute-service-types.yaml"]
    EXTRA_SERVICES = [(INFRA_NS, "headless", V1, ["first-port"])]

    def test_HTTPRouteServiceTypes(self):
        type_manual_endpoint_slices = ["manual-endpointslices", "headless-manual-endpointslices"]
        type_managed = ["headless"]
        service_types = type_manual_endpoint_slices + type_managed
        ns = INFRA_NS
        routeNN = NN(ns, "service-types")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)

        def setup_endpoint_slices(docs):
            for prefix in type_manual_endpoint_slices:
                name = prefix + "-ip4"
                docs.replace("EndpointSlice", name, ns, json.dumps(manual_endpoint_slice(
                    name, prefix, "IPv4", port=MODULE["echoes"][V1].port, addresses=["127.0.0.1"]), indent=2))
        self.rewrite("httproute-service-types.yaml", setup_endpoint_slices)
        for i, path in enumerate(service_types):
            expected = ExpectedResponse(Request=Request(Path="/" + path), Response=Response(StatusCode=200),
                                        Backend=V1, Namespace=INFRA_NS)
            with self.subTest(expected.name(i)):
                self.expect(expected)


class HTTPRouteSimpleSameNamespace(GatewayConformanceCase):
    MANIFESTS = ["httproute-simple-same-namespace.yaml"]

    def test_HTTPRouteSimpleSameNamespace(self):
        ns = INFRA_NS
        routeNN = NN(ns, INFRA_GATEWAY_NAME)
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        with self.subTest("Simple HTTP request should reach infra-backend"):
            self.expect(ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCode=200), Backend=V1,
                                         Namespace=ns))


class HTTPRouteTimeoutBackendRequest(GatewayConformanceCase):
    MANIFESTS = ["httproute-timeout-backend-request.yaml"]

    def test_HTTPRouteTimeoutBackendRequest(self):
        ns = INFRA_NS
        routeNN = NN(ns, "backend-request-timeout")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/backend-timeout"), Response=Response(StatusCode=200),
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/backend-timeout?delay=1s"), Response=Response(StatusCode=504),
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/disable-backend-timeout?delay=1s"),
                             Response=Response(StatusCode=200), Namespace=ns),
        ])


class HTTPRouteTimeoutRequest(GatewayConformanceCase):
    MANIFESTS = ["httproute-timeout-request.yaml"]

    def test_HTTPRouteTimeoutRequest(self):
        ns = INFRA_NS
        routeNN = NN(ns, "request-timeout")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        self.run_cases([
            ExpectedResponse(Request=Request(Path="/request-timeout"), Response=Response(StatusCode=200),
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/request-timeout?delay=1s"), Response=Response(StatusCode=504),
                             Namespace=ns),
            ExpectedResponse(Request=Request(Path="/disable-request-timeout?delay=1s"),
                             Response=Response(StatusCode=200), Namespace=ns),
        ])


def extract_backend_name(pod):
    """weight.extractBackendName for this module's pods: `<deployment>-<port>` (upstream strips the
    ReplicaSet and pod hashes, `<deployment>-<hash>-<hash>`)."""
    return pod.rsplit("-", 1)[0] if "-" in pod else pod


class HTTPRouteWeight(GatewayConformanceCase):
    MANIFESTS = ["httproute-weight.yaml"]
    MAX_TEST_RETRIES = 10

    def test_HTTPRouteWeight(self):
        ns = INFRA_NS
        routeNN = NN(ns, "weighted-backends")
        gwNN = NN(ns, "same-namespace")
        self.gateway_and_httproutes_must_be_accepted(GatewayRef(gwNN), routeNN)
        self.httproute_must_have_resolved_refs_true(routeNN, gwNN)
        with self.subTest("Requests should have a distribution that matches the weight"):
            expected = ExpectedResponse(Request=Request(Path="/"), Response=Response(StatusCodes=[200]),
                                        Namespace=INFRA_NS)
            # Assert request succeeds before doing our distribution check
            self.expect(expected)
            expected_weights = {V1: 0.7, V2: 0.3, V3: 0.0}

            def send():
                unique = copy.deepcopy(expected)
                if random.randrange(2) == 1:  # AddEntropy: a random header, or not
                    unique.Request.Headers = {"X-Jitter": str(random.randrange(10000))}
                rt = make_request(unique)
                creq, cres = capture_round_trip(self.srv, rt)
                err = compare_round_trip(rt, creq, cres, unique)
                if err:
                    raise AssertionError("response expectation failed for request: %s" % err)
                return creq.Pod

            last = None
            for i in range(self.MAX_TEST_RETRIES):
                last = weighted_distribution_errors(send, expected_weights)
                if not last:
                    break
            else:
                self.fail("Weighted distribution tests failed: %s" % last)


def weighted_distribution_errors(send, expected_weights, total=500, workers=10, tolerance=0.05):
    """weight.TestWeightedDistribution: a list of errors, empty when the distribution is within tolerance."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        try:
            pods = list(pool.map(lambda _: send(), range(total)))
        except Exception as e:  # noqa: BLE001 - the first failed request fails this check
            return ["error while sending requests: %s" % e]
    seen = {}
    for pod in pods:
        backend = extract_backend_name(pod)
        if backend not in expected_weights:
            return ["request was handled by an unexpected pod %r (extracted backend: %r)" % (pod, backend)]
        seen[backend] = seen.get(backend, 0) + 1
    errs = []
    active = sum(1 for w in expected_weights.values() if w > 0)
    if len(seen) != active:
        errs.append("expected %d backends to receive traffic, but got %d" % (active, len(seen)))
    for backend, want in expected_weights.items():
        if backend not in seen and want != 0:
            errs.append("expect traffic to hit backend %r - but none was received" % backend)
            continue
        got = seen.get(backend, 0) / total
        if abs(got - want) > tolerance:
            errs.append("backend %r weighted traffic of %s not within tolerance %s (+/-%f)" % (backend, got, want,
                                                                                            tolerance))
    return sorted(errs)


if __name__ == "__main__":
    unittest.main()
