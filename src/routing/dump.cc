#include "routing/dump.h"

#include <fmt/format.h>

namespace ingressd::routing {

namespace {
std::string endpoints_text(const Backend* b) {
  if (!b) return "[]";
  std::vector<std::string> eps;
  for (auto& e : b->endpoints) eps.push_back(e.text);
  return "[" + fmt::format("{}", fmt::join(eps, " ")) + "]";
}
nlohmann::json backend_json(const Backend* b) {
  nlohmann::json j;
  if (!b) return j;
  j["namespace"] = b->namespace_;
  j["service"] = b->service;
  j["port"] = b->port;
  nlohmann::json eps = nlohmann::json::array();
  for (auto& e : b->endpoints) eps.push_back(e.text);
  j["endpoints"] = eps;
  if (!b->unavailable.empty()) j["unavailable"] = b->unavailable;
  return j;
}
}  // namespace

std::string dump_text(const RouteTable& t) {
  std::string out;
  for (const Route* r : t.sorted_routes()) {
    out += fmt::format("{} {} {} -> {} {} (ingress {} rule {} path {})\n", r->host.empty() ? "*" : r->host, r->path,
                       model::path_type_name(r->type), r->backend()->str(), endpoints_text(r->backend()), r->ingress,
                       r->rule, r->path_index);
  }
  for (const VHost* v : t.sorted_vhosts()) {
    if (v->default_backend())
      out += fmt::format("{} (host default) -> {} {} (ingress {})\n", v->host.empty() ? "*" : v->host,
                         v->default_backend()->str(), endpoints_text(v->default_backend()), v->default_source);
  }
  if (t.global_default())
    out += fmt::format("(default backend) -> {} {} (ingress {})\n", t.global_default()->str(),
                       endpoints_text(t.global_default()), t.global_default_source());
  return out;
}

nlohmann::json dump_json(const RouteTable& t) {
  nlohmann::json routes = nlohmann::json::array();
  for (const Route* r : t.sorted_routes()) {
    routes.push_back({{"host", r->host},
                      {"path", r->path},
                      {"pathType", model::path_type_name(r->type)},
                      {"ingress", r->ingress},
                      {"rule", r->rule},
                      {"pathIndex", r->path_index},
                      {"backend", backend_json(r->backend())}});
  }
  nlohmann::json j;
  j["routes"] = routes;
  if (t.global_default())
    j["defaultBackend"] = {{"ingress", t.global_default_source()}, {"backend", backend_json(t.global_default())}};
  return j;
}

nlohmann::json diagnostics_json(const Diagnostics& d) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : d) {
    a.push_back({{"severity", severity_name(x.severity)},
                 {"file", x.file},
                 {"line", x.line},
                 {"object", x.object},
                 {"reason", x.reason},
                 {"message", x.message}});
  }
  return a;
}

}  // namespace ingressd::routing
