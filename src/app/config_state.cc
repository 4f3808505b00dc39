#include "app/config_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "routing/dump.h"
#include "proxy/explain.h"

namespace ingressd {

void compile_into(const Snapshot& snap, const routing::CompileOptions& opts, const CertInputs* certs, LoadOutcome& out) {
  routing::CompileResult r = routing::compile(snap, opts);
  for (auto& d : r.diagnostics) out.diagnostics.push_back(std::move(d));
  if (certs) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    out.certs = tls::build_cert_map(snap, r.tls, certs->default_secret, certs->self_signed, now, out.diagnostics,
                                    certs->cache);
  }
  out.table = std::move(r.table);
  out.statuses = std::move(r.statuses);
  out.gateway_status = std::move(r.gateway_status);
  out.ignored_other_class = r.ignored_other_class;
  out.ignored_other_namespace = r.ignored_other_namespace;
}

LoadOutcome load_manifests_into(const std::string& path, ObjectStore& store, ManifestCache* cache,
                                const std::function<bool(int64_t, bool)>& settled) {
  LoadOutcome out;
  Diagnostics list_diags;
  std::vector<std::string> names = list_manifest_files(path, list_diags);
  if (!list_diags.empty()) {
    // The folder itself is unreadable: keep everything as it is.
    out.listed = false;
    out.diagnostics = list_diags;
    return out;
  }
  std::vector<LoadedFile> files;
  files.reserve(names.size());
  for (const auto& n : names) files.push_back(cache ? cache->load(n) : load_manifest_file(n));
  int64_t newest = 0;
  bool emptied = false;  // a file with objects in force now holds none: likely truncated, not yet written
  std::set<std::string> empty_files;
  for (const auto& f : files) {
    newest = std::max(newest, f.mtime_ns);
    if (f.decoded.objects.empty() && f.decoded.file_errors.empty() && f.read_errors.empty()) empty_files.insert(f.path);
  }
  if (settled && !empty_files.empty())
    for (const auto& [key, so] : store.snapshot()->objects)
      if (empty_files.count(so.pos.file)) {
        emptied = true;
        break;
      }
  if (settled && !settled(newest, emptied)) {
    out.deferred = true;
    return out;
  }
  if (cache) cache->retain_only(names);
  out.diagnostics = store.replace_from_files(files);
  return out;
}

LoadOutcome load_and_compile(const std::string& path, ObjectStore& store, const routing::CompileOptions& opts,
                             ManifestCache* cache, const CertInputs* certs,
                             const std::function<bool(int64_t, bool)>& settled) {
  LoadOutcome out = load_manifests_into(path, store, cache, settled);
  if (out.listed && !out.deferred) compile_into(*store.snapshot(), opts, certs, out);
  return out;
}

void ConfigState::record(const LoadOutcome& o, std::shared_ptr<const Snapshot> snap_ptr,
                         const routing::CompileOptions& opts, int64_t unix_ms) {
  const Snapshot& snap = *snap_ptr;
  std::lock_guard<std::mutex> g(mu_);
  ++reloads_;
  last_reload_ms_ = unix_ms;
  last_error_.clear();
  for (const auto& d : o.diagnostics) {
    if (d.severity == Severity::Error) {
      last_error_ = d.str();
      break;
    }
  }
  if (!last_error_.empty()) ++failed_reloads_;
  diagnostics_ = routing::diagnostics_json(o.diagnostics);
  diag_counts_.clear();
  for (const auto& d : o.diagnostics) ++diag_counts_[{severity_name(d.severity), d.reason}];
  if (!o.listed) return;  // counted above: its diagnostic is an error
  if (last_error_.empty()) last_success_ms_ = unix_ms;
  routes_ = o.table ? o.table->route_count() : 0;
  loaded_ = true;
  table_ = o.table;
  snap_ = std::move(snap_ptr);
  opts_ = opts;
  objects_ = nlohmann::json::object();
  for (auto k : {model::Kind::Ingress, model::Kind::IngressClass, model::Kind::Service, model::Kind::EndpointSlice,
                 model::Kind::Endpoints, model::Kind::Secret, model::Kind::GatewayClass, model::Kind::Gateway,
                 model::Kind::HTTPRoute, model::Kind::ReferenceGrant, model::Kind::Namespace, model::Kind::GRPCRoute,
                 model::Kind::BackendTLSPolicy})
    objects_[model::kind_name(k)] = snap.count(k);
  ignored_ = {{"otherClass", o.ignored_other_class}, {"otherNamespace", o.ignored_other_namespace}};
  statuses_ = nlohmann::json::array();
  for (const auto& s : o.statuses)
    statuses_.push_back(
        {{"ingress", s.ingress}, {"state", routing::ingress_state_name(s.state)}, {"detail", s.detail}});
  gateway_status_ = routing::gateway_status_json(o.gateway_status);
}

nlohmann::json ConfigState::explain(const std::string& url, const std::string& host) const {
  std::lock_guard<std::mutex> g(mu_);
  if (!table_ || !snap_) return {{"error", "no configuration loaded"}};
  ExplainRequest r;
  r.url = url;
  r.host_header = host;
  r.proxy = proxy_;
  r.https_listener = https_listener_;
  return ingressd::explain(*snap_, opts_, *table_, r).json;
}

void ConfigState::metrics(std::string& b) const {
  std::lock_guard<std::mutex> g(mu_);
  auto family = [&](const char* name, const char* type, const char* help) {
    b += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("ingressd_config_reloads_total", "counter", "Configuration loads, by result (with_errors: some object was rejected).");
  b += fmt::format("ingressd_config_reloads_total{{result=\"clean\"}} {}\n", reloads_ - failed_reloads_);
  b += fmt::format("ingressd_config_reloads_total{{result=\"with_errors\"}} {}\n", failed_reloads_);
  family("ingressd_config_last_clean_reload_timestamp_seconds", "gauge", "When the configuration last loaded without errors.");
  b += fmt::format("ingressd_config_last_clean_reload_timestamp_seconds {:.3f}\n", static_cast<double>(last_success_ms_) / 1000.0);
  family("ingressd_config_objects", "gauge", "Objects in force, by kind.");
  for (auto it = objects_.begin(); it != objects_.end(); ++it)
    b += fmt::format("ingressd_config_objects{{kind=\"{}\"}} {}\n", it.key(), it.value().get<uint64_t>());
  family("ingressd_config_routes", "gauge", "Routes in the table in force.");
  b += fmt::format("ingressd_config_routes {}\n", routes_);
  family("ingressd_config_diagnostics", "gauge", "Diagnostics of the last load, by severity and reason.");
  for (auto& [k, v] : diag_counts_)
    b += fmt::format("ingressd_config_diagnostics{{severity=\"{}\",reason=\"{}\"}} {}\n", k.first, k.second, v);
  family("ingressd_config_ready", "gauge", "1 once a configuration is loaded.");
  b += fmt::format("ingressd_config_ready {}\n", loaded_ ? 1 : 0);
}

bool ConfigState::ready() const {
  std::lock_guard<std::mutex> g(mu_);
  return loaded_;
}

nlohmann::json ConfigState::summary() const {
  std::lock_guard<std::mutex> g(mu_);
  nlohmann::json j;
  j["ready"] = loaded_;
  j["reloads"] = reloads_;
  j["reloadsWithErrors"] = failed_reloads_;
  j["lastReloadUnixMs"] = last_reload_ms_;
  j["lastError"] = last_error_;
  j["objects"] = objects_;
  j["ingresses"] = statuses_;
  j["gatewayStatus"] = gateway_status_;
  j["ignoredIngresses"] = ignored_;
  j["diagnostics"] = diagnostics_;
  if (table_) j["routes"] = routing::dump_json(*table_);
  return j;
}

std::string ConfigState::routes_text() const {
  std::lock_guard<std::mutex> g(mu_);
  return table_ ? routing::dump_text(*table_) : std::string();
}

nlohmann::json ConfigState::routes_json() const {
  std::lock_guard<std::mutex> g(mu_);
  return table_ ? routing::dump_json(*table_) : nlohmann::json::object();
}

nlohmann::json ConfigState::objects_json() const {
  std::lock_guard<std::mutex> g(mu_);
  nlohmann::json arr = nlohmann::json::array();
  if (snap_)
    for (const auto& [key, so] : snap_->objects)
      arr.push_back({{"kind", model::kind_name(key.kind)},
                     {"namespace", key.namespace_},
                     {"name", key.name},
                     {"resourceVersion", model::object_meta(so.object).resource_version}});
  return {{"objects", std::move(arr)}};
}

}  // namespace ingressd
