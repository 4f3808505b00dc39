#include "proxy/explain.h"

#include <fmt/format.h>

#include <cstring>

#include "proxy/decide.h"
#include "proxy/http1/parser.h"
#include "routing/path.h"

namespace ingressd {
namespace routing {
using namespace ingressd::model;

bool path_matches(std::string_view rule_path, PathType type, std::string_view p) {
  if (rule_path.empty()) rule_path = "/";
  if (type == PathType::Exact) return rule_path == p;
  std::string_view key = prefix_key(rule_path);
  std::string_view req = prefix_key(p);
  if (key.empty()) return true;
  if (req.size() < key.size() || req.substr(0, key.size()) != key) return false;
  return req.size() == key.size() || req[key.size()] == '/';
}

namespace {

bool host_matches(std::string_view rule_host, std::string_view host) {
  if (rule_host.empty()) return true;
  if (rule_host.size() > 2 && rule_host[0] == '*') {
    size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 && host.substr(dot + 1) == rule_host.substr(2);
  }
  return rule_host == host;
}

std::string backend_text(const IngressBackend& b) {
  if (b.resource) return fmt::format("resource {}/{}", b.resource->kind, b.resource->name);
  if (!b.service) return "?";
  return fmt::format("{}:{}", b.service->name,
                     b.service->port.number ? std::to_string(*b.service->port.number) : b.service->port.name);
}

// Why a candidate's conditions do not hold for the request ("" = they do).
std::string condition_miss(const RequestMatch& m, const RequestFacts& f) {
  if (m.listeners != kAnyListener && !(m.listeners & (f.secure ? kTlsListener : kPlainListener)))
    return f.secure ? "its Gateway listeners are plain HTTP only" : "its Gateway listeners are HTTPS only";
  if (!m.method.empty() && m.method != f.method) return fmt::format("method is not {}", m.method);
  for (const auto& h : m.headers) {
    RequestMatch one;
    one.headers.push_back(h);
    if (!request_matches(one, &f))
      return fmt::format("header {} {} \"{}\" does not hold", h.name, h.regex ? "~" : "=", h.value);
  }
  for (const auto& q : m.query) {
    RequestMatch one;
    one.query.push_back(q);
    if (!request_matches(one, &f))
      return fmt::format("query parameter {} {} \"{}\" does not hold", q.name, q.regex ? "~" : "=", q.value);
  }
  if (!request_matches(m, &f)) return "a cookie condition does not hold";
  return "";
}

}  // namespace

// HTTPRoute matches on the hostnames this request could take, whose path
// matches, that did not take it, and why: their conditions, the spec's
// precedence within a path, a longer or exact path, a more specific hostname.
void gateway_near_misses(const RouteTable& table, std::string_view host, std::string_view path, const RequestFacts& facts,
                         const Match& m, nlohmann::json& misses, std::string& text) {
  const RouteCandidate* chosen = m.route ? m.route->pick(&facts) : nullptr;
  for (const VHost* vh = table.find_vhost(host); vh; vh = table.broader_vhost(host, vh)) {
    auto visit = [&](const Route& r, bool path_ok) {
      if (!path_ok || !std::string_view(r.ingress).starts_with(kHttpRoutePrefix)) return;
      for (const auto& c : r.candidates) {
        if (&c == chosen) continue;
        std::string why = condition_miss(c.match, facts);
        if (why.empty()) {
          if (&r == m.route) why = "an earlier match of the same path takes precedence (method, headers, query, older route)";
          else if (m.vhost && m.vhost != vh) why = fmt::format("hostname \"{}\" is less specific than \"{}\", which decides this request",
                                                            vh->host.empty() ? "*" : vh->host, m.vhost->host.empty() ? "*" : m.vhost->host);
          else if (m.route) why = fmt::format("a longer or exact path wins: \"{}\"", m.route->path);
          else why = "not taken";
        }
        const std::string id = c.action ? c.action->owner.substr(std::min(c.action->owner.size(), kHttpRoutePrefix.size())) : "";
        misses.push_back({{"httproute", id}, {"rule", c.rule_index}, {"match", c.match_index}, {"hostname", r.host}, {"path", r.path}, {"why", why}});
        text += fmt::format("  ✗ HTTPRoute {} spec.rules[{}].matches[{}] hostname \"{}\" path \"{}\": {}\n", id, c.rule_index,
                            c.match_index, r.host.empty() ? "*" : r.host, r.path, why);
      }
    };
    if (auto it = vh->exact.find(path); it != vh->exact.end()) visit(it->second, true);
    for (const auto& rr : vh->regex) visit(rr.route, rr.matches(path));
    for (const auto& [_, r] : vh->prefix) visit(r, path_matches(r.path, PathType::Prefix, path));
    if (!vh->fall_through) break;
  }
}

}  // namespace routing

using namespace ingressd::model;
using namespace ingressd::routing;

Explanation explain(const Snapshot& snap, const CompileOptions& opts, const RouteTable& table,
                    const ExplainRequest& xr) {
  Explanation e;
  std::string_view url = xr.url;
  std::string_view host_in = xr.host_header;
  std::string_view target = url;
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    std::string_view rest = url.substr(scheme + 3);
    size_t slash = rest.find_first_of("/?");
    if (host_in.empty()) host_in = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  if (target.empty()) target = "/";
  std::string_view raw_path = target.substr(0, target.find('?'));
  if (raw_path.empty()) raw_path = "/";
  nlohmann::json j;
  j["host"] = std::string(host_in);
  j["path"] = std::string(raw_path);
  auto fail = [&](const std::string& why) {
    j["result"] = why;
    e.json = j;
    e.text = fmt::format("request {} {}\n  → {}\n", host_in, raw_path, why);
    return e;
  };
  // The request as a client would send it, through the data plane's parser.
  std::string wire = xr.method;
  wire.append(" ").append(target.starts_with("/") ? "" : "/").append(target).append(" HTTP/1.1\r\nHost: ");
  wire.append(host_in).append("\r\n");
  for (const auto& [k, v] : xr.headers) wire.append(k).append(": ").append(v).append("\r\n");
  wire.append("\r\n");
  auto req = std::make_unique<http1::RequestHead>();
  http1::ParseError perr;
  long n = http1::parse_request_head(wire.data(), wire.size(), *req, perr, xr.proxy.limits);
  if (n <= 0) return fail(fmt::format("{}: {}", n < 0 ? perr.status : 400, n < 0 ? perr.reason : "incomplete request"));
  DecideScratch scratch;
  ConnFacts conn{url.starts_with("https://"), xr.https_listener, {}};
  if (!xr.client.empty()) {
    Cidr c;
    if (!Cidr::parse(xr.client, c) || c.prefix != (c.family == 4 ? 32 : 128)) return fail("400: --client is not an address");
    conn.client.family = c.family;
    std::memcpy(conn.client.bytes, c.bytes, sizeof c.bytes);
  }
  const Decision d = decide(*req, conn, &table, xr.proxy, nullptr, 0, scratch);
  if (d.verdict == Verdict::Respond && d.status == 400) return fail(fmt::format("400: {}", d.detail));
  const RequestFacts facts = request_facts(*req, conn.secure);
  const std::string& host = scratch.host;
  const std::string_view path = d.path;
  const Match& m = d.match;
  j["normalizedHost"] = host;
  j["normalizedPath"] = std::string(path);
  std::string text = fmt::format("request host \"{}\" path \"{}\"\n", host, path);
  nlohmann::json chosen;
  switch (m.kind) {
    case MatchKind::Path:
      chosen = {{"kind", "path"},
                {"ingress", m.route->ingress},
                {"rule", m.route->rule},
                {"pathIndex", m.route->path_index},
                {"ruleHost", m.route->host},
                {"rulePath", m.route->path},
                {"pathType", path_type_name(m.route->type)}};
      if (std::string_view(m.route->ingress).starts_with(kHttpRoutePrefix)) {
        const RouteCandidate* c = m.route->pick(&facts);
        const int rule = c ? c->rule_index : m.route->rule, mi = c ? c->match_index : m.route->path_index;
        const std::string id = m.route->ingress.substr(kHttpRoutePrefix.size());
        chosen["kind"] = "httproute";
        chosen["httproute"] = id;
        chosen["rule"] = rule;
        chosen["match"] = mi;
        text += fmt::format("  → matched HTTPRoute {} spec.rules[{}].matches[{}] hostname \"{}\" path \"{}\" ({})\n", id,
                            rule, mi, m.route->host.empty() ? "*" : m.route->host, m.route->path,
                            m.route->regex ? "RegularExpression" : m.route->type == PathType::Exact ? "Exact" : "PathPrefix");
      } else {
        text += fmt::format("  → matched Ingress {} spec.rules[{}] host \"{}\" path \"{}\" ({})\n", m.route->ingress,
                            m.route->rule, m.route->host.empty() ? "*" : m.route->host, m.route->path,
                            path_type_name(m.route->type));
      }
      break;
    case MatchKind::HostDefault:
      chosen = {{"kind", "hostDefaultBackend"}, {"ingress", m.vhost->default_source}};
      text += fmt::format("  → no path of host \"{}\" matches: defaultBackend of Ingress {}\n", m.vhost->host,
                          m.vhost->default_source);
      break;
    case MatchKind::GlobalDefault:
      chosen = {{"kind", "defaultBackend"}, {"ingress", table.global_default_source()}};
      text += fmt::format("  → no rule matches: defaultBackend of Ingress {}\n", table.global_default_source());
      break;
    case MatchKind::None:
      chosen = {{"kind", "none"}};
      text += "  → no rule matches and there is no default backend: 404\n";
      break;
  }
  if (m.backend) {
    nlohmann::json eps = nlohmann::json::array();
    for (auto& ep : m.backend->endpoints) eps.push_back(ep.text);
    chosen["backend"] = {{"service", m.backend->namespace_ + "/" + m.backend->service}, {"port", m.backend->port}, {"endpoints", eps}};
    if (m.backend->endpoints.empty()) {
      text += fmt::format("  backend {} has no endpoint → 503: {}\n", m.backend->str(), m.backend->unavailable);
    } else {
      std::string list;
      for (auto& ep : m.backend->endpoints) list += (list.empty() ? "" : ", ") + ep.text;
      text += fmt::format("  backend {} → endpoints {}\n", m.backend->str(), list);
    }
  }
  // What the data plane does with it (decide.h).
  nlohmann::json decision;
  switch (d.verdict) {
    case Verdict::Forward:
      decision = {{"verdict", "forward"}};
      if (xr.proxy.max_requests_per_backend > 0)
        text += fmt::format("  forwarded (unless {} requests are already in progress for this backend on the worker: 503)\n",
                            xr.proxy.max_requests_per_backend);
      break;
    case Verdict::Redirect:
      decision = {{"verdict", "redirect"}, {"status", d.status}, {"detail", d.detail}, {"location", scratch.location}};
      chosen["status"] = d.status;
      text += fmt::format("  → {} redirect to {}: {}\n", d.status, scratch.location, d.detail);
      break;
    case Verdict::Respond:
      decision = {{"verdict", "respond"}, {"status", d.status}, {"detail", d.detail}};
      chosen["status"] = d.status;
      if (m.action && !m.action->refuse.empty()) {
        decision["reason"] = m.action->refuse;
        text += fmt::format("  → 503: {}\n", m.action->refuse);
      } else if (d.status != 404 && !(d.status == 503 && m.backend && m.backend->endpoints.empty())) {
        text += fmt::format("  → {}: {}{}\n", d.status, d.detail,
                            d.status == 403 && xr.client.empty() ? " (no client address given: --client)" : "");
      }
      break;
  }
  if (m.action && m.action->rewrite.path.active() && d.verdict != Verdict::Redirect) {
    std::string up;
    m.action->rewrite.path.apply(path, up);
    j["upstreamPath"] = up;
    text += fmt::format("  path sent upstream: {}\n", up);
  }
  if (m.action && !m.action->rewrite.host.empty()) {
    j["upstreamHost"] = m.action->rewrite.host;
    text += fmt::format("  Host sent upstream: {}\n", m.action->rewrite.host);
  }
  j["decision"] = decision;
  j["match"] = chosen;

  // Near misses: every rule path whose host or path matches, and why it lost.
  nlohmann::json misses = nlohmann::json::array();
  std::string miss_text;
  const bool default_class = have_default_class(snap, opts);
  for (const auto& [key, so] : snap.objects) {
    if (key.kind != Kind::Ingress) continue;
    const auto& ing = std::get<Ingress>(so.object);
    std::string id = key.namespace_ + "/" + key.name;
    std::string why_not_ours;
    bool ours = (opts.watch_namespaces.empty() || opts.watch_namespaces.count(key.namespace_)) &&
                ingress_is_ours(snap, ing, opts, default_class, why_not_ours);
    if (!opts.watch_namespaces.empty() && !opts.watch_namespaces.count(key.namespace_)) why_not_ours = "namespace not watched";
    for (size_t ri = 0; ri < ing.rules.size(); ++ri) {
      const auto& rule = ing.rules[ri];
      bool hm = host_matches(rule.host, host);
      for (size_t pi = 0; pi < rule.paths.size(); ++pi) {
        const auto& hp = rule.paths[pi];
        bool pm = path_matches(hp.path, hp.path_type, path);
        if (!hm && !pm) continue;
        if (m.route && m.route->ingress == id && m.route->rule == static_cast<int>(ri) &&
            m.route->path_index == static_cast<int>(pi))
          continue;  // the winner
        std::string why;
        if (!ours) why = "not served by this controller: " + why_not_ours;
        else if (!hm) why = fmt::format("host \"{}\" does not match", rule.host);
        else if (!pm && hp.path_type == PathType::Exact) why = fmt::format("Exact path \"{}\" is not the whole path", hp.path);
        else if (!pm) why = fmt::format("Prefix \"{}\" does not match element by element", hp.path.empty() ? "/" : hp.path);
        else if (m.vhost && m.vhost->host != rule.host)
          why = fmt::format("host \"{}\" is less specific than \"{}\", which decides this request",
                            rule.host.empty() ? "*" : rule.host, m.vhost->host.empty() ? "*" : m.vhost->host);
        else if (m.route && m.route->path == (hp.path.empty() ? "/" : hp.path) && m.route->type == hp.path_type)
          why = fmt::format("same host, path and pathType as Ingress {}, which takes precedence (older, or first by "
                            "namespace/name)", m.route->ingress);
        else if (m.route)
          why = fmt::format("a longer or more exact match wins: \"{}\" ({})", m.route->path, path_type_name(m.route->type));
        else why = "not in the table";
        misses.push_back({{"ingress", id},
                          {"rule", ri},
                          {"pathIndex", pi},
                          {"ruleHost", rule.host},
                          {"rulePath", hp.path},
                          {"pathType", path_type_name(hp.path_type)},
                          {"backend", backend_text(hp.backend)},
                          {"why", why}});
        miss_text += fmt::format("  ✗ Ingress {} spec.rules[{}].http.paths[{}] host \"{}\" path \"{}\" ({}): {}\n", id, ri,
                                 pi, rule.host.empty() ? "*" : rule.host, hp.path, path_type_name(hp.path_type), why);
      }
    }
  }
  gateway_near_misses(table, host, path, facts, m, misses, miss_text);
  j["nearMisses"] = misses;
  if (!miss_text.empty()) text += "near misses:\n" + miss_text;
  e.json = j;
  e.text = text;
  return e;
}

}  // namespace ingressd
