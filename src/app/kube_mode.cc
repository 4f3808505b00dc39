#include "app/kube_mode.h"

#include <fmt/format.h>
#include <unistd.h>

#include <random>

#include "core/log.h"
#include "routing/compile.h"

namespace ingressd {

KubeMode::~KubeMode() { stop(); }

bool KubeMode::start(std::string& err) {
  const KubeServeOptions& k = o_.kube;
  std::optional<kube::KubeConfig> cfg;
  if (!k.kubeconfig.empty()) cfg = kube::load_kubeconfig(k.kubeconfig, k.context, err);
  else {
    // The service account's files are where the kubelet mounts them, unless
    // INGRESSD_SERVICE_ACCOUNT_DIR says otherwise (tests; unusual mounts).
    const char* sa = std::getenv("INGRESSD_SERVICE_ACCOUNT_DIR");
    cfg = kube::in_cluster_config(err, sa && *sa ? sa : kube::kServiceAccountDir);
  }
  if (!cfg) return false;
  auto dur = [&](const std::string& v, const char* flag, int64_t& out) {
    auto ms = kube::parse_duration_ms(v);
    if (!ms || *ms <= 0) {
      err = fmt::format("{}: \"{}\" is not a duration (like 15s, 2m, 500ms)", flag, v);
      return false;
    }
    out = *ms;
    return true;
  };
  kube::LeaderOptions lo;
  int64_t resync_ms = 0;
  if (!dur(k.lease_duration, "--lease-duration", lo.lease_duration_ms) ||
      !dur(k.renew_deadline, "--renew-deadline", lo.renew_deadline_ms) ||
      !dur(k.retry_period, "--retry-period", lo.retry_period_ms) ||
      (k.resync_period != "0" && !dur(k.resync_period, "--resync-period", resync_ms)))
    return false;
  if (lo.renew_deadline_ms >= lo.lease_duration_ms) {
    err = "--renew-deadline must be shorter than --lease-duration";
    return false;
  }
  if (!k.publish_service.empty() && !k.publish_status_address.empty()) {
    err = "--publish-service and --publish-status-address exclude each other";
    return false;
  }
  client_ = std::make_unique<kube::KubeClient>(*cfg);

  kube::KubeSourceOptions so;
  so.namespaces.assign(o_.compile.watch_namespaces.begin(), o_.compile.watch_namespaces.end());
  so.informer.resync_s = resync_ms == 0 ? 0 : static_cast<int>(std::max<int64_t>(1, resync_ms / 1000));
  if (!k.gateway_discovery_period.empty() && k.gateway_discovery_period != "0") {
    int64_t ms = 0;
    if (!dur(k.gateway_discovery_period, "--gateway-api-discovery-period", ms)) return false;
    so.discovery_period_s = static_cast<int>(std::max<int64_t>(1, ms / 1000));
  } else {
    so.discovery_period_s = 0;
  }
  source_ = std::make_unique<kube::KubeSource>(*client_, so);

  std::string identity;
  if (const char* pod = std::getenv("POD_NAME"); pod && *pod) identity = pod;
  else {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    identity = host;
  }
  identity += fmt::format("_{:08x}", std::random_device{}());
  // Our own namespace: the in-cluster service account's, or the kubeconfig
  // context's.
  const std::string own_ns = !cfg->namespace_.empty() ? cfg->namespace_ : "default";
  if (k.leader_elect) {
    lo.namespace_ = !k.leader_election_namespace.empty() ? k.leader_election_namespace : own_ns;
    lo.name = k.leader_election_id;
    lo.identity = identity;
    leader_ = std::make_unique<kube::LeaderElector>(*client_, lo);
  }
  kube::StatusOptions st;
  st.publish_service = k.publish_service;
  if (!st.publish_service.empty() && st.publish_service.find('/') == std::string::npos)
    st.publish_service = own_ns + "/" + st.publish_service;  // a bare NAME is a Service of our own namespace
  st.publish_addresses = k.publish_status_address;
  st.identity = identity;
  st.write_status = k.update_status && (!k.publish_service.empty() || !k.publish_status_address.empty());
  st.write_gateway_status = k.update_status;
  st.controller_name = o_.compile.controller_name;
  if (k.update_status && !st.write_status)
    log_warn("kube: neither --publish-service nor --publish-status-address is set: Ingress status is not written");
  status_ = std::make_unique<kube::StatusWriter>(*client_, source_->ingress_status(), source_->gateway_status(),
                                                 leader_.get(), st);
  if (leader_) {
    kube::StatusWriter* sw = status_.get();
    leader_->set_on_change([sw](bool) { sw->poke(); });
  }
  log_info("kube: API server {}; watching {}; leader election {}", client_->describe(),
           so.namespaces.empty() ? std::string("every namespace") : fmt::format("namespaces {}", fmt::join(so.namespaces, ",")),
           leader_ ? fmt::format("on (lease {}/{})", lo.namespace_, lo.name) : std::string("off"));
  source_->start();
  if (leader_) leader_->start();
  status_->start();
  return true;
}

void KubeMode::stop() {
  if (source_) source_->stop();
  if (status_) status_->stop();
  if (leader_) leader_->stop();
}

std::string KubeMode::describe() const { return client_ ? client_->describe() : "kube"; }

bool KubeMode::synced() const {
  if (!discovered_) return false;
  const size_t n = source_->required_count();
  if (synced_.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (!synced_[i]) return false;
  return true;
}

bool KubeMode::gateway_synced() const {
  for (size_t i : source_->gateway_informers())
    if (i >= synced_.size() || !synced_[i]) return false;
  return true;
}

bool KubeMode::drain_into(ObjectStore& store, std::chrono::steady_clock::time_point& oldest) {
  bool any = false;
  for (kube::ChangeBatch& b : source_->drain()) {
    bool contributes = false;
    if (b.discovered) {
      discovered_ = true;
      contributes = true;  // readiness may follow from it alone (no Gateway API: nothing more to list)
    } else if (b.first_sync) {
      if (synced_.size() <= b.informer) synced_.resize(b.informer + 1, false);
      if (!synced_[b.informer]) {
        synced_[b.informer] = true;
        contributes = true;  // the first sync completes even when it brought nothing
      }
    }
    if (contributes && !all_synced_logged_ && synced()) {
      all_synced_logged_ = true;
      log_info("kube: every informer has synced");
    }
    for (kube::Change& c : b.changes) {
      if (!c.errors.empty()) {
        invalid_[c.key] = Invalid{std::move(c.errors), std::move(c.invalid_ingress)};
        contributes = true;
      } else if (invalid_.erase(c.key)) {
        contributes = true;
      }
      if (store.apply(c.key, std::move(c.object))) {
        contributes = true;
        ++applied_;
      }
    }
    if (contributes) {
      if (!any || b.received < oldest) oldest = b.received;
      any = true;
    }
  }
  return any;
}

Diagnostics KubeMode::invalid_objects() const {
  Diagnostics out;
  for (auto& [key, inv] : invalid_)
    for (auto& d : inv.errors) out.push_back(d);
  return out;
}

void KubeMode::after_compile(const LoadOutcome& out, const Snapshot& snap, std::chrono::steady_clock::duration lag_d) {
  int64_t lag = std::chrono::duration_cast<std::chrono::microseconds>(lag_d).count();
  last_lag_us_ = lag;
  lag_sum_us_ += static_cast<uint64_t>(std::max<int64_t>(0, lag));
  ++lag_count_;
  std::set<std::string> served;
  for (const auto& s : out.statuses)
    if (s.state != routing::IngressState::Ignored) served.insert(s.ingress);
  // Diagnostics about Ingresses we serve become Events on them.
  std::map<std::string, const model::Ingress*> by_name;
  for (auto& [key, so] : snap.objects)
    if (key.kind == model::Kind::Ingress) by_name[key.str()] = &std::get<model::Ingress>(so.object);
  std::set<kube::EventNote> notes;
  for (const Diagnostic& d : out.diagnostics) {
    if (d.severity == Severity::Info) continue;
    auto it = by_name.find(d.object);
    if (it == by_name.end()) continue;
    const model::ObjectMeta& m = it->second->meta;
    if (!served.count(m.namespace_ + "/" + m.name)) continue;
    kube::EventNote n;
    n.namespace_ = m.namespace_;
    n.name = m.name;
    n.uid = m.uid;
    n.type = "Warning";
    n.reason = d.reason;
    n.message = d.message;
    notes.insert(std::move(n));
  }
  // Ingresses of ours that we could not decode: say why on them.
  bool default_class = routing::have_default_class(snap, o_.compile);
  for (auto& [key, inv] : invalid_) {
    if (!inv.ingress) continue;
    std::string why;
    if (!routing::ingress_is_ours(snap, *inv.ingress, o_.compile, default_class, why)) continue;
    std::string msg;
    for (auto& d : inv.errors) msg += (msg.empty() ? "" : "; ") + d.message;
    kube::EventNote n;
    n.namespace_ = key.namespace_;
    n.name = key.name;
    n.uid = inv.ingress->meta.uid;
    n.reason = "Invalid";
    n.message = msg + "; ingressd does not serve it";
    notes.insert(std::move(n));
  }
  status_->update(std::move(served), std::move(notes), gateway_wants(out, snap));
}

std::optional<std::vector<kube::GatewayStatusWant>> KubeMode::gateway_wants(const LoadOutcome& out,
                                                                            const Snapshot& snap) const {
  // Until every Gateway API informer has listed, the compile saw part of the
  // picture (a Gateway without its routes): its status would be wrong.
  if (!gateway_synced()) return std::nullopt;
  std::vector<kube::GatewayStatusWant> wants;
  for (const routing::GatewayObjectStatus& g : out.gateway_status) {
    model::Kind kind;
    if (g.kind == "GatewayClass") kind = model::Kind::GatewayClass;
    else if (g.kind == "Gateway") kind = model::Kind::Gateway;
    else if (g.kind == "HTTPRoute") kind = model::Kind::HTTPRoute;
    else if (g.kind == "GRPCRoute") kind = model::Kind::GRPCRoute;
    else continue;
    auto it = snap.objects.find(model::ObjectKey{kind, g.namespace_, g.name});
    if (it == snap.objects.end()) continue;
    // observedGeneration: the generation of the spec this status was compiled from.
    wants.push_back({g.kind, g.namespace_, g.name, model::object_meta(it->second.object).generation, g.status});
  }
  return wants;
}

void KubeMode::metrics(std::string& b) const {
  source_->metrics(b);
  auto family = [&](const char* name, const char* type, const char* help) {
    b += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("ingressd_kube_event_to_table_seconds", "summary",
         "From a watch event's arrival to the route table that includes it being published.");
  b += fmt::format("ingressd_kube_event_to_table_seconds_sum {:.6f}\n", static_cast<double>(lag_sum_us_.load()) / 1e6);
  b += fmt::format("ingressd_kube_event_to_table_seconds_count {}\n", lag_count_.load());
  family("ingressd_kube_last_event_to_table_seconds", "gauge", "The same, for the last table published.");
  b += fmt::format("ingressd_kube_last_event_to_table_seconds {:.6f}\n", static_cast<double>(last_lag_us_.load()) / 1e6);
  family("ingressd_kube_object_changes_total", "counter", "Object changes applied to the store from the API server.");
  b += fmt::format("ingressd_kube_object_changes_total {}\n", applied_.load());
  family("ingressd_leader", "gauge", "1 while this replica holds the leader lease (always 1 with --leader-elect=false).");
  b += fmt::format("ingressd_leader {}\n", leader_ ? (leader_->is_leader() ? 1 : 0) : 1);
  family("ingressd_leader_transitions_total", "counter", "Times this replica gained or lost leadership.");
  b += fmt::format("ingressd_leader_transitions_total {}\n", leader_ ? leader_->transitions() : 0);
  family("ingressd_kube_status_updates_total", "counter", "Ingress status PATCHes written.");
  b += fmt::format("ingressd_kube_status_updates_total {}\n", status_->status_writes());
  family("ingressd_kube_gateway_status_updates_total", "counter",
         "Gateway API status PATCHes written (only when the status changed), by kind.");
  for (size_t i = 0; i < std::size(kube::StatusWriter::kGatewayKinds); ++i)
    b += fmt::format("ingressd_kube_gateway_status_updates_total{{kind=\"{}\"}} {}\n",
                     kube::StatusWriter::kGatewayKinds[i], status_->gateway_status_writes(i));
  family("ingressd_kube_events_posted_total", "counter", "Kubernetes Events posted.");
  b += fmt::format("ingressd_kube_events_posted_total {}\n", status_->events_posted());
}

}  // namespace ingressd
