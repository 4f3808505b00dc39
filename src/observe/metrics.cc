#include "observe/metrics.h"

#include <fmt/format.h>

namespace ingressd {

int method_index(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return kGet;
      if (m == "PUT") return kPut;
      break;
    case 4:
      if (m == "HEAD") return kHead;
      if (m == "POST") return kPost;
      break;
    case 5:
      if (m == "PATCH") return kPatch;
      break;
    case 6:
      if (m == "DELETE") return kDelete;
      break;
    case 7:
      if (m == "OPTIONS") return kOptions;
      break;
  }
  return kOtherMethod;
}

const char* method_label(int i) {
  static const char* names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"};
  return names[i];
}

void RouteTotals::add(const RouteCounters& c) {
  for (int m = 0; m < kMethods; ++m)
    for (int s = 0; s < 6; ++s) requests[m][s] += c.requests[m][s].get();
  bytes_in += c.bytes_in.get();
  bytes_out += c.bytes_out.get();
  for (int i = 0; i <= kNumBuckets; ++i) {
    duration[i] += c.duration.buckets[i].get();
    upstream[i] += c.upstream.buckets[i].get();
  }
  duration_sum_us += c.duration.sum_us.get();
  upstream_sum_us += c.upstream.sum_us.get();
}

void RouteTotals::add(const RouteTotals& t) {
  for (int m = 0; m < kMethods; ++m)
    for (int s = 0; s < 6; ++s) requests[m][s] += t.requests[m][s];
  bytes_in += t.bytes_in;
  bytes_out += t.bytes_out;
  for (int i = 0; i <= kNumBuckets; ++i) {
    duration[i] += t.duration[i];
    upstream[i] += t.upstream[i];
  }
  duration_sum_us += t.duration_sum_us;
  upstream_sum_us += t.upstream_sum_us;
}

namespace {
void histogram(std::string& out, const char* name, const std::string& labels, const uint64_t* buckets, uint64_t sum_us) {
  uint64_t cum = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    cum += buckets[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, static_cast<double>(kBucketsUs[i]) / 1e6, cum);
  }
  cum += buckets[kNumBuckets];
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cum);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, static_cast<double>(sum_us) / 1e6);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, cum);
}
}  // namespace

void render_route_metrics(const std::map<std::string, RouteTotals>& by_labels, std::string& out) {
  static const char* classes[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  out += "# HELP ingressd_requests_total Requests by route, method and status class.\n"
         "# TYPE ingressd_requests_total counter\n";
  for (auto& [labels, t] : by_labels)
    for (int m = 0; m < kMethods; ++m)
      for (int s = 0; s < 6; ++s)
        if (t.requests[m][s])
          out += fmt::format("ingressd_requests_total{{{},method=\"{}\",status_class=\"{}\"}} {}\n", labels,
                             method_label(m), classes[s], t.requests[m][s]);
  out += "# HELP ingressd_request_bytes_total Request bytes received (head and body), by route.\n"
         "# TYPE ingressd_request_bytes_total counter\n";
  for (auto& [labels, t] : by_labels) out += fmt::format("ingressd_request_bytes_total{{{}}} {}\n", labels, t.bytes_in);
  out += "# HELP ingressd_response_bytes_total Response bytes sent (head and body), by route.\n"
         "# TYPE ingressd_response_bytes_total counter\n";
  for (auto& [labels, t] : by_labels) out += fmt::format("ingressd_response_bytes_total{{{}}} {}\n", labels, t.bytes_out);
  out += "# HELP ingressd_request_duration_seconds From the parsed request head to the complete response.\n"
         "# TYPE ingressd_request_duration_seconds histogram\n";
  for (auto& [labels, t] : by_labels)
    histogram(out, "ingressd_request_duration_seconds", labels, t.duration, t.duration_sum_us);
  out += "# HELP ingressd_upstream_response_seconds From the request sent upstream to the response head.\n"
         "# TYPE ingressd_upstream_response_seconds histogram\n";
  for (auto& [labels, t] : by_labels)
    histogram(out, "ingressd_upstream_response_seconds", labels, t.upstream, t.upstream_sum_us);
}

}  // namespace ingressd
