#include "app/metrics_endpoint.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

namespace ingressd {
namespace {

void family(std::string& b, const char* name, const char* type, const char* help) {
  b += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void process_metrics(std::string& b, int64_t start_ms) {
  long page = ::sysconf(_SC_PAGESIZE);
  long pages_total = 0, pages_rss = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) statm >> pages_total >> pages_rss;
  family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  b += fmt::format("process_resident_memory_bytes {}\n", pages_rss * page);
  family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  b += fmt::format("process_virtual_memory_bytes {}\n", pages_total * page);
  int fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++fds;
    ::closedir(d);
    --fds;  // the one opendir used
  }
  family(b, "process_open_fds", "gauge", "Open file descriptors.");
  b += fmt::format("process_open_fds {}\n", fds);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  family(b, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
  b += fmt::format("process_cpu_seconds_total {:.6f}\n", cpu);
  family(b, "process_start_time_seconds", "gauge", "Start time of the process since the epoch in seconds.");
  b += fmt::format("process_start_time_seconds {:.3f}\n", static_cast<double>(start_ms) / 1000.0);
  family(b, "ingressd_build_info", "gauge", "Build information.");
  b += fmt::format("ingressd_build_info{{version=\"{}\"}} 1\n", INGRESSD_VERSION);
}

}  // namespace

std::string render_metrics(const std::vector<std::unique_ptr<Worker>>& workers, const ConfigState& state,
                           const AccessLog& log, const tls::TlsServer* tls) {
  uint64_t acc = 0, req = 0, act = 0, cerr = 0, tmo = 0, resets = 0, retries = 0, ejections = 0, refused = 0;
  uint64_t ws_active = 0, ws_total = 0, acc_tls = 0, tls12 = 0, tls13 = 0, tls_err = 0, tls_resumed = 0;
  uint64_t h2_active = 0, h2_total = 0, h2_streams = 0, h2_abuse = 0;
  uint64_t mirrors[3] = {};
  std::map<std::string, RouteTotals> routes;
  Worker::UpstreamEventCounts events;
  uint64_t pool_active = 0, pool_idle = 0;
  for (auto& w : workers) {
    const WorkerStats& s = w->stats();
    acc += s.accepted.load();
    req += s.requests.load();
    act += s.active_connections.load();
    cerr += s.upstream_connect_errors.load();
    tmo += s.upstream_timeouts.load();
    resets += s.upstream_resets.load();
    retries += s.upstream_retries.load();
    mirrors[0] += s.mirrors_sent.load();
    mirrors[1] += s.mirrors_failed.load();
    mirrors[2] += s.mirrors_skipped.load();
    ejections += s.endpoint_ejections.load();
    refused += s.connections_refused.load();
    ws_active += s.websockets_active.load();
    ws_total += s.websockets_total.load();
    acc_tls += s.accepted_tls.load();
    tls12 += s.tls_handshakes[0].load();
    tls13 += s.tls_handshakes[1].load();
    tls_err += s.tls_handshake_errors.load();
    tls_resumed += s.tls_resumed.load();
    h2_active += s.http2_connections_active.load();
    h2_total += s.http2_connections_total.load();
    h2_streams += s.http2_streams_total.load();
    h2_abuse += s.http2_resets_refused.load();
    w->collect_metrics(routes);
    w->collect_upstream_events(events);
    pool_active += s.pool_active.load();
    pool_idle += s.pool_idle.load();
  }
  std::string b;
  render_route_metrics(routes, b);
  family(b, "ingressd_connections_accepted_total", "counter", "Client connections accepted, by listener.");
  b += fmt::format("ingressd_connections_accepted_total{{protocol=\"http\"}} {}\n", acc - acc_tls);
  b += fmt::format("ingressd_connections_accepted_total{{protocol=\"https\"}} {}\n", acc_tls);
  family(b, "ingressd_connections_active", "gauge", "Client connections open, by protocol.");
  b += fmt::format("ingressd_connections_active{{protocol=\"http1\"}} {}\n", act - ws_active - h2_active);
  b += fmt::format("ingressd_connections_active{{protocol=\"http2\"}} {}\n", h2_active);
  b += fmt::format("ingressd_connections_active{{protocol=\"websocket\"}} {}\n", ws_active);
  family(b, "ingressd_http2_connections_total", "counter", "HTTP/2 client connections (ALPN h2 or h2c).");
  b += fmt::format("ingressd_http2_connections_total {}\n", h2_total);
  family(b, "ingressd_http2_streams_total", "counter", "HTTP/2 streams opened by clients.");
  b += fmt::format("ingressd_http2_streams_total {}\n", h2_streams);
  family(b, "ingressd_http2_protocol_closes_total", "counter",
         "HTTP/2 connections closed for a protocol error or abuse (flood, rapid reset, bad preface).");
  b += fmt::format("ingressd_http2_protocol_closes_total {}\n", h2_abuse);
  family(b, "ingressd_tls_handshakes_total", "counter", "TLS handshakes completed, by version.");
  b += fmt::format("ingressd_tls_handshakes_total{{version=\"TLSv1.2\"}} {}\n", tls12);
  b += fmt::format("ingressd_tls_handshakes_total{{version=\"TLSv1.3\"}} {}\n", tls13);
  family(b, "ingressd_tls_handshake_errors_total", "counter",
         "TLS handshakes that failed (no common protocol or cipher, not TLS, reset, timeout).");
  b += fmt::format("ingressd_tls_handshake_errors_total {}\n", tls_err);
  family(b, "ingressd_tls_sessions_resumed_total", "counter", "TLS handshakes that resumed a session (ticket).");
  b += fmt::format("ingressd_tls_sessions_resumed_total {}\n", tls_resumed);
  if (tls) {
    if (auto certs = tls->current()) {
      family(b, "ingressd_tls_certificate_expiry_timestamp_seconds", "gauge",
             "notAfter of each certificate served, by Secret (\"self-signed\": the generated default).");
      for (const auto& [src, t] : certs->expiries())
        b += fmt::format("ingressd_tls_certificate_expiry_timestamp_seconds{{secret=\"{}\"}} {}\n", src, t);
    }
  }
  family(b, "ingressd_websocket_upgrades_total", "counter", "WebSocket tunnels opened.");
  b += fmt::format("ingressd_websocket_upgrades_total {}\n", ws_total);
  family(b, "ingressd_connections_refused_total", "counter", "Client connections refused over --max-connections.");
  b += fmt::format("ingressd_connections_refused_total {}\n", refused);
  family(b, "ingressd_request_heads_total", "counter", "Request heads parsed.");
  b += fmt::format("ingressd_request_heads_total {}\n", req);
  family(b, "ingressd_upstream_errors_total", "counter", "Upstream failures by cause.");
  b += fmt::format("ingressd_upstream_errors_total{{cause=\"connect\"}} {}\n", cerr);
  b += fmt::format("ingressd_upstream_errors_total{{cause=\"timeout\"}} {}\n", tmo);
  b += fmt::format("ingressd_upstream_errors_total{{cause=\"reset\"}} {}\n", resets);
  family(b, "ingressd_upstream_retries_total", "counter", "Requests retried on another connection or endpoint.");
  b += fmt::format("ingressd_upstream_retries_total {}\n", retries);
  family(b, "ingressd_mirrored_requests_total", "counter",
         "Mirrored request copies by result: answered, failed (error or timeout), skipped (body not at hand, no "
         "endpoint, too many in flight).");
  b += fmt::format("ingressd_mirrored_requests_total{{result=\"answered\"}} {}\n", mirrors[0]);
  b += fmt::format("ingressd_mirrored_requests_total{{result=\"failed\"}} {}\n", mirrors[1]);
  b += fmt::format("ingressd_mirrored_requests_total{{result=\"skipped\"}} {}\n", mirrors[2]);
  family(b, "ingressd_endpoint_ejections_total", "counter", "Endpoints ejected by passive health checking.");
  b += fmt::format("ingressd_endpoint_ejections_total {}\n", ejections);
  family(b, "ingressd_upstream_events_total", "counter",
         "Upstream failures, retries and ejections by service and endpoint.");
  static const char* event_names[] = {"connect_error", "timeout", "reset", "retry", "ejection"};
  for (auto& [k, v] : events)
    for (int i = 0; i < Worker::kUpstreamEvents; ++i)
      if (v[i])
        b += fmt::format("ingressd_upstream_events_total{{service=\"{}\",endpoint=\"{}\",event=\"{}\"}} {}\n", k.first,
                         k.second, event_names[i], v[i]);
  family(b, "ingressd_upstream_connections", "gauge", "Upstream connections, in use (active) or pooled (idle).");
  b += fmt::format("ingressd_upstream_connections{{state=\"active\"}} {}\n", pool_active);
  b += fmt::format("ingressd_upstream_connections{{state=\"idle\"}} {}\n", pool_idle);
  family(b, "ingressd_access_log_dropped_total", "counter", "Access-log lines dropped because the writer fell behind.");
  b += fmt::format("ingressd_access_log_dropped_total {}\n", log.dropped());
  state.metrics(b);
  process_metrics(b, state.start_time_ms());
  return b;
}

}  // namespace ingressd
