#include "model/validate.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "core/sockaddr.h"
#include "core/strings.h"
#include "model/gateway_validate.h"

namespace ingressd::model {
namespace {

bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

const char* kDns1123SubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kWildcardMsg =
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of "
    "lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', "
    "regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kDns1035Msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, "
    "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
    "'[a-z]([-a-z0-9]*[a-z0-9])?')";

struct V {
  std::vector<FieldError> errs;
  void invalid(const std::string& path, std::string_view value, std::string_view detail) {
    errs.push_back({path, fmt::format("Invalid value: \"{}\": {}", value, detail)});
  }
  void required(const std::string& path, std::string_view detail = {}) {
    errs.push_back({path, detail.empty() ? std::string("Required value") : fmt::format("Required value: {}", detail)});
  }
  void not_supported(const std::string& path, std::string_view value, std::string_view supported) {
    errs.push_back({path, fmt::format("Unsupported value: \"{}\": supported values: {}", value, supported)});
  }
  void forbidden(const std::string& path, std::string_view detail) {
    errs.push_back({path, fmt::format("Forbidden: {}", detail)});
  }

  void name(const ObjectMeta& m, bool dns1035) {
    if (m.name.empty()) return required("metadata.name", "name or generateName is required");
    if (dns1035 ? !is_dns1035_label(m.name) : !is_dns1123_subdomain(m.name))
      invalid("metadata.name", m.name, dns1035 ? kDns1035Msg : kDns1123SubdomainMsg);
  }
  void namespace_(const ObjectMeta& m) {
    if (!m.namespace_.empty() && !is_dns1123_label(m.namespace_))
      invalid("metadata.namespace", m.namespace_,
              "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
              "and end with an alphanumeric character");
  }
  void host(const std::string& path, const std::string& h) {
    if (is_ip_address(h)) return invalid(path, h, "must be a DNS name, not an IP address");
    if (h.find('*') != std::string::npos) {
      if (!is_wildcard_dns1123_subdomain(h)) invalid(path, h, kWildcardMsg);
    } else if (!is_dns1123_subdomain(h)) {
      invalid(path, h, kDns1123SubdomainMsg);
    }
  }
  void backend(const std::string& path, const IngressBackend& b) {
    if (b.service && b.resource) return invalid(path, "", "cannot set both resource and service backends");
    if (!b.service && !b.resource) return required(path, "one of `service` or `resource` must be specified");
    if (b.service) {
      const auto& s = *b.service;
      if (s.name.empty()) required(path + ".service.name");
      else if (!is_dns1035_label(s.name)) invalid(path + ".service.name", s.name, kDns1035Msg);
      bool has_name = !s.port.name.empty();
      bool has_num = s.port.number.has_value();
      if (has_name && has_num) invalid(path + ".service.port", "", "cannot set both port name & port number");
      else if (!has_name && !has_num) required(path + ".service.port", "port name or number is required");
      else if (has_num && (*s.port.number < 1 || *s.port.number > 65535))
        invalid(path + ".service.port.number", std::to_string(*s.port.number), "must be between 1 and 65535, inclusive");
      else if (has_name && !is_iana_svc_name(s.port.name))
        invalid(path + ".service.port.name", s.port.name,
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), at most 15 characters, "
                "at least one letter, and no leading, trailing or double hyphens");
    }
    if (b.resource) {
      if (b.resource->kind.empty()) required(path + ".resource.kind");
      if (b.resource->name.empty()) required(path + ".resource.name");
    }
  }
  void path(const std::string& p, const HTTPIngressPath& hp) {
    if (hp.path_type == PathType::Exact || hp.path_type == PathType::Prefix) {
      if (hp.path.empty() || hp.path[0] != '/') return invalid(p + ".path", hp.path, "must be an absolute path");
      for (const char* seq : {"//", "/./", "/../", "%2f", "%2F"})
        if (hp.path.find(seq) != std::string::npos) return invalid(p + ".path", hp.path, fmt::format("must not contain '{}'", seq));
      for (const char* suf : {"/..", "/."}) {
        std::string_view sv(hp.path);
        std::string_view sf(suf);
        if (sv.size() >= sf.size() && sv.substr(sv.size() - sf.size()) == sf)
          return invalid(p + ".path", hp.path, fmt::format("must not end with '{}'", suf));
      }
    } else if (!hp.path.empty() && hp.path[0] != '/') {
      invalid(p + ".path", hp.path, "must be an absolute path");
    }
    backend(p + ".backend", hp.backend);
  }
  void port_number(const std::string& path, int64_t n, bool allow_zero = false) {
    if (n < (allow_zero ? 0 : 1) || n > 65535)
      invalid(path, std::to_string(n), "must be between 1 and 65535, inclusive");
  }
};

void validate_ingress(V& v, const Ingress& ing) {
  v.name(ing.meta, false);
  v.namespace_(ing.meta);
  if (ing.ingress_class_name && !is_dns1123_subdomain(*ing.ingress_class_name))
    v.invalid("spec.ingressClassName", *ing.ingress_class_name, kDns1123SubdomainMsg);
  if (ing.rules.empty() && !ing.default_backend)
    v.invalid("spec", "", "either `defaultBackend` or `rules` must be specified");
  if (ing.default_backend) v.backend("spec.defaultBackend", *ing.default_backend);
  for (size_t i = 0; i < ing.tls.size(); ++i) {
    for (size_t j = 0; j < ing.tls[i].hosts.size(); ++j)
      v.host(fmt::format("spec.tls[{}].hosts[{}]", i, j), ing.tls[i].hosts[j]);
    if (!ing.tls[i].secret_name.empty() && !is_dns1123_subdomain(ing.tls[i].secret_name))
      v.invalid(fmt::format("spec.tls[{}].secretName", i), ing.tls[i].secret_name, kDns1123SubdomainMsg);
  }
  for (size_t i = 0; i < ing.rules.size(); ++i) {
    const auto& r = ing.rules[i];
    std::string rp = fmt::format("spec.rules[{}]", i);
    if (!r.host.empty()) v.host(rp + ".host", r.host);
    if (r.has_http && r.paths.empty()) v.required(rp + ".http.paths");
    for (size_t j = 0; j < r.paths.size(); ++j) v.path(fmt::format("{}.http.paths[{}]", rp, j), r.paths[j]);
  }
}

bool is_domain_prefixed_path(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0) return false;
  if (!is_dns1123_subdomain(s.substr(0, slash))) return false;
  std::string rest = s.substr(slash + 1);
  if (rest.empty()) return true;
  for (char c : rest)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/-._~%!$&'()*+,;=:").find(c) != std::string_view::npos))
      return false;
  return true;
}

void validate_ingress_class(V& v, const IngressClass& ic) {
  v.name(ic.meta, false);
  if (ic.controller.empty()) v.required("spec.controller");
  else if (ic.controller.size() > 250) v.errs.push_back({"spec.controller", "Too long: may not be more than 250 bytes"});
  else if (!is_domain_prefixed_path(ic.controller))
    v.invalid("spec.controller", ic.controller, "must be a domain-prefixed path (such as \"acme.io/foo\")");
  if (ic.parameters) {
    const auto& p = *ic.parameters;
    if (p.kind.empty()) v.required("spec.parameters.kind");
    if (p.name.empty()) v.required("spec.parameters.name");
    if (!p.scope.empty() && p.scope != "Cluster" && p.scope != "Namespace")
      v.not_supported("spec.parameters.scope", p.scope, "\"Cluster\", \"Namespace\"");
    if (p.scope == "Namespace" && p.namespace_.empty())
      v.required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'");
    if (p.scope != "Namespace" && !p.namespace_.empty())
      v.forbidden("spec.parameters.namespace", "`parameters.scope` is set to 'Cluster'");
  }
}

void validate_service(V& v, const Service& s) {
  v.name(s.meta, true);
  v.namespace_(s.meta);
  static const std::set<std::string> types = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"};
  if (!types.count(s.type))
    v.not_supported("spec.type", s.type, "\"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
  if (s.type == "ExternalName" && s.external_name.empty()) v.required("spec.externalName");
  std::set<std::string> names;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const auto& p = s.ports[i];
    std::string pp = fmt::format("spec.ports[{}]", i);
    if (s.ports.size() > 1 && p.name.empty()) v.required(pp + ".name");
    if (!p.name.empty() && !names.insert(p.name).second) v.errs.push_back({pp + ".name", fmt::format("Duplicate value: \"{}\"", p.name)});
    v.port_number(pp + ".port", p.port);
    if (p.protocol != "TCP" && p.protocol != "UDP" && p.protocol != "SCTP")
      v.not_supported(pp + ".protocol", p.protocol, "\"SCTP\", \"TCP\", \"UDP\"");
    if (p.target_port) {
      if (p.target_port->is_int) v.port_number(pp + ".targetPort", p.target_port->i);
      else if (!is_iana_svc_name(p.target_port->s))
        v.invalid(pp + ".targetPort", p.target_port->s, "must be a valid port name");
    }
  }
}

void validate_endpoint_slice(V& v, const EndpointSlice& es) {
  v.name(es.meta, false);
  v.namespace_(es.meta);
  if (es.address_type.empty()) v.required("addressType");
  else if (es.address_type != "IPv4" && es.address_type != "IPv6" && es.address_type != "FQDN")
    v.not_supported("addressType", es.address_type, "\"FQDN\", \"IPv4\", \"IPv6\"");
  for (size_t i = 0; i < es.endpoints.size(); ++i) {
    const auto& e = es.endpoints[i];
    std::string ep = fmt::format("endpoints[{}].addresses", i);
    if (e.addresses.empty()) v.required(ep, "must contain at least 1 address");
    for (size_t j = 0; j < e.addresses.size(); ++j) {
      const std::string& a = e.addresses[j];
      if (es.address_type == "IPv4" && ip_family(a) != AF_INET)
        v.invalid(fmt::format("{}[{}]", ep, j), a, "must be a valid IPv4 address");
      if (es.address_type == "IPv6" && ip_family(a) != AF_INET6)
        v.invalid(fmt::format("{}[{}]", ep, j), a, "must be a valid IPv6 address");
      if (es.address_type == "FQDN" && !is_dns1123_subdomain(a))
        v.invalid(fmt::format("{}[{}]", ep, j), a, kDns1123SubdomainMsg);
    }
  }
  for (size_t i = 0; i < es.ports.size(); ++i)
    if (es.ports[i].port) v.port_number(fmt::format("ports[{}].port", i), *es.ports[i].port, true);
}

void validate_endpoints(V& v, const Endpoints& e) {
  v.name(e.meta, false);
  v.namespace_(e.meta);
  for (size_t i = 0; i < e.subsets.size(); ++i) {
    auto check_addrs = [&](const std::vector<EndpointAddress>& as, const char* field) {
      for (size_t j = 0; j < as.size(); ++j)
        if (!is_ip_address(as[j].ip))
          v.invalid(fmt::format("subsets[{}].{}[{}].ip", i, field, j), as[j].ip, "must be a valid IP address");
    };
    check_addrs(e.subsets[i].addresses, "addresses");
    check_addrs(e.subsets[i].not_ready_addresses, "notReadyAddresses");
    for (size_t j = 0; j < e.subsets[i].ports.size(); ++j)
      if (e.subsets[i].ports[j].port) v.port_number(fmt::format("subsets[{}].ports[{}].port", i, j), *e.subsets[i].ports[j].port);
  }
}

void validate_secret(V& v, const Secret& s) {
  v.name(s.meta, false);
  v.namespace_(s.meta);
  if (s.type == "kubernetes.io/tls") {
    if (!s.data.count("tls.crt")) v.required("data[tls.crt]");
    if (!s.data.count("tls.key")) v.required("data[tls.key]");
  }
}

// core/v1 Namespace: ValidateNamespaceName (a DNS-1123 label).
void validate_namespace(V& v, const Namespace& ns) {
  if (ns.meta.name.empty()) return v.required("metadata.name", "name or generateName is required");
  if (!is_dns1123_label(ns.meta.name))
    v.invalid("metadata.name", ns.meta.name,
              "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
              "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
}

}  // namespace

bool is_dns1123_label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!is_alnum_lower(s.front()) || !is_alnum_lower(s.back())) return false;
  for (char c : s)
    if (!is_alnum_lower(c) && c != '-') return false;
  return true;
}

bool is_dns1123_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    // Labels of a subdomain follow the label rule except for the 63-byte limit, as in apimachinery.
    if (label.empty() || !is_alnum_lower(label.front()) || !is_alnum_lower(label.back())) return false;
    for (char c : label)
      if (!is_alnum_lower(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_dns1035_label(std::string_view s) {
  if (!is_dns1123_label(s)) return false;
  return s.front() >= 'a' && s.front() <= 'z';
}

bool is_wildcard_dns1123_subdomain(std::string_view s) {
  return s.size() > 2 && s.substr(0, 2) == "*." && is_dns1123_subdomain(s.substr(2));
}

bool is_ip_address(std::string_view s) { return ip_family(s) != AF_UNSPEC; }

bool is_iana_svc_name(std::string_view s) {
  if (s.empty() || s.size() > 15) return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') letter = true;
    else if (c == '-') {
      if (i == 0 || i + 1 == s.size() || s[i - 1] == '-') return false;
    } else if (!(c >= '0' && c <= '9')) return false;
  }
  return letter;
}

bool is_blocking(const FieldError& e) {
  for (const char* p : {"Required value", "Unsupported value:", "Too long:", "Too many:"})
    if (starts_with(e.message, p)) return true;
  return false;
}

std::vector<FieldError> validate(const Object& o, bool rules) {
  V v;
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, Ingress>) validate_ingress(v, x);
        else if constexpr (std::is_same_v<X, IngressClass>) validate_ingress_class(v, x);
        else if constexpr (std::is_same_v<X, Service>) validate_service(v, x);
        else if constexpr (std::is_same_v<X, EndpointSlice>) validate_endpoint_slice(v, x);
        else if constexpr (std::is_same_v<X, Endpoints>) validate_endpoints(v, x);
        else if constexpr (std::is_same_v<X, Secret>) validate_secret(v, x);
        else if constexpr (std::is_same_v<X, Namespace>) validate_namespace(v, x);
        else {
          // Custom resources: metadata as for any object (names are DNS-1123
          // subdomains), then the CRD; a blocking metadata error also skips
          // the CEL rules, as in apiextensions-apiserver's strategy.
          v.name(x.meta, false);
          if (!is_cluster_scoped(object_kind(o))) v.namespace_(x.meta);
          bool blocked = std::any_of(v.errs.begin(), v.errs.end(), is_blocking);
          validate_gateway_api(o, rules && !blocked, v.errs);
        }
      },
      o);
  return v.errs;
}

}  // namespace ingressd::model
