#include "sources/kube/kube_source.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "sources/kube/backoff.h"

namespace ingressd::kube {

void ObservedIngressStatus::observe(const nlohmann::json& obj, bool deleted) {
  std::string id = object_id(obj);
  std::lock_guard<std::mutex> g(mu_);
  if (deleted) {
    by_id_.erase(id);
    return;
  }
  nlohmann::json lb = nlohmann::json::array();
  auto st = obj.find("status");
  if (st != obj.end() && st->is_object()) {
    auto l = st->find("loadBalancer");
    if (l != st->end() && l->is_object() && l->contains("ingress") && (*l)["ingress"].is_array()) lb = (*l)["ingress"];
  }
  std::string uid;
  if (auto md = obj.find("metadata"); md != obj.end() && md->is_object()) uid = json_str(*md, "uid");
  by_id_[id] = {std::move(lb), std::move(uid)};
}

bool ObservedIngressStatus::get(const std::string& id, nlohmann::json& lb, std::string& uid) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  lb = it->second.first;
  uid = it->second.second;
  return true;
}

void ObservedIngressStatus::set(const std::string& id, const nlohmann::json& lb) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) it->second.first = lb;
}

std::vector<std::string> ObservedIngressStatus::ids() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::string> out;
  for (auto& [id, _] : by_id_) out.push_back(id);
  return out;
}

KubeSource::KubeSource(KubeClient& client, KubeSourceOptions opts) : client_(client), opts_(std::move(opts)) {
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::lock_guard<std::mutex> g(informers_mu_);
  for (const ResourceInfo& r : watched_resources()) add_informer(r, false);
}

size_t KubeSource::add_informer(const ResourceInfo& r, bool gateway) {
  // Per watched namespace for a namespaced kind; the Namespaces themselves,
  // with --watch-namespace, one by one (a field selector on the name): only
  // routes of the watched namespaces are seen, so only their labels matter.
  std::vector<std::string> scopes = opts_.namespaces;
  bool per_ns = !scopes.empty() && (r.namespaced || r.kind == model::Kind::Namespace);
  if (!per_ns) scopes = {""};
  size_t first = informers_.size();
  for (const std::string& ns : scopes) {
    ResourceInfo ri = r;
    if (!r.namespaced && !ns.empty()) ri.field_selector = "metadata.name=" + ns;
    size_t idx = informers_.size();
    auto deliver = [this, idx](std::vector<Change>&& changes, bool first_sync) {
      push(ChangeBatch{idx, first_sync, false, std::chrono::steady_clock::now(), std::move(changes)});
    };
    Informer::Observe observe;
    if (r.kind == model::Kind::Ingress)
      observe = [this](const nlohmann::json& o, bool deleted) { observed_.observe(o, deleted); };
    else if (r.kind == model::Kind::GatewayClass || r.kind == model::Kind::Gateway ||
             r.kind == model::Kind::HTTPRoute || r.kind == model::Kind::GRPCRoute)
      observe = [this, ri](const nlohmann::json& o, bool deleted) {
        observed_gateway_.observe(ri.kind_name, ri.api_version, ri.plural, o, deleted);
      };
    auto inf = std::make_unique<Informer>(client_, ri, ns, opts_.informer, deliver, observe);
    // A CRD removed: discovery need not wait for its period to notice.
    if (gateway) inf->set_on_not_found([this] { poke_discovery(); });
    informers_.push_back(Slot{std::move(inf), gateway});
    if (started_) informers_.back().informer->start();
  }
  return first;
}

void KubeSource::push(ChangeBatch&& b) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(std::move(b));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof one);
}

KubeSource::~KubeSource() {
  stop();
  if (efd_ >= 0) ::close(efd_);
}

void KubeSource::start() {
  {
    std::lock_guard<std::mutex> g(informers_mu_);
    started_ = true;
    for (auto& s : informers_) s.informer->start();
  }
  discovery_ = std::thread([this] { discovery_loop(); });
}

void KubeSource::stop() {
  {
    std::lock_guard<std::mutex> g(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (discovery_.joinable()) discovery_.join();  // no informer is added after this
  // All at once: each may take up to a second to notice.
  std::lock_guard<std::mutex> g(informers_mu_);
  for (auto& s : informers_) s.informer->request_stop();
  for (auto& s : informers_) s.informer->stop();
}

std::vector<ChangeBatch> KubeSource::drain() {
  uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(efd_, &v, sizeof v);
  std::lock_guard<std::mutex> g(mu_);
  std::vector<ChangeBatch> out;
  out.swap(queue_);
  return out;
}

size_t KubeSource::informer_count() const {
  std::lock_guard<std::mutex> g(informers_mu_);
  return informers_.size();
}

size_t KubeSource::required_count() const {
  std::lock_guard<std::mutex> g(informers_mu_);
  return required_;
}

std::vector<size_t> KubeSource::gateway_informers() const {
  std::lock_guard<std::mutex> g(informers_mu_);
  std::vector<size_t> out;
  for (size_t i = 0; i < informers_.size(); ++i)
    if (informers_[i].gateway && !informers_[i].retired) out.push_back(i);
  return out;
}

bool KubeSource::sleep_ms(int ms) {
  std::unique_lock<std::mutex> lk(stop_mu_);
  stop_cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stop_.load() || poked_; });
  poked_ = false;
  return !stop_;
}

void KubeSource::poke_discovery() {
  {
    std::lock_guard<std::mutex> g(stop_mu_);
    poked_ = true;
  }
  stop_cv_.notify_all();
}

std::optional<GatewayApiServed> KubeSource::discover(KubeSession& s, bool& warned) {
  GatewayApiServed served;
  for (const char* v : {"v1", "v1beta1"}) {
    std::string path = fmt::format("/apis/{}/{}", kGatewayGroup, v);
    std::string err;
    auto names = served_resources(s.request("GET", path), err);
    if (!names) {
      // Once per run of failures: the next discovery tries again.
      if (!warned) log_warn("kube: discovery {} failed: {}; trying again", path, err);
      warned = true;
      return std::nullopt;
    }
    (std::string_view(v) == "v1" ? served.v1 : served.v1beta1) = std::move(*names);
  }
  warned = false;
  return served;
}

void KubeSource::apply_discovery(const GatewayApiServed& served) {
  const bool first = !last_served_;
  if (!first && *last_served_ == served) return;
  last_served_ = served;
  std::vector<ResourceInfo> want = gateway_resources(served);
  std::vector<ResourceInfo> added;
  std::vector<Informer*> retired;
  std::vector<size_t> retired_idx;
  {
    std::lock_guard<std::mutex> g(informers_mu_);
    for (const ResourceInfo& r : want) {
      bool have = false;
      for (auto& slot : informers_)
        have |= slot.gateway && !slot.retired && slot.informer->resource().plural == r.plural;
      // A kind already watched stays at its version (v1beta1 still served
      // when v1 comes): a switch would delete and re-add every object.
      if (have) continue;
      add_informer(r, true);
      added.push_back(r);
    }
    for (size_t i = 0; i < informers_.size(); ++i) {
      Slot& slot = informers_[i];
      if (!slot.gateway || slot.retired) continue;
      bool still = false;
      for (const ResourceInfo& r : want) still |= r.plural == slot.informer->resource().plural;
      if (still) continue;
      slot.retired = true;
      retired.push_back(slot.informer.get());
      retired_idx.push_back(i);
    }
    if (first) required_ = informers_.size();
  }
  gateway_served_ = served.any();
  if (first && want.empty()) {
    log_info("kube: the Gateway API is not installed ({} is not served): Ingress only{}", kGatewayGroup,
             opts_.discovery_period_s > 0 ? fmt::format("; looking again every {} s", opts_.discovery_period_s)
                                          : std::string("; restart ingressd once its CRDs are installed"));
  } else if (first) {
    log_info("kube: Gateway API: watching {}", describe_resources(want));
  } else if (!added.empty()) {
    log_info("kube: Gateway API: now also watching {}", describe_resources(added));
  }
  // Kinds no longer served: their objects leave the store (outside the
  // lock: stopping takes up to a second).
  for (size_t k = 0; k < retired.size(); ++k) {
    Informer* inf = retired[k];
    inf->stop();
    log_info("kube: {} {}; its objects are forgotten", inf->name(),
             inf->resource().kind == model::Kind::Namespace ? "are not needed without the Gateway API"
                                                            : "is no longer served");
    std::vector<Change> gone = inf->forget();
    for (const Change& c : gone)
      observed_gateway_.erase(inf->resource().kind_name, c.key.namespace_ + "/" + c.key.name);
    push(ChangeBatch{retired_idx[k], false, false, std::chrono::steady_clock::now(), std::move(gone)});
  }
  if (first) {
    discovered_ = true;
    push(ChangeBatch{0, false, true, std::chrono::steady_clock::now(), {}});
  }
}

void KubeSource::discovery_loop() {
  KubeSession s(client_);
  s.set_stop_flag(&stop_);
  Backoff backoff(opts_.informer.backoff_base_ms, opts_.informer.backoff_max_ms);
  bool warned = false;
  while (!stop_) {
    std::optional<GatewayApiServed> served;
    try {
      served = discover(s, warned);
    } catch (const std::exception& e) {
      log_warn("kube: discovery: {}", e.what());
    }
    int wait_ms;
    if (served) {
      apply_discovery(*served);
      backoff.reset();
      if (opts_.discovery_period_s <= 0) return;  // at start only
      wait_ms = opts_.discovery_period_s * 1000;
    } else {
      wait_ms = backoff.next_ms();
    }
    // At most one discovery a second, however often informers poke.
    {
      std::unique_lock<std::mutex> lk(stop_mu_);
      if (stop_cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_.load(); })) return;
    }
    if (!sleep_ms(std::max(0, wait_ms - 1000))) return;
  }
}

void KubeSource::metrics(std::string& b) const {
  auto family = [&](const char* name, const char* type, const char* help) {
    b += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto labels = [](const Informer& i) {
    return i.namespace_().empty() ? fmt::format("resource=\"{}\"", i.resource().plural)
                                  : fmt::format("resource=\"{}\",namespace=\"{}\"", i.resource().plural, i.namespace_());
  };
  family("ingressd_kube_watch_restarts_total", "counter", "Watches that broke and were reopened, by resource.");
  std::lock_guard<std::mutex> g(informers_mu_);
  std::vector<const Informer*> live;
  for (auto& s : informers_)
    if (!s.retired) live.push_back(s.informer.get());
  for (auto* i : live)
    b += fmt::format("ingressd_kube_watch_restarts_total{{{}}} {}\n", labels(*i), i->stats().watch_restarts.load());
  family("ingressd_kube_relists_total", "counter", "Full relists after the first list (410 Gone, resync), by resource.");
  for (auto* i : live)
    b += fmt::format("ingressd_kube_relists_total{{{}}} {}\n", labels(*i), i->stats().relists.load());
  family("ingressd_kube_watch_events_total", "counter", "Watch events received (bookmarks excluded), by resource.");
  for (auto* i : live)
    b += fmt::format("ingressd_kube_watch_events_total{{{}}} {}\n", labels(*i), i->stats().events.load());
  family("ingressd_kube_last_event_timestamp_seconds", "gauge", "When the last watch event arrived, by resource (0 = none yet).");
  for (auto* i : live)
    b += fmt::format("ingressd_kube_last_event_timestamp_seconds{{{}}} {:.3f}\n", labels(*i),
                     static_cast<double>(i->stats().last_event_unix_ms.load()) / 1000.0);
  family("ingressd_kube_synced", "gauge", "1 once the resource's first list is done.");
  for (auto* i : live)
    b += fmt::format("ingressd_kube_synced{{{}}} {}\n", labels(*i), i->stats().synced.load() ? 1 : 0);
  family("ingressd_kube_gateway_api_served", "gauge",
         "1 while discovery finds the Gateway API (gateway.networking.k8s.io) served.");
  b += fmt::format("ingressd_kube_gateway_api_served {}\n", gateway_served_.load() ? 1 : 0);
}

}  // namespace ingressd::kube
