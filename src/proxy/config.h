// Settings of the data plane, from flags.
#pragma once
#include <cstdint>
#include <string>

#include "proxy/http1/parser.h"

namespace ingressd {

struct ProxyConfig {
  std::string bind = "0.0.0.0";
  uint16_t http_port = 8080;
  int workers = 0;  // 0 = one per core
  http1::Limits limits;
  int client_header_timeout_ms = 30'000;   // the whole request head must arrive within this
  int client_idle_timeout_ms = 60'000;     // keep-alive connection with no request
  int client_body_timeout_ms = 60'000;     // between bytes of a request body
  int client_send_timeout_ms = 60'000;     // a client that does not read what we send
  int upstream_connect_timeout_ms = 5'000;
  int upstream_read_timeout_ms = 60'000;   // between bytes of the upstream response
  int upstream_idle_timeout_ms = 30'000;   // pooled connection unused
  int upstream_max_idle_per_endpoint = 64; // per worker
  int max_connect_attempts = 3;            // endpoints tried before 502
  int shutdown_grace_ms = 10'000;
};

}  // namespace ingressd
