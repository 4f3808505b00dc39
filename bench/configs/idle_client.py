#!/usr/bin/env python3
"""Open N keep-alive connections to HOST:PORT, send one GET on each, read the
response, then keep every connection open and idle.

Prints "READY ok=<2xx responses> failed=<other>" on stdout once all are done,
then waits for a line (or EOF) on stdin before closing them and exiting.
Used by bench/run's `idle` scenario: RSS of the proxy is read while this
process holds the connections. Raises its own RLIMIT_NOFILE to the hard limit.
"""
import argparse
import asyncio
import resource
import sys


async def one(host, port, req, sem, conns, stats, ssl_ctx=None, sni=None):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ssl_ctx, server_hostname=sni if ssl_ctx else None), 20)
            w.write(req)
            await w.drain()
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20)
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if length:
                await asyncio.wait_for(r.readexactly(length), 20)
            conns.append(w)
            stats["ok" if 200 <= status < 300 else "failed"] += 1
        except Exception as e:  # noqa: BLE001 - count every failure
            stats["failed"] += 1
            stats.setdefault("first_error", repr(e))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--host-header", default="alpaca.example.com")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--tls", action="store_true", help="TLS (SNI = --host-header; the certificate is not verified)")
    a = ap.parse_args()
    ssl_ctx = None
    if a.tls:
        import ssl
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
        ssl_ctx.set_alpn_protocols(["http/1.1"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(a.n, hard - 64)
    req = f"GET / HTTP/1.1\r\nHost: {a.host_header}\r\nUser-Agent: bench-idle\r\n\r\n".encode()
    sem = asyncio.Semaphore(a.concurrency)
    conns, stats = [], {"ok": 0, "failed": 0}
    await asyncio.gather(*(one(a.host, a.port, req, sem, conns, stats, ssl_ctx, a.host_header) for _ in range(n)))
    extra = f" first_error={stats['first_error']!r}" if "first_error" in stats else ""
    print(f"READY ok={stats['ok']} failed={stats['failed']} n={n}{extra}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
