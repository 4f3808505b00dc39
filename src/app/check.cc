// `ingressd check` and `ingressd routes`: the same load and compile as
// `serve`, offline.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/config_state.h"
#include "core/strings.h"
#include "routing/dump.h"
#include "proxy/explain.h"

namespace ingressd {

int run_check(const CheckOptions& o) {
  ObjectStore store;
  // Certificates are checked as `serve` would (PEM, key match, expiry, names).
  CertInputs certs;
  certs.default_secret = o.default_ssl_certificate;
  LoadOutcome out = load_and_compile(o.manifests, store, o.compile, nullptr, &certs);
  size_t errors = 0, warnings = 0;
  for (const auto& d : out.diagnostics) {
    errors += d.severity == Severity::Error;
    warnings += d.severity == Severity::Warning;
  }
  if (o.output == "json") {
    nlohmann::json j;
    j["errors"] = errors;
    j["warnings"] = warnings;
    j["diagnostics"] = routing::diagnostics_json(out.diagnostics);
    nlohmann::json st = nlohmann::json::array();
    for (auto& s : out.statuses)
      st.push_back({{"ingress", s.ingress}, {"state", routing::ingress_state_name(s.state)}, {"detail", s.detail}});
    j["ingresses"] = st;
    j["gatewayStatus"] = routing::gateway_status_json(out.gateway_status);
    std::puts(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& d : out.diagnostics) std::puts(d.str().c_str());
    std::fputs(routing::gateway_status_text(out.gateway_status).c_str(), stdout);
    const auto* snap = store.snapshot().get();
    std::printf("%zu error(s), %zu warning(s); %zu object(s) valid, %zu route(s)\n", errors, warnings,
                snap->objects.size(), out.table ? out.table->route_count() : 0);
  }
  return errors > 0 ? 1 : 0;
}

int run_routes(const CheckOptions& o) {
  ObjectStore store;
  LoadOutcome out = load_and_compile(o.manifests, store, o.compile);
  if (!out.table) {
    for (const auto& d : out.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
    return 1;
  }
  if (o.output == "json") std::puts(routing::dump_json(*out.table).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else std::fputs(routing::dump_text(*out.table).c_str(), stdout);
  return 0;
}

int run_explain(const ExplainOptions& o) {
  ObjectStore store;
  LoadOutcome out = load_and_compile(o.manifests, store, o.compile);
  if (!out.table) {
    for (const auto& d : out.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
    return 1;
  }
  ExplainRequest xr;
  xr.url = o.url;
  xr.method = o.method;
  xr.client = o.client;
  xr.proxy = o.proxy;
  xr.https_listener = o.proxy.https_port != 0;
  for (const auto& h : o.headers) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    std::string name(trim_ows(std::string_view(h).substr(0, colon)));
    std::string value(trim_ows(std::string_view(h).substr(colon + 1)));
    if (iequals(name, "host")) xr.host_header = value;
    else xr.headers.emplace_back(std::move(name), std::move(value));
  }
  auto e = explain(*store.snapshot(), o.compile, *out.table, xr);
  if (o.output == "json") std::puts(e.json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else std::fputs(e.text.c_str(), stdout);
  return 0;
}

}  // namespace ingressd
