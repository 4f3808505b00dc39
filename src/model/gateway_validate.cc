#include "model/gateway_validate.h"

#include <fmt/format.h>
#include <re2/re2.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/sockaddr.h"
#include "core/strings.h"

namespace ingressd::model {
namespace {

// ---- the CRDs' patterns, verbatim (the messages quote them) ----

const char* kGroupPattern = R"re(^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)re";
const char* kKindPattern = R"re(^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$)re";
const char* kNamespacePattern = R"re(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)re";
// SectionName and PreciseHostname share it.
const char* kSectionNamePattern = R"re(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)re";
const char* kHostnamePattern = R"re(^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)re";
// RFC 7230 token (HTTPHeaderName, also used for query parameter names).
const char* kHeaderNamePattern = R"re(^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$)re";
const char* kDurationPattern = R"re(^([0-9]{1,5}(h|m|s|ms)){1,4}$)re";
const char* kProtocolPattern =
    R"re(^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$)re";
const char* kControllerNamePattern =
    R"re(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$)re";
const char* kAddressTypePattern =
    R"re(^Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$)re";
const char* kCORSOriginPattern =
    R"re((^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$))re";
const char* kLabelValuePattern = R"re(^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$)re";
// Used by CEL rules (matches()), not OpenAPI patterns.
const char* kLabelKeyRegex =
    R"re(^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$)re";
const char* kPathCharsRegex = R"re(^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)re";

// OpenAPI `pattern` and CEL matches() are searches (unanchored unless the
// pattern anchors itself), as RE2::PartialMatch is. One compiled RE2 per
// pattern text, built on first use; RE2 matching is thread-safe.
bool search(const char* pattern, std::string_view s) {
  struct Cache {
    std::mutex mu;
    std::map<const char*, std::unique_ptr<RE2>> res;
  };
  static Cache cache;
  const RE2* re;
  {
    std::lock_guard<std::mutex> g(cache.mu);
    auto& slot = cache.res[pattern];
    if (!slot) slot = std::make_unique<RE2>(pattern);
    re = slot.get();
  }
  return RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *re);
}

// Go's %q for the values in messages: quotes and backslashes escaped,
// control bytes as \n, \t, \xNN.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
        else out += c;
    }
  }
  return out + "\"";
}

std::string at(const std::string& path, const char* key) { return path + "." + key; }
std::string at(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct StringRules {
  int min_len = 0;
  int max_len = -1;
  const char* pattern = nullptr;
};

// Error wording follows kubeOpenAPIResultToFieldErrors (apiextensions-apiserver
// pkg/apiserver/validation) over kube-openapi's messages, and the CEL
// validator's field.Invalid(path, <schema type>, rule message).
struct CrdErrors {
  std::vector<FieldError>& errs;

  void push(std::string path, std::string msg) { errs.push_back({std::move(path), std::move(msg)}); }

  void string(const std::string& path, std::string_view v, StringRules r) {
    if (r.max_len >= 0 && static_cast<int>(v.size()) > r.max_len)
      push(path, fmt::format("Too long: may not be more than {} bytes", r.max_len));
    if (static_cast<int>(v.size()) < r.min_len)
      push(path,
           fmt::format("Invalid value: {}: {} in body should be at least {} chars long", quote(v), path, r.min_len));
    if (r.pattern && !search(r.pattern, v))
      push(path, fmt::format("Invalid value: {}: {} in body should match '{}'", quote(v), path, r.pattern));
  }
  void opt_string(const std::string& path, const std::optional<std::string>& v, StringRules r) {
    if (v) string(path, *v, r);
  }
  void enum_(const std::string& path, const std::string& v, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed)
      if (v == a) return;
    std::vector<std::string> q;
    for (const char* a : allowed) q.push_back(fmt::format("\"{}\"", a));
    push(path, fmt::format("Unsupported value: {}: supported values: {}", quote(v), fmt::join(q, ", ")));
  }
  void range(const std::string& path, int64_t v, std::optional<int64_t> min, std::optional<int64_t> max) {
    if (min && v < *min)
      push(path, fmt::format("Invalid value: {}: {} in body should be greater than or equal to {}", v, path, *min));
    if (max && v > *max)
      push(path, fmt::format("Invalid value: {}: {} in body should be less than or equal to {}", v, path, *max));
  }
  void port(const std::string& path, int64_t v) { range(path, v, 1, 65535); }
  void items(const std::string& path, size_t n, size_t min, size_t max) {
    if (n > max) push(path, fmt::format("Too many: {}: must have at most {} items", n, max));
    if (n < min) push(path, fmt::format("Invalid value: {}: {} in body should have at least {} items", n, path, min));
  }
  void properties(const std::string& path, size_t n, size_t max) {
    if (n > max) push(path, fmt::format("Too many: {}: must have at most {} items", n, max));
  }
  // x-kubernetes-list-type: map (one key) and set: later duplicates.
  template <typename T, typename Key>
  void list_map(const std::string& path, const std::vector<T>& v, const char* key_name, Key key) {
    for (size_t i = 0; i < v.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (key(v[i]) == key(v[j])) {
          push(at(path, i),
               fmt::format("Duplicate value: map[string]interface {{}}{{\"{}\":{}}}", key_name, render_key(key(v[i]))));
          break;
        }
  }
  void list_set(const std::string& path, const std::vector<std::string>& v) {
    for (size_t i = 0; i < v.size(); ++i)
      if (std::find(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v[i]) !=
          v.begin() + static_cast<std::ptrdiff_t>(i))
        push(at(path, i), fmt::format("Duplicate value: {}", quote(v[i])));
  }
  static std::string render_key(const std::string& s) { return quote(s); }
  static std::string render_key(int64_t n) { return std::to_string(n); }

  // A failed x-kubernetes-validations rule on an object or a list.
  void rule(const std::string& path, const char* schema_type, std::string_view message) {
    push(path, fmt::format("Invalid value: \"{}\": {}", schema_type, message));
  }

  // ---- shared Gateway API types ----

  void group(const std::string& path, const std::string& v) { string(path, v, {0, 253, kGroupPattern}); }
  void kind(const std::string& path, const std::string& v) { string(path, v, {1, 63, kKindPattern}); }
  void object_name(const std::string& path, const std::string& v) { string(path, v, {1, 253, nullptr}); }
  void namespace_(const std::string& path, const std::optional<std::string>& v) {
    opt_string(path, v, {1, 63, kNamespacePattern});
  }
  void section_name(const std::string& path, const std::optional<std::string>& v) {
    opt_string(path, v, {1, 253, kSectionNamePattern});
  }
  void hostname(const std::string& path, const std::string& v) { string(path, v, {1, 253, kHostnamePattern}); }
  void precise_hostname(const std::string& path, const std::optional<std::string>& v) {
    opt_string(path, v, {1, 253, kSectionNamePattern});
  }
  void header_name(const std::string& path, const std::string& v) { string(path, v, {1, 256, kHeaderNamePattern}); }

  void parent_ref(const std::string& path, const ParentReference& p) {
    group(at(path, "group"), p.group);
    kind(at(path, "kind"), p.kind);
    object_name(at(path, "name"), p.name);
    namespace_(at(path, "namespace"), p.namespace_);
    section_name(at(path, "sectionName"), p.section_name);
    if (p.port) port(at(path, "port"), *p.port);
  }
  void parent_refs(const std::vector<ParentReference>& refs) {
    items("spec.parentRefs", refs.size(), 0, 32);
    for (size_t i = 0; i < refs.size(); ++i) parent_ref(at("spec.parentRefs", i), refs[i]);
  }
  void hostnames(const std::vector<std::string>& hs) {
    items("spec.hostnames", hs.size(), 0, 16);
    for (size_t i = 0; i < hs.size(); ++i) hostname(at("spec.hostnames", i), hs[i]);
  }
  void backend_object_ref(const std::string& path, const BackendObjectReference& b) {
    group(at(path, "group"), b.group);
    kind(at(path, "kind"), b.kind);
    object_name(at(path, "name"), b.name);
    namespace_(at(path, "namespace"), b.namespace_);
    if (b.port) port(at(path, "port"), *b.port);
  }
  void secret_ref(const std::string& path, const SecretObjectReference& r) {
    group(at(path, "group"), r.group);
    kind(at(path, "kind"), r.kind);
    object_name(at(path, "name"), r.name);
    namespace_(at(path, "namespace"), r.namespace_);
  }
};

// ---- CEL rules shared by the route kinds ----

bool ns_equivalent(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  bool ea = !a || a->empty(), eb = !b || b->empty();
  return (ea && eb) || (a && b && *a == *b);
}
bool section_empty(const std::optional<std::string>& s) { return !s || s->empty(); }
bool section_equivalent(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  return (section_empty(a) && section_empty(b)) || (a && b && *a == *b);
}

void parent_ref_rules(CrdErrors& e, const std::vector<ParentReference>& refs) {
  auto same_parent = [](const ParentReference& a, const ParentReference& b) {
    return a.group == b.group && a.kind == b.kind && a.name == b.name && ns_equivalent(a.namespace_, b.namespace_);
  };
  bool specified = true;
  for (auto& p1 : refs)
    for (auto& p2 : refs)
      if (same_parent(p1, p2) && section_empty(p1.section_name) != section_empty(p2.section_name)) specified = false;
  if (!specified)
    e.rule("spec.parentRefs", "array",
           "sectionName must be specified when parentRefs includes 2 or more references to the same parent");
  bool unique = true;
  for (auto& p1 : refs) {
    int n = 0;
    for (auto& p2 : refs) n += same_parent(p1, p2) && section_equivalent(p1.section_name, p2.section_name);
    if (n != 1) unique = false;
  }
  if (!unique)
    e.rule("spec.parentRefs", "array",
           "sectionName must be unique when parentRefs includes 2 or more references to the same parent");
}

// ---- GatewayClass ----

void gateway_class(CrdErrors& e, const GatewayClass& gc) {
  e.string("spec.controllerName", gc.controller_name, {1, 253, kControllerNamePattern});
  e.opt_string("spec.description", gc.description, {0, 64, nullptr});
  if (const auto& p = gc.parameters_ref) {
    e.group("spec.parametersRef.group", p->group);
    e.kind("spec.parametersRef.kind", p->kind);
    e.object_name("spec.parametersRef.name", p->name);
    e.namespace_("spec.parametersRef.namespace", p->namespace_);
  }
  // The CEL rule on controllerName (self == oldSelf) only concerns updates.
}

// ---- Gateway ----

void tls_config(CrdErrors& e, const std::string& path, const TLSConfig& c) {
  if (!c.validation) return;
  std::string vp = at(path, "validation");
  std::string rp = at(vp, "caCertificateRefs");
  e.items(rp, c.validation->ca_certificate_refs.size(), 1, 16);
  for (size_t i = 0; i < c.validation->ca_certificate_refs.size(); ++i) {
    const auto& r = c.validation->ca_certificate_refs[i];
    std::string p = at(rp, i);
    e.group(at(p, "group"), r.group);
    e.kind(at(p, "kind"), r.kind);
    e.object_name(at(p, "name"), r.name);
    e.namespace_(at(p, "namespace"), r.namespace_);
  }
  e.enum_(at(vp, "mode"), c.validation->mode, {"AllowValidOnly", "AllowInsecureFallback"});
}

void string_map_values(CrdErrors& e, const std::string& path, const std::map<std::string, std::string>& m,
                       StringRules r) {
  for (auto& [k, v] : m) e.string(path + "." + k, v, r);
}

void gateway_schema(CrdErrors& e, const Gateway& g) {
  e.string("spec.gatewayClassName", g.gateway_class_name, {1, 253, nullptr});
  e.items("spec.listeners", g.listeners.size(), 1, 64);
  e.list_map("spec.listeners", g.listeners, "name", [](const Listener& l) { return l.name; });
  for (size_t i = 0; i < g.listeners.size(); ++i) {
    const Listener& l = g.listeners[i];
    std::string p = at("spec.listeners", i);
    e.string(at(p, "name"), l.name, {1, 253, kSectionNamePattern});
    if (l.hostname) e.hostname(at(p, "hostname"), *l.hostname);
    e.port(at(p, "port"), l.port);
    e.string(at(p, "protocol"), l.protocol, {1, 255, kProtocolPattern});
    if (l.tls) {
      std::string tp = at(p, "tls");
      e.enum_(at(tp, "mode"), l.tls->mode, {"Terminate", "Passthrough"});
      e.items(at(tp, "certificateRefs"), l.tls->certificate_refs.size(), 0, 64);
      for (size_t j = 0; j < l.tls->certificate_refs.size(); ++j)
        e.secret_ref(at(at(tp, "certificateRefs"), j), l.tls->certificate_refs[j]);
      e.properties(at(tp, "options"), l.tls->options.size(), 16);
      string_map_values(e, at(tp, "options"), l.tls->options, {0, 4096, nullptr});
    }
    std::string ap = at(p, "allowedRoutes");
    e.enum_(at(ap, "namespaces.from"), l.allowed_routes.namespaces.from, {"All", "Selector", "Same"});
    e.items(at(ap, "kinds"), l.allowed_routes.kinds.size(), 0, 8);
    for (size_t j = 0; j < l.allowed_routes.kinds.size(); ++j) {
      std::string kp = at(at(ap, "kinds"), j);
      e.group(at(kp, "group"), l.allowed_routes.kinds[j].group);
      e.kind(at(kp, "kind"), l.allowed_routes.kinds[j].kind);
    }
  }
  e.items("spec.addresses", g.addresses.size(), 0, 16);
  for (size_t i = 0; i < g.addresses.size(); ++i) {
    const auto& a = g.addresses[i];
    std::string p = at("spec.addresses", i);
    e.string(at(p, "type"), a.type, {1, 253, kAddressTypePattern});
    if (!a.value.empty()) e.string(at(p, "value"), a.value, {0, 253, nullptr});
    // oneOf: type IPAddress → value has format ipv4 or ipv6.
    if (a.type == "IPAddress" && !a.value.empty() && ip_family(a.value) == AF_UNSPEC)
      e.push(at(p, "value"), fmt::format("Invalid value: {}: {} in body must be of type ipv4: {}", quote(a.value),
                                         at(p, "value"), quote(a.value)));
  }
  if (const auto& inf = g.infrastructure) {
    e.properties("spec.infrastructure.labels", inf->labels.size(), 8);
    string_map_values(e, "spec.infrastructure.labels", inf->labels, {0, 63, kLabelValuePattern});
    e.properties("spec.infrastructure.annotations", inf->annotations.size(), 16);
    string_map_values(e, "spec.infrastructure.annotations", inf->annotations, {0, 4096, nullptr});
    if (const auto& pr = inf->parameters_ref) {
      e.group("spec.infrastructure.parametersRef.group", pr->group);
      e.kind("spec.infrastructure.parametersRef.kind", pr->kind);
      e.object_name("spec.infrastructure.parametersRef.name", pr->name);
    }
  }
  if (const auto& al = g.allowed_listeners)
    e.enum_("spec.allowedListeners.namespaces.from", al->namespaces.from, {"All", "Selector", "Same", "None"});
  if (const auto& tls = g.tls) {
    if (tls->backend && tls->backend->client_certificate_ref)
      e.secret_ref("spec.tls.backend.clientCertificateRef", *tls->backend->client_certificate_ref);
    if (const auto& f = tls->frontend) {
      tls_config(e, "spec.tls.frontend.default", f->default_);
      e.items("spec.tls.frontend.perPort", f->per_port.size(), 0, 64);
      e.list_map("spec.tls.frontend.perPort", f->per_port, "port",
                 [](const TLSPortConfig& c) { return static_cast<int64_t>(c.port); });
      for (size_t i = 0; i < f->per_port.size(); ++i) {
        std::string p = at("spec.tls.frontend.perPort", i);
        e.port(at(p, "port"), f->per_port[i].port);
        tls_config(e, at(p, "tls"), f->per_port[i].tls);
      }
    }
  }
}

void key_rules(CrdErrors& e, const std::string& path, const std::map<std::string, std::string>& m, const char* what) {
  bool keys_ok = true, prefix_ok = true;
  for (auto& [k, _] : m) {
    if (!search(kLabelKeyRegex, k)) keys_ok = false;
    if (k.substr(0, k.find('/')).size() >= 253) prefix_ok = false;
  }
  if (!keys_ok)
    e.rule(path, "object",
           fmt::format("{} keys must be in the form of an optional DNS subdomain prefix followed by a required name "
                       "segment of up to 63 characters.",
                       what));
  if (!prefix_ok)
    e.rule(path, "object",
           fmt::format("If specified, the {} key's prefix must be a DNS subdomain not longer than 253 characters in "
                       "total.",
                       to_lower(what)));
}

void gateway_rules(CrdErrors& e, const Gateway& g) {
  const auto& ls = g.listeners;
  for (size_t i = 0; i < ls.size(); ++i) {
    const auto& tls = ls[i].tls;
    if (tls && tls->mode == "Terminate" && tls->certificate_refs.empty() && tls->options.empty())
      e.rule(at(at("spec.listeners", i), "tls"), "object",
             "certificateRefs or options must be specified when mode is Terminate");
  }
  auto all = [&](auto pred) { return std::all_of(ls.begin(), ls.end(), pred); };
  auto in = [](const std::string& p, std::initializer_list<const char*> set) {
    for (const char* x : set)
      if (p == x) return true;
    return false;
  };
  if (!all([&](const Listener& l) { return in(l.protocol, {"HTTP", "TCP", "UDP"}) ? !l.tls : true; }))
    e.rule("spec.listeners", "array", "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']");
  if (!all([](const Listener& l) {
        return l.protocol == "HTTPS" && l.tls ? (l.tls->mode.empty() || l.tls->mode == "Terminate") : true;
      }))
    e.rule("spec.listeners", "array", "tls mode must be Terminate for protocol HTTPS");
  if (!all([](const Listener& l) { return l.protocol == "TLS" ? l.tls && !l.tls->mode.empty() : true; }))
    e.rule("spec.listeners", "array", "tls mode must be set for protocol TLS");
  if (!all([&](const Listener& l) {
        return in(l.protocol, {"TCP", "UDP"}) ? (!l.hostname || l.hostname->empty()) : true;
      }))
    e.rule("spec.listeners", "array", "hostname must not be specified for protocols ['TCP', 'UDP']");
  auto exists_one = [&](auto pred) { return std::count_if(ls.begin(), ls.end(), pred) == 1; };
  if (!all([&](const Listener& l1) { return exists_one([&](const Listener& l2) { return l1.name == l2.name; }); }))
    e.rule("spec.listeners", "array", "Listener name must be unique within the Gateway");
  if (!all([&](const Listener& l1) {
        return exists_one([&](const Listener& l2) {
          return l1.port == l2.port && l1.protocol == l2.protocol &&
                 (l1.hostname && l2.hostname ? *l1.hostname == *l2.hostname : !l1.hostname && !l2.hostname);
        });
      }))
    e.rule("spec.listeners", "array", "Combination of port, protocol and hostname must be unique for each listener");

  const auto& as = g.addresses;
  for (size_t i = 0; i < as.size(); ++i)
    if (as[i].type == "Hostname" && !as[i].value.empty() && !search(kHostnamePattern, as[i].value))
      e.rule(at("spec.addresses", i), "object",
             "Hostname value must be empty or contain only valid characters (matching "
             "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)");
  for (const char* type : {"IPAddress", "Hostname"}) {
    bool unique = true;
    for (auto& a1 : as) {
      if (a1.type != type || a1.value.empty()) continue;
      if (std::count_if(as.begin(), as.end(), [&](const GatewaySpecAddress& a2) {
            return a2.type == a1.type && !a2.value.empty() && a2.value == a1.value;
          }) != 1)
        unique = false;
    }
    if (!unique) e.rule("spec.addresses", "array", fmt::format("{} values must be unique", type));
  }
  if (const auto& inf = g.infrastructure) {
    key_rules(e, "spec.infrastructure.labels", inf->labels, "Label");
    key_rules(e, "spec.infrastructure.annotations", inf->annotations, "Annotation");
  }
  if (g.tls && g.tls->frontend) {
    const auto& pp = g.tls->frontend->per_port;
    for (auto& t1 : pp)
      if (std::count_if(pp.begin(), pp.end(), [&](const TLSPortConfig& t2) { return t1.port == t2.port; }) != 1) {
        e.rule("spec.tls.frontend.perPort", "array", "Port for TLS configuration must be unique within the Gateway");
        break;
      }
  }
}

// ---- HTTPRoute ----

void header_filter_schema(CrdErrors& e, const std::string& path, const HTTPHeaderFilter& f) {
  for (auto [key, list] : {std::pair{"set", &f.set}, std::pair{"add", &f.add}}) {
    std::string lp = at(path, key);
    e.items(lp, list->size(), 0, 16);
    e.list_map(lp, *list, "name", [](const HTTPHeader& h) { return h.name; });
    for (size_t i = 0; i < list->size(); ++i) {
      e.header_name(at(at(lp, i), "name"), (*list)[i].name);
      e.string(at(at(lp, i), "value"), (*list)[i].value, {1, 4096, nullptr});
    }
  }
  e.items(at(path, "remove"), f.remove.size(), 0, 16);
  e.list_set(at(path, "remove"), f.remove);
}

void path_modifier_schema(CrdErrors& e, const std::string& path, const std::optional<HTTPPathModifier>& m) {
  if (!m) return;
  e.enum_(at(path, "type"), m->type, {"ReplaceFullPath", "ReplacePrefixMatch"});
  e.opt_string(at(path, "replaceFullPath"), m->replace_full_path, {0, 1024, nullptr});
  e.opt_string(at(path, "replacePrefixMatch"), m->replace_prefix_match, {0, 1024, nullptr});
}

void string_list(CrdErrors& e, const std::string& path, const std::vector<std::string>& v, size_t max, StringRules r) {
  e.items(path, v.size(), 0, max);
  e.list_set(path, v);
  for (size_t i = 0; i < v.size(); ++i) e.string(at(path, i), v[i], r);
}

void filter_schema(CrdErrors& e, const std::string& path, const HTTPRouteFilter& f) {
  e.enum_(at(path, "type"), f.type,
          {"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite",
           "ExtensionRef", "CORS"});
  if (f.request_header_modifier) header_filter_schema(e, at(path, "requestHeaderModifier"), *f.request_header_modifier);
  if (f.response_header_modifier)
    header_filter_schema(e, at(path, "responseHeaderModifier"), *f.response_header_modifier);
  if (const auto& m = f.request_mirror) {
    std::string mp = at(path, "requestMirror");
    e.backend_object_ref(at(mp, "backendRef"), m->backend_ref);
    if (m->percent) e.range(at(mp, "percent"), *m->percent, 0, 100);
    if (m->fraction) {
      e.range(at(mp, "fraction.numerator"), m->fraction->numerator, 0, std::nullopt);
      e.range(at(mp, "fraction.denominator"), m->fraction->denominator, 1, std::nullopt);
    }
  }
  if (const auto& r = f.request_redirect) {
    std::string rp = at(path, "requestRedirect");
    if (r->scheme) e.enum_(at(rp, "scheme"), *r->scheme, {"http", "https"});
    e.precise_hostname(at(rp, "hostname"), r->hostname);
    path_modifier_schema(e, at(rp, "path"), r->path);
    if (r->port) e.port(at(rp, "port"), *r->port);
    static const int kCodes[] = {301, 302, 303, 307, 308};
    if (std::find(std::begin(kCodes), std::end(kCodes), r->status_code) == std::end(kCodes))
      e.push(at(rp, "statusCode"),
             fmt::format("Unsupported value: {}: supported values: {}", r->status_code, kRedirectStatusCodes));
  }
  if (const auto& u = f.url_rewrite) {
    std::string up = at(path, "urlRewrite");
    e.precise_hostname(at(up, "hostname"), u->hostname);
    path_modifier_schema(e, at(up, "path"), u->path);
  }
  if (const auto& c = f.cors) {
    std::string cp = at(path, "cors");
    string_list(e, at(cp, "allowOrigins"), c->allow_origins, 64, {1, 253, kCORSOriginPattern});
    std::string mp = at(cp, "allowMethods");
    e.items(mp, c->allow_methods.size(), 0, 9);
    e.list_set(mp, c->allow_methods);
    for (size_t i = 0; i < c->allow_methods.size(); ++i)
      e.enum_(at(mp, i), c->allow_methods[i],
              {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"});
    string_list(e, at(cp, "allowHeaders"), c->allow_headers, 64, {1, 256, kHeaderNamePattern});
    string_list(e, at(cp, "exposeHeaders"), c->expose_headers, 64, {1, 256, kHeaderNamePattern});
    e.range(at(cp, "maxAge"), c->max_age, 1, std::nullopt);
  }
  if (const auto& x = f.extension_ref) {
    std::string xp = at(path, "extensionRef");
    e.group(at(xp, "group"), x->group);
    e.kind(at(xp, "kind"), x->kind);
    e.object_name(at(xp, "name"), x->name);
  }
}

void filters_schema(CrdErrors& e, const std::string& path, const std::vector<HTTPRouteFilter>& fs) {
  e.items(path, fs.size(), 0, 16);
  for (size_t i = 0; i < fs.size(); ++i) filter_schema(e, at(path, i), fs[i]);
}

void duration_schema(CrdErrors& e, const std::string& path, const std::optional<Duration>& d) {
  if (d) e.string(path, d->text, {0, -1, kDurationPattern});
}

void http_route_schema(CrdErrors& e, const HTTPRoute& r) {
  e.parent_refs(r.parent_refs);
  e.hostnames(r.hostnames);
  e.items("spec.rules", r.rules.size(), 1, 16);
  for (size_t i = 0; i < r.rules.size(); ++i) {
    const HTTPRouteRule& rule = r.rules[i];
    std::string rp = at("spec.rules", i);
    e.section_name(at(rp, "name"), rule.name);
    e.items(at(rp, "matches"), rule.matches.size(), 0, 64);
    for (size_t j = 0; j < rule.matches.size(); ++j) {
      const HTTPRouteMatch& m = rule.matches[j];
      std::string mp = at(at(rp, "matches"), j);
      e.enum_(at(mp, "path.type"), m.path.type, {"Exact", "PathPrefix", "RegularExpression"});
      e.string(at(mp, "path.value"), m.path.value, {0, 1024, nullptr});
      auto value_matches = [&](const char* key, const auto& list, int max_value) {
        std::string lp = at(mp, key);
        e.items(lp, list.size(), 0, 16);
        e.list_map(lp, list, "name", [](const auto& h) { return h.name; });
        for (size_t k = 0; k < list.size(); ++k) {
          std::string hp = at(lp, k);
          e.header_name(at(hp, "name"), list[k].name);
          e.enum_(at(hp, "type"), list[k].type, {"Exact", "RegularExpression"});
          e.string(at(hp, "value"), list[k].value, {1, max_value, nullptr});
        }
      };
      value_matches("headers", m.headers, 4096);
      value_matches("queryParams", m.query_params, 1024);
      if (m.method)
        e.enum_(at(mp, "method"), *m.method,
                {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"});
    }
    filters_schema(e, at(rp, "filters"), rule.filters);
    e.items(at(rp, "backendRefs"), rule.backend_refs.size(), 0, 16);
    for (size_t j = 0; j < rule.backend_refs.size(); ++j) {
      const HTTPBackendRef& b = rule.backend_refs[j];
      std::string bp = at(at(rp, "backendRefs"), j);
      e.backend_object_ref(bp, b);
      e.range(at(bp, "weight"), b.weight, 0, 1000000);
      filters_schema(e, at(bp, "filters"), b.filters);
    }
    if (rule.timeouts) {
      duration_schema(e, at(rp, "timeouts.request"), rule.timeouts->request);
      duration_schema(e, at(rp, "timeouts.backendRequest"), rule.timeouts->backend_request);
    }
  }
}

void path_match_rules(CrdErrors& e, const std::string& path, const HTTPPathMatch& m) {
  bool exact_or_prefix = m.type == "Exact" || m.type == "PathPrefix";
  const std::string& v = m.value;
  auto fail = [&](std::string_view msg) { e.rule(path, "object", msg); };
  if (exact_or_prefix) {
    if (v.empty() || v[0] != '/')
      fail("value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']");
    for (const char* seq : {"//", "/./", "/../", "%2f", "%2F", "#"})
      if (v.find(seq) != std::string::npos)
        fail(fmt::format("must not contain '{}' when type one of ['Exact', 'PathPrefix']", seq));
    for (const char* suffix : {"/..", "/."})
      if (v.size() >= std::strlen(suffix) && v.compare(v.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
        fail(fmt::format("must not end with '{}' when type one of ['Exact', 'PathPrefix']", suffix));
  }
  if (!exact_or_prefix && m.type != "RegularExpression")
    fail("type must be one of ['Exact', 'PathPrefix', 'RegularExpression']");
  if (exact_or_prefix && !search(kPathCharsRegex, v))
    fail(fmt::format("must only contain valid characters (matching {}) for types ['Exact', 'PathPrefix']",
                     kPathCharsRegex));
}

void path_modifier_rules(CrdErrors& e, const std::string& path, const std::optional<HTTPPathModifier>& m) {
  if (!m) return;
  if (m->type == "ReplaceFullPath" && !m->replace_full_path)
    e.rule(path, "object", "replaceFullPath must be specified when type is set to 'ReplaceFullPath'");
  if (m->replace_full_path && m->type != "ReplaceFullPath")
    e.rule(path, "object", "type must be 'ReplaceFullPath' when replaceFullPath is set");
  if (m->type == "ReplacePrefixMatch" && !m->replace_prefix_match)
    e.rule(path, "object", "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'");
  if (m->replace_prefix_match && m->type != "ReplacePrefixMatch")
    e.rule(path, "object", "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set");
}

void filter_rules(CrdErrors& e, const std::string& path, const HTTPRouteFilter& f) {
  struct Member {
    const char* field;
    const char* type;
    bool set;
  };
  const Member members[] = {
      {"cors", "CORS", f.cors.has_value()},
      {"requestHeaderModifier", "RequestHeaderModifier", f.request_header_modifier.has_value()},
      {"responseHeaderModifier", "ResponseHeaderModifier", f.response_header_modifier.has_value()},
      {"requestMirror", "RequestMirror", f.request_mirror.has_value()},
      {"requestRedirect", "RequestRedirect", f.request_redirect.has_value()},
      {"urlRewrite", "URLRewrite", f.url_rewrite.has_value()},
      {"extensionRef", "ExtensionRef", f.extension_ref.has_value()},
  };
  for (const Member& m : members) {
    if (m.set && f.type != m.type)
      e.rule(path, "object", fmt::format("filter.{} must be nil if the filter.type is not {}", m.field, m.type));
    if (!m.set && f.type == m.type)
      e.rule(path, "object", fmt::format("filter.{} must be specified for {} filter.type", m.field, m.type));
  }
  if (const auto& m = f.request_mirror) {
    std::string mp = at(path, "requestMirror");
    if (m->percent && m->fraction)
      e.rule(mp, "object", "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter");
    const auto& b = m->backend_ref;
    if (b.group.empty() && b.kind == "Service" && !b.port)
      e.rule(at(mp, "backendRef"), "object", "Must have port for Service reference");
    if (m->fraction && m->fraction->numerator > m->fraction->denominator)
      e.rule(at(mp, "fraction"), "object", "numerator must be less than or equal to denominator");
  }
  if (f.request_redirect) path_modifier_rules(e, at(path, "requestRedirect.path"), f.request_redirect->path);
  if (f.url_rewrite) path_modifier_rules(e, at(path, "urlRewrite.path"), f.url_rewrite->path);
  if (const auto& c = f.cors) {
    std::string cp = at(path, "cors");
    auto star_alone = [](const std::vector<std::string>& v) {
      return !(contains(v, std::string("*")) && v.size() > 1);
    };
    if (!star_alone(c->allow_origins))
      e.rule(at(cp, "allowOrigins"), "array", "AllowOrigins cannot contain '*' alongside other origins");
    if (!star_alone(c->allow_methods))
      e.rule(at(cp, "allowMethods"), "array", "AllowMethods cannot contain '*' alongside other methods");
    if (!star_alone(c->allow_headers))  // sic: the CRD's message says "methods"
      e.rule(at(cp, "allowHeaders"), "array", "AllowHeaders cannot contain '*' alongside other methods");
  }
}

void filters_rules(CrdErrors& e, const std::string& path, const std::vector<HTTPRouteFilter>& fs) {
  auto count = [&](const char* type) {
    return std::count_if(fs.begin(), fs.end(), [&](const HTTPRouteFilter& f) { return f.type == type; });
  };
  if (count("RequestRedirect") > 0 && count("URLRewrite") > 0)
    e.rule(path, "array",
           "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both");
  for (const char* type : {"CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"})
    if (count(type) > 1) e.rule(path, "array", fmt::format("{} filter cannot be repeated", type));
  for (size_t i = 0; i < fs.size(); ++i) filter_rules(e, at(path, i), fs[i]);
}

bool is_prefix_replacing(const HTTPRouteFilter& f, bool redirect) {
  const std::optional<HTTPPathModifier>* p = nullptr;
  if (redirect && f.request_redirect) p = &f.request_redirect->path;
  if (!redirect && f.url_rewrite) p = &f.url_rewrite->path;
  return p && *p && (*p)->type == "ReplacePrefixMatch" && (*p)->replace_prefix_match;
}

void rule_rules(CrdErrors& e, const std::string& path, const HTTPRouteRule& r) {
  const auto& fs = r.filters;
  if (!r.backend_refs.empty() &&
      std::any_of(fs.begin(), fs.end(), [](const HTTPRouteFilter& f) { return f.request_redirect.has_value(); }))
    e.rule(path, "object", "RequestRedirect filter must not be used together with backendRefs");
  bool one_prefix_match = r.matches.size() == 1 && r.matches[0].path.type == "PathPrefix";
  auto exactly_one = [](const std::vector<HTTPRouteFilter>& v, bool redirect) {
    return std::count_if(v.begin(), v.end(),
                         [&](const HTTPRouteFilter& f) { return is_prefix_replacing(f, redirect); }) == 1;
  };
  // The CRD uses exists_one: the rules fire when exactly one filter (or one backendRef) qualifies.
  if (exactly_one(fs, true) && !one_prefix_match)
    e.rule(path, "object",
           "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be "
           "specified");
  if (exactly_one(fs, false) && !one_prefix_match)
    e.rule(path, "object",
           "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified");
  auto backends_with = [&](bool redirect) {
    return std::count_if(r.backend_refs.begin(), r.backend_refs.end(),
                         [&](const HTTPBackendRef& b) { return exactly_one(b.filters, redirect); }) == 1;
  };
  if (backends_with(true) && !one_prefix_match)
    e.rule(path, "object",
           "Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix "
           "match must be specified");
  if (backends_with(false) && !one_prefix_match)
    e.rule(path, "object",
           "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix "
           "match must be specified");

  for (size_t j = 0; j < r.matches.size(); ++j)
    path_match_rules(e, at(at(path, "matches"), j) + ".path", r.matches[j].path);
  filters_rules(e, at(path, "filters"), fs);
  for (size_t j = 0; j < r.backend_refs.size(); ++j) {
    const HTTPBackendRef& b = r.backend_refs[j];
    std::string bp = at(at(path, "backendRefs"), j);
    if (b.group.empty() && b.kind == "Service" && !b.port) e.rule(bp, "object", "Must have port for Service reference");
    filters_rules(e, at(bp, "filters"), b.filters);
  }
  if (const auto& t = r.timeouts) {
    // Only when both durations parse: CEL's duration() fails on anything else,
    // and the pattern error has been reported already.
    auto ok = [](const std::optional<Duration>& d) { return d && parse_gateway_duration_ms(d->text); };
    if (ok(t->request) && ok(t->backend_request) && t->request->ms != 0 && t->backend_request->ms > t->request->ms)
      e.rule(at(path, "timeouts"), "object", "backendRequest timeout cannot be longer than request timeout");
  }
}

void http_route_rules(CrdErrors& e, const HTTPRoute& r) {
  parent_ref_rules(e, r.parent_refs);
  size_t total = 0;
  for (size_t i = 0; i < r.rules.size() && i < 16; ++i) total += r.rules[i].matches.size();
  if (total > 128)
    e.rule("spec.rules", "array",
           "While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a "
           "route must be less than 128");
  for (size_t i = 0; i < r.rules.size(); ++i) rule_rules(e, at("spec.rules", i), r.rules[i]);
}

// ---- ReferenceGrant, GRPCRoute, BackendTLSPolicy ----

void reference_grant_schema(CrdErrors& e, const ReferenceGrant& g) {
  e.items("spec.from", g.from.size(), 1, 16);
  for (size_t i = 0; i < g.from.size(); ++i) {
    std::string p = at("spec.from", i);
    e.group(at(p, "group"), g.from[i].group);
    e.kind(at(p, "kind"), g.from[i].kind);
    e.string(at(p, "namespace"), g.from[i].namespace_, {1, 63, kNamespacePattern});
  }
  e.items("spec.to", g.to.size(), 1, 16);
  for (size_t i = 0; i < g.to.size(); ++i) {
    std::string p = at("spec.to", i);
    e.group(at(p, "group"), g.to[i].group);
    e.kind(at(p, "kind"), g.to[i].kind);
    e.opt_string(at(p, "name"), g.to[i].name, {1, 253, nullptr});
  }
}

void backend_tls_policy_schema(CrdErrors& e, const BackendTLSPolicy& p) {
  e.items("spec.targetRefs", p.target_refs.size(), 1, 16);
  for (size_t i = 0; i < p.target_refs.size(); ++i) {
    std::string tp = at("spec.targetRefs", i);
    const auto& t = p.target_refs[i];
    e.group(at(tp, "group"), t.group);
    e.kind(at(tp, "kind"), t.kind);
    e.object_name(at(tp, "name"), t.name);
    e.section_name(at(tp, "sectionName"), t.section_name);
  }
}

void backend_tls_policy_rules(CrdErrors& e, const BackendTLSPolicy& p) {
  const auto& ts = p.target_refs;
  auto same = [](const auto& a, const auto& b) { return a.group == b.group && a.kind == b.kind && a.name == b.name; };
  bool specified = true, unique = true;
  for (auto& t1 : ts) {
    int n = 0;
    for (auto& t2 : ts) {
      if (same(t1, t2) && section_empty(t1.section_name) != section_empty(t2.section_name)) specified = false;
      n += same(t1, t2) && section_equivalent(t1.section_name, t2.section_name);
    }
    if (n != 1) unique = false;
  }
  if (!specified)
    e.rule("spec.targetRefs", "array",
           "sectionName must be specified when targetRefs includes 2 or more references to the same target");
  if (!unique)
    e.rule("spec.targetRefs", "array",
           "sectionName must be unique when targetRefs includes 2 or more references to the same target");
}

}  // namespace

void validate_gateway_api(const Object& o, bool rules, std::vector<FieldError>& out) {
  std::vector<FieldError> errs;
  CrdErrors e{errs};
  // Schema phase, then the CEL phase unless a blocking error came first.
  auto phases = [&](auto schema_phase, auto rule_phase) {
    schema_phase();
    bool blocked = !rules || std::any_of(errs.begin(), errs.end(), is_blocking);
    if (!blocked) rule_phase();
    for (auto& x : errs) out.push_back(std::move(x));
    if (blocked)
      out.push_back({"<nil>",
                     "Invalid value: \"null\": some validation rules were not checked because the object was invalid; "
                     "correct the existing errors to complete validation"});
  };
  if (const auto* gc = std::get_if<GatewayClass>(&o)) {
    phases([&] { gateway_class(e, *gc); }, [] {});
  } else if (const auto* g = std::get_if<Gateway>(&o)) {
    phases([&] { gateway_schema(e, *g); }, [&] { gateway_rules(e, *g); });
  } else if (const auto* r = std::get_if<HTTPRoute>(&o)) {
    phases([&] { http_route_schema(e, *r); }, [&] { http_route_rules(e, *r); });
  } else if (const auto* rg = std::get_if<ReferenceGrant>(&o)) {
    // No CEL rules in this CRD: nothing to skip, no note.
    reference_grant_schema(e, *rg);
    for (auto& x : errs) out.push_back(std::move(x));
  } else if (const auto* gr = std::get_if<GRPCRoute>(&o)) {
    phases(
        [&] {
          e.parent_refs(gr->parent_refs);
          e.hostnames(gr->hostnames);
        },
        [&] { parent_ref_rules(e, gr->parent_refs); });
  } else if (const auto* bp = std::get_if<BackendTLSPolicy>(&o)) {
    phases([&] { backend_tls_policy_schema(e, *bp); }, [&] { backend_tls_policy_rules(e, *bp); });
  }
}

}  // namespace ingressd::model
