#include "routing/compile.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/sockaddr.h"
#include "core/strings.h"
#include "routing/annotations.h"
#include "routing/basic_auth.h"
#include "routing/path_regex.h"

namespace ingressd::routing {
using namespace ingressd::model;

namespace {

constexpr const char* kLegacyClassAnnotation = "kubernetes.io/ingress.class";
constexpr const char* kDefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class";

struct StoredIngress {
  const Ingress* ing;
  const SourcePos* pos;
  std::string id;  // namespace/name
  IngressOptions opt;  // its annotations, parsed
  std::shared_ptr<const BasicAuth> basic_auth;  // auth-type: basic, with its users
};

// A path that looks like a regex (ingress-nginx users write them with use-regex).
bool looks_like_regex(std::string_view p) { return p.find_first_of("^$*+?()[]{}|\\") != std::string_view::npos; }

bool make_endpoint(const std::string& ip, int port, EndpointAddr& out) {
  out = EndpointAddr{};
  if (port <= 0 || port > 65535) return false;
  if (!parse_sockaddr(ip, static_cast<uint16_t>(port), out.sa, out.len)) return false;
  out.text = join_host_port(ip, static_cast<uint16_t>(port));
  out.affinity = affinity_key(out.text);
  return true;
}

class Compiler {
 public:
  Compiler(const Snapshot& snap, const CompileOptions& opts) : snap_(snap), opts_(opts) {
    for (auto& [key, so] : snap_.objects) {
      if (key.kind == Kind::EndpointSlice) {
        const auto& es = std::get<EndpointSlice>(so.object);
        slices_[{key.namespace_, es.service_name()}].push_back(&es);
      }
    }
  }

  CompileResult run() {
    std::vector<StoredIngress> ingresses, canaries;
    const bool default_class = have_default_class(snap_, opts_);
    for (auto& [key, so] : snap_.objects) {
      if (key.kind != Kind::Ingress) continue;
      const auto& ing = std::get<Ingress>(so.object);
      std::string id = key.namespace_ + "/" + key.name;
      if (!opts_.watch_namespaces.empty() && !opts_.watch_namespaces.count(key.namespace_)) {
        statuses_[id] = {id, IngressState::Ignored, "namespace not watched"};
        ++ignored_ns_;
        continue;
      }
      std::string why;
      if (!ingress_is_ours(snap_, ing, opts_, default_class, why)) {
        statuses_[id] = {id, IngressState::Ignored, why};
        diag(Severity::Info, so.pos, key.str(), "NotOurClass", why);
        ++ignored_class_;
        continue;
      }
      std::vector<AnnotationIssue> issues;
      IngressOptions opt = parse_annotations(ing.meta.annotations, opts_.allow_unenforced_annotations, issues);
      for (auto& is : issues) diag(is.severity, so.pos, key.str(), is.reason, is.message);
      if (!opt.mirror_namespace.empty() && opt.mirror_namespace != ing.meta.namespace_) {
        diag(Severity::Warning, so.pos, key.str(), "InvalidAnnotation",
             fmt::format("mirror-target names Service {}/{}: an Ingress reaches only Services of its own namespace "
                         "\"{}\"; not mirrored", opt.mirror_namespace, opt.mirror_service, ing.meta.namespace_));
        opt.mirror_service.clear();
      }
      if (opt.canary) {
        canaries.push_back({&ing, &so.pos, id, std::move(opt), nullptr});
        continue;
      }
      std::shared_ptr<const BasicAuth> auth;
      if (opt.basic_auth && opt.refuse.empty()) auth = basic_auth(ing, so.pos, key.str(), opt);
      ingresses.push_back({&ing, &so.pos, id, std::move(opt), std::move(auth)});
    }
    // Precedence for conflicts: oldest creationTimestamp first (compared as
    // instants, whatever the offset or precision written), then
    // namespace/name (ingress-nginx's rule). Objects without a timestamp
    // (file mode) count as newest and tie among themselves.
    std::sort(ingresses.begin(), ingresses.end(), [](const StoredIngress& a, const StoredIngress& b) {
      if (a.ing->meta.creation_ns != b.ing->meta.creation_ns) return a.ing->meta.creation_ns < b.ing->meta.creation_ns;
      return a.id < b.id;
    });
    // ingress-nginx regex mode: use-regex or rewrite-target on any Ingress of
    // a host makes every path of that host a regex.
    for (const auto& si : ingresses)
      if (si.opt.regex)
        for (const auto& rule : si.ing->rules) regex_hosts_.insert(rule.host);
    for (const auto& si : ingresses) add_ingress(si);
    std::sort(canaries.begin(), canaries.end(), [](const StoredIngress& a, const StoredIngress& b) {
      if (a.ing->meta.creation_ns != b.ing->meta.creation_ns) return a.ing->meta.creation_ns < b.ing->meta.creation_ns;
      return a.id < b.id;
    });
    for (const auto& si : canaries) add_canary(si);
    std::vector<GatewayObjectStatus> gateway_status;
    GatewayCompileContext gctx{snap_, opts_, builder_, diags_, tls_,
                               [this](const std::string& ns, const std::string& name, int32_t port) {
                                 return service_backend(ns, name, port);
                               }};
    compile_gateway_api(gctx, gateway_status);
    builder_.sort_regex_routes();
    report_classes();

    CompileResult r;
    r.table = builder_.finish();
    r.diagnostics = std::move(diags_);
    r.tls = std::move(tls_);
    r.gateway_status = std::move(gateway_status);
    for (auto& [_, st] : statuses_) r.statuses.push_back(st);
    r.ignored_other_class = ignored_class_;
    r.ignored_other_namespace = ignored_ns_;
    return r;
  }

 private:
  void diag(Severity sev, const SourcePos& pos, std::string object, std::string reason, std::string msg, int line = 0) {
    diags_.push_back({sev, pos.file, line > 0 ? line : pos.line, std::move(object), std::move(reason), std::move(msg)});
  }

  const Backend* resolve(const StoredIngress& si, const IngressBackend& b, const std::string& where, int line) {
    std::string obj = "Ingress " + si.id;
    if (b.resource) {
      auto be = std::make_unique<Backend>();
      be->namespace_ = si.ing->meta.namespace_;
      be->service = b.resource->kind + "/" + b.resource->name;
      be->unavailable = "resource backends are not supported";
      diag(Severity::Warning, *si.pos, obj, "UnsupportedBackend",
           fmt::format("{}: resource backend {} {} is not supported by ingressd; requests get 503", where,
                       b.resource->kind, b.resource->name),
           line);
      return builder_.add_backend(std::move(be));
    }
    const auto& sb = *b.service;
    std::string port_text = sb.port.number ? std::to_string(*sb.port.number) : sb.port.name;
    std::string key = si.ing->meta.namespace_ + "/" + sb.name + ":" + port_text;
    auto cached = backends_.find(key);
    if (cached != backends_.end()) {
      if (!cached->second->unavailable.empty())
        diag(Severity::Warning, *si.pos, obj, "BackendUnavailable", fmt::format("{}: {}", where, cached->second->unavailable), line);
      return cached->second;
    }
    auto be = std::make_unique<Backend>();
    be->namespace_ = si.ing->meta.namespace_;
    be->service = sb.name;
    be->port = port_text;
    fill_endpoints(*be, sb);
    if (!be->unavailable.empty())
      diag(Severity::Warning, *si.pos, obj, "BackendUnavailable", fmt::format("{}: {}", where, be->unavailable), line);
    const Backend* p = builder_.add_backend(std::move(be));
    backends_[key] = p;
    return p;
  }

  // A Service port of any namespace (the Gateway API compile checked the
  // ReferenceGrant), shared with the Ingresses that name the same port.
  const Backend* service_backend(const std::string& ns, const std::string& name, int32_t port) {
    std::string key = ns + "/" + name + ":" + std::to_string(port);
    if (auto it = backends_.find(key); it != backends_.end()) return it->second;
    auto be = std::make_unique<Backend>();
    be->namespace_ = ns;
    be->service = name;
    be->port = std::to_string(port);
    fill_endpoints(*be, IngressServiceBackend{name, ServiceBackendPort{port, ""}});
    const Backend* p = builder_.add_backend(std::move(be));
    backends_[key] = p;
    return p;
  }

  // auth-type: basic: the users from the Secret auth-secret names, in the
  // Ingress's own namespace (ingress-nginx allowed any namespace, which let an
  // Ingress author read another team's Secret: CVE-2025-24513's family). Any
  // failure fails closed.
  std::shared_ptr<const BasicAuth> basic_auth(const Ingress& ing, const SourcePos& pos, const std::string& object,
                                              IngressOptions& opt) {
    const BasicAuthSpec& spec = *opt.basic_auth;
    const std::string& ns = ing.meta.namespace_;
    std::string problem;
    std::map<std::string, std::string, std::less<>> users;
    if (!spec.secret_namespace.empty() && spec.secret_namespace != ns) {
      problem = fmt::format("auth-secret {}/{} is in another namespace; only Secrets of the Ingress's namespace \"{}\" "
                            "are read", spec.secret_namespace, spec.secret_name, ns);
    } else if (const auto* sec = snap_.get<Secret>(Kind::Secret, ns, spec.secret_name); !sec) {
      problem = fmt::format("auth-secret \"{}/{}\" not found", ns, spec.secret_name);
    } else if (spec.map) {
      for (const auto& [user, hash] : sec->data)
        if (!user.empty() && !hash.empty()) users.emplace(user, std::string(trim_ows(hash)));
      if (users.empty()) problem = fmt::format("auth-secret \"{}/{}\" (auth-map) holds no user", ns, spec.secret_name);
    } else if (auto it = sec->data.find("auth"); it == sec->data.end()) {
      problem = fmt::format("auth-secret \"{}/{}\" has no key \"auth\" (an htpasswd file)", ns, spec.secret_name);
    } else {
      int bad = 0;
      users = BasicAuth::parse_htpasswd(it->second, bad);
      if (bad > 0)
        diag(Severity::Warning, pos, object, "InvalidAnnotation",
             fmt::format("auth-secret \"{}/{}\": {} line(s) of the htpasswd file are not \"user:hash\" and are ignored",
                         ns, spec.secret_name, bad));
      if (users.empty()) problem = fmt::format("auth-secret \"{}/{}\" lists no user", ns, spec.secret_name);
    }
    if (!problem.empty()) {
      diag(Severity::Error, pos, object, "AuthSecretInvalid",
           problem + (opts_.allow_unenforced_annotations ? "; --allow-unenforced-annotations: served without authentication"
                                                         : "; the Ingress's routes answer 503 rather than serve unprotected"));
      if (!opts_.allow_unenforced_annotations) opt.refuse = "this route is not served: " + problem;
      return nullptr;
    }
    return std::make_shared<BasicAuth>(spec.realm, std::move(users));
  }

  // The action of one Ingress path or defaultBackend: forward to its
  // backend, with what the Ingress's annotations ask. `path_regex`: the
  // path's rewrite regex in regex mode (null otherwise).
  const RouteAction* action_for(const StoredIngress& si, const Backend* b,
                                std::shared_ptr<const PathRegex> path_regex = nullptr) {
    const IngressOptions& o = si.opt;
    auto a = std::make_unique<RouteAction>();
    a->backends.push_back({b, 1});
    a->owner = si.id;
    a->refuse = o.refuse;
    if (o.redirect) {
      a->redirects = true;
      a->redirect = *o.redirect;
    }
    a->ssl_redirect = o.ssl_redirect;
    a->ip_access = o.ip_access;
    a->basic_auth = si.basic_auth;
    a->cors = o.cors;
    a->rate_limits = o.rate_limits;
    a->rate_limit_exempt = o.rate_limit_exempt;
    a->conn_limit = o.conn_limit;
    a->max_body_bytes = o.max_body_bytes;
    a->connect_timeout_ms = o.connect_timeout_ms;
    a->read_timeout_ms = o.read_timeout_ms;
    a->send_timeout_ms = o.send_timeout_ms;
    a->rewrite.host = o.upstream_vhost;
    if (o.rewrite_target && path_regex) {
      a->rewrite.path.kind = PathModifier::Kind::RegexReplace;
      a->rewrite.path.value = *o.rewrite_target;
      a->rewrite.path.regex = std::move(path_regex);
    }
    a->request_headers = o.request_headers;
    a->response_headers = o.response_headers;
    a->affinity = o.affinity;
    if (!o.mirror_service.empty()) {
      IngressBackend mb;
      mb.service = IngressServiceBackend{o.mirror_service, ServiceBackendPort{o.mirror_port, ""}};
      a->mirrors.push_back({resolve(si, mb, "mirror-target", 0), 1, 1});
    }
    return builder_.add_action(std::move(a));
  }



  // Service port (by number or name) → targetPort → endpoint ports and ready addresses.
  void fill_endpoints(Backend& be, const IngressServiceBackend& sb) {
    // "An Ingress reaches only Services of its own namespace": the lookup
    // uses the Ingress's namespace, nothing else.
    const Service* svc = snap_.get<Service>(Kind::Service, be.namespace_, sb.name);
    if (!svc) {
      be.unavailable = fmt::format("service \"{}/{}\" not found; requests get 503", be.namespace_, sb.name);
      return;
    }
    if (svc->type == "ExternalName") {
      be.unavailable = fmt::format("service \"{}/{}\" is of type ExternalName, which ingressd does not support yet",
                                   be.namespace_, sb.name);
      return;
    }
    const ServicePort* sp = nullptr;
    for (const auto& p : svc->ports) {
      if (sb.port.number ? p.port == *sb.port.number : p.name == sb.port.name) sp = &p;
    }
    if (!sp) {
      be.unavailable = fmt::format("service \"{}/{}\" has no port {}; requests get 503", be.namespace_, sb.name,
                                   sb.port.number ? std::to_string(*sb.port.number) : "named \"" + sb.port.name + "\"");
      return;
    }
    if (sp->protocol != "TCP") {
      be.unavailable = fmt::format("service port {} uses protocol {}, not TCP", sp->port, sp->protocol);
      return;
    }
    std::vector<EndpointAddr> eps;
    auto add = [&](const std::string& ip, int port) {
      EndpointAddr e;
      if (make_endpoint(ip, port, e)) eps.push_back(std::move(e));
    };
    // The port number on the endpoints: the EndpointSlice port whose name is
    // the Service port's name; else a numeric targetPort; else the port itself.
    auto endpoint_port = [&](const std::vector<EndpointPort>& ports) -> int {
      for (const auto& ep : ports)
        if (ep.name.value_or("") == sp->name && ep.port) return *ep.port;
      if (!ports.empty()) return 0;  // the slice names its ports and ours is not among them
      if (sp->target_port) return sp->target_port->is_int ? sp->target_port->i : 0;
      return sp->port;
    };
    bool have_slices = false;
    auto sit = slices_.find({be.namespace_, sb.name});
    if (sit != slices_.end()) {
      for (const EndpointSlice* es : sit->second) {
        have_slices = true;
        if (es->address_type == "FQDN") continue;
        int port = endpoint_port(es->ports);
        if (port <= 0) continue;
        for (const auto& e : es->endpoints) {
          // Ready "should be interpreted as unknown" when absent, which
          // consumers treat as ready; terminating endpoints get no new requests.
          if (e.conditions.ready.value_or(true) == false) continue;
          if (e.conditions.terminating.value_or(false)) continue;
          for (const auto& a : e.addresses) add(a, port);
        }
      }
    }
    if (!have_slices) {
      if (const auto* eps_obj = snap_.get<Endpoints>(Kind::Endpoints, be.namespace_, sb.name)) {
        for (const auto& ss : eps_obj->subsets) {
          int port = endpoint_port(ss.ports);
          if (port <= 0) continue;
          for (const auto& a : ss.addresses) add(a.ip, port);
        }
      }
    }
    std::sort(eps.begin(), eps.end(), [](const EndpointAddr& a, const EndpointAddr& b) { return a.text < b.text; });
    eps.erase(std::unique(eps.begin(), eps.end(), [](const EndpointAddr& a, const EndpointAddr& b) { return a.text == b.text; }),
              eps.end());
    be.endpoints = std::move(eps);
    if (be.endpoints.empty())
      be.unavailable = fmt::format("service \"{}/{}\" port {} has no ready endpoints; requests get 503", be.namespace_,
                                   sb.name, be.port);
  }

  void add_ingress(const StoredIngress& si) {
    const Ingress& ing = *si.ing;
    std::string obj = "Ingress " + si.id;
    int accepted = 0, dropped = 0;
    std::vector<std::string> drop_reasons;
    const RouteAction* ing_default = nullptr;
    check_tls(si);
    if (ing.default_backend) {
      ing_default = action_for(si, resolve(si, *ing.default_backend, "spec.defaultBackend", 0));
      if (!builder_.global_default()) {
        builder_.set_global_default(ing_default, si.id);
        global_default_owner_ = si.id;
      } else {
        diag(Severity::Warning, *si.pos, obj, "Conflict",
             fmt::format("spec.defaultBackend conflicts with the defaultBackend of Ingress {}, which wins (older, or "
                         "first by namespace/name); this one serves only the hosts of its own rules",
                         global_default_owner_));
      }
    }
    for (size_t ri = 0; ri < ing.rules.size(); ++ri) {
      const IngressRule& rule = ing.rules[ri];
      std::string host = rule.host;  // validated lower-case DNS name or wildcard
      VHost& vh = builder_.vhost(host);
      if (ing_default && !vh.default_action) {
        vh.default_action = ing_default;
        vh.default_source = si.id;
      }
      for (size_t pi = 0; pi < rule.paths.size(); ++pi) {
        const HTTPIngressPath& hp = rule.paths[pi];
        std::string where = fmt::format("spec.rules[{}].http.paths[{}]", ri, pi);
        Route r;
        r.host = host;
        r.path = hp.path.empty() ? "/" : hp.path;
        r.type = hp.path_type;
        r.ingress = si.id;
        r.rule = static_cast<int>(ri);
        r.path_index = static_cast<int>(pi);
        const Backend* be = resolve(si, hp.backend, where, hp.line);
        if (regex_hosts_.count(host)) {
          // Regex mode: the path is a case-insensitive RE2 anchored at the start
          // (Exact paths stay exact, as nginx's `location =`).
          std::string err;
          std::shared_ptr<const PathRegex> match_re, rewrite_re;
          if (hp.path_type != PathType::Exact && !(match_re = PathRegex::compile(r.path, err))) {
            ++dropped;
            std::string msg = fmt::format("{}: path {} is not a valid RE2 regex ({}); this route is not served", where,
                                          r.path, err);
            diag(Severity::Error, *si.pos, obj, "InvalidRegex", msg, hp.line);
            drop_reasons.push_back(msg);
            continue;
          }
          // nginx rewrites with "(?i)<path>" unanchored; since the location matched
          // "^<path>", the leftmost match starts at 0, so the anchored one is the same.
          if (si.opt.rewrite_target) rewrite_re = match_re ? match_re : PathRegex::compile(r.path, err);
          r.candidates.push_back({RequestMatch{}, action_for(si, be, rewrite_re), 0});
          if (hp.path_type != PathType::Exact) {
            r.regex = true;
            if (!builder_.add_regex_route(vh, std::move(match_re), std::move(r))) {
              ++dropped;
              std::string msg = fmt::format("{}: regex path {} on host {} is already claimed by an older Ingress; this "
                                            "route is not served", where, hp.path, host.empty() ? "*(any host)" : host);
              diag(Severity::Warning, *si.pos, obj, "Conflict", msg, hp.line);
              drop_reasons.push_back(msg);
            } else {
              ++accepted;
            }
            continue;
          }
        } else {
          if (hp.path_type != PathType::Exact && looks_like_regex(r.path))
            diag(Severity::Warning, *si.pos, obj, "LiteralRegex",
                 fmt::format("{}: path {} looks like a regex, but no Ingress of host {} sets use-regex or "
                             "rewrite-target: it is matched literally as a Prefix", where, r.path,
                             host.empty() ? "*(any host)" : host),
                 hp.line);
          r.candidates.push_back({RequestMatch{}, action_for(si, be), 0});
        }
        // ImplementationSpecific is matched as Prefix (documented in docs/routing.md).
        bool exact = hp.path_type == PathType::Exact;
        RouteMap& map = exact ? vh.exact : vh.prefix;
        std::string key = exact ? r.path : std::string(prefix_key(r.path));
        auto it = map.find(key);
        if (it == map.end()) {
          map.emplace(key, std::move(r));
          ++accepted;
          continue;
        }
        Route& cur = it->second;
        // Same match set. "/foo/" beats "/foo" (the longer path), then an
        // explicit Prefix beats ImplementationSpecific; otherwise the earlier
        // Ingress (older, then by name) keeps it.
        auto rank = [](const Route& x) {
          return std::make_pair(x.path.size(), x.type == PathType::ImplementationSpecific ? 0 : 1);
        };
        std::string hostname = host.empty() ? "*(any host)" : host;
        if (rank(r) > rank(cur)) {
          diag(Severity::Info, *si.pos, obj, "Shadowed",
               fmt::format("{}: path {} ({}) on host {} takes precedence over {} ({}) of Ingress {}", where, r.path,
                           path_type_name(r.type), hostname, cur.path, path_type_name(cur.type), cur.ingress),
               hp.line);
          cur = std::move(r);
          ++accepted;
          continue;
        }
        ++dropped;
        std::string msg;
        if (cur.ingress == si.id && cur.path == r.path && cur.type == r.type)
          msg = fmt::format("{}: duplicate of spec.rules[{}].http.paths[{}] (host {}, path {}, {}); ignored", where,
                            cur.rule, cur.path_index, hostname, r.path, path_type_name(r.type));
        else if (cur.path == r.path && cur.type == r.type)
          msg = fmt::format("{}: host {} path {} ({}) is already claimed by Ingress {} (older, or first by "
                            "namespace/name); this route is not served",
                            where, hostname, r.path, path_type_name(r.type), cur.ingress);
        else
          msg = fmt::format("{}: host {} path {} ({}) matches the same requests as path {} ({}) of Ingress {}, "
                            "which takes precedence; this route is not served",
                            where, hostname, r.path, path_type_name(r.type), cur.path, path_type_name(cur.type),
                            cur.ingress);
        diag(Severity::Warning, *si.pos, obj, "Conflict", msg, hp.line);
        drop_reasons.push_back(msg);
      }
    }
    if (!si.opt.app_root.empty()) add_app_root(si);
    IngressStatus st{si.id, IngressState::Accepted, ""};
    if (!si.opt.refuse.empty()) {
      st.state = IngressState::Rejected;
      st.detail = si.opt.refuse + " (its routes answer 503)";
    } else if (dropped > 0) {
      st.state = accepted > 0 || ing_default ? IngressState::PartiallyAccepted : IngressState::Rejected;
      st.detail = fmt::format("{} path(s) not served: {}", dropped, fmt::join(drop_reasons, "; "));
    }
    statuses_[si.id] = st;
  }

  // A canary Ingress (ingress-nginx canary annotations): each of its paths
  // becomes alternatives on the same host and path of a main Ingress, as
  // route candidates in ingress-nginx's precedence: by header, by cookie,
  // then by weight. The main Ingress's other annotations (rewrites, limits,
  // protection) apply to the canary's requests too; only the backend differs.
  void add_canary(const StoredIngress& si) {
    const Ingress& ing = *si.ing;
    const IngressOptions& o = si.opt;
    std::string obj = "Ingress " + si.id;
    int served = 0;
    std::vector<std::string> problems;
    for (size_t ri = 0; ri < ing.rules.size(); ++ri) {
      const IngressRule& rule = ing.rules[ri];
      VHost& vh = builder_.vhost(rule.host);
      for (size_t pi = 0; pi < rule.paths.size(); ++pi) {
        const HTTPIngressPath& hp = rule.paths[pi];
        std::string where = fmt::format("spec.rules[{}].http.paths[{}]", ri, pi);
        std::string path = hp.path.empty() ? "/" : hp.path;
        Route* main = nullptr;
        if (hp.path_type == PathType::Exact) {
          auto it = vh.exact.find(path);
          if (it != vh.exact.end()) main = &it->second;
        } else if (regex_hosts_.count(rule.host)) {
          for (auto& rr : vh.regex)
            if (rr.route.path == path) main = &rr.route;
        } else {
          auto it = vh.prefix.find(std::string(prefix_key(path)));
          if (it != vh.prefix.end() && it->second.path == path) main = &it->second;
        }
        std::string hostname = rule.host.empty() ? "*(any host)" : rule.host;
        if (!main || main->candidates.size() != 1 || !main->candidates[0].action) {
          std::string msg = !main ? fmt::format("{}: no main Ingress serves host {} path {} ({}): this canary path gets "
                                                "no traffic", where, hostname, path, path_type_name(hp.path_type))
                                  : fmt::format("{}: host {} path {} already has a canary (one per path): this one "
                                                "gets no traffic", where, hostname, path);
          diag(Severity::Warning, *si.pos, obj, "CanaryWithoutMain", msg, hp.line);
          problems.push_back(msg);
          continue;
        }
        const RouteAction& base = *main->candidates[0].action;
        const Backend* canary_backend = resolve(si, hp.backend, where, hp.line);
        auto with = [&](std::vector<WeightedBackend> backends) {
          auto a = std::make_unique<RouteAction>(base);
          a->backends = std::move(backends);
          return builder_.add_action(std::move(a));
        };
        const RouteAction* to_canary = with({{canary_backend, 1}});
        const RouteAction* to_main = main->candidates[0].action;
        std::vector<RouteCandidate> cands;
        if (!o.canary_header.empty()) {
          std::string h = o.canary_header;
          for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (!o.canary_header_value.empty()) {
            cands.push_back({RequestMatch{"", {{h, o.canary_header_value}}, {}, {}}, to_canary, 0});
          } else {
            cands.push_back({RequestMatch{"", {{h, "always"}}, {}, {}}, to_canary, 0});
            cands.push_back({RequestMatch{"", {{h, "never"}}, {}, {}}, to_main, 0});
          }
        }
        if (!o.canary_cookie.empty()) {
          cands.push_back({RequestMatch{"", {}, {}, {{o.canary_cookie, "always"}}}, to_canary, 0});
          cands.push_back({RequestMatch{"", {}, {}, {{o.canary_cookie, "never"}}}, to_main, 0});
        }
        const RouteAction* split = to_main;
        if (o.canary_weight > 0)
          split = with({{base.primary(), static_cast<uint32_t>(o.canary_weight_total - o.canary_weight)},
                        {canary_backend, static_cast<uint32_t>(o.canary_weight)}});
        cands.push_back({RequestMatch{}, split, 0});
        main->candidates = std::move(cands);
        ++served;
      }
    }
    IngressStatus st{si.id, IngressState::Accepted, "canary"};
    if (!problems.empty()) {
      st.state = served > 0 ? IngressState::PartiallyAccepted : IngressState::Rejected;
      st.detail = fmt::format("canary: {}", fmt::join(problems, "; "));
    }
    statuses_[si.id] = st;
  }

  // app-root: a request for exactly "/" on the Ingress's hosts is redirected
  // (302) to the app root; other paths are untouched.
  void add_app_root(const StoredIngress& si) {
    std::set<std::string> hosts;
    for (const auto& rule : si.ing->rules) hosts.insert(rule.host);
    for (const auto& host : hosts) {
      VHost& vh = builder_.vhost(host);
      if (vh.exact.count("/")) continue;  // an Exact "/" path of its own stands
      auto a = std::make_unique<RouteAction>();
      a->owner = si.id;
      a->refuse = si.opt.refuse;
      a->ip_access = si.opt.ip_access;
      a->ssl_redirect = si.opt.ssl_redirect;
      a->redirects = true;
      a->redirect.status = 302;
      a->redirect.host_as_sent = true;
      a->redirect.path = {PathModifier::Kind::ReplaceFullPath, si.opt.app_root, ""};
      Route r;
      r.host = host;
      r.path = "/";
      r.type = PathType::Exact;
      r.ingress = si.id;
      r.candidates.push_back({RequestMatch{}, builder_.add_action(std::move(a)), 0});
      vh.exact.emplace("/", std::move(r));
    }
  }

  // Our IngressClasses: parameters are accepted but not used.
  void report_classes() {
    auto it = snap_.objects.lower_bound(ObjectKey{Kind::IngressClass, "", ""});
    for (; it != snap_.objects.end() && it->first.kind == Kind::IngressClass; ++it) {
      const auto& ic = std::get<IngressClass>(it->second.object);
      if (ic.controller != opts_.controller_name || !ic.parameters) continue;
      diag(Severity::Warning, it->second.pos, it->first.str(), "UnsupportedParameters",
           fmt::format("spec.parameters ({} {}) is accepted but not supported by ingressd; it has no effect",
                       ic.parameters->kind, ic.parameters->name));
    }
  }

  // spec.tls: the Secret must exist in the Ingress's namespace with a certificate and key.
  void check_tls(const StoredIngress& si) {
    const Ingress& ing = *si.ing;
    for (size_t i = 0; i < ing.tls.size(); ++i) {
      const auto& t = ing.tls[i];
      TlsBinding b{si.id, ing.meta.namespace_, t.secret_name, t.hosts, static_cast<int>(i), *si.pos};
      if (b.hosts.empty()) {
        // No hosts: the hosts of this Ingress's rules.
        for (const auto& rule : ing.rules)
          if (!rule.host.empty() && std::find(b.hosts.begin(), b.hosts.end(), rule.host) == b.hosts.end())
            b.hosts.push_back(rule.host);
      }
      for (const auto& h : b.hosts) builder_.add_tls_host(h);
      tls_.push_back(std::move(b));
      if (t.secret_name.empty()) continue;
      const auto* sec = snap_.get<Secret>(Kind::Secret, ing.meta.namespace_, t.secret_name);
      std::string problem;
      if (!sec) problem = fmt::format("secret \"{}/{}\" not found", ing.meta.namespace_, t.secret_name);
      else if (!sec->data.count("tls.crt") || !sec->data.count("tls.key"))
        problem = fmt::format("secret \"{}/{}\" has no tls.crt and tls.key", ing.meta.namespace_, t.secret_name);
      if (!problem.empty())
        diag(Severity::Warning, *si.pos, "Ingress " + si.id, "SecretNotFound",
             fmt::format("spec.tls[{}]: {}; its hosts get the default certificate", i, problem));
    }
  }

  const Snapshot& snap_;
  const CompileOptions& opts_;
  size_t ignored_class_ = 0, ignored_ns_ = 0;
  TableBuilder builder_;
  Diagnostics diags_;
  std::map<std::string, IngressStatus> statuses_;
  std::map<std::pair<std::string, std::string>, std::vector<const EndpointSlice*>> slices_;
  std::map<std::string, const Backend*> backends_;
  std::set<std::string> regex_hosts_;
  std::string global_default_owner_;
  std::vector<TlsBinding> tls_;
};

}  // namespace

bool controller_is_ours(const std::string& controller, const CompileOptions& opts) {
  return controller == opts.controller_name || (opts.serve_nginx_class && controller == kNginxController);
}

bool have_default_class(const Snapshot& snap, const CompileOptions& opts) {
  auto it = snap.objects.lower_bound(ObjectKey{Kind::IngressClass, "", ""});
  for (; it != snap.objects.end() && it->first.kind == Kind::IngressClass; ++it) {
    const auto& ic = std::get<IngressClass>(it->second.object);
    auto d = ic.meta.annotations.find(kDefaultClassAnnotation);
    if (controller_is_ours(ic.controller, opts) && d != ic.meta.annotations.end() && d->second == "true") return true;
  }
  return false;
}

bool ingress_is_ours(const Snapshot& snap, const Ingress& ing, const CompileOptions& opts, bool default_class,
                     std::string& why) {
  auto our_class = [&](const std::string& name) {
    const auto* ic = snap.get<IngressClass>(Kind::IngressClass, "", name);
    return ic && controller_is_ours(ic->controller, opts);
  };
  // The field wins over the deprecated annotation when both are set.
  if (ing.ingress_class_name) {
    const std::string& name = *ing.ingress_class_name;
    const auto* ic = snap.get<IngressClass>(Kind::IngressClass, "", name);
    if (!ic) {
      why = fmt::format("spec.ingressClassName \"{}\" names no IngressClass", name);
      return false;
    }
    if (!controller_is_ours(ic->controller, opts)) {
      why = fmt::format("IngressClass \"{}\" belongs to controller \"{}\", not \"{}\"", name, ic->controller,
                        opts.controller_name);
      return false;
    }
    return true;
  }
  auto ann = ing.meta.annotations.find(kLegacyClassAnnotation);
  if (ann != ing.meta.annotations.end()) {
    if (ann->second == opts.legacy_class || our_class(ann->second) ||
        (opts.serve_nginx_class && ann->second == kNginxLegacyClass))
      return true;
    why = fmt::format("annotation {}=\"{}\" names another controller's class", kLegacyClassAnnotation, ann->second);
    return false;
  }
  if (default_class || opts.serve_classless) return true;
  why = "the Ingress names no class and classless Ingresses are not served";
  return false;
}

CompileResult compile(const Snapshot& snap, const CompileOptions& opts) { return Compiler(snap, opts).run(); }

}  // namespace ingressd::routing
