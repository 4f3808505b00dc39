#include "sources/kube/status_writer.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>

#include "core/log.h"
#include "core/sockaddr.h"

namespace ingressd::kube {

nlohmann::json addresses_to_lb(const std::vector<std::string>& addrs) {
  nlohmann::json lb = nlohmann::json::array();
  for (const auto& a : addrs) {
    if (a.empty()) continue;
    lb.push_back({{ip_family(a) != AF_UNSPEC ? "ip" : "hostname", a}});
  }
  return lb;
}

nlohmann::json normalize_lb(const nlohmann::json& lb) {
  std::vector<nlohmann::json> out;
  if (lb.is_array()) {
    for (const auto& e : lb) {
      if (!e.is_object()) continue;
      nlohmann::json n = nlohmann::json::object();
      if (e.contains("ip") && e["ip"].is_string() && !e["ip"].get<std::string>().empty()) n["ip"] = e["ip"];
      if (e.contains("hostname") && e["hostname"].is_string() && !e["hostname"].get<std::string>().empty())
        n["hostname"] = e["hostname"];
      if (!n.empty()) out.push_back(std::move(n));
    }
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) { return a.dump() < b.dump(); });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return nlohmann::json(out);
}

std::optional<nlohmann::json> status_to_write(bool ours, const nlohmann::json& observed, const nlohmann::json& publish) {
  nlohmann::json have = normalize_lb(observed);
  if (ours) {
    if (have == publish) return std::nullopt;
    return publish;
  }
  if (!publish.empty() && have == publish) return nlohmann::json::array();
  return std::nullopt;
}

StatusWriter::StatusWriter(KubeClient& client, ObservedIngressStatus& observed, ObservedGatewayStatus& observed_gateway,
                           LeaderElector* leader, StatusOptions opts)
    : client_(client),
      observed_(observed),
      observed_gateway_(observed_gateway),
      leader_(leader),
      opts_(std::move(opts)) {}

StatusWriter::~StatusWriter() { stop(); }

void StatusWriter::start() { thread_ = std::thread([this] { run(); }); }

void StatusWriter::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatusWriter::update(std::set<std::string> served, std::set<EventNote> notes,
                          std::optional<std::vector<GatewayStatusWant>> gateway) {
  {
    std::lock_guard<std::mutex> g(mu_);
    served_ = std::move(served);
    notes_ = std::move(notes);
    if (gateway) gateway_ = std::move(gateway);
    dirty_ = have_input_ = true;
  }
  cv_.notify_all();
}

void StatusWriter::poke() {
  {
    std::lock_guard<std::mutex> g(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

bool StatusWriter::publish_lb(KubeSession& s, nlohmann::json& out) {
  if (opts_.publish_service.empty()) {
    out = normalize_lb(addresses_to_lb(opts_.publish_addresses));
    return true;
  }
  size_t slash = opts_.publish_service.find('/');
  std::string ns = slash == std::string::npos ? "default" : opts_.publish_service.substr(0, slash);
  std::string name = slash == std::string::npos ? opts_.publish_service : opts_.publish_service.substr(slash + 1);
  HttpResult r = s.request("GET", fmt::format("/api/v1/namespaces/{}/services/{}", ns, name));
  if (!r.ok()) {
    log_warn("kube: cannot read the publish Service {}: HTTP {} {}", opts_.publish_service, r.status, r.error);
    return false;
  }
  auto svc = nlohmann::json::parse(r.body, nullptr, false);
  nlohmann::json lb;
  if (svc.is_object() && svc.contains("status") && svc["status"].is_object() && svc["status"].contains("loadBalancer") &&
      svc["status"]["loadBalancer"].is_object())
    lb = svc["status"]["loadBalancer"].contains("ingress") ? svc["status"]["loadBalancer"]["ingress"] : nlohmann::json();
  out = normalize_lb(lb);
  // A Service that has no load balancer address (yet; or type ClusterIP) is
  // published by its external IPs, as ingress-nginx does.
  if (out.empty() && svc.is_object() && svc.contains("spec") && svc["spec"].is_object() &&
      svc["spec"].contains("externalIPs") && svc["spec"]["externalIPs"].is_array()) {
    std::vector<std::string> ips;
    for (auto& ip : svc["spec"]["externalIPs"])
      if (ip.is_string()) ips.push_back(ip.get<std::string>());
    out = normalize_lb(addresses_to_lb(ips));
  }
  return true;
}

namespace {
// At most `max` bytes, cut at a UTF-8 character boundary.
std::string utf8_prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}
}  // namespace

void StatusWriter::pass(KubeSession& s) {
  std::set<std::string> served;
  std::set<EventNote> notes;
  std::optional<std::vector<GatewayStatusWant>> gateway;
  {
    std::lock_guard<std::mutex> g(mu_);
    served = served_;
    notes = notes_;
    gateway = gateway_;
  }
  // Events: each current note once; a note that goes away may come back.
  for (auto it = posted_.begin(); it != posted_.end();) it = notes.count(*it) ? std::next(it) : posted_.erase(it);
  for (const EventNote& n : notes) {
    if (posted_.count(n)) continue;
    if (leader_ && !leader_->is_leader()) return;  // lost the lease during this pass: stop writing
    std::string now = micro_time(now_unix_us());
    std::string now_s = now.substr(0, 19) + "Z";
    nlohmann::json ev = {
        {"apiVersion", "v1"},
        {"kind", "Event"},
        {"metadata", {{"generateName", n.name + "."}, {"namespace", n.namespace_}}},
        {"involvedObject",
         {{"apiVersion", n.api_version}, {"kind", n.kind}, {"namespace", n.namespace_}, {"name", n.name}, {"uid", n.uid}}},
        {"reason", n.reason},
        {"message", utf8_prefix(n.message, 1024)},
        {"type", n.type},
        {"source", {{"component", opts_.component}}},
        {"firstTimestamp", now_s},
        {"lastTimestamp", now_s},
        {"count", 1},
        {"reportingComponent", opts_.component},
        {"reportingInstance", opts_.identity}};
    HttpResult r = s.request("POST", fmt::format("/api/v1/namespaces/{}/events", n.namespace_),
                             ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (r.ok()) {
      posted_.insert(n);
      ++events_posted_;
    } else if (r.status >= 400 && r.status < 500 && r.status != 429) {
      // Refused for good (forbidden, namespace terminating...): not retried, and no reason to hold up the others.
      log_warn("kube: an Event for {} {}/{} was refused: HTTP {} {}", n.kind, n.namespace_, n.name, r.status, r.error);
      posted_.insert(n);
    } else {
      log_warn("kube: cannot post an Event for {} {}/{}: HTTP {} {}", n.kind, n.namespace_, n.name, r.status, r.error);
      break;  // the server or the network: try again on the next pass
    }
  }

  const bool have_publish = !opts_.publish_service.empty() || !opts_.publish_addresses.empty();
  nlohmann::json publish;
  if ((opts_.write_status || (opts_.write_gateway_status && gateway && have_publish)) && !publish_lb(s, publish))
    return;  // the publish Service cannot be read: try again on the next pass
  if (opts_.write_gateway_status && gateway) write_gateway_status(s, *gateway, have_publish ? &publish : nullptr);
  if (!opts_.write_status) return;
  for (const std::string& id : observed_.ids()) {
    if (leader_ && !leader_->is_leader()) return;  // lost the lease during this pass: stop writing
    nlohmann::json lb;
    std::string uid;
    if (!observed_.get(id, lb, uid)) continue;
    auto want = status_to_write(served.count(id) > 0, lb, publish);
    if (!want) continue;
    size_t slash = id.find('/');
    std::string ns = id.substr(0, slash), name = id.substr(slash + 1);
    // A merge patch replaces the list whole; null removes the field.
    nlohmann::json patch = {{"status", {{"loadBalancer", {{"ingress", want->empty() ? nlohmann::json() : *want}}}}}};
    HttpResult r = s.request("PATCH", fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/{}/status", ns, name),
                             patch.dump(), "application/merge-patch+json");
    if (r.ok()) {
      ++status_writes_;
      observed_.set(id, *want);
      log_info("kube: Ingress {} status.loadBalancer.ingress = {}", id, want->dump());
    } else if (r.status != 404) {
      log_warn("kube: cannot update the status of Ingress {}: HTTP {} {}", id, r.status, r.error);
    }
  }
}

void StatusWriter::write_gateway_status(KubeSession& s, const std::vector<GatewayStatusWant>& wants,
                                        const nlohmann::json* publish) {
  std::set<std::pair<std::string, std::string>> ours;
  for (const GatewayStatusWant& w : wants) {
    if (leader_ && !leader_->is_leader()) return;
    const std::string id = w.namespace_ + "/" + w.name;
    ours.insert({w.kind, id});
    GatewayStatusWant with = w;
    // A Gateway of ours is reached at our Service's addresses.
    if (w.kind == "Gateway" && publish) with.status["addresses"] = gateway_addresses(*publish);
    patch_gateway_object(s, w.kind, id, [&](const nlohmann::json& observed, const std::string& now) {
      return gateway_status_to_write(with, observed, opts_.controller_name, now);
    });
  }
  // Routes that carry an entry of ours but are ours no more (their parentRefs
  // changed, our Gateway or class went away): our entries go.
  for (const auto& [kind, id] : observed_gateway_.keys()) {
    if (!is_route_kind(kind) || ours.count({kind, id})) continue;
    if (leader_ && !leader_->is_leader()) return;
    patch_gateway_object(s, kind, id, [&](const nlohmann::json& observed, const std::string&) {
      return route_status_without_ours(observed, opts_.controller_name);
    });
  }
}

void StatusWriter::patch_gateway_object(KubeSession& s, const std::string& kind, const std::string& id,
                                        const ComputeStatus& compute) {
  const size_t slash = id.find('/');
  const std::string ns = id.substr(0, slash), name = id.substr(slash + 1);
  const std::string what = ns.empty() ? kind + " " + name : kind + " " + id;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto obs = observed_gateway_.get(kind, id);
    if (!obs) return;  // not seen yet, or gone
    const std::string now = micro_time(now_unix_us()).substr(0, 19) + "Z";
    auto want = compute(obs->status, now);
    if (!want) return;
    nlohmann::json patch = {{"status", *want}};
    // Another controller's entries are in the list we send: only onto the
    // version we read them from.
    if (is_route_kind(kind)) patch["metadata"] = {{"resourceVersion", obs->resource_version}};
    const std::string path = ns.empty()
                                 ? fmt::format("/apis/{}/{}/{}", obs->api_version, obs->plural, name)
                                 : fmt::format("/apis/{}/namespaces/{}/{}/{}", obs->api_version, ns, obs->plural, name);
    HttpResult r =
        s.request("PATCH", path + "/status", patch.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/merge-patch+json");
    if (r.ok()) {
      for (size_t k = 0; k < std::size(kGatewayKinds); ++k)
        if (kind == kGatewayKinds[k]) ++gateway_writes_[k];
      auto obj = nlohmann::json::parse(r.body, nullptr, false);
      if (obj.is_object()) observed_gateway_.observe(kind, obs->api_version, obs->plural, obj, false);
      log_info("kube: {} status written", what);
      return;
    }
    if (r.status == 409 && attempt == 0) {
      // Written in between (another controller's entry, most likely): read
      // it again and redo ours on top.
      HttpResult g = s.request("GET", path);
      auto obj = nlohmann::json::parse(g.body, nullptr, false);
      if (!g.ok() || !obj.is_object()) {
        log_warn("kube: cannot read {} again after a conflict: HTTP {} {}", what, g.status, g.error);
        return;
      }
      observed_gateway_.observe(kind, obs->api_version, obs->plural, obj, false);
      continue;
    }
    if (r.status != 404) log_warn("kube: cannot update the status of {}: HTTP {} {}", what, r.status, r.error);
    return;
  }
}

void StatusWriter::run() {
  KubeSession s(client_);
  s.set_stop_flag(&stop_);
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      // Also every 30 s: the publish Service's address may have changed.
      cv_.wait_for(lk, std::chrono::seconds(30), [this] { return stop_.load() || dirty_; });
      if (stop_) return;
      dirty_ = false;
      if (!have_input_) continue;
    }
    if (leader_ && !leader_->is_leader()) continue;
    try {
      pass(s);
    } catch (const std::exception& e) {  // an answer we cannot read: try again on the next pass
      log_warn("kube: status writer: {}", e.what());
    }
  }
}

}  // namespace ingressd::kube
