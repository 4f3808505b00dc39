#!/usr/bin/env python3
"""How long a cluster change takes to reach ingressd's route table.

Starts the fixture API server (tests/e2e/kube_fixture.py), an echo upstream
and `ingressd serve --kubeconfig`, then N times: creates an Ingress for a new
host through the API and polls ingressd on one keep-alive connection (every
0.5 ms) until that host is served. Prints, per change:

- end to end: from sending the POST to the first 200 from ingressd (an upper
  bound: it also includes the POST's own round trip with a TLS handshake, the
  watch event's trip, the hold-off, compile, publish, and the worker noticing
  the new table);
- in ingressd: ingressd_kube_last_event_to_table_seconds, from the event's
  arrival on the watch stream to the table being published.

The goal (issue #5) is under 100 ms. Timings depend on the machine; this
prints them and never asserts.

  bench/kube_latency.py [--bin build/ingressd] [-n 30] [--holdoff-ms 20]
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness as h  # noqa: E402
import kube_harness as k  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("INGRESSD_BIN", os.path.join(HERE, "..", "build", "ingressd")))
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--holdoff-ms", type=int, default=20)
    ap.add_argument("--background", type=int, default=1000, help="Ingresses in the cluster beforehand")
    a = ap.parse_args()
    h.BIN = os.path.abspath(a.bin)
    res = h.Resources()
    try:
        certs = k.make_certs(res)
        f = k.start_fixture(res, certs)
        api = f.api()
        echo = res.start_echo("alpaca")
        api.create(h.service("alpaca"))
        api.create(h.endpoint_slice("alpaca", echo.port))
        api.load(h.ingress("bg-%05d" % i, rules=[h.rule("bg%05d.example.com" % i, [h.http_path("/", "alpaca")])])
                 for i in range(a.background))
        kc = k.write_kubeconfig(res.tempdir(), f.server, f.ca, token=f.tokens[0])
        ing = k.start_ingressd_kube(res, kc, ["--kube-holdoff-ms", str(a.holdoff_ms)])
        e2e, inside = [], []
        conn = ing.conn()
        for i in range(a.n):
            host = "new%03d.example.com" % i
            t0 = time.monotonic()
            api.create(h.ingress("new-%03d" % i, rules=[h.rule(host, [h.http_path("/", "alpaca")])]))
            deadline = t0 + 5
            while True:
                conn.send(h.build_request("GET", "/", host))
                r = conn.read_response()
                if r.status == 200:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("host %s not served after 5 s" % host)
                time.sleep(0.0005)
            e2e.append((time.monotonic() - t0) * 1000)
            inside.append(k.metric(ing, "ingressd_kube_last_event_to_table_seconds") * 1000)
            time.sleep(0.05)
        conn.close()

        def line(name, xs):
            xs = sorted(xs)
            p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
            return "%-34s median %6.1f ms   p90 %6.1f ms   max %6.1f ms" % (name, statistics.median(xs), p90, xs[-1])
        print("cluster change → route table, %d changes, %d Ingresses in the cluster, hold-off %d ms:" %
              (a.n, a.background + 1, a.holdoff_ms))
        print(line("POST sent → first 200 (end to end)", e2e))
        print(line("event arrival → table published", inside))
    finally:
        res.close()


if __name__ == "__main__":
    main()
