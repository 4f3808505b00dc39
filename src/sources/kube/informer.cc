#include "sources/kube/informer.h"

#include <fmt/format.h>

#include <random>

#include "core/log.h"
#include "model/decode.h"
#include "sources/kube/backoff.h"

namespace ingressd::kube {
namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// A short description of an error response: the Status message when there is one.
std::string describe(const HttpResult& r) {
  if (r.status == 0) return r.error;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    return fmt::format("HTTP {}: {}", r.status, j["message"].get<std::string>());
  return fmt::format("HTTP {}", r.status);
}

}  // namespace

std::vector<ResourceInfo> watched_resources() {
  return {
      {model::Kind::IngressClass, "networking.k8s.io/v1", "IngressClass", "ingressclasses", false, ""},
      {model::Kind::Ingress, "networking.k8s.io/v1", "Ingress", "ingresses", true, ""},
      {model::Kind::Service, "v1", "Service", "services", true, ""},
      {model::Kind::EndpointSlice, "discovery.k8s.io/v1", "EndpointSlice", "endpointslices", true, ""},
      // Only TLS Secrets: the others are none of our business (and we ask
      // for no right to read them in a wider way than needed).
      {model::Kind::Secret, "v1", "Secret", "secrets", true, "type=kubernetes.io/tls"},
  };
}

std::string collection_path(const ResourceInfo& r, const std::string& ns) {
  std::string base = r.api_version.find('/') == std::string::npos ? "/api/" + r.api_version : "/apis/" + r.api_version;
  if (r.namespaced && !ns.empty()) return fmt::format("{}/namespaces/{}/{}", base, ns, r.plural);
  return base + "/" + r.plural;
}

std::optional<WatchEvent> parse_watch_event(std::string_view line, std::string& err) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    err = "watch event is not a JSON object";
    return std::nullopt;
  }
  auto t = j.find("type");
  auto o = j.find("object");
  if (t == j.end() || !t->is_string() || o == j.end() || !o->is_object()) {
    err = "watch event lacks type or object";
    return std::nullopt;
  }
  WatchEvent ev;
  const std::string& ts = t->get_ref<const std::string&>();
  if (ts == "ADDED") ev.type = WatchEvent::Type::Added;
  else if (ts == "MODIFIED") ev.type = WatchEvent::Type::Modified;
  else if (ts == "DELETED") ev.type = WatchEvent::Type::Deleted;
  else if (ts == "BOOKMARK") ev.type = WatchEvent::Type::Bookmark;
  else if (ts == "ERROR") ev.type = WatchEvent::Type::Error;
  else {
    err = fmt::format("unknown watch event type \"{}\"", ts);
    return std::nullopt;
  }
  ev.object = std::move(*o);
  return ev;
}

int error_event_code(const WatchEvent& ev) {
  if (ev.type != WatchEvent::Type::Error) return 0;
  auto c = ev.object.find("code");
  return c != ev.object.end() && c->is_number_integer() ? c->get<int>() : 0;
}

std::string json_str(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string object_id(const nlohmann::json& obj) {
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return "/";
  return json_str(*md, "namespace") + "/" + json_str(*md, "name");
}

std::string object_rv(const nlohmann::json& obj) {
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return "";
  return json_str(*md, "resourceVersion");
}

RelistDiff diff_relist(const KnownObjects& known, const std::vector<nlohmann::json>& items) {
  RelistDiff d;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string id = object_id(items[i]);
    seen[id] = i;
    auto it = known.find(id);
    if (it == known.end() || it->second != object_rv(items[i])) d.upserts.push_back(i);
  }
  for (auto& [id, _] : known)
    if (!seen.count(id)) d.deletes.push_back(id);
  return d;
}

Change to_change(const ResourceInfo& r, const nlohmann::json& obj, bool deleted, std::string& err) {
  std::string id = object_id(obj);
  size_t slash = id.find('/');
  Change c{model::ObjectKey{r.kind, r.namespaced ? id.substr(0, slash) : "", id.substr(slash + 1)}, std::nullopt};
  if (deleted) return c;
  model::DecodedObject d = model::decode_api_object(obj, r.api_version, r.kind_name, "");
  if (!d.object) {
    for (auto& e : d.errors) {
      err += (err.empty() ? "" : "; ") + e.message;
      c.errors.push_back(e);
      c.errors.back().object = c.key.str();
    }
    if (r.kind == model::Kind::Ingress) {
      model::Ingress stub;
      stub.meta.namespace_ = c.key.namespace_;
      stub.meta.name = c.key.name;
      if (auto md = obj.find("metadata"); md != obj.end() && md->is_object()) {
        stub.meta.uid = json_str(*md, "uid");
        if (auto an = md->find("annotations"); an != md->end() && an->is_object())
          for (auto it = an->begin(); it != an->end(); ++it)
            if (it->is_string()) stub.meta.annotations[it.key()] = it->get<std::string>();
      }
      if (auto sp = obj.find("spec"); sp != obj.end() && sp->is_object())
        if (auto cn = sp->find("ingressClassName"); cn != sp->end() && cn->is_string())
          stub.ingress_class_name = cn->get<std::string>();
      c.invalid_ingress = std::move(stub);
    }
    return c;
  }
  c.key = model::object_key(*d.object);
  c.object = StoredObject{std::move(*d.object), model::SourcePos{}};
  return c;
}

Informer::Informer(KubeClient& client, ResourceInfo r, std::string ns, InformerOptions opts, Deliver deliver,
                   Observe observe)
    : client_(client), r_(std::move(r)), ns_(std::move(ns)), opts_(opts), deliver_(std::move(deliver)),
      observe_(std::move(observe)) {}

Informer::~Informer() { stop(); }

std::string Informer::name() const { return !ns_.empty() ? r_.plural + "/" + ns_ : r_.plural; }

std::vector<Change> Informer::forget() {
  std::vector<Change> out;
  for (auto& [id, _] : known_) {
    size_t slash = id.find('/');
    nlohmann::json stub = {{"metadata", {{"namespace", id.substr(0, slash)}, {"name", id.substr(slash + 1)}}}};
    std::string err;
    out.push_back(to_change(r_, stub, true, err));
  }
  known_.clear();
  return out;
}

void Informer::start() { thread_ = std::thread([this] { run(); }); }

void Informer::request_stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void Informer::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

bool Informer::sleep_ms(int ms) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stop_.load(); });
  return !stop_;
}

bool Informer::list(KubeSession& s) {
  std::string base = collection_path(r_, ns_);
  std::vector<nlohmann::json> items;
  std::string cont, rv;
  int expired = 0;
  for (int page = 0; !stop_; ++page) {
    std::string q = fmt::format("?limit={}", opts_.list_page_size);
    if (!cont.empty()) q += "&continue=" + url_escape(cont);
    if (!r_.field_selector.empty()) q += "&fieldSelector=" + url_escape(r_.field_selector);
    HttpResult res = s.request("GET", base + q);
    if (res.status == 410 && !cont.empty() && expired < 3) {
      // The continue token expired (the list took longer than the server
      // keeps its snapshot): start the list again.
      log_warn("kube: {}: list continue token expired; listing again from the start", name());
      ++expired;
      items.clear();
      cont.clear();
      continue;
    }
    if (!res.ok()) {
      if (res.status == 401 || res.status == 403)
        log_error("kube: {}: list refused: {} (credentials or RBAC: see deploy/kubernetes/01-rbac.yaml); "
                  "not ready until it is allowed", name(), describe(res));
      else
        log_warn("kube: {}: list failed: {}", name(), describe(res));
      if (res.status == 404 && on_not_found_) on_not_found_();
      return false;
    }
    auto j = nlohmann::json::parse(res.body, nullptr, false);
    if (!j.is_object() || !j.contains("items") || !(j["items"].is_array() || j["items"].is_null())) {
      log_warn("kube: {}: list answered something that is not a list", name());
      return false;
    }
    if (j["items"].is_array())
      for (auto& it : j["items"]) items.push_back(std::move(it));
    const nlohmann::json& md = j.contains("metadata") ? j["metadata"] : nlohmann::json::object();
    rv = json_str(md, "resourceVersion");
    cont = json_str(md, "continue");
    if (cont.empty()) break;
  }
  if (stop_) return false;
  RelistDiff d = diff_relist(known_, items);
  std::vector<Change> changes;
  for (size_t i : d.upserts) {
    std::string err;
    Change c = to_change(r_, items[i], false, err);
    if (!err.empty()) log_warn("kube: {} {}: cannot be used: {}", r_.kind_name, object_id(items[i]), err);
    if (observe_) observe_(items[i], false);
    known_[object_id(items[i])] = object_rv(items[i]);
    changes.push_back(std::move(c));
  }
  for (const std::string& id : d.deletes) {
    size_t slash = id.find('/');
    nlohmann::json stub = {{"metadata", {{"namespace", id.substr(0, slash)}, {"name", id.substr(slash + 1)}}}};
    std::string err;
    changes.push_back(to_change(r_, stub, true, err));
    if (observe_) observe_(stub, true);
    known_.erase(id);
  }
  if (first_list_done_) {
    ++stats_.relists;
    log_info("kube: {}: relisted {} objects: {} changed or new, {} gone", name(), items.size(), d.upserts.size(),
             d.deletes.size());
  } else {
    log_info("kube: {}: listed {} objects", name(), items.size());
  }
  bool first = !first_list_done_;
  first_list_done_ = true;
  rv_ = rv;
  deliver_(std::move(changes), first);
  if (first) stats_.synced = true;
  return true;
}

Informer::WatchEnd Informer::watch(KubeSession& s, int timeout_s) {
  std::string q = fmt::format("?watch=1&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={}", url_escape(rv_),
                              timeout_s);
  if (!r_.field_selector.empty()) q += "&fieldSelector=" + url_escape(r_.field_selector);
  WatchEnd end = WatchEnd::Timeout;
  const auto started = std::chrono::steady_clock::now();
  size_t received = 0;
  // Runs inside libcurl's write callback: nothing may throw through it.
  auto handle_line = [&](std::string_view line) {
    std::string err;
    auto ev = parse_watch_event(line, err);
    ++received;
    if (!ev) {
      log_warn("kube: {}: {}; reopening the watch", name(), err);
      end = WatchEnd::Error;
      return false;
    }
    switch (ev->type) {
      case WatchEvent::Type::Bookmark:
        if (auto rv = object_rv(ev->object); !rv.empty()) rv_ = rv;
        return true;
      case WatchEvent::Type::Error: {
        int code = error_event_code(*ev);
        if (code == 410) {
          end = WatchEnd::Gone;
        } else if (code == 504 && json_str(ev->object, "message").find("Too large resource version") != std::string::npos) {
          // The server is behind the version we hold (client-go relists too).
          log_warn("kube: {}: watch error event: {}; relisting", name(), json_str(ev->object, "message"));
          end = WatchEnd::Gone;
        } else {
          log_warn("kube: {}: watch error event: {}", name(), json_str(ev->object, "message"));
          end = WatchEnd::Error;
        }
        return false;
      }
      default: break;
    }
    ++stats_.events;
    stats_.last_event_unix_ms = unix_ms();
    bool deleted = ev->type == WatchEvent::Type::Deleted;
    std::string id = object_id(ev->object);
    std::string cerr;
    Change c = to_change(r_, ev->object, deleted, cerr);
    if (!cerr.empty()) log_warn("kube: {} {}: cannot be used: {}", r_.kind_name, id, cerr);
    if (observe_) observe_(ev->object, deleted);
    if (deleted) known_.erase(id);
    else known_[id] = object_rv(ev->object);
    if (auto rv = object_rv(ev->object); !rv.empty()) rv_ = rv;
    std::vector<Change> one;
    one.push_back(std::move(c));
    deliver_(std::move(one), false);
    return true;
  };
  auto on_line = [&](std::string_view line) {
    try {
      return handle_line(line);
    } catch (const std::exception& e) {
      log_warn("kube: {}: cannot handle a watch event ({}); reopening the watch", name(), e.what());
      end = WatchEnd::Error;
      return false;
    }
  };
  HttpResult res = s.stream_lines(collection_path(r_, ns_) + q, on_line, stop_, timeout_s + 60);
  watch_connected_ = res.status == 200;
  const auto lasted = std::chrono::steady_clock::now() - started;
  watch_productive_ = watch_connected_ && (received > 0 || lasted > std::chrono::seconds(10));
  if (stop_) return WatchEnd::Stopped;
  if (res.status == 410) return WatchEnd::Gone;
  if (end != WatchEnd::Timeout) return end;
  if (res.status != 200 || !res.error.empty()) {
    log_warn("kube: {}: watch failed: {}", name(), res.status == 200 ? res.error : describe(res));
    if (res.status == 404 && on_not_found_) on_not_found_();
    return WatchEnd::Error;
  }
  if (received == 0 && lasted < std::chrono::seconds(1)) {
    // Closed at once without a word (a proxy that drops idle streams, a
    // server going away): not a timeout; back off instead of spinning.
    log_debug("kube: {}: the watch closed at once with no event", name());
    return WatchEnd::Error;
  }
  return WatchEnd::Timeout;  // the server ended it (timeoutSeconds): reopen at once
}

void Informer::run() {
  KubeSession s(client_);
  s.set_stop_flag(&stop_);
  Backoff backoff(opts_.backoff_base_ms, opts_.backoff_max_ms);
  std::mt19937 rng(std::random_device{}());
  bool need_list = true;
  auto next_resync = std::chrono::steady_clock::now();
  while (!stop_) {
    if (need_list) {
      bool listed = false;
      try {
        listed = list(s);
      } catch (const std::exception& e) {  // a malformed list: as if it had failed
        log_warn("kube: {}: cannot handle the list ({})", name(), e.what());
      }
      if (!listed) {
        if (!sleep_ms(backoff.next_ms())) break;
        continue;
      }
      need_list = false;
      backoff.reset();
      next_resync = opts_.resync_s > 0 ? std::chrono::steady_clock::now() + std::chrono::seconds(opts_.resync_s)
                                       : std::chrono::steady_clock::time_point::max();  // 0: no periodic relist
    }
    auto left = std::chrono::duration_cast<std::chrono::seconds>(next_resync - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      need_list = true;  // periodic resync: a relist, diffed
      continue;
    }
    int timeout = opts_.watch_timeout_min_s + static_cast<int>(rng() % static_cast<unsigned>(std::max(1, opts_.watch_timeout_min_s)));
    timeout = static_cast<int>(std::min<int64_t>(timeout, left));
    switch (watch(s, std::max(1, timeout))) {
      case WatchEnd::Stopped: return;
      case WatchEnd::Timeout: backoff.reset(); break;
      case WatchEnd::Gone:
        log_info("kube: {}: resourceVersion {} is too old (410 Gone); relisting", name(), rv_);
        need_list = true;
        break;
      case WatchEnd::Error:
        ++stats_.watch_restarts;
        if (watch_productive_) backoff.reset();  // it did work: a first, short delay
        if (!sleep_ms(backoff.next_ms())) return;
        break;
    }
  }
}

}  // namespace ingressd::kube
