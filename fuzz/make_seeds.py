#!/usr/bin/env python3
"""Writes the hand-made seed inputs into fuzz/corpus/<target>/seed-*.

Run from anywhere; existing seed-* files are overwritten, other corpus files
(inputs merged from fuzzing runs) are left alone.
"""
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_EXAMPLES = pathlib.Path("/work/shared/seed/examples")


def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


H = "Host: example.com\r\n"
requests = {
    "get": "GET / HTTP/1.1\r\n" + H + "\r\n",
    "get-typical": "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n"
                   "X-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\r\n",
    "post-length": "POST /submit HTTP/1.1\r\n" + H + "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "post-chunked": "POST /upload HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    "pipelined": "GET /1 HTTP/1.1\r\n" + H + "\r\nPOST /2 HTTP/1.1\r\n" + H + "Content-Length: 3\r\n\r\nabc"
                 "PUT /3 HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /4 HTTP/1.1\r\n" + H +
                 "Connection: close\r\n\r\n",
    "websocket": "GET /chat HTTP/1.1\r\n" + H + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x05hello",
    "http10": "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "absolute-form": "GET http://example.com/a?b=c HTTP/1.1\r\n" + H + "\r\n",
    "options-asterisk": "OPTIONS * HTTP/1.1\r\n" + H + "\r\n",
    "expect-continue": "PUT /big HTTP/1.1\r\n" + H + "Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n",
    "head": "\r\nHEAD /index.html HTTP/1.1\r\n" + H + "X-Real-IP: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n",
    "dot-path": "GET /a/./b/../%2e%2e/c%41?q HTTP/1.1\r\n" + H + "\r\n",
    # malformed: each must be rejected
    "bad-cl-te": "POST / HTTP/1.1\r\n" + H + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad-cl-conflict": "POST / HTTP/1.1\r\n" + H + "Content-Length: 4, 5\r\n\r\nabcde",
    "bad-bare-lf": "GET / HTTP/1.1\n" + "Host: a\n\n",
    "bad-obs-fold": "GET / HTTP/1.1\r\n" + H + "X-A: 1\r\n  2\r\n\r\n",
    "bad-space-colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "bad-two-hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad-te-http10": "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "bad-te-gzip": "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, gzip\r\n\r\n",
    "bad-version": "GET / HTTP/2.0\r\n" + H + "\r\n",
    "bad-no-host": "GET / HTTP/1.1\r\n\r\n",
    "bad-host-mismatch": "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    "bad-ctl": "GET /\x01 HTTP/1.1\r\n",
}
for k, v in requests.items():
    write("http1_request_fuzzer", k, v)

responses = {
    "200-length": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\nhello",
    "200-chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: up\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "200-close": "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
    "204": "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    "304": "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    "101": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    "100-then-200": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http10-keepalive": "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    "no-reason": "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
    "bad-bare-lf": "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "bad-status": "HTTP/1.1 20 OK\r\n\r\n",
    "bad-cl-te": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "bad-te-not-last": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
}
for k, v in responses.items():
    write("http1_response_fuzzer", k, v)

chunked = {
    "simple": "5\r\nhello\r\n0\r\n\r\n",
    "multi": "1\r\na\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    "ext": "5;name=value;x\r\nhello\r\n0 ;last\r\n\r\n",
    "trailers": "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n",
    "then-next-request": "2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
    "bad-bare-lf": "5\nhello\n0\n\n",
    "bad-too-long-data": "2\r\nabc\r\n0\r\n\r\n",
    "bad-size": "ffffffffffffffff\r\n",
    "bad-no-size": "\r\n\r\n",
    "incomplete": "10\r\n0123456789",
}
for k, v in chunked.items():
    write("chunked_fuzzer", k, v)

paths = {
    "root": "/", "plain": "/a/b/c.html", "dots": "/a/./b/../c/", "enc-dots": "/%2e%2E/x/%2e",
    "enc-slash": "/a%2fb", "backslash": "/a\\b", "unreserved": "/%41%7e%7E%20", "double-slash": "//x//y",
    "trailing-dotdot": "/a/b/..", "bad-enc": "/%zz", "bad-enc-short": "/%4", "relative": "a/b",
    "host-port": "Example.COM:8080", "host-ipv6": "[::1]:80", "host-dot": "example.com.", "host-bad": "a b@c",
}
for k, v in paths.items():
    write("path_fuzzer", k, v)

# ---- manifests (YAML and JSON) ----
manifests = {}
for label, d in (("examples", ROOT / "examples"), ("shared", SHARED_EXAMPLES)):
    if d.is_dir():
        for f in sorted(d.glob("*.yaml")):
            manifests[f"{label}-{f.stem}"] = f.read_text()

manifests["full-ingress"] = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: full
  namespace: default
  annotations:
    kubernetes.io/ingress.class: ingressd
spec:
  ingressClassName: ingressd
  tls:
  - hosts: [a.example.com]
    secretName: tls-a
  defaultBackend:
    service: {name: fallback, port: {number: 80}}
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: svc-a, port: {name: http}}}}
      - {path: /impl, pathType: ImplementationSpecific, backend: {resource: {apiGroup: k8s.example.com, kind: Bucket, name: b}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /foo/, pathType: Prefix, backend: {service: {name: svc-b, port: {number: 8080}}}}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: ingressd
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec:
  controller: ingressd.dev/ingress-controller
  parameters: {apiGroup: k8s.example.com, kind: Params, name: p, scope: Cluster}
---
apiVersion: v1
kind: Service
metadata: {name: svc-a}
spec:
  ports:
  - {name: http, port: 80, targetPort: web, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-a-1, labels: {kubernetes.io/service-name: svc-a}}
addressType: IPv4
ports: [{name: http, port: 9000}]
endpoints:
- addresses: [10.0.0.1, 10.0.0.2]
  conditions: {ready: true}
- addresses: [10.0.0.3]
  conditions: {ready: false, terminating: true}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc-b}
subsets:
- addresses: [{ip: "::1"}]
  notReadyAddresses: [{ip: 10.1.1.1}]
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-b}
spec: {ports: [{port: 8080}]}
---
apiVersion: v1
kind: Secret
metadata: {name: tls-a}
type: kubernetes.io/tls
data: {tls.crt: aGVsbG8=}
stringData: {tls.key: world}
"""

manifests["list-json"] = json.dumps({
    "apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns1"},
         "spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "ns1"},
         "spec": {"rules": [{"host": "j.example", "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "a", "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c"},
         "spec": {"controller": "ingressd.dev/ingress-controller"}},
    ]}, indent=1)

manifests["ingresslist"] = """apiVersion: networking.k8s.io/v1
kind: IngressList
items:
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: x, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {defaultBackend: {service: {name: s, port: {number: 1}}}}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: y}
  spec: {rules: [{http: {paths: [{path: /y, pathType: Exact, backend: {service: {name: s, port: {number: 1}}}}]}}]}
"""

manifests["errors"] = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: Bad_Name}
spec:
  rules:
  - host: "UPPER.example.com:80"
    http:
      paths:
      - {path: relative, pathType: Prefix, backend: {service: {name: s, port: {number: 70000}}}}
      - {path: /a/../b, pathType: Exact, backend: {service: {name: s}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: dup}
spec: {unknownField: 1, rules: [], rules: []}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: "eighty"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
---
anchors: &a {x: *a}
--- [unclosed
"""

manifests["anchors-merge"] = """base: &b
  apiVersion: v1
  kind: Service
---
apiVersion: v1
kind: Service
metadata: &m {name: m, labels: &l {a: b}}
spec:
  <<: {ports: [{port: 80}]}
  ports: [{port: 81, name: !!str 8080}]
"""

for k, v in manifests.items():
    write("manifest_fuzzer", k, v)
    write("compile_fuzzer", k, v)

# compile: Services and EndpointSlices with the Ingresses that use them.
demo = (ROOT / "examples" / "demo-services.yaml").read_text()
for f in ("simple-ingress", "host-ingress", "path-ingress"):
    p = ROOT / "examples" / f"{f}.yaml"
    if p.exists():
        write("compile_fuzzer", f"demo-with-{f}", demo + "\n---\n" + p.read_text())
write("compile_fuzzer", "conflicts", """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: a, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  defaultBackend: {service: {name: s, port: {number: 80}}}
  rules:
  - host: c.example
    http:
      paths:
      - {path: /foo, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}
      - {path: /foo, pathType: Prefix, backend: {service: {name: t, port: {number: 80}}}}
      - {path: /foo/, pathType: ImplementationSpecific, backend: {service: {name: s, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: b, namespace: other, annotations: {kubernetes.io/ingress.class: nginx}}
spec:
  defaultBackend: {service: {name: s, port: {number: 80}}}
  rules:
  - host: c.example
    http:
      paths:
      - {path: /foo, pathType: Exact, backend: {service: {name: s, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: s}
subsets: [{addresses: [{ip: 127.0.0.1}], ports: [{port: 8080}]}]
""")
