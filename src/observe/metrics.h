// Per-worker request metrics. Each counter has one writer (its worker) and is
// read by the admin thread at scrape time: relaxed loads and stores, no
// read-modify-write and nothing shared between workers on the hot path.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ingressd {

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Buckets suitable for 1 ms to 60 s (upper bounds in microseconds).
inline constexpr int64_t kBucketsUs[] = {1000,    2500,    5000,     10000,    25000,    50000,     100000,   250000,
                                         500000,  1000000, 2500000,  5000000,  10000000, 30000000, 60000000};
inline constexpr int kNumBuckets = sizeof(kBucketsUs) / sizeof(kBucketsUs[0]);

struct Histogram {
  Counter buckets[kNumBuckets + 1];  // non-cumulative; the last is +Inf
  Counter sum_us;
  void observe(int64_t us) {
    int i = 0;
    while (i < kNumBuckets && us > kBucketsUs[i]) ++i;
    buckets[i].add(1);
    sum_us.add(static_cast<uint64_t>(us < 0 ? 0 : us));
  }
};

enum MethodIndex : int { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOtherMethod, kMethods };
int method_index(std::string_view m);
const char* method_label(int i);

struct RouteCounters {
  Counter requests[kMethods][6];  // by method × status class (index status/100; 0 = no response)
  Counter bytes_in, bytes_out;
  Histogram duration;  // client view: head parsed → response complete
  Histogram upstream;  // upstream view: request sent → response head received
};

// Plain sums, for scraping and for folding retired tables.
struct RouteTotals {
  uint64_t requests[kMethods][6] = {};
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t duration[kNumBuckets + 1] = {}, duration_sum_us = 0;
  uint64_t upstream[kNumBuckets + 1] = {}, upstream_sum_us = 0;
  void add(const RouteCounters& c);
  void add(const RouteTotals& t);
};

// Renders the per-route families for all label sets.
void render_route_metrics(const std::map<std::string, RouteTotals>& by_labels, std::string& out);

}  // namespace ingressd
