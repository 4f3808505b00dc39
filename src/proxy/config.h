// Settings of the data plane, from flags.
#pragma once
#include <cstdint>
#include <string>

#include "proxy/http1/parser.h"

namespace ingressd {

struct ProxyConfig {
  std::string bind = "0.0.0.0";
  uint16_t http_port = 8080;
  uint16_t https_port = 8443;  // 0 = no TLS listener
  // Plain HTTP for a host named in spec.tls answers 308 to https (except
  // /.well-known/acme-challenge/). The port in the Location: the one clients
  // reach (behind a LoadBalancer, 443), omitted when it is 443.
  bool ssl_redirect = true;
  uint16_t redirect_https_port = 0;  // 0 = https_port
  std::string hsts;  // Strict-Transport-Security value added to HTTPS responses ("" = none)
  bool request_metrics = true;  // per-route request counters and histograms (--request-metrics)
  bool h2c = false;  // HTTP/2 with prior knowledge on the plain port
  uint32_t h2_max_concurrent_streams = 128;  // SETTINGS_MAX_CONCURRENT_STREAMS per HTTP/2 connection
  int workers = 0;  // 0 = one per core
  http1::Limits limits;
  int client_header_timeout_ms = 30'000;   // the whole request head must arrive within this
  int client_idle_timeout_ms = 60'000;     // keep-alive connection with no request
  int client_body_timeout_ms = 60'000;     // between bytes of a request body
  int client_send_timeout_ms = 60'000;     // a client that does not read what we send
  int upstream_connect_timeout_ms = 5'000;
  int upstream_read_timeout_ms = 60'000;   // between bytes of the upstream response
  int upstream_idle_timeout_ms = 30'000;   // pooled connection unused
  // Idle pooled connections kept per endpoint and worker. 64 made a worker at
  // 256 concurrent requests open and close upstream connections per request
  // (ka256: CPU per request ×2.3, p99 ×10 against 512).
  int upstream_max_idle_per_endpoint = 512;  // per worker
  int max_connect_attempts = 3;            // endpoints tried before 502
  uint64_t max_body_bytes = 0;             // request body limit, 413 beyond (0 = none)
  int max_connections = 0;                 // client connections per process (0 = none); excess get 503 and close
  int max_requests_per_backend = 0;        // concurrent requests per backend per worker (0 = none); excess get 503
  int eject_after_failures = 3;            // passive health: consecutive connect failures/resets before ejection
  int eject_ms = 10'000;                   // how long an ejected endpoint gets no requests
  int shutdown_grace_ms = 10'000;
};

}  // namespace ingressd
