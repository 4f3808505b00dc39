#include "sources/kube/kube_source.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

KubeSource::KubeSource(KubeClient& client, KubeSourceOptions opts) : opts_(std::move(opts)) {
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::vector<std::string> nss = opts_.namespaces;
  if (nss.empty()) nss.push_back("");
  for (const ResourceInfo& r : watched_resources()) {
    std::vector<std::string> scopes = r.namespaced ? nss : std::vector<std::string>{""};
    for (const std::string& ns : scopes) {
      size_t idx = informers_.size();
      auto deliver = [this, idx](std::vector<Change>&& changes, bool first_sync) {
        ChangeBatch b{idx, first_sync, std::chrono::steady_clock::now(), std::move(changes)};
        {
          std::lock_guard<std::mutex> g(mu_);
          queue_.push_back(std::move(b));
        }
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof one);
      };
      Informer::Observe observe;
      if (r.kind == model::Kind::Ingress)
        observe = [this](const nlohmann::json& o, bool deleted) { observed_.observe(o, deleted); };
      informers_.push_back(std::make_unique<Informer>(client, r, ns, opts_.informer, deliver, observe));
    }
  }
}

KubeSource::~KubeSource() {
  stop();
  if (efd_ >= 0) ::close(efd_);
}

void KubeSource::start() {
  for (auto& i : informers_) i->start();
}

void KubeSource::stop() {
  // All at once: each may take up to a second to notice.
  for (auto& i : informers_) i->request_stop();
  for (auto& i : informers_) i->stop();
}

std::vector<ChangeBatch> KubeSource::drain() {
  uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(efd_, &v, sizeof v);
  std::lock_guard<std::mutex> g(mu_);
  std::vector<ChangeBatch> out;
  out.swap(queue_);
  return out;
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
  for (auto& i : informers_) b += fmt::format("ingressd_kube_watch_restarts_total{{{}}} {}\n", labels(*i), i->stats().watch_restarts.load());
  family("ingressd_kube_relists_total", "counter", "Full relists after the first list (410 Gone, resync), by resource.");
  for (auto& i : informers_) b += fmt::format("ingressd_kube_relists_total{{{}}} {}\n", labels(*i), i->stats().relists.load());
  family("ingressd_kube_watch_events_total", "counter", "Watch events received (bookmarks excluded), by resource.");
  for (auto& i : informers_) b += fmt::format("ingressd_kube_watch_events_total{{{}}} {}\n", labels(*i), i->stats().events.load());
  family("ingressd_kube_last_event_timestamp_seconds", "gauge", "When the last watch event arrived, by resource (0 = none yet).");
  for (auto& i : informers_)
    b += fmt::format("ingressd_kube_last_event_timestamp_seconds{{{}}} {:.3f}\n", labels(*i),
                     static_cast<double>(i->stats().last_event_unix_ms.load()) / 1000.0);
  family("ingressd_kube_synced", "gauge", "1 once the resource's first list is done.");
  for (auto& i : informers_) b += fmt::format("ingressd_kube_synced{{{}}} {}\n", labels(*i), i->stats().synced.load() ? 1 : 0);
}

}  // namespace ingressd::kube
