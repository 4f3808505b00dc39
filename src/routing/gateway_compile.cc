#include "routing/gateway_compile.h"

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <re2/re2.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/strings.h"
#include "model/validate.h"
#include "routing/compile.h"
#include "routing/cors.h"

namespace ingressd::routing {
using namespace ingressd::model;

namespace {

constexpr const char* kGroup = "gateway.networking.k8s.io";

nlohmann::json condition(const char* type, bool status, const std::string& reason, const std::string& message) {
  return {{"type", type}, {"status", status ? "True" : "False"}, {"reason", reason}, {"message", message}};
}

// Every condition of a status (its own, its listeners', its parents') gets
// the generation it was computed from, when the object has one.
void stamp_generation(nlohmann::json& status, int64_t generation) {
  if (generation <= 0) return;
  auto stamp = [&](nlohmann::json& list) {
    for (auto& c : list) c["observedGeneration"] = generation;
  };
  if (status.contains("conditions")) stamp(status["conditions"]);
  for (const char* k : {"listeners", "parents"})
    if (status.contains(k))
      for (auto& x : status[k])
        if (x.contains("conditions")) stamp(x["conditions"]);
}

// Whether a Secret's tls.crt and tls.key hold a PEM certificate and a PEM private key.
bool pem_pair(const std::string& crt, const std::string& key) {
  BIO* b = BIO_new_mem_buf(crt.data(), static_cast<int>(crt.size()));
  X509* x = b ? PEM_read_bio_X509(b, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(b);
  b = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
  EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(b);
  const bool ok = x && k;
  X509_free(x);
  EVP_PKEY_free(k);
  return ok;
}

bool is_wildcard(std::string_view h) { return h.size() > 2 && h[0] == '*' && h[1] == '.'; }

// Objects of one kind in the snapshot, in key order.
template <typename T, typename F>
void each(const Snapshot& snap, Kind k, F&& f) {
  for (auto it = snap.objects.lower_bound(ObjectKey{k, "", ""}); it != snap.objects.end() && it->first.kind == k; ++it)
    if (const T* o = std::get_if<T>(&it->second.object)) f(*o, it->second.pos);
}

std::string id_of(const ObjectMeta& m) { return m.namespace_ + "/" + m.name; }

bool selector_matches(const LabelSelector& sel, const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : sel.match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& e : sel.match_expressions) {
    auto it = labels.find(e.key);
    const bool has = it != labels.end();
    const bool in = has && std::find(e.values.begin(), e.values.end(), it->second) != e.values.end();
    if (e.operator_ == "In") { if (!in) return false; }
    else if (e.operator_ == "NotIn") { if (in) return false; }
    else if (e.operator_ == "Exists") { if (!has) return false; }
    else if (e.operator_ == "DoesNotExist") { if (has) return false; }
    else return false;  // an operator labels.Selector would refuse: matches nothing
  }
  return true;
}

// One listener of one of our Gateways, as routes see it.
struct ListenerState {
  const Listener* l = nullptr;
  uint8_t mask = 0;  // kPlainListener or kTlsListener when it serves; 0 when not accepted
  bool attachable = false;  // accepted: routes attach (and count) even when its certificates do not resolve
  bool allows_http_route = false;
  nlohmann::json supported_kinds = nlohmann::json::array();
  std::vector<nlohmann::json> conditions;
  int attached = 0;
};

struct GatewayState {
  const Gateway* gw = nullptr;
  const SourcePos* pos = nullptr;
  std::string id;
  std::vector<ListenerState> listeners;
};

// One (hostname, path, conditions) → action of an HTTPRoute, before it goes
// into the table in precedence order.
struct Entry {
  std::string host;
  int path_kind = 1;  // 0 Exact, 1 PathPrefix, 2 RegularExpression
  std::string path;
  std::shared_ptr<const re2::RE2> path_re;
  RequestMatch match;
  const RouteAction* action = nullptr;
  int64_t created = 0;
  std::string route_id;
  int rule = 0, match_index = 0;
  const SourcePos* pos = nullptr;
};

class GatewayCompiler {
 public:
  GatewayCompiler(GatewayCompileContext& ctx, std::vector<GatewayObjectStatus>& out) : c_(ctx), out_(out) {}

  void run() {
    classes();
    gateways();
    std::vector<std::pair<const HTTPRoute*, const SourcePos*>> routes;
    each<HTTPRoute>(c_.snap, Kind::HTTPRoute, [&](const HTTPRoute& r, const SourcePos& pos) { routes.push_back({&r, &pos}); });
    // Older first, then namespace/name: the spec's tie-breakers, and the order
    // in which conflicts are reported.
    std::stable_sort(routes.begin(), routes.end(), [](const auto& a, const auto& b) {
      if (a.first->meta.creation_ns != b.first->meta.creation_ns) return a.first->meta.creation_ns < b.first->meta.creation_ns;
      return id_of(a.first->meta) < id_of(b.first->meta);
    });
    for (const auto& [r, pos] : routes) http_route(*r, *pos);
    each<GRPCRoute>(c_.snap, Kind::GRPCRoute, [&](const GRPCRoute& r, const SourcePos& pos) { grpc_route(r, pos); });
    each<BackendTLSPolicy>(c_.snap, Kind::BackendTLSPolicy, [&](const BackendTLSPolicy& p, const SourcePos& pos) {
      diag(Severity::Warning, pos, "BackendTLSPolicy " + id_of(p.meta), "NotSupported",
           "BackendTLSPolicy is not supported yet (HTTPS to upstreams is not implemented): the targeted Services "
           "are reached over plain HTTP");
    });
    insert_entries();
    gateway_statuses();
  }

 private:
  void diag(Severity sev, const SourcePos& pos, std::string object, std::string reason, std::string msg) {
    c_.diags.push_back({sev, pos.file, pos.line, std::move(object), std::move(reason), std::move(msg)});
  }

  // ---- GatewayClass ----
  void classes() {
    each<GatewayClass>(c_.snap, Kind::GatewayClass, [&](const GatewayClass& gc, const SourcePos&) {
      if (gc.controller_name != c_.opts.controller_name) return;
      our_classes_.insert(gc.meta.name);
      // ingressd takes no parameters object: a class that names one is not what its author meant.
      const bool params = gc.parameters_ref.has_value();
      out_.push_back({"GatewayClass", "", gc.meta.name,
                      {{"conditions", {params ? condition("Accepted", false, "InvalidParameters",
                                                          "ingressd takes no parametersRef; the class is still served")
                                              : condition("Accepted", true, "Accepted", "handled by ingressd"),
                                       condition("SupportedVersion", true, "SupportedVersion",
                                                 "the standard channel of gateway.networking.k8s.io/v1")}}}});
    });
  }

  // ---- Gateway ----
  void gateways() {
    each<Gateway>(c_.snap, Kind::Gateway, [&](const Gateway& gw, const SourcePos& pos) {
      if (!our_classes_.count(gw.gateway_class_name)) return;
      GatewayState g;
      g.gw = &gw;
      g.pos = &pos;
      g.id = id_of(gw.meta);
      std::map<std::pair<int32_t, std::string>, size_t> seen;  // (port, hostname) → first listener
      for (size_t i = 0; i < gw.listeners.size(); ++i) g.listeners.push_back(listener(g, gw.listeners[i], i, seen));
      gateways_[g.id] = std::move(g);
    });
  }

  ListenerState listener(GatewayState& g, const Listener& l, size_t index,
                         std::map<std::pair<int32_t, std::string>, size_t>& seen) {
    ListenerState s;
    s.l = &l;
    const std::string obj = "Gateway " + g.id;
    bool accepted = true, resolved = true, conflicted = false;
    std::string acc_reason = "Accepted", acc_msg = "", res_reason = "ResolvedRefs", res_msg = "", conf_reason = "NoConflicts";
    // Route kinds.
    std::vector<RouteGroupKind> kinds = l.allowed_routes.kinds;
    if (kinds.empty()) kinds.push_back({kGroup, "HTTPRoute"});
    for (const auto& k : kinds) {
      if (k.group == kGroup && k.kind == "HTTPRoute") {
        s.allows_http_route = true;
        s.supported_kinds.push_back({{"group", kGroup}, {"kind", "HTTPRoute"}});
      } else {
        resolved = false;
        res_reason = "InvalidRouteKinds";
        res_msg = fmt::format("route kind {}/{} is not supported (ingressd serves HTTPRoute)", k.group, k.kind);
      }
    }
    uint8_t mask = 0;
    if (l.protocol == "HTTP") {
      if (l.port == 80) mask = kPlainListener;
      else { accepted = false; acc_reason = "PortUnavailable"; acc_msg = fmt::format("ingressd serves HTTP listeners on port 80 (its --http-port); port {} is not served", l.port); }
    } else if (l.protocol == "HTTPS") {
      if (l.port != 443) {
        accepted = false;
        acc_reason = "PortUnavailable";
        acc_msg = fmt::format("ingressd serves HTTPS listeners on port 443 (its --https-port); port {} is not served", l.port);
      } else if (!l.tls || l.tls->mode != "Terminate") {
        accepted = false;
        acc_reason = "UnsupportedProtocol";
        acc_msg = "HTTPS listeners need tls.mode Terminate";
      } else if (tls_refs(g, l, index, res_reason, res_msg)) {
        mask = kTlsListener;
      } else {
        resolved = false;
      }
    } else {
      accepted = false;
      acc_reason = "UnsupportedProtocol";
      acc_msg = fmt::format("protocol {} is not supported (ingressd serves HTTP and HTTPS)", l.protocol);
    }
    if (accepted) {
      auto [it, fresh] = seen.emplace(std::make_pair(l.port, l.hostname.value_or("")), index);
      if (!fresh) {
        conflicted = true;
        conf_reason = "HostnameConflict";
        accepted = false;
        acc_reason = "HostnameConflict";
        acc_msg = fmt::format("listener {} has the same port and hostname", g.gw->listeners[it->second].name);
      }
    }
    if (!accepted || !resolved) {
      diag(Severity::Warning, *g.pos, obj, accepted ? res_reason : acc_reason,
           fmt::format("listener {}: {}", l.name, accepted ? res_msg : acc_msg));
    }
    // A listener whose certificates cannot be used serves nothing rather than the wrong certificate.
    s.mask = accepted && (resolved || res_reason == "InvalidRouteKinds") ? mask : 0;
    s.attachable = accepted;
    if (l.protocol != "HTTP" && l.protocol != "HTTPS") {
      // No route kind of ours on a protocol we do not serve.
      s.supported_kinds = nlohmann::json::array();
      s.allows_http_route = false;
    }
    s.conditions.push_back(condition("Accepted", accepted, acc_reason, acc_msg));
    s.conditions.push_back(condition("ResolvedRefs", resolved, res_reason, res_msg));
    s.conditions.push_back(condition("Conflicted", conflicted, conf_reason, ""));
    s.conditions.push_back(condition("Programmed", s.mask != 0, s.mask ? "Programmed" : "Invalid", ""));
    return s;
  }

  // The certificate Secrets of an HTTPS listener: each must be a Secret, of
  // the Gateway's namespace or granted by a ReferenceGrant there.
  bool tls_refs(const GatewayState& g, const Listener& l, size_t index, std::string& reason, std::string& msg) {
    if (l.tls->certificate_refs.empty()) {
      reason = "InvalidCertificateRef";
      msg = "no certificateRefs";
      return false;
    }
    const std::string& gw_ns = g.gw->meta.namespace_;
    std::vector<std::pair<std::string, std::string>> secrets;
    for (const auto& ref : l.tls->certificate_refs) {
      const std::string ns = ref.namespace_.value_or(gw_ns);
      if (!ref.group.empty() || ref.kind != "Secret") {
        reason = "InvalidCertificateRef";
        msg = fmt::format("certificateRef {}/{} is not a Secret", ref.group, ref.kind);
        return false;
      }
      if (ns != gw_ns && !granted("Gateway", gw_ns, "", "Secret", ns, ref.name)) {
        reason = "RefNotPermitted";
        msg = fmt::format("Secret {}/{} is in another namespace and no ReferenceGrant there allows it", ns, ref.name);
        return false;
      }
      const auto* sec = c_.snap.get<Secret>(Kind::Secret, ns, ref.name);
      if (!sec || sec->type != "kubernetes.io/tls" || !sec->data.count("tls.crt") || !sec->data.count("tls.key")) {
        reason = "InvalidCertificateRef";
        msg = sec ? fmt::format("Secret {}/{} is not a kubernetes.io/tls Secret with tls.crt and tls.key", ns, ref.name)
                  : fmt::format("Secret {}/{} not found", ns, ref.name);
        return false;
      }
      if (!pem_pair(sec->data.at("tls.crt"), sec->data.at("tls.key"))) {
        reason = "InvalidCertificateRef";
        msg = fmt::format("Secret {}/{}: tls.crt and tls.key are not a PEM certificate and key", ns, ref.name);
        return false;
      }
      secrets.emplace_back(ns, ref.name);
    }
    TlsBinding b;
    b.ingress = g.id;
    b.object = "Gateway " + g.id;
    b.namespace_ = secrets.front().first;
    b.secret = secrets.front().second;
    b.hosts = {l.hostname.value_or("")};
    b.index = static_cast<int>(index);
    b.pos = *g.pos;
    c_.tls.push_back(std::move(b));
    return true;
  }

  // Whether a ReferenceGrant in `to_ns` lets `from_kind` objects of
  // `from_ns` refer to `to_kind` `to_name` there.
  bool granted(const std::string& from_kind, const std::string& from_ns, const std::string& to_group,
               const std::string& to_kind, const std::string& to_ns, const std::string& to_name) const {
    const std::string from_group = kGroup;
    for (auto it = c_.snap.objects.lower_bound(ObjectKey{Kind::ReferenceGrant, to_ns, ""});
         it != c_.snap.objects.end() && it->first.kind == Kind::ReferenceGrant && it->first.namespace_ == to_ns; ++it) {
      const auto& rg = std::get<ReferenceGrant>(it->second.object);
      bool from_ok = false, to_ok = false;
      for (const auto& f : rg.from) from_ok |= f.group == from_group && f.kind == from_kind && f.namespace_ == from_ns;
      for (const auto& t : rg.to) to_ok |= t.group == to_group && t.kind == to_kind && (!t.name || *t.name == to_name);
      if (from_ok && to_ok) return true;
    }
    return false;
  }

  bool namespace_allowed(const Listener& l, const std::string& gw_ns, const std::string& route_ns) const {
    const auto& from = l.allowed_routes.namespaces.from;
    if (from == "All") return true;
    if (from == "Same") return route_ns == gw_ns;
    if (from != "Selector" || !l.allowed_routes.namespaces.selector) return false;
    std::map<std::string, std::string> labels;
    if (const auto* ns = c_.snap.get<Namespace>(Kind::Namespace, "", route_ns)) labels = ns->meta.labels;
    labels["kubernetes.io/metadata.name"] = route_ns;  // the API server sets it on every Namespace
    return selector_matches(*l.allowed_routes.namespaces.selector, labels);
  }

  static nlohmann::json parent_ref_json(const ParentReference& p) {
    nlohmann::json j = {{"group", p.group}, {"kind", p.kind}, {"name", p.name}};
    if (p.namespace_) j["namespace"] = *p.namespace_;
    if (p.section_name) j["sectionName"] = *p.section_name;
    if (p.port) j["port"] = *p.port;
    return j;
  }

  // ---- HTTPRoute ----
  void http_route(const HTTPRoute& r, const SourcePos& pos) {
    current_pos_ = &pos;
    const std::string id = id_of(r.meta), obj = "HTTPRoute " + id;
    nlohmann::json parents = nlohmann::json::array();
    for (const auto& rh : r.hostnames)
      if (model::is_ip_address(rh))
        diag(Severity::Warning, pos, obj, "UnsupportedValue",
             fmt::format("hostname {} is an IP address; the Gateway API matches host names only, so it is ignored", rh));
    std::map<std::string, uint8_t> hosts;  // effective hostname → listeners
    bool any_accepted = false;
    std::vector<nlohmann::json*> parent_conditions;
    for (const auto& p : r.parent_refs) {
      if (p.group != kGroup || p.kind != "Gateway") continue;
      const std::string gid = p.namespace_.value_or(r.meta.namespace_) + "/" + p.name;
      auto git = gateways_.find(gid);
      if (git == gateways_.end()) {
        diag(Severity::Warning, pos, obj, "NoMatchingParent",
             fmt::format("parent Gateway {} does not exist or is not of a GatewayClass of ingressd", gid));
        continue;
      }
      GatewayState& g = git->second;
      bool any_listener = false, allowed = false, hostname_ok = false;
      for (auto& ls : g.listeners) {
        if (p.section_name && ls.l->name != *p.section_name) continue;
        if (p.port && ls.l->port != *p.port) continue;
        any_listener = true;
        if (!ls.attachable || !ls.allows_http_route ||
            !namespace_allowed(*ls.l, g.gw->meta.namespace_, r.meta.namespace_))
          continue;
        allowed = true;
        const std::string lh = ls.l->hostname.value_or("");
        bool here = r.hostnames.empty();
        if (here && ls.mask) hosts[lh] |= ls.mask;
        for (const auto& rh : r.hostnames) {
          if (model::is_ip_address(rh)) continue;  // the spec: a hostname is a name, never an IP (reported below)
          std::string eff;
          if (intersect_hostnames(lh, rh, eff)) {
            if (ls.mask) hosts[eff] |= ls.mask;
            here = true;
          }
        }
        // attachedRoutes counts the routes this listener accepts (hostnames intersecting).
        if (here) ++ls.attached;
        hostname_ok |= here;
      }
      std::string reason = "Accepted", msg;
      if (!any_listener) {
        reason = "NoMatchingParent";
        msg = p.section_name ? fmt::format("Gateway {} has no listener {}{}", gid, *p.section_name,
                                           p.port ? fmt::format(" on port {}", *p.port) : "")
                             : fmt::format("Gateway {} has no listener on port {}", gid, p.port.value_or(0));
      } else if (!allowed) {
        reason = "NotAllowedByListeners";
        msg = fmt::format("no listener of Gateway {} that this route names allows HTTPRoutes from namespace {}", gid,
                          r.meta.namespace_);
      } else if (!hostname_ok) {
        reason = "NoMatchingListenerHostname";
        msg = fmt::format("none of the route's hostnames matches a listener hostname of Gateway {}", gid);
      }
      const bool ok = reason == "Accepted";
      any_accepted |= ok;
      if (!ok) diag(Severity::Warning, pos, obj, reason, msg);
      parents.push_back({{"parentRef", parent_ref_json(p)},
                         {"controllerName", c_.opts.controller_name},
                         {"conditions", nlohmann::json::array({condition("Accepted", ok, reason, msg)})}});
    }
    if (parents.empty()) return;  // no parent of ours: not our route
    ResolvedRefs refs;
    if (any_accepted) rules(r, pos, obj, hosts, refs);
    else check_refs(r, refs);
    for (auto& p : parents)
      p["conditions"].push_back(condition("ResolvedRefs", refs.reason.empty(), refs.reason.empty() ? "ResolvedRefs" : refs.reason,
                                          refs.message));
    out_.push_back({"HTTPRoute", r.meta.namespace_, r.meta.name, {{"parents", parents}}});
  }

  struct ResolvedRefs {
    std::string reason, message;  // the first problem ("" = every reference resolved)
    void fail(std::string r, std::string m) {
      if (reason.empty()) {
        reason = std::move(r);
        message = std::move(m);
      }
    }
  };

  // A backendRef to a Service port, or why not (reason, message).
  const Backend* backend_ref(const HTTPRoute& r, const BackendObjectReference& ref, ResolvedRefs& refs) {
    const std::string ns = ref.namespace_.value_or(r.meta.namespace_);
    std::string reason, msg;
    if (!ref.group.empty() || ref.kind != "Service") {
      reason = "InvalidKind";
      msg = fmt::format("backendRef {} of kind {}/{} is not supported (ingressd reaches Services)", ref.name,
                        ref.group.empty() ? "core" : ref.group, ref.kind);
    } else if (ns != r.meta.namespace_ && !granted("HTTPRoute", r.meta.namespace_, "", "Service", ns, ref.name)) {
      reason = "RefNotPermitted";
      msg = fmt::format("Service {}/{} is in another namespace and no ReferenceGrant there allows it", ns, ref.name);
    } else if (!c_.snap.get<Service>(Kind::Service, ns, ref.name)) {
      reason = "BackendNotFound";
      msg = fmt::format("Service {}/{} not found", ns, ref.name);
    } else if (!ref.port) {
      reason = "UnsupportedValue";
      msg = fmt::format("backendRef to Service {}/{} names no port", ns, ref.name);
    } else {
      return c_.service_backend(ns, ref.name, *ref.port);
    }
    refs.fail(reason, msg);
    diag(Severity::Warning, *current_pos_, "HTTPRoute " + id_of(r.meta), reason, msg + "; its share of requests gets 500");
    auto be = std::make_unique<Backend>();
    be->namespace_ = ns;
    be->service = ref.name;
    be->port = ref.port ? std::to_string(*ref.port) : "";
    be->invalid = true;
    be->unavailable = msg;
    return c_.builder.add_backend(std::move(be));
  }

  void check_refs(const HTTPRoute& r, ResolvedRefs& refs) {
    for (const auto& rule : r.rules)
      for (const auto& b : rule.backend_refs) backend_ref(r, b, refs);
  }

  static void header_edits(const HTTPHeaderFilter& f, HeaderEdits& e) {
    for (const auto& h : f.set) e.set.emplace_back(to_lower(h.name), h.value);
    for (const auto& h : f.add) e.add.emplace_back(to_lower(h.name), h.value);
    for (const auto& n : f.remove) e.remove.push_back(to_lower(n));
  }

  static PathModifier path_modifier(const HTTPPathModifier& m, const HTTPPathMatch& match) {
    PathModifier p;
    if (m.type == "ReplaceFullPath") {
      p.kind = PathModifier::Kind::ReplaceFullPath;
      p.value = m.replace_full_path.value_or("/");
    } else if (m.type == "ReplacePrefixMatch") {
      p.kind = PathModifier::Kind::ReplacePrefixMatch;
      p.value = m.replace_prefix_match.value_or("/");
      p.matched_prefix = match.value;
    }
    return p;
  }

  // The action of one match of one rule (a prefix rewrite depends on the match's path).
  const RouteAction* action(const HTTPRoute& r, const HTTPRouteRule& rule, const HTTPPathMatch& match,
                            const std::string& where, ResolvedRefs& refs) {
    auto a = std::make_unique<RouteAction>();
    a->owner = std::string(kHttpRoutePrefix) + id_of(r.meta);
    uint32_t total = 0;
    for (const auto& b : rule.backend_refs) {
      a->backends.push_back({backend_ref(r, b, refs), static_cast<uint32_t>(b.weight), nullptr});
      total += static_cast<uint32_t>(b.weight);
    }
    bool unsupported = false;
    for (const auto& f : rule.filters) {
      if (f.type == "RequestHeaderModifier" && f.request_header_modifier) {
        header_edits(*f.request_header_modifier, a->request_headers);
      } else if (f.type == "ResponseHeaderModifier" && f.response_header_modifier) {
        header_edits(*f.response_header_modifier, a->response_headers);
      } else if (f.type == "RequestRedirect" && f.request_redirect) {
        const auto& rr = *f.request_redirect;
        a->redirects = true;
        a->redirect.status = rr.status_code;
        a->redirect.scheme = rr.scheme.value_or("");
        a->redirect.host = rr.hostname.value_or("");
        a->redirect.port = static_cast<uint16_t>(rr.port.value_or(0));
        if (rr.path) a->redirect.path = path_modifier(*rr.path, match);
        a->redirect.declared_listener_port = true;
      } else if (f.type == "URLRewrite" && f.url_rewrite) {
        a->rewrite.host = f.url_rewrite->hostname.value_or("");
        if (f.url_rewrite->path) a->rewrite.path = path_modifier(*f.url_rewrite->path, match);
      } else if (f.type == "RequestMirror" && f.request_mirror) {
        const auto& m = *f.request_mirror;
        const Backend* mb = backend_ref(r, m.backend_ref, refs);
        if (mb->invalid) continue;
        Mirror mir{mb, 1, 1};
        if (m.percent) mir = {mb, static_cast<uint32_t>(*m.percent), 100};
        else if (m.fraction) mir = {mb, static_cast<uint32_t>(m.fraction->numerator), static_cast<uint32_t>(m.fraction->denominator)};
        if (mir.numerator > 0) a->mirrors.push_back(mir);
      } else if (f.type == "CORS" && f.cors) {
        a->cors = cors(*f.cors);
      } else {
        unsupported = true;
        refs.fail("UnsupportedValue", fmt::format("{}: filter {} is not supported", where, f.type));
      }
    }
    if (rule.timeouts) {
      int ms = 0;
      for (const auto& d : {rule.timeouts->request, rule.timeouts->backend_request})
        if (d && d->ms > 0) ms = ms ? std::min<int>(ms, static_cast<int>(d->ms)) : static_cast<int>(d->ms);
      a->read_timeout_ms = ms;
    }
    // Answers the spec asks for: a filter that cannot be applied must not be
    // skipped, and a rule with nowhere to send the request gets 500.
    if (unsupported) {
      a->refuse = "the rule has a filter ingressd does not support";
      a->refuse_status = 500;
    } else if (!a->redirects && (rule.backend_refs.empty() || total == 0)) {
      a->refuse = rule.backend_refs.empty() ? "the rule has no backendRefs" : "every backendRef has weight 0";
      a->refuse_status = 500;
      a->backends.clear();
    }
    if (a->redirects) a->backends.clear();
    // backendRef filters: the requests a backend gets take the rule's action
    // with that backend's header edits added (the split draw picks it).
    for (size_t i = 0; i < a->backends.size() && i < rule.backend_refs.size(); ++i) {
      const auto& filters = rule.backend_refs[i].filters;
      if (filters.empty()) continue;
      auto own = std::make_unique<RouteAction>(*a);
      own->backends = {{a->backends[i].backend, a->backends[i].weight, nullptr}};
      for (const auto& f : filters) {
        if (f.type == "RequestHeaderModifier" && f.request_header_modifier) {
          header_edits(*f.request_header_modifier, own->request_headers);
        } else if (f.type == "ResponseHeaderModifier" && f.response_header_modifier) {
          header_edits(*f.response_header_modifier, own->response_headers);
        } else {
          own->refuse = fmt::format("backendRef filter {} is not supported", f.type);
          own->refuse_status = 500;
          refs.fail("UnsupportedValue", fmt::format("{}: backendRefs[{}]: filter {} is not supported", where, i, f.type));
        }
      }
      a->backends[i].action = c_.builder.add_action(std::move(own));
    }
    return c_.builder.add_action(std::move(a));
  }

  static std::shared_ptr<const CorsPolicy> cors(const HTTPCORSFilter& f) {
    auto p = std::make_shared<CorsPolicy>();
    p->origins = f.allow_origins;
    p->methods = fmt::format("{}", fmt::join(f.allow_methods, ", "));
    p->headers = fmt::format("{}", fmt::join(f.allow_headers, ", "));
    p->expose = fmt::format("{}", fmt::join(f.expose_headers, ", "));
    p->credentials = f.allow_credentials.value_or(false);
    p->max_age = f.max_age;
    p->gateway = true;
    return p;
  }

  void rules(const HTTPRoute& r, const SourcePos& pos, const std::string& obj, const std::map<std::string, uint8_t>& hosts,
             ResolvedRefs& refs) {
    const std::string id = id_of(r.meta);
    for (size_t ri = 0; ri < r.rules.size(); ++ri) {
      const HTTPRouteRule& rule = r.rules[ri];
      // `matches: []` matches every request, as the default match does.
      static const std::vector<HTTPRouteMatch> every(1);
      const std::vector<HTTPRouteMatch>& matches = rule.matches.empty() ? every : rule.matches;
      for (size_t mi = 0; mi < matches.size(); ++mi) {
        const HTTPRouteMatch& m = matches[mi];
        const std::string where = fmt::format("spec.rules[{}].matches[{}]", ri, mi);
        Entry e;
        e.path = m.path.value;
        e.path_kind = m.path.type == "Exact" ? 0 : m.path.type == "PathPrefix" ? 1 : 2;
        if (e.path_kind == 2 && !(e.path_re = regex(e.path, where, pos, obj, refs))) continue;
        if (m.method) e.match.method = *m.method;
        std::set<std::string> header_names, query_names;
        bool bad = false;
        for (const auto& hm : m.headers) {
          std::string name = to_lower(hm.name);
          if (!header_names.insert(name).second) continue;  // only the first entry of a name counts
          HeaderMatch h{name, hm.value, nullptr};
          if (hm.type == "RegularExpression" && !(h.regex = regex(hm.value, where, pos, obj, refs))) bad = true;
          e.match.headers.push_back(std::move(h));
        }
        for (const auto& qm : m.query_params) {
          if (!query_names.insert(qm.name).second) continue;
          QueryMatch q{qm.name, qm.value, nullptr};
          if (qm.type == "RegularExpression" && !(q.regex = regex(qm.value, where, pos, obj, refs))) bad = true;
          e.match.query.push_back(std::move(q));
        }
        if (bad) continue;
        e.action = action(r, rule, m.path, where, refs);
        e.created = r.meta.creation_ns;
        e.route_id = id;
        e.rule = static_cast<int>(ri);
        e.match_index = static_cast<int>(mi);
        e.pos = &pos;
        for (const auto& [host, mask] : hosts) {
          Entry he = e;
          he.host = host;
          he.match.listeners = mask == (kPlainListener | kTlsListener) ? static_cast<uint8_t>(kAnyListener) : mask;
          entries_.push_back(std::move(he));
        }
      }
    }
  }

  std::shared_ptr<const re2::RE2> regex(const std::string& pattern, const std::string& where, const SourcePos& pos,
                                        const std::string& obj, ResolvedRefs& refs) {
    re2::RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(1 << 20);
    auto re = std::make_shared<re2::RE2>(pattern, o);
    if (re->ok()) return re;
    refs.fail("UnsupportedValue", fmt::format("{}: {} is not a valid RE2 regex", where, pattern));
    diag(Severity::Error, pos, obj, "InvalidRegex",
         fmt::format("{}: {} is not a valid RE2 regex ({}); this match is not served", where, pattern, re->error()));
    return nullptr;
  }

  // The entries into the table, in the spec's precedence (the most specific
  // hostname is the vhost lookup's job; Exact and prefix length are the
  // path lookup's): within one host and path, the longer prefix as written
  // ("/foo/" before "/foo"), method, most headers, most query parameters, the oldest route,
  // namespace/name, rule and match order.
  void insert_entries() {
    std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      auto key = [](const Entry& e) {
        return std::make_tuple(e.path.size(), !e.match.method.empty(), e.match.headers.size(), e.match.query.size());
      };
      auto ka = key(a), kb = key(b);
      if (ka != kb) return ka > kb;
      if (a.created != b.created) return a.created < b.created;
      if (a.route_id != b.route_id) return a.route_id < b.route_id;
      if (a.rule != b.rule) return a.rule < b.rule;
      return a.match_index < b.match_index;
    });
    std::set<std::string> reported;
    for (const Entry& e : entries_) {
      std::vector<VHost*> vhs{&c_.builder.vhost(e.host)};
      if (is_wildcard(e.host)) vhs.push_back(&c_.builder.deep_wildcard_vhost(e.host));
      for (VHost* vh : vhs) {
        vh->fall_through = true;
        Route* route = nullptr;
        if (e.path_kind == 2) {
          for (auto& rr : vh->regex)
            if (rr.full && rr.route.path == e.path) route = &rr.route;
          if (!route) {
            vh->regex.push_back({nullptr, new_route(e, PathType::ImplementationSpecific), e.path_re});
            route = &vh->regex.back().route;
            route->regex = true;
          }
        } else {
          const bool exact = e.path_kind == 0;
          RouteMap& map = exact ? vh->exact : vh->prefix;
          std::string key = exact ? e.path : std::string(prefix_key(e.path));
          auto it = map.find(key);
          if (it == map.end()) it = map.emplace(key, new_route(e, exact ? PathType::Exact : PathType::Prefix)).first;
          route = &it->second;
        }
        if (!route->ingress.starts_with(kHttpRoutePrefix) && route->default_candidate() &&
            route->default_candidate()->match.empty() && reported.insert(e.route_id + "|" + e.host + "|" + e.path).second)
          diag(Severity::Warning, *e.pos, "HTTPRoute " + e.route_id, "Conflict",
               fmt::format("host {} path {} is also a path of Ingress {}, which takes precedence (an Ingress path "
                           "comes before HTTPRoute rules on the same host and path)",
                           e.host.empty() ? "*(any host)" : e.host, e.path, route->ingress));
        route->candidates.push_back({e.match, e.action, 0, e.rule, e.match_index});
      }
    }
  }

  static Route new_route(const Entry& e, PathType type) {
    Route r;
    r.host = e.host;
    r.path = e.path;
    r.type = type;
    r.ingress = std::string(kHttpRoutePrefix) + e.route_id;
    r.rule = e.rule;
    r.path_index = e.match_index;
    return r;
  }

  // ---- GRPCRoute: recognised, not served yet ----
  void grpc_route(const GRPCRoute& r, const SourcePos& pos) {
    nlohmann::json parents = nlohmann::json::array();
    for (const auto& p : r.parent_refs) {
      if (p.group != kGroup || p.kind != "Gateway") continue;
      if (!gateways_.count(p.namespace_.value_or(r.meta.namespace_) + "/" + p.name)) continue;
      const std::string msg = "GRPCRoute is not supported yet (it needs HTTP/2 to upstreams); use an HTTPRoute";
      parents.push_back({{"parentRef", parent_ref_json(p)},
                         {"controllerName", c_.opts.controller_name},
                         {"conditions", nlohmann::json::array({condition("Accepted", false, "UnsupportedValue", msg)})}});
    }
    if (parents.empty()) return;
    diag(Severity::Warning, pos, "GRPCRoute " + id_of(r.meta), "NotSupported",
         "GRPCRoute is not supported yet (it needs HTTP/2 to upstreams); its requests are not routed");
    out_.push_back({"GRPCRoute", r.meta.namespace_, r.meta.name, {{"parents", parents}}});
  }

  void gateway_statuses() {
    for (auto& [id, g] : gateways_) {
      nlohmann::json listeners = nlohmann::json::array();
      int served = 0;
      for (auto& ls : g.listeners) {
        served += ls.mask != 0;
        listeners.push_back({{"name", ls.l->name},
                             {"supportedKinds", ls.supported_kinds},
                             {"attachedRoutes", ls.attached},
                             {"conditions", ls.conditions}});
      }
      bool address_ok = true;
      for (const auto& a : g.gw->addresses) address_ok &= a.value.empty();
      const bool params = g.gw->infrastructure && g.gw->infrastructure->parameters_ref;
      const bool all_ok = served == static_cast<int>(g.listeners.size());
      nlohmann::json conds = nlohmann::json::array();
      if (params) {
        conds.push_back(condition("Accepted", false, "InvalidParameters",
                                  "infrastructure.parametersRef: ingressd takes no parameters object"));
      } else if (!address_ok) {
        conds.push_back(condition("Accepted", false, "UnsupportedAddress",
                                  "ingressd does not assign addresses: its Service's address is the Gateway's"));
      } else {
        conds.push_back(condition("Accepted", served > 0 || g.listeners.empty(), all_ok ? "Accepted" : "ListenersNotValid",
                                  all_ok ? "" : "some listeners are not valid; see their conditions"));
      }
      conds.push_back(condition("Programmed", address_ok && served > 0, address_ok && served > 0 ? "Programmed" : "Invalid", ""));
      out_.push_back({"Gateway", g.gw->meta.namespace_, g.gw->meta.name,
                      {{"conditions", conds}, {"listeners", listeners}, {"addresses", nlohmann::json::array()}}});
    }
  }

  GatewayCompileContext& c_;
  std::vector<GatewayObjectStatus>& out_;
  std::set<std::string> our_classes_;
  std::map<std::string, GatewayState> gateways_;
  std::vector<Entry> entries_;
  const SourcePos* current_pos_ = nullptr;  // of the route being compiled
};

}  // namespace

bool intersect_hostnames(const std::string& listener, const std::string& route, std::string& out) {
  if (listener.empty()) {
    out = route;
    return true;
  }
  if (route.empty() || route == listener) {
    out = listener;
    return true;
  }
  const bool lw = is_wildcard(listener), rw = is_wildcard(route);
  auto under = [](const std::string& host, const std::string& wildcard) {  // host is under "*.suffix"
    std::string_view suffix = std::string_view(wildcard).substr(1);     // ".suffix"
    return host.size() > suffix.size() && std::string_view(host).ends_with(suffix);
  };
  if (lw && under(route, listener)) {
    out = route;
    return true;
  }
  if (rw && under(listener, route)) {
    out = listener;
    return true;
  }
  return false;
}

nlohmann::json gateway_status_json(const std::vector<GatewayObjectStatus>& s) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& o : s) {
    nlohmann::json e = {{"kind", o.kind}, {"name", o.name}, {"status", o.status}};
    if (!o.namespace_.empty()) e["namespace"] = o.namespace_;
    j.push_back(std::move(e));
  }
  return j;
}

std::string gateway_status_text(const std::vector<GatewayObjectStatus>& s) {
  std::string out;
  for (const auto& o : s) {
    const std::string id = o.kind + " " + (o.namespace_.empty() ? o.name : o.namespace_ + "/" + o.name);
    auto conds = [&](const nlohmann::json& list, const std::string& where) {
      std::vector<std::string> parts;
      for (const auto& c : list) parts.push_back(fmt::format("{}={} ({})", c["type"].get<std::string>(),
                                                             c["status"].get<std::string>(), c["reason"].get<std::string>()));
      out += fmt::format("{}{}: {}\n", id, where, fmt::join(parts, ", "));
    };
    if (o.status.contains("conditions")) conds(o.status["conditions"], "");
    if (o.status.contains("listeners"))
      for (const auto& l : o.status["listeners"])
        conds(l["conditions"], fmt::format(" listener {} ({} route(s))", l["name"].get<std::string>(),
                                           l["attachedRoutes"].get<int>()));
    if (o.status.contains("parents"))
      for (const auto& p : o.status["parents"])
        conds(p["conditions"], fmt::format(" parent {}", p["parentRef"]["name"].get<std::string>()));
  }
  return out;
}

void compile_gateway_api(GatewayCompileContext& ctx, std::vector<GatewayObjectStatus>& out) {
  GatewayCompiler(ctx, out).run();
  static const std::map<std::string, Kind> kinds = {{"GatewayClass", Kind::GatewayClass}, {"Gateway", Kind::Gateway},
                                                   {"HTTPRoute", Kind::HTTPRoute}, {"GRPCRoute", Kind::GRPCRoute}};
  for (auto& o : out) {
    auto it = ctx.snap.objects.find(ObjectKey{kinds.at(o.kind), o.namespace_, o.name});
    if (it != ctx.snap.objects.end()) stamp_generation(o.status, object_meta(it->second.object).generation);
  }
}

}  // namespace ingressd::routing
