#include "model/gateway_decode.h"

#include <fmt/format.h>

#include "model/decode_fields.h"
#include "model/gateway_validate.h"

namespace ingressd::model {

// GEP-2257: ^([0-9]{1,5}(h|m|s|ms)){1,4}$, each component an integer and a
// unit, summed ("1h2h20m10m" is 3h30m). Leading zeroes are decimal.
std::optional<int64_t> parse_gateway_duration_ms(std::string_view s) {
  int64_t total = 0;
  int components = 0;
  size_t i = 0;
  if (s.empty()) return std::nullopt;
  while (i < s.size()) {
    size_t digits = 0;
    int64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 5 || i == s.size()) return std::nullopt;
    int64_t unit;
    if (s[i] == 'h') {
      unit = 3600000;
      ++i;
    } else if (s[i] == 'm' && i + 1 < s.size() && s[i + 1] == 's') {
      unit = 1;  // a component starts with a digit, so "ms" is never "m" then "s…"
      i += 2;
    } else if (s[i] == 'm') {
      unit = 60000;
      ++i;
    } else if (s[i] == 's') {
      unit = 1000;
      ++i;
    } else {
      return std::nullopt;
    }
    if (++components > 4) return std::nullopt;
    total += v * unit;
  }
  return total;
}

namespace {

using namespace fields;

std::string at(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }
std::string at(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

// Reads one object's fields, reporting the required ones that are absent.
struct Reader {
  std::vector<FieldError>& errs;

  // n[key]; a "Required value" error at path.key when absent or null (the
  // API server prunes nulls before it checks `required`).
  YAML::Node need(const YAML::Node& n, const char* key, const std::string& path) {
    const YAML::Node v = n[key];
    if (!present(v)) errs.push_back({at(path, key), "Required value"});
    return v;
  }
  // A string with a CRD default: the default only when the field is absent
  // (an explicit "" stays "", as for group: "" meaning the core group).
  static std::string or_default(const YAML::Node& n, const char* key, const char* def) {
    const YAML::Node v = n[key];
    return present(v) ? s(v) : std::string(def);
  }

  LabelSelector selector(const YAML::Node& n, const std::string& path) {
    LabelSelector ls;
    ls.match_labels = smap(n["matchLabels"]);
    each_i(n["matchExpressions"], [&](const YAML::Node& e, size_t i) {
      std::string p = at(at(path, "matchExpressions"), i);
      LabelSelectorRequirement r;
      r.key = s(need(e, "key", p));
      r.operator_ = s(need(e, "operator", p));
      each(e["values"], [&](const YAML::Node& v) { r.values.push_back(s(v)); });
      ls.match_expressions.push_back(std::move(r));
    });
    return ls;
  }

  ParentReference parent_ref(const YAML::Node& n, const std::string& path) {
    ParentReference pr;
    pr.group = or_default(n, "group", "gateway.networking.k8s.io");
    pr.kind = or_default(n, "kind", "Gateway");
    pr.namespace_ = os(n["namespace"]);
    pr.name = s(need(n, "name", path));
    pr.section_name = os(n["sectionName"]);
    pr.port = oi32(n["port"]);
    pr.line = schema::line_of(n);
    return pr;
  }
  std::vector<ParentReference> parent_refs(const YAML::Node& spec) {
    std::vector<ParentReference> out;
    each_i(spec["parentRefs"],
           [&](const YAML::Node& p, size_t i) { out.push_back(parent_ref(p, at("spec.parentRefs", i))); });
    return out;
  }
  static std::vector<std::string> strings(const YAML::Node& n) {
    std::vector<std::string> out;
    each(n, [&](const YAML::Node& v) { out.push_back(s(v)); });
    return out;
  }

  void backend_object_ref(const YAML::Node& n, const std::string& path, BackendObjectReference& b) {
    b.group = or_default(n, "group", "");
    b.kind = or_default(n, "kind", "Service");
    b.name = s(need(n, "name", path));
    b.namespace_ = os(n["namespace"]);
    b.port = oi32(n["port"]);
  }

  SecretObjectReference secret_ref(const YAML::Node& n, const std::string& path) {
    SecretObjectReference r;
    r.group = or_default(n, "group", "");
    r.kind = or_default(n, "kind", "Secret");
    r.name = s(need(n, "name", path));
    r.namespace_ = os(n["namespace"]);
    return r;
  }

  ObjectReference object_ref(const YAML::Node& n, const std::string& path) {
    ObjectReference r;
    r.group = s(need(n, "group", path));
    r.kind = s(need(n, "kind", path));
    r.name = s(need(n, "name", path));
    r.namespace_ = os(n["namespace"]);
    return r;
  }

  // ---- Gateway ----

  Listener listener(const YAML::Node& n, const std::string& path) {
    Listener l;
    l.name = s(need(n, "name", path));
    l.hostname = os(n["hostname"]);
    l.port = i32(need(n, "port", path));
    l.protocol = s(need(n, "protocol", path));
    l.line = schema::line_of(n);
    if (const YAML::Node t = n["tls"]; present(t)) {
      ListenerTLSConfig tls;
      tls.mode = or_default(t, "mode", "Terminate");
      each_i(t["certificateRefs"], [&](const YAML::Node& c, size_t i) {
        tls.certificate_refs.push_back(secret_ref(c, at(at(path, "tls.certificateRefs"), i)));
      });
      tls.options = smap(t["options"]);
      l.tls = std::move(tls);
    }
    // allowedRoutes defaults to {namespaces: {from: Same}}, and so do its
    // namespaces and from when absent at their own level.
    if (const YAML::Node ar = n["allowedRoutes"]; present(ar)) {
      if (const YAML::Node ns = ar["namespaces"]; present(ns)) {
        l.allowed_routes.namespaces.from = or_default(ns, "from", "Same");
        if (present(ns["selector"]))
          l.allowed_routes.namespaces.selector =
              selector(ns["selector"], at(path, "allowedRoutes.namespaces.selector"));
      }
      each_i(ar["kinds"], [&](const YAML::Node& k, size_t i) {
        RouteGroupKind rgk;
        rgk.group = or_default(k, "group", "gateway.networking.k8s.io");
        rgk.kind = s(need(k, "kind", at(at(path, "allowedRoutes.kinds"), i)));
        l.allowed_routes.kinds.push_back(std::move(rgk));
      });
    }
    return l;
  }

  TLSConfig tls_config(const YAML::Node& n, const std::string& path) {
    TLSConfig c;
    if (const YAML::Node v = n["validation"]; present(v)) {
      FrontendTLSValidation fv;
      std::string vp = at(path, "validation");
      each_i(need(v, "caCertificateRefs", vp), [&](const YAML::Node& r, size_t i) {
        fv.ca_certificate_refs.push_back(object_ref(r, at(at(vp, "caCertificateRefs"), i)));
      });
      fv.mode = or_default(v, "mode", "AllowValidOnly");
      c.validation = std::move(fv);
    }
    return c;
  }

  Gateway gateway(const YAML::Node& doc) {
    Gateway g;
    g.meta = meta(doc["metadata"], true);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return g;
    g.gateway_class_name = s(need(spec, "gatewayClassName", "spec"));
    each_i(need(spec, "listeners", "spec"),
           [&](const YAML::Node& l, size_t i) { g.listeners.push_back(listener(l, at("spec.listeners", i))); });
    each(spec["addresses"], [&](const YAML::Node& a) {
      GatewaySpecAddress addr;
      addr.type = or_default(a, "type", "IPAddress");
      addr.value = s(a["value"]);
      g.addresses.push_back(std::move(addr));
    });
    if (const YAML::Node inf = spec["infrastructure"]; present(inf)) {
      GatewayInfrastructure gi;
      gi.labels = smap(inf["labels"]);
      gi.annotations = smap(inf["annotations"]);
      if (const YAML::Node pr = inf["parametersRef"]; present(pr)) {
        std::string p = "spec.infrastructure.parametersRef";
        gi.parameters_ref =
            LocalParametersReference{s(need(pr, "group", p)), s(need(pr, "kind", p)), s(need(pr, "name", p))};
      }
      g.infrastructure = std::move(gi);
    }
    if (const YAML::Node al = spec["allowedListeners"]; present(al)) {
      AllowedListeners a;  // namespaces defaults to {from: None}
      if (const YAML::Node ns = al["namespaces"]; present(ns)) {
        a.namespaces.from = or_default(ns, "from", "None");
        if (present(ns["selector"]))
          a.namespaces.selector = selector(ns["selector"], "spec.allowedListeners.namespaces.selector");
      }
      g.allowed_listeners = std::move(a);
    }
    if (const YAML::Node t = spec["tls"]; present(t)) {
      GatewayTLSConfig tls;
      if (const YAML::Node b = t["backend"]; present(b)) {
        GatewayBackendTLS bt;
        if (present(b["clientCertificateRef"]))
          bt.client_certificate_ref = secret_ref(b["clientCertificateRef"], "spec.tls.backend.clientCertificateRef");
        tls.backend = std::move(bt);
      }
      if (const YAML::Node f = t["frontend"]; present(f)) {
        FrontendTLSConfig ft;
        const YAML::Node d = need(f, "default", "spec.tls.frontend");
        if (present(d)) ft.default_ = tls_config(d, "spec.tls.frontend.default");
        each_i(f["perPort"], [&](const YAML::Node& pp, size_t i) {
          std::string p = at("spec.tls.frontend.perPort", i);
          TLSPortConfig pc;
          pc.port = i32(need(pp, "port", p));
          const YAML::Node pt = need(pp, "tls", p);
          if (present(pt)) pc.tls = tls_config(pt, at(p, "tls"));
          ft.per_port.push_back(std::move(pc));
        });
        tls.frontend = std::move(ft);
      }
      g.tls = std::move(tls);
    }
    return g;
  }

  // ---- HTTPRoute ----

  template <typename M>
  M value_match(const YAML::Node& n, const std::string& path) {
    M m;
    m.type = or_default(n, "type", "Exact");
    m.name = s(need(n, "name", path));
    m.value = s(need(n, "value", path));
    return m;
  }

  HTTPRouteMatch match(const YAML::Node& n, const std::string& path) {
    HTTPRouteMatch m;
    m.line = schema::line_of(n);
    if (const YAML::Node p = n["path"]; present(p)) {
      m.path.type = or_default(p, "type", "PathPrefix");
      m.path.value = or_default(p, "value", "/");
    }
    each_i(n["headers"], [&](const YAML::Node& h, size_t i) {
      m.headers.push_back(value_match<HTTPHeaderMatch>(h, at(at(path, "headers"), i)));
    });
    each_i(n["queryParams"], [&](const YAML::Node& q, size_t i) {
      m.query_params.push_back(value_match<HTTPQueryParamMatch>(q, at(at(path, "queryParams"), i)));
    });
    m.method = os(n["method"]);
    return m;
  }

  HTTPHeaderFilter header_filter(const YAML::Node& n, const std::string& path) {
    HTTPHeaderFilter f;
    auto headers = [&](const char* key, std::vector<HTTPHeader>& out) {
      each_i(n[key], [&](const YAML::Node& h, size_t i) {
        std::string p = at(at(path, key), i);
        out.push_back({s(need(h, "name", p)), s(need(h, "value", p))});
      });
    };
    headers("set", f.set);
    headers("add", f.add);
    f.remove = strings(n["remove"]);
    return f;
  }

  std::optional<HTTPPathModifier> path_modifier(const YAML::Node& n, const std::string& path) {
    if (!present(n)) return std::nullopt;
    HTTPPathModifier m;
    m.type = s(need(n, "type", path));
    m.replace_full_path = os(n["replaceFullPath"]);
    m.replace_prefix_match = os(n["replacePrefixMatch"]);
    return m;
  }

  HTTPRouteFilter filter(const YAML::Node& n, const std::string& path) {
    HTTPRouteFilter f;
    f.line = schema::line_of(n);
    f.type = s(need(n, "type", path));
    if (present(n["requestHeaderModifier"]))
      f.request_header_modifier = header_filter(n["requestHeaderModifier"], at(path, "requestHeaderModifier"));
    if (present(n["responseHeaderModifier"]))
      f.response_header_modifier = header_filter(n["responseHeaderModifier"], at(path, "responseHeaderModifier"));
    if (const YAML::Node m = n["requestMirror"]; present(m)) {
      HTTPRequestMirrorFilter mf;
      std::string mp = at(path, "requestMirror");
      const YAML::Node br = need(m, "backendRef", mp);
      if (present(br)) backend_object_ref(br, at(mp, "backendRef"), mf.backend_ref);
      mf.percent = oi32(m["percent"]);
      if (const YAML::Node fr = m["fraction"]; present(fr)) {
        Fraction fraction;
        fraction.numerator = i32(need(fr, "numerator", at(mp, "fraction")));
        if (present(fr["denominator"])) fraction.denominator = i32(fr["denominator"]);
        mf.fraction = fraction;
      }
      f.request_mirror = std::move(mf);
    }
    if (const YAML::Node r = n["requestRedirect"]; present(r)) {
      HTTPRequestRedirectFilter rf;
      rf.scheme = os(r["scheme"]);
      rf.hostname = os(r["hostname"]);
      rf.path = path_modifier(r["path"], at(path, "requestRedirect.path"));
      rf.port = oi32(r["port"]);
      // statusCode is an int (int64) in the schema; what does not fit an
      // int32 is outside the enum, said here since the struct cannot hold it.
      if (const YAML::Node sc = r["statusCode"]; present(sc)) {
        long long v = schema::scalar_int(sc).value_or(0);
        if (v < INT32_MIN || v > INT32_MAX)
          errs.push_back({at(path, "requestRedirect.statusCode"),
                          fmt::format("Unsupported value: {}: supported values: {}", v, kRedirectStatusCodes)});
        else rf.status_code = static_cast<int32_t>(v);
      }
      f.request_redirect = std::move(rf);
    }
    if (const YAML::Node u = n["urlRewrite"]; present(u)) {
      HTTPURLRewriteFilter uf;
      uf.hostname = os(u["hostname"]);
      uf.path = path_modifier(u["path"], at(path, "urlRewrite.path"));
      f.url_rewrite = std::move(uf);
    }
    if (const YAML::Node c = n["cors"]; present(c)) {
      HTTPCORSFilter cf;
      cf.allow_origins = strings(c["allowOrigins"]);
      cf.allow_credentials = ob(c["allowCredentials"]);
      cf.allow_methods = strings(c["allowMethods"]);
      cf.allow_headers = strings(c["allowHeaders"]);
      cf.expose_headers = strings(c["exposeHeaders"]);
      if (present(c["maxAge"])) cf.max_age = i32(c["maxAge"]);
      f.cors = std::move(cf);
    }
    if (const YAML::Node e = n["extensionRef"]; present(e)) {
      std::string ep = at(path, "extensionRef");
      f.extension_ref = LocalObjectReference{s(need(e, "group", ep)), s(need(e, "kind", ep)), s(need(e, "name", ep))};
    }
    return f;
  }

  std::vector<HTTPRouteFilter> filters(const YAML::Node& n, const std::string& path) {
    std::vector<HTTPRouteFilter> out;
    each_i(n, [&](const YAML::Node& f, size_t i) { out.push_back(filter(f, at(path, i))); });
    return out;
  }

  static std::optional<Duration> duration(const YAML::Node& n) {
    if (!present(n)) return std::nullopt;
    Duration d;
    d.text = s(n);
    d.ms = parse_gateway_duration_ms(d.text).value_or(0);  // validation rejects what does not parse
    return d;
  }

  HTTPRouteRule rule(const YAML::Node& n, const std::string& path) {
    HTTPRouteRule r;
    r.line = schema::line_of(n);
    r.name = os(n["name"]);
    if (const YAML::Node ms = n["matches"]; present(ms)) {
      each_i(ms, [&](const YAML::Node& m, size_t i) { r.matches.push_back(match(m, at(at(path, "matches"), i))); });
    } else {
      HTTPRouteMatch def;  // matches: [{path: {type: PathPrefix, value: /}}]
      def.line = r.line;
      r.matches.push_back(std::move(def));
    }
    r.filters = filters(n["filters"], at(path, "filters"));
    each_i(n["backendRefs"], [&](const YAML::Node& b, size_t i) {
      std::string bp = at(at(path, "backendRefs"), i);
      HTTPBackendRef br;
      backend_object_ref(b, bp, br);
      if (present(b["weight"])) br.weight = i32(b["weight"]);
      br.filters = filters(b["filters"], at(bp, "filters"));
      br.line = schema::line_of(b);
      r.backend_refs.push_back(std::move(br));
    });
    if (const YAML::Node t = n["timeouts"]; present(t))
      r.timeouts = HTTPRouteTimeouts{duration(t["request"]), duration(t["backendRequest"])};
    return r;
  }

  HTTPRoute http_route(const YAML::Node& doc) {
    HTTPRoute hr;
    hr.meta = meta(doc["metadata"], true);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return hr;
    hr.parent_refs = parent_refs(spec);
    hr.hostnames = strings(spec["hostnames"]);
    if (const YAML::Node rules = spec["rules"]; present(rules)) {
      each_i(rules, [&](const YAML::Node& r, size_t i) { hr.rules.push_back(rule(r, at("spec.rules", i))); });
    } else {
      HTTPRouteRule def;  // rules: [{matches: [{path: {type: PathPrefix, value: /}}]}]
      def.line = schema::line_of(spec);
      def.matches.emplace_back().line = def.line;
      hr.rules.push_back(std::move(def));
    }
    return hr;
  }

  // ---- the others ----

  GatewayClass gateway_class(const YAML::Node& doc) {
    GatewayClass gc;
    gc.meta = meta(doc["metadata"], false);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return gc;
    gc.controller_name = s(need(spec, "controllerName", "spec"));
    gc.description = os(spec["description"]);
    if (const YAML::Node pr = spec["parametersRef"]; present(pr)) {
      std::string p = "spec.parametersRef";
      gc.parameters_ref = ParametersReference{s(need(pr, "group", p)), s(need(pr, "kind", p)), s(need(pr, "name", p)),
                                              os(pr["namespace"])};
    }
    return gc;
  }

  ReferenceGrant reference_grant(const YAML::Node& doc) {
    ReferenceGrant rg;
    rg.meta = meta(doc["metadata"], true);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return rg;
    each_i(need(spec, "from", "spec"), [&](const YAML::Node& f, size_t i) {
      std::string p = at("spec.from", i);
      rg.from.push_back({s(need(f, "group", p)), s(need(f, "kind", p)), s(need(f, "namespace", p))});
    });
    each_i(need(spec, "to", "spec"), [&](const YAML::Node& t, size_t i) {
      std::string p = at("spec.to", i);
      rg.to.push_back({s(need(t, "group", p)), s(need(t, "kind", p)), os(t["name"])});
    });
    return rg;
  }

  GRPCRoute grpc_route(const YAML::Node& doc) {
    GRPCRoute gr;
    gr.meta = meta(doc["metadata"], true);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return gr;
    gr.parent_refs = parent_refs(spec);
    gr.hostnames = strings(spec["hostnames"]);
    return gr;
  }

  BackendTLSPolicy backend_tls_policy(const YAML::Node& doc) {
    BackendTLSPolicy p;
    p.meta = meta(doc["metadata"], true);
    const YAML::Node spec = need(doc, "spec", "");
    if (!present(spec)) return p;
    each_i(need(spec, "targetRefs", "spec"), [&](const YAML::Node& t, size_t i) {
      std::string tp = at("spec.targetRefs", i);
      p.target_refs.push_back(
          {s(need(t, "group", tp)), s(need(t, "kind", tp)), s(need(t, "name", tp)), os(t["sectionName"])});
    });
    return p;
  }
};

}  // namespace

GatewayClass to_gateway_class(const YAML::Node& doc, std::vector<FieldError>& errs) {
  return Reader{errs}.gateway_class(doc);
}
Gateway to_gateway(const YAML::Node& doc, std::vector<FieldError>& errs) { return Reader{errs}.gateway(doc); }
HTTPRoute to_http_route(const YAML::Node& doc, std::vector<FieldError>& errs) { return Reader{errs}.http_route(doc); }
ReferenceGrant to_reference_grant(const YAML::Node& doc, std::vector<FieldError>& errs) {
  return Reader{errs}.reference_grant(doc);
}
Namespace to_namespace(const YAML::Node& doc) { return Namespace{meta(doc["metadata"], false)}; }
GRPCRoute to_grpc_route(const YAML::Node& doc, std::vector<FieldError>& errs) { return Reader{errs}.grpc_route(doc); }
BackendTLSPolicy to_backend_tls_policy(const YAML::Node& doc, std::vector<FieldError>& errs) {
  return Reader{errs}.backend_tls_policy(doc);
}

}  // namespace ingressd::model
