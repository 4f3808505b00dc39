#include "routing/dump.h"

#include <fmt/format.h>

namespace ingressd::routing {

namespace {
std::string endpoints_text(const Backend* b) {
  if (!b) return "[]";
  std::vector<std::string> eps;
  for (auto& e : b->endpoints) eps.push_back(e.text);
  return "[" + fmt::format("{}", fmt::join(eps, " ")) + "]";
}
nlohmann::json backend_json(const Backend* b) {
  nlohmann::json j;
  if (!b) return j;
  j["namespace"] = b->namespace_;
  j["service"] = b->service;
  j["port"] = b->port;
  nlohmann::json eps = nlohmann::json::array();
  for (auto& e : b->endpoints) eps.push_back(e.text);
  j["endpoints"] = eps;
  if (!b->unavailable.empty()) j["unavailable"] = b->unavailable;
  return j;
}

const char* modifier_name(PathModifier::Kind k) {
  switch (k) {
    case PathModifier::Kind::None: return "";
    case PathModifier::Kind::ReplaceFullPath: return "ReplaceFullPath";
    case PathModifier::Kind::ReplacePrefixMatch: return "ReplacePrefixMatch";
    case PathModifier::Kind::RegexReplace: return "RegexReplace";
  }
  return "";
}

std::string backend_str(const Backend* b);

// What an action does beyond forwarding to its backend ("" for a plain one).
std::string action_text(const RouteAction* a) {
  if (!a || a->plain_forward()) return "";
  std::vector<std::string> parts;
  if (!a->refuse.empty()) parts.push_back("503: " + a->refuse);
  if (a->ip_access) parts.push_back(fmt::format("source ranges: {} allowed, {} denied", a->ip_access->allow.size(),
                                                a->ip_access->deny.size()));
  if (a->ssl_redirect == SslRedirect::Off) parts.push_back("no redirect to https");
  if (a->ssl_redirect == SslRedirect::Force) parts.push_back("forced redirect to https");
  if (a->redirects)
    parts.push_back(fmt::format("redirect {} {}", a->redirect.status,
                                !a->redirect.url.empty() ? a->redirect.url : a->redirect.path.value));
  if (a->rewrite.path.active())
    parts.push_back(fmt::format("rewrite path ({}) to {}", modifier_name(a->rewrite.path.kind), a->rewrite.path.value));
  if (!a->rewrite.host.empty()) parts.push_back("upstream Host " + a->rewrite.host);
  for (const auto& [n, v] : a->request_headers.set) parts.push_back(fmt::format("request header {}: {}", n, v));
  for (const auto& [n, v] : a->response_headers.set) parts.push_back(fmt::format("response header {}: {}", n, v));
  if (a->max_body_bytes >= 0) parts.push_back(fmt::format("body limit {}", a->max_body_bytes));
  if (a->basic_auth) parts.push_back("basic auth");
  for (const auto& m : a->mirrors)
    parts.push_back(m.numerator == m.denominator ? fmt::format("mirror to {}", backend_str(m.backend))
                                                 : fmt::format("mirror {}/{} to {}", m.numerator, m.denominator,
                                                               backend_str(m.backend)));
  if (parts.empty()) return "";
  return " {" + fmt::format("{}", fmt::join(parts, "; ")) + "}";
}

nlohmann::json action_json(const RouteAction* a) {
  nlohmann::json j = nlohmann::json::object();
  if (!a) return j;
  if (!a->refuse.empty()) j["refuse"] = a->refuse;
  if (a->redirects) {
    j["redirect"] = {{"status", a->redirect.status}};
    if (!a->redirect.url.empty()) j["redirect"]["url"] = a->redirect.url;
    if (a->redirect.path.active()) j["redirect"]["path"] = a->redirect.path.value;
  }
  if (a->rewrite.path.active())
    j["rewrite"]["path"] = {{"type", modifier_name(a->rewrite.path.kind)}, {"value", a->rewrite.path.value}};
  if (!a->rewrite.host.empty()) j["rewrite"]["host"] = a->rewrite.host;
  for (const auto& [n, v] : a->request_headers.set) j["requestHeaders"][n] = v;
  for (const auto& [n, v] : a->response_headers.set) j["responseHeaders"][n] = v;
  if (a->max_body_bytes >= 0) j["maxBodyBytes"] = a->max_body_bytes;
  if (a->ssl_redirect != SslRedirect::Default) j["sslRedirect"] = a->ssl_redirect == SslRedirect::Off ? "off" : "force";
  if (a->ip_access) j["sourceRanges"] = {{"allow", a->ip_access->allow.size()}, {"deny", a->ip_access->deny.size()}};
  for (const auto& m : a->mirrors)
    j["mirrors"].push_back({{"backend", backend_str(m.backend)}, {"numerator", m.numerator}, {"denominator", m.denominator}});
  return j;
}

std::string backend_str(const Backend* b) { return b ? b->str() : "(no backend)"; }

const RouteAction* first_action(const Route& r) {
  const RouteCandidate* c = r.default_candidate();
  return c ? c->action : nullptr;
}

// The candidates beyond the default one: conditions and where they send the request.
std::string candidates_text(const Route& r) {
  std::string out;
  const RouteCandidate* def = r.default_candidate();
  for (const auto& c : r.candidates) {
    if (&c == def || !c.action) continue;
    std::vector<std::string> conds;
    if (!c.match.method.empty()) conds.push_back("method " + c.match.method);
    for (const auto& h : c.match.headers) conds.push_back(fmt::format("header {}={}", h.name, h.value));
    for (const auto& q : c.match.query) conds.push_back(fmt::format("query {}={}", q.name, q.value));
    for (const auto& k : c.match.cookies) conds.push_back(fmt::format("cookie {}={}", k.name, k.value));
    out += fmt::format(" [if {} -> {}]", fmt::join(conds, " and "), backend_str(c.action->primary()));
  }
  if (def && def->action && def->action->backends.size() > 1) {
    std::vector<std::string> parts;
    for (const auto& wb : def->action->backends) parts.push_back(fmt::format("{} {}", backend_str(wb.backend), wb.weight));
    out += fmt::format(" [split {}]", fmt::join(parts, ", "));
  }
  return out;
}

}  // namespace

std::string dump_text(const RouteTable& t) {
  std::string out;
  for (const Route* r : t.sorted_routes()) {
    out += fmt::format("{} {} {}{} -> {} {} (ingress {} rule {} path {}){}\n", r->host.empty() ? "*" : r->host, r->path,
                       model::path_type_name(r->type), r->regex ? " regex" : "", backend_str(r->backend()),
                       endpoints_text(r->backend()), r->ingress, r->rule, r->path_index,
                       action_text(first_action(*r)) + candidates_text(*r));
  }
  for (const VHost* v : t.sorted_vhosts()) {
    if (v->default_backend())
      out += fmt::format("{} (host default) -> {} {} (ingress {})\n", v->host.empty() ? "*" : v->host,
                         v->default_backend()->str(), endpoints_text(v->default_backend()), v->default_source);
  }
  if (t.global_default())
    out += fmt::format("(default backend) -> {} {} (ingress {})\n", t.global_default()->str(),
                       endpoints_text(t.global_default()), t.global_default_source());
  return out;
}

nlohmann::json dump_json(const RouteTable& t) {
  nlohmann::json routes = nlohmann::json::array();
  for (const Route* r : t.sorted_routes()) {
    routes.push_back({{"host", r->host},
                      {"path", r->path},
                      {"pathType", model::path_type_name(r->type)},
                      {"ingress", r->ingress},
                      {"rule", r->rule},
                      {"pathIndex", r->path_index},
                      {"backend", backend_json(r->backend())}});
    if (r->regex) routes.back()["regex"] = true;
    if (const RouteAction* a = first_action(*r); a && !a->plain_forward()) routes.back()["action"] = action_json(a);
  }
  nlohmann::json j;
  j["routes"] = routes;
  if (t.global_default())
    j["defaultBackend"] = {{"ingress", t.global_default_source()}, {"backend", backend_json(t.global_default())}};
  return j;
}

nlohmann::json diagnostics_json(const Diagnostics& d) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : d) {
    a.push_back({{"severity", severity_name(x.severity)},
                 {"file", x.file},
                 {"line", x.line},
                 {"object", x.object},
                 {"reason", x.reason},
                 {"message", x.message}});
  }
  return a;
}

}  // namespace ingressd::routing
