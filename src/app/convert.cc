// `ingressd convert PATH`: Ingress objects (with the ingress-nginx
// annotations ingressd honours) as equivalent Gateway API objects, as
// ingress2gateway does: a GatewayClass, one Gateway per namespace (an HTTP
// listener, and an HTTPS listener per spec.tls host), and HTTPRoutes per
// Ingress and host. The annotations go through the same parser as serve's
// (routing/annotations.h), so what is converted is what ingressd does; every
// annotation that cannot be expressed is said, per Ingress, and a protective
// one (auth, source ranges, limits) makes the exit code 1: the converted
// route would serve without that protection.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "app/commands.h"
#include "app/config_state.h"
#include "routing/annotations.h"
#include "routing/cors.h"

namespace ingressd {
namespace {

using nlohmann::json;

void emit(YAML::Emitter& e, const json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      e << YAML::Key << it.key() << YAML::Value;
      emit(e, it.value());
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& v : j) emit(e, v);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    // Plain when YAML 1.1 cannot read it as anything but this string; else quoted.
    static const std::set<std::string> words = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
                                                "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off",
                                                "Off", "OFF", "null", "Null", "NULL", "~"};
    const std::string s = j.get<std::string>();
    bool plain = !s.empty() && !words.count(s) && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '/');
    for (char ch : s) plain &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_' || ch == '/';
    if (plain) e << s;
    else e << YAML::DoubleQuoted << s;
  } else if (j.is_boolean()) {
    e << j.get<bool>();
  } else if (j.is_number_integer()) {
    e << j.get<int64_t>();
  } else {
    e << YAML::Null;
  }
}

// A DNS label from a host name ("*.foo.com" → "wildcard-foo-com").
std::string label_of(std::string_view host) {
  std::string out;
  if (host.starts_with("*.")) {
    out = "wildcard-";
    host.remove_prefix(2);
  }
  for (char c : host) out += c == '.' ? '-' : c;
  return out.empty() ? "any" : out;
}

// The annotations each Gateway API construct expresses; the rest are said not to be.
const std::map<std::string, std::string>& expressed() {
  static const std::map<std::string, std::string> m = {
      {"use-regex", "RegularExpression path matches"},
      {"rewrite-target", "URLRewrite"},
      {"app-root", "RequestRedirect on Exact /"},
      {"permanent-redirect", "RequestRedirect"},
      {"permanent-redirect-code", "RequestRedirect statusCode"},
      {"temporal-redirect", "RequestRedirect"},
      {"temporal-redirect-code", "RequestRedirect statusCode"},
      {"upstream-vhost", "URLRewrite hostname"},
      {"x-forwarded-prefix", "RequestHeaderModifier"},
      {"request-headers", "RequestHeaderModifier"},
      {"response-headers", "ResponseHeaderModifier"},
      {"enable-cors", "CORS"},
      {"cors-allow-origin", "CORS"},
      {"cors-allow-methods", "CORS"},
      {"cors-allow-headers", "CORS"},
      {"cors-expose-headers", "CORS"},
      {"cors-allow-credentials", "CORS"},
      {"cors-max-age", "CORS"},
      {"mirror-target", "RequestMirror"},
      {"proxy-read-timeout", "timeouts.backendRequest"},
      {"ssl-redirect", "a RequestRedirect route on the HTTP listener"},
      {"force-ssl-redirect", "a RequestRedirect route on the HTTP listener"},
      {"canary", "a route of its own"},
      {"canary-by-header", "a header match"},
      {"canary-by-header-value", "a header match"},
  };
  return m;
}

bool protective(std::string_view name) {
  return name.starts_with("auth-") || name.ends_with("-source-range") || name.starts_with("limit-") ||
         name == "satisfy" || name.find("modsecurity") != std::string_view::npos || name.starts_with("enable-owasp");
}

json path_modifier_full(const std::string& path) { return {{"type", "ReplaceFullPath"}, {"replaceFullPath", path}}; }

struct Converter {
  const Snapshot& snap;
  const ConvertOptions& o;
  std::vector<json> objects;
  std::map<std::string, json> gateways;  // namespace → Gateway
  json notes = json::array();
  bool unprotected = false;

  json& gateway(const std::string& ns) {
    auto it = gateways.find(ns);
    if (it != gateways.end()) return it->second;
    json g = {{"apiVersion", "gateway.networking.k8s.io/v1"},
              {"kind", "Gateway"},
              {"metadata", {{"name", o.gateway_name}, {"namespace", ns}}},
              {"spec",
               {{"gatewayClassName", o.gateway_class},
                {"listeners", json::array({{{"name", "http"}, {"port", 80}, {"protocol", "HTTP"}}})}}}};
    return gateways[ns] = g;
  }

  // The listener name of an HTTPS listener for `host` with `secret` (added when new).
  std::string https_listener(const std::string& ns, const std::string& host, const std::string& secret) {
    json& ls = gateway(ns)["spec"]["listeners"];
    const std::string name = "https-" + label_of(host);
    for (const auto& l : ls)
      if (l["name"] == name) return name;
    json l = {{"name", name}, {"port", 443}, {"protocol", "HTTPS"}};
    if (!host.empty()) l["hostname"] = host;
    json tls = {{"mode", "Terminate"}};
    if (!secret.empty()) tls["certificateRefs"] = json::array({{{"name", secret}}});
    l["tls"] = tls;
    ls.push_back(l);
    return name;
  }

  void note(const std::string& ingress, const std::string& annotation, const std::string& what) {
    notes.push_back({{"ingress", ingress}, {"annotation", annotation}, {"note", what}});
  }

  // The Service port number a backend names (a port name looked up in the Service); 0 when unknown.
  int32_t port_number(const std::string& ns, const model::IngressServiceBackend& sb) {
    if (sb.port.number) return *sb.port.number;
    if (const auto* svc = snap.get<model::Service>(model::Kind::Service, ns, sb.name))
      for (const auto& p : svc->ports)
        if (p.name == sb.port.name) return p.port;
    return 0;
  }

  void ingress(const model::Ingress& ing) {
    const std::string ns = ing.meta.namespace_, id = ns + "/" + ing.meta.name;
    std::vector<routing::AnnotationIssue> issues;
    routing::IngressOptions opt = routing::parse_annotations(ing.meta.annotations, false, issues);
    for (const auto& is : issues)
      if (is.reason == "InvalidAnnotation") note(id, is.annotation, is.message);
    for (const auto& [k, v] : ing.meta.annotations) {
      std::string_view kv(k);
      const bool nginx = kv.starts_with(routing::kNginxPrefix), ours = kv.starts_with(routing::kOurPrefix);
      if (!nginx && !ours) continue;
      std::string name(kv.substr(nginx ? routing::kNginxPrefix.size() : routing::kOurPrefix.size()));
      if (expressed().count(name)) continue;
      if (protective(name)) {
        unprotected = true;
        note(id, k, "NOT EXPRESSIBLE in the Gateway API standard channel, and it protects the route: the converted "
                    "HTTPRoute would serve without it. Keep the Ingress, or add the protection another way first");
      } else {
        note(id, k, "not expressible in the Gateway API standard channel; the converted HTTPRoute does without it");
      }
    }
    if (opt.canary && opt.canary_weight > 0)
      note(id, "canary-weight", "a weight split belongs in the main route's backendRefs; merge it by hand");
    if (opt.canary && !opt.canary_cookie.empty())
      note(id, "canary-by-cookie", "cookie matches are not in the Gateway API; not converted");
    const bool canary_by_header = opt.canary && !opt.canary_header.empty();
    if (opt.canary && !canary_by_header) return;  // nothing a route of its own can say

    // TLS hosts: their routes attach to the HTTPS listener; plain HTTP gets a redirect (ingressd's default).
    std::map<std::string, std::string> tls_listener;  // host → listener
    for (const auto& t : ing.tls) {
      std::vector<std::string> hosts = t.hosts;
      if (hosts.empty())
        for (const auto& r : ing.rules) hosts.push_back(r.host);
      for (const auto& h : hosts) tls_listener.emplace(h, https_listener(ns, h, t.secret_name));
    }
    std::map<std::string, std::vector<const model::HTTPIngressPath*>> by_host;
    for (const auto& r : ing.rules)
      for (const auto& p : r.paths) by_host[r.host].push_back(&p);
    if (ing.default_backend && by_host.find("") == by_host.end()) by_host[""];
    for (const auto& [host, paths] : by_host) {
      json rules = json::array();
      for (const auto* p : paths) rules.push_back(rule(ns, id, opt, p->path.empty() ? "/" : p->path, p->path_type, p->backend));
      if (host.empty() && ing.default_backend) {
        rules.push_back(rule(ns, id, opt, "/", model::PathType::Prefix, *ing.default_backend));
      }
      if (!opt.app_root.empty()) {
        json r = {{"matches", json::array({{{"path", {{"type", "Exact"}, {"value", "/"}}}}})},
                  {"filters", json::array({{{"type", "RequestRedirect"},
                                            {"requestRedirect", {{"path", path_modifier_full(opt.app_root)},
                                                                 {"statusCode", 302}}}}})}};
        rules.insert(rules.begin(), r);
      }
      auto tl = tls_listener.find(host);
      const bool to_https = (tl != tls_listener.end() && opt.ssl_redirect != routing::SslRedirect::Off) ||
                            opt.ssl_redirect == routing::SslRedirect::Force;
      json parent = {{"name", o.gateway_name}};
      if (to_https && tl != tls_listener.end()) parent["sectionName"] = tl->second;
      else if (tl == tls_listener.end() && !ing.tls.empty()) parent["sectionName"] = "http";
      route(ns, ing.meta.name + (host.empty() ? "" : "-" + label_of(host)) + (opt.canary ? "-canary" : ""), host,
            parent, rules);
      if (to_https) {
        json redirect = {{"filters", json::array({{{"type", "RequestRedirect"},
                                                   {"requestRedirect", {{"scheme", "https"}, {"statusCode", 308}}}}})}};
        route(ns, ing.meta.name + "-" + label_of(host) + "-to-https", host, {{"name", o.gateway_name}, {"sectionName", "http"}},
              json::array({redirect}));
      }
    }
  }

  void route(const std::string& ns, const std::string& name, const std::string& host, const json& parent, const json& rules) {
    json spec = {{"parentRefs", json::array({parent})}, {"rules", rules}};
    if (!host.empty()) spec["hostnames"] = json::array({host});
    objects.push_back({{"apiVersion", "gateway.networking.k8s.io/v1"},
                       {"kind", "HTTPRoute"},
                       {"metadata", {{"name", name}, {"namespace", ns}}},
                       {"spec", spec}});
    gateway(ns);
  }

  json rule(const std::string& ns, const std::string& id, const routing::IngressOptions& opt, const std::string& path,
            model::PathType type, const model::IngressBackend& backend) {
    json match;
    json filters = json::array();
    // The idiom `/foo(/|$)(.*)` with target `/$2` is a prefix rewrite; other regexes stay regexes.
    const std::string idiom = "(/|$)(.*)";
    bool prefix_rewrite = false;
    if (opt.regex && type != model::PathType::Exact) {
      if (opt.rewrite_target && *opt.rewrite_target == "/\\2" && path.ends_with(idiom) &&
          path.substr(0, path.size() - idiom.size()).find_first_of("^$*+?()[]{}|\\.") == std::string::npos) {
        match["path"] = {{"type", "PathPrefix"}, {"value", path.substr(0, path.size() - idiom.size())}};
        prefix_rewrite = true;
      } else {
        match["path"] = {{"type", "RegularExpression"}, {"value", "(?i)" + path + ".*"}};
        if (opt.rewrite_target)
          note(id, std::string(routing::kNginxPrefix) + "rewrite-target",
               fmt::format("path {}: a rewrite with capture groups cannot be expressed (URLRewrite replaces a prefix or "
                           "the whole path); not converted",
                           path));
      }
    } else {
      match["path"] = {{"type", type == model::PathType::Exact ? "Exact" : "PathPrefix"}, {"value", path}};
      if (opt.rewrite_target && opt.rewrite_target->find('\\') == std::string::npos)
        filters.push_back({{"type", "URLRewrite"}, {"urlRewrite", {{"path", path_modifier_full(*opt.rewrite_target)}}}});
    }
    if (opt.canary && !opt.canary_header.empty())
      match["headers"] = json::array(
          {{{"name", opt.canary_header}, {"value", opt.canary_header_value.empty() ? "always" : opt.canary_header_value}}});
    json r = {{"matches", json::array({match})}};
    if (opt.redirect) {
      const routing::Redirect& rd = *opt.redirect;
      json red = {{"statusCode", rd.status == 301 || rd.status == 302 || rd.status == 303 || rd.status == 307 || rd.status == 308 ? rd.status : 302}};
      std::string_view url = rd.url;
      const size_t scheme_end = url.find("://");
      if (scheme_end != std::string_view::npos) {
        red["scheme"] = std::string(url.substr(0, scheme_end));
        std::string_view rest = url.substr(scheme_end + 3);
        std::string_view authority = rest.substr(0, rest.find('/'));
        std::string_view p = rest.substr(authority.size());
        const size_t colon = authority.rfind(':');
        if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
          red["hostname"] = std::string(authority.substr(0, colon));
          red["port"] = std::stoi(std::string(authority.substr(colon + 1)));
        } else {
          red["hostname"] = std::string(authority);
        }
        if (!p.empty()) red["path"] = path_modifier_full(std::string(p));
      }
      r["filters"] = json::array({{{"type", "RequestRedirect"}, {"requestRedirect", red}}});
      return r;
    }
    json rw;
    if (!opt.upstream_vhost.empty()) rw["hostname"] = opt.upstream_vhost;
    if (prefix_rewrite) rw["path"] = {{"type", "ReplacePrefixMatch"}, {"replacePrefixMatch", "/"}};
    if (!rw.empty()) filters.push_back({{"type", "URLRewrite"}, {"urlRewrite", rw}});
    auto headers = [&](const routing::HeaderEdits& e) {
      json m;
      for (const auto& [n, v] : e.set) m["set"].push_back({{"name", n}, {"value", v}});
      for (const auto& [n, v] : e.add) m["add"].push_back({{"name", n}, {"value", v}});
      for (const auto& n : e.remove) m["remove"].push_back(n);
      return m;
    };
    if (!opt.request_headers.empty())
      filters.push_back({{"type", "RequestHeaderModifier"}, {"requestHeaderModifier", headers(opt.request_headers)}});
    if (!opt.response_headers.empty())
      filters.push_back({{"type", "ResponseHeaderModifier"}, {"responseHeaderModifier", headers(opt.response_headers)}});
    if (opt.cors) {
      const auto& c = *opt.cors;
      json cj = {{"allowOrigins", c.origins}, {"allowCredentials", c.credentials}, {"maxAge", c.max_age}};
      auto list = [](const std::string& csv) {
        json a = json::array();
        size_t i = 0;
        while (i < csv.size()) {
          size_t j = csv.find(',', i);
          if (j == std::string::npos) j = csv.size();
          std::string item = csv.substr(i, j - i);
          item.erase(0, item.find_first_not_of(' '));
          item.erase(item.find_last_not_of(' ') + 1);
          if (!item.empty()) a.push_back(item);
          i = j + 1;
        }
        return a;
      };
      cj["allowMethods"] = list(c.methods);
      cj["allowHeaders"] = list(c.headers);
      if (!c.expose.empty()) cj["exposeHeaders"] = list(c.expose);
      filters.push_back({{"type", "CORS"}, {"cors", cj}});
    }
    if (!opt.mirror_service.empty())
      filters.push_back({{"type", "RequestMirror"},
                         {"requestMirror", {{"backendRef", {{"name", opt.mirror_service}, {"port", opt.mirror_port}}}}}});
    if (!filters.empty()) r["filters"] = filters;
    if (opt.read_timeout_ms > 0) r["timeouts"] = {{"backendRequest", fmt::format("{}ms", opt.read_timeout_ms)}};
    if (backend.service) {
      const int32_t port = port_number(ns, *backend.service);
      if (port > 0) r["backendRefs"] = json::array({{{"name", backend.service->name}, {"port", port}}});
      else note(id, "", fmt::format("Service {}/{} port \"{}\" not found: a backendRef needs the port number; the rule "
                                    "has no backend (500)", ns, backend.service->name, backend.service->port.name));
    } else if (backend.resource) {
      note(id, "", fmt::format("resource backend {} {} is not converted", backend.resource->kind, backend.resource->name));
    }
    return r;
  }
};

}  // namespace

int run_convert(const ConvertOptions& o) {
  ObjectStore store;
  LoadOutcome out = load_manifests_into(o.manifests, store);
  for (const auto& d : out.diagnostics)
    if (d.severity == Severity::Error) std::fprintf(stderr, "%s\n", d.str().c_str());
  const auto snap = store.snapshot();
  Converter c{*snap, o};
  for (const auto& [key, so] : snap->objects)
    if (key.kind == model::Kind::Ingress) c.ingress(std::get<model::Ingress>(so.object));
  std::vector<json> all;
  all.push_back({{"apiVersion", "gateway.networking.k8s.io/v1"},
                 {"kind", "GatewayClass"},
                 {"metadata", {{"name", o.gateway_class}}},
                 {"spec", {{"controllerName", o.controller_name}}}});
  for (auto& [_, g] : c.gateways) all.push_back(g);
  for (auto& r : c.objects) all.push_back(r);
  if (o.output == "json") {
    json j = {{"objects", all}, {"notes", c.notes}, {"unprotected", c.unprotected}};
    std::puts(j.dump(2).c_str());
  } else {
    std::string head;
    for (const auto& n : c.notes)
      head += fmt::format("# Ingress {}{}: {}\n", n["ingress"].get<std::string>(),
                          n["annotation"].get<std::string>().empty() ? "" : " " + n["annotation"].get<std::string>(),
                          n["note"].get<std::string>());
    std::fputs(head.c_str(), stdout);
    for (const auto& obj : all) {
      YAML::Emitter e;
      emit(e, obj);
      std::printf("---\n%s\n", e.c_str());
    }
  }
  return c.unprotected ? 1 : 0;
}

}  // namespace ingressd
