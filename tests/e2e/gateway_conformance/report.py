#!/usr/bin/env python3
"""Runs our transcription of the Gateway API conformance suite (tests/e2e/test_gateway_conformance.py) and writes
the result in the Gateway API's own report format (a ConformanceReport, gateway.networking.k8s.io/v1) for the
GATEWAY-HTTP profile: core and extended, with the features ingressd supports.

    python3 tests/e2e/gateway_conformance/report.py [--out FILE] [--version V]

upstream-tests.json lists the upstream conformance tests of Gateways and HTTPRoutes with the features each needs
(from conformance/tests/*.go of the upstream commit named in README.md). A test whose features ingressd supports
and that our suite does not run is reported as skipped, never as passed. A test method maps to an upstream test by
name: test_<ShortName> (any case, underscores ignored)."""

import argparse
import datetime
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

CORE = {"Gateway", "HTTPRoute", "ReferenceGrant"}
# What ingressd claims beyond core (docs/gateway-api.md).
EXTENDED = sorted([
    "HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode", "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendRequestHeaderModification", "HTTPRouteBackendTimeout", "HTTPRouteCORS", "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching", "HTTPRouteParentRefPort", "HTTPRoutePathRedirect", "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect", "HTTPRouteQueryParamMatching", "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors", "HTTPRouteRequestPercentageMirror", "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification", "HTTPRouteSchemeRedirect",
])
WORDS = {"success": "succeeded", "partial": "partially succeeded", "failure": "failed"}


def norm(s):
    return s.replace("_", "").lower()


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def run_suite():
    """{normalised ShortName: passed | failed | skipped} from a run of our suite."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import test_gateway_conformance as mod  # noqa: E402
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    tests = list(flatten(suite))
    result = unittest.TextTestRunner(verbosity=1, stream=sys.stderr).run(unittest.TestSuite(tests))
    failed = {t.id() for t, _ in result.failures + result.errors}
    skipped = {t.id() for t, _ in result.skipped}
    outcome = {}
    for t in tests:
        name = t.id().rsplit(".", 1)[-1]
        name = name[4:] if name.startswith("test") else name
        state = "failed" if t.id() in failed else "skipped" if t.id() in skipped else "passed"
        prev = outcome.get(norm(name))
        outcome[norm(name)] = state if prev in (None, "passed") or state == "failed" else prev
    return outcome


def status(names, outcome):
    st = {"Failed": 0, "Passed": 0, "Skipped": 0}
    skipped, failed = [], []
    for n in names:
        r = outcome.get(norm(n), "skipped")
        st[r.capitalize()] += 1
        if r == "skipped":
            skipped.append(n)
        elif r == "failed":
            failed.append(n)
    s = {"result": "failure" if failed else "partial" if skipped else "success", "statistics": st}
    if skipped:
        s["skippedTests"] = skipped
    if failed:
        s["failedTests"] = failed
    return s


def scalar(x):
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    return json.dumps(x)


def yaml_lines(v, indent=0):
    pad = "  " * indent
    out = []
    if isinstance(v, dict):
        for k in sorted(v):
            x = v[k]
            if isinstance(x, (dict, list)) and x:
                out.append("%s%s:" % (pad, k))
                out += yaml_lines(x, indent + 1)
            else:
                out.append("%s%s: %s" % (pad, k, "[]" if x == [] else "{}" if x == {} else scalar(x)))
    else:
        for x in v:
            if isinstance(x, dict):
                sub = yaml_lines(x, indent + 1)
                out.append("%s- %s" % (pad, sub[0].strip()))
                out += sub[1:]
            else:
                out.append("%s- %s" % (pad, scalar(x)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "gateway-api-conformance-report.yaml"))
    ap.add_argument("--version", default="v0.1.0")
    args = ap.parse_args()
    with open(os.path.join(HERE, "upstream-tests.json")) as f:
        upstream = {n: t for n, t in json.load(f).items() if not t["provisional"]}
    outcome = run_suite()
    supported = CORE | set(EXTENDED)
    core_tests = sorted(n for n, t in upstream.items() if set(t["features"]) <= CORE)
    ext_tests = sorted(n for n, t in upstream.items() if n not in core_tests and set(t["features"]) <= supported)
    all_features = sorted({f for t in upstream.values() for f in t["features"]} - CORE)
    core, ext = status(core_tests, outcome), status(ext_tests, outcome)
    ext["supportedFeatures"] = EXTENDED
    ext["unsupportedFeatures"] = [f for f in all_features if f not in supported]
    report = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ConformanceReport",
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "gatewayAPIVersion": "v1.6.1",
        "gatewayAPIChannel": "standard",
        "mode": "default",
        "implementation": {"organization": "ingressd", "project": "ingressd",
                           "url": "https://github.com/ingressd/ingressd", "version": args.version,
                           "contact": ["@ingressd/maintainers"]},
        "profiles": [{"name": "GATEWAY-HTTP", "core": core, "extended": ext,
                      "summary": "Core tests %s. Extended tests %s." % (WORDS[core["result"]], WORDS[ext["result"]])}],
    }
    with open(args.out, "w") as f:
        f.write("# Generated by tests/e2e/gateway_conformance/report.py from our transcription of the upstream suite"
                " (file mode).\n" + "\n".join(yaml_lines(report)) + "\n")
    print("wrote %s: core %s, extended %s" % (args.out, core["result"], ext["result"]))
    return 0 if "failure" not in (core["result"], ext["result"]) else 1


if __name__ == "__main__":
    sys.exit(main())
