#include "sources/kube/gateway_status.h"

#include "sources/kube/informer.h"

namespace ingressd::kube {
namespace {

constexpr const char* kGroup = "gateway.networking.k8s.io";

const nlohmann::json& member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json null;
  if (!obj.is_object()) return null;
  auto it = obj.find(key);
  return it == obj.end() ? null : *it;
}

// A ParentReference with the CRD's defaults filled in (group, kind), so that
// one the API server defaulted compares equal to ours.
nlohmann::json normalize_parent_ref(const nlohmann::json& ref) {
  nlohmann::json r = ref.is_object() ? ref : nlohmann::json::object();
  if (!r.contains("group")) r["group"] = kGroup;
  if (!r.contains("kind")) r["kind"] = "Gateway";
  return r;
}

// Gives every condition of `fresh` observedGeneration and a
// lastTransitionTime: the one of the condition of the same type in `old`
// when its status and reason are the same, else `now`.
void stamp(nlohmann::json& fresh, const nlohmann::json& old, int64_t generation, const std::string& now) {
  if (!fresh.is_array()) return;
  for (auto& c : fresh) {
    if (!c.is_object()) continue;
    if (generation > 0) c["observedGeneration"] = generation;
    std::string ltt = now;
    if (old.is_array())
      for (const auto& o : old)
        if (o.is_object() && json_str(o, "type") == json_str(c, "type")) {
          if (json_str(o, "status") == json_str(c, "status") && json_str(o, "reason") == json_str(c, "reason") &&
              !json_str(o, "lastTransitionTime").empty())
            ltt = json_str(o, "lastTransitionTime");
          break;
        }
    c["lastTransitionTime"] = ltt;
  }
}

bool ours(const nlohmann::json& parent, const std::string& controller) {
  return json_str(parent, "controllerName") == controller;
}

}  // namespace

bool is_route_kind(const std::string& kind) { return kind == "HTTPRoute" || kind == "GRPCRoute"; }

nlohmann::json without_transition_times(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "lastTransitionTime") out[it.key()] = without_transition_times(*it);
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : j) out.push_back(without_transition_times(e));
    return out;
  }
  return j;
}

std::optional<nlohmann::json> gateway_status_to_write(const GatewayStatusWant& want, const nlohmann::json& observed,
                                                      const std::string& controller_name, const std::string& now) {
  if (is_route_kind(want.kind)) {
    const nlohmann::json& have = member(observed, "parents");
    nlohmann::json others = nlohmann::json::array(), mine_before = nlohmann::json::array();
    if (have.is_array())
      for (const auto& p : have) (ours(p, controller_name) ? mine_before : others).push_back(p);
    nlohmann::json mine = member(want.status, "parents");
    if (!mine.is_array()) mine = nlohmann::json::array();
    for (auto& p : mine) {
      nlohmann::json ref = normalize_parent_ref(member(p, "parentRef"));
      nlohmann::json old_conditions;
      for (const auto& o : mine_before)
        if (normalize_parent_ref(member(o, "parentRef")) == ref) {
          old_conditions = member(o, "conditions");
          break;
        }
      stamp(p["conditions"], old_conditions, want.generation, now);
    }
    // Our entries as a whole, in our order; where the others' are among them
    // does not matter (so that two controllers never reorder each other).
    auto comparable = [](const nlohmann::json& parents) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& p : parents) {
        nlohmann::json q = without_transition_times(p);
        if (q.is_object()) q["parentRef"] = normalize_parent_ref(member(q, "parentRef"));
        out.push_back(std::move(q));
      }
      return out;
    };
    if (comparable(mine) == comparable(mine_before)) return std::nullopt;
    nlohmann::json parents = others;
    for (auto& p : mine) parents.push_back(std::move(p));
    return nlohmann::json{{"parents", std::move(parents)}};
  }

  // GatewayClass and Gateway: the whole status is ours; only the members we
  // write are compared (a merge patch leaves the others alone).
  nlohmann::json out = want.status.is_object() ? want.status : nlohmann::json::object();
  stamp(out["conditions"], member(observed, "conditions"), want.generation, now);
  if (out.contains("listeners") && out["listeners"].is_array()) {
    const nlohmann::json& had = member(observed, "listeners");
    for (auto& l : out["listeners"]) {
      nlohmann::json old_conditions;
      if (had.is_array())
        for (const auto& o : had)
          if (json_str(o, "name") == json_str(l, "name")) {
            old_conditions = member(o, "conditions");
            break;
          }
      stamp(l["conditions"], old_conditions, want.generation, now);
    }
  }
  bool same = true;
  for (auto it = out.begin(); it != out.end() && same; ++it)
    same = without_transition_times(*it) == without_transition_times(member(observed, it.key().c_str()));
  if (same) return std::nullopt;
  return out;
}

std::optional<nlohmann::json> route_status_without_ours(const nlohmann::json& observed,
                                                        const std::string& controller_name) {
  const nlohmann::json& have = member(observed, "parents");
  if (!have.is_array()) return std::nullopt;
  nlohmann::json others = nlohmann::json::array();
  for (const auto& p : have)
    if (!ours(p, controller_name)) others.push_back(p);
  if (others.size() == have.size()) return std::nullopt;
  return nlohmann::json{{"parents", std::move(others)}};
}

nlohmann::json gateway_addresses(const nlohmann::json& lb) {
  nlohmann::json out = nlohmann::json::array();
  if (!lb.is_array()) return out;
  for (const auto& e : lb) {
    if (!json_str(e, "ip").empty()) out.push_back({{"type", "IPAddress"}, {"value", json_str(e, "ip")}});
    else if (!json_str(e, "hostname").empty())
      out.push_back({{"type", "Hostname"}, {"value", json_str(e, "hostname")}});
  }
  return out;
}

void ObservedGatewayStatus::observe(const std::string& kind, const std::string& api_version, const std::string& plural,
                                    const nlohmann::json& obj, bool deleted) {
  std::pair<std::string, std::string> key{kind, object_id(obj)};
  std::lock_guard<std::mutex> g(mu_);
  if (deleted) {
    by_key_.erase(key);
    return;
  }
  by_key_[key] = ObservedGatewayObject{api_version, plural, object_rv(obj), member(obj, "status")};
}

std::optional<ObservedGatewayObject> ObservedGatewayStatus::get(const std::string& kind, const std::string& id) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = by_key_.find({kind, id});
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, std::string>> ObservedGatewayStatus::keys() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, _] : by_key_) out.push_back(k);
  return out;
}

void ObservedGatewayStatus::erase(const std::string& kind, const std::string& id) {
  std::lock_guard<std::mutex> g(mu_);
  by_key_.erase({kind, id});
}

}  // namespace ingressd::kube
