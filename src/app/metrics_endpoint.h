// /metrics: sums the workers' counters and the control plane's state into the
// Prometheus text format (0.0.4).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "app/config_state.h"
#include "observe/access_log.h"
#include "proxy/worker.h"

namespace ingressd {

std::string render_metrics(const std::vector<std::unique_ptr<Worker>>& workers, const ConfigState& state,
                           const AccessLog& log, const tls::TlsServer* tls = nullptr);

}  // namespace ingressd
