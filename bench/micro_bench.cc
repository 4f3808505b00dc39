// Microbenchmarks beside the hot code: route lookup at 10 / 1,000 / 100,000
// routes, HTTP/1 request-head parsing, compile() and decoding of 10,000
// Ingresses. Run: build-bench/bench/micro_bench (see bench/README.md).
#include <benchmark/benchmark.h>

#include <fmt/format.h>

#include "model/decode.h"
#include "proxy/http1/parser.h"
#include "routing/compile.h"
#include "sources/object_store.h"

using namespace ingressd;

namespace {

// N Ingresses, each with its own host and 3 paths, plus their Services and EndpointSlices.
std::string manifests(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += fmt::format(R"(---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing-{0}, namespace: ns-{1}}}
spec:
  rules:
  - host: host-{0}.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: svc-{0}, port: {{number: 80}}}}}}}}
      - {{path: /api/v1, pathType: Prefix, backend: {{service: {{name: svc-{0}, port: {{number: 80}}}}}}}}
      - {{path: /healthz, pathType: Exact, backend: {{service: {{name: svc-{0}, port: {{number: 80}}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: svc-{0}, namespace: ns-{1}}}
spec: {{ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-{0}-abc, namespace: ns-{1}, labels: {{kubernetes.io/service-name: svc-{0}}}}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints: [{{addresses: [10.0.{2}.{3}]}}]
)",
                     i, i % 50, (i / 250) % 256, i % 250 + 1);
  }
  return s;
}

std::unique_ptr<ObjectStore> store_with(int n) {
  auto store = std::make_unique<ObjectStore>();
  LoadedFile f;
  f.path = "bench.yaml";
  f.decoded = model::decode_manifests(manifests(n), f.path);
  store->replace_from_files({f});
  return store;
}

void BM_RouteLookup(benchmark::State& state) {
  int ingresses = static_cast<int>(state.range(0)) / 3;
  auto store = store_with(std::max(1, ingresses));
  auto r = routing::compile(*store->snapshot(), {});
  std::string host = fmt::format("host-{}.example.com", ingresses / 2);
  for (auto _ : state) {
    auto m = r.table->match(host, "/api/v1/users/42");
    benchmark::DoNotOptimize(m.backend);
  }
  state.SetLabel(fmt::format("{} routes", r.table->route_count()));
}
BENCHMARK(BM_RouteLookup)->Arg(10)->Arg(1000)->Arg(100000);

void BM_ParseRequestHead(benchmark::State& state) {
  std::string req =
      "GET /api/v1/users/42?expand=true HTTP/1.1\r\nHost: host-1.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
      "x86_64) AppleWebKit/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
      "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
      "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\nX-Request-ID: 7f9c2ba4-e88f-11ec\r\n\r\n";
  auto head = std::make_unique<http1::RequestHead>();
  http1::ParseError err;
  for (auto _ : state) {
    long n = http1::parse_request_head(req.data(), req.size(), *head, err, {});
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * req.size()));
}
BENCHMARK(BM_ParseRequestHead);

void BM_Compile(benchmark::State& state) {
  auto store = store_with(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto r = routing::compile(*store->snapshot(), {});
    benchmark::DoNotOptimize(r.table);
  }
}
BENCHMARK(BM_Compile)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_DecodeManifests(benchmark::State& state) {
  std::string text = manifests(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto r = model::decode_manifests(text, "bench.yaml");
    benchmark::DoNotOptimize(r.objects.data());
  }
}
BENCHMARK(BM_DecodeManifests)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
