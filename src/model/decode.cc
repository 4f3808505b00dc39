#include "model/decode.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/strings.h"
#include "model/decode_fields.h"
#include "model/gateway_decode.h"
#include "model/schema.h"
#include "model/yaml_syntax.h"
#include "model/validate.h"

namespace ingressd::model {
namespace {

using schema::TypeError;


std::string scalar_or(const YAML::Node& n, const char* key) {
  YAML::Node v = n[key];
  return (v && v.IsScalar()) ? v.Scalar() : std::string();
}

// The line of the node at a field path such as "spec.rules[0].host", or of
// the deepest existing ancestor. Walks with reset(), never operator=, which
// would rebind the nodes of the document itself (see decode_fields.h).
int line_for_path(const YAML::Node& root, const std::string& path) {
  YAML::Node cur;
  cur.reset(root);
  int line = schema::line_of(root);
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      ++i;
      continue;
    }
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string::npos) break;
      std::string idx = path.substr(i + 1, close - i - 1);
      i = close + 1;
      if (!cur.IsSequence()) break;
      if (!idx.empty() && std::all_of(idx.begin(), idx.end(), ::isdigit)) {
        size_t k = std::stoul(idx);
        if (k >= cur.size()) break;
        const YAML::Node parent = cur;
        cur.reset(parent[k]);
      } else if (const YAML::Node parent = cur; parent.IsMap() && parent[idx]) {
        cur.reset(parent[idx]);
      } else {
        break;
      }
      line = schema::line_of(cur);
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    std::string key = path.substr(i, end == std::string::npos ? std::string::npos : end - i);
    i = end == std::string::npos ? path.size() : end;
    const YAML::Node parent = cur;
    if (!parent.IsMap() || !parent[key]) break;
    cur.reset(parent[key]);
    line = schema::line_of(cur);
  }
  return line;
}

// ---- typed extraction; runs only after schema::check found no error ----

using namespace fields;

IngressBackend backend(const YAML::Node& n) {
  IngressBackend b;
  if (!n || !n.IsMap()) return b;  // absent: validation says it is required
  if (n["service"] && !n["service"].IsNull()) {
    IngressServiceBackend sb;
    sb.name = s(n["service"]["name"]);
    YAML::Node port = n["service"]["port"];
    if (port && port["number"] && !port["number"].IsNull()) sb.port.number = i32(port["number"]);
    if (port) sb.port.name = s(port["name"]);
    b.service = sb;
  }
  if (n["resource"] && !n["resource"].IsNull()) {
    b.resource = TypedLocalObjectReference{s(n["resource"]["apiGroup"]), s(n["resource"]["kind"]), s(n["resource"]["name"])};
  }
  return b;
}

std::optional<PathType> path_type(const std::string& v) {
  if (v == "Exact") return PathType::Exact;
  if (v == "Prefix") return PathType::Prefix;
  if (v == "ImplementationSpecific") return PathType::ImplementationSpecific;
  return std::nullopt;
}

Ingress to_ingress(const YAML::Node& n, std::vector<FieldError>& errs) {
  Ingress ing;
  ing.meta = meta(n["metadata"], true);
  YAML::Node spec = n["spec"];
  if (!spec) return ing;
  if (spec["ingressClassName"] && !spec["ingressClassName"].IsNull()) ing.ingress_class_name = s(spec["ingressClassName"]);
  if (spec["defaultBackend"] && !spec["defaultBackend"].IsNull()) ing.default_backend = backend(spec["defaultBackend"]);
  each(spec["tls"], [&](const YAML::Node& t) {
    IngressTLS tls;
    each(t["hosts"], [&](const YAML::Node& h) { tls.hosts.push_back(s(h)); });
    tls.secret_name = s(t["secretName"]);
    ing.tls.push_back(tls);
  });
  size_t ri = 0;
  each(spec["rules"], [&](const YAML::Node& r) {
    IngressRule rule;
    rule.host = s(r["host"]);
    rule.line = schema::line_of(r);
    if (r["http"] && !r["http"].IsNull()) {
      rule.has_http = true;
      size_t pi = 0;
      each(r["http"]["paths"], [&](const YAML::Node& p) {
        HTTPIngressPath hp;
        hp.path = s(p["path"]);
        hp.line = schema::line_of(p);
        std::string fp = fmt::format("spec.rules[{}].http.paths[{}].pathType", ri, pi);
        std::string pt = s(p["pathType"]);
        if (pt.empty()) {
          errs.push_back({fp, "Required value: pathType must be specified"});
        } else if (auto t = path_type(pt)) {
          hp.path_type = *t;
        } else {
          errs.push_back({fp, fmt::format("Unsupported value: \"{}\": supported values: \"Exact\", "
                                          "\"ImplementationSpecific\", \"Prefix\"", pt)});
        }
        hp.backend = backend(p["backend"]);
        rule.paths.push_back(hp);
        ++pi;
      });
    }
    ing.rules.push_back(rule);
    ++ri;
  });
  return ing;
}

IngressClass to_ingress_class(const YAML::Node& n) {
  IngressClass ic;
  ic.meta = meta(n["metadata"], false);
  YAML::Node spec = n["spec"];
  if (!spec) return ic;
  ic.controller = s(spec["controller"]);
  if (spec["parameters"] && !spec["parameters"].IsNull()) {
    YAML::Node p = spec["parameters"];
    ic.parameters = IngressClassParameters{s(p["apiGroup"]), s(p["kind"]), s(p["name"]), s(p["scope"]), s(p["namespace"])};
  }
  return ic;
}

Service to_service(const YAML::Node& n) {
  Service svc;
  svc.meta = meta(n["metadata"], true);
  YAML::Node spec = n["spec"];
  if (!spec) return svc;
  if (!s(spec["type"]).empty()) svc.type = s(spec["type"]);
  svc.external_name = s(spec["externalName"]);
  each(spec["ports"], [&](const YAML::Node& p) {
    ServicePort sp;
    sp.name = s(p["name"]);
    if (!s(p["protocol"]).empty()) sp.protocol = s(p["protocol"]);
    sp.port = i32(p["port"]);
    sp.app_protocol = s(p["appProtocol"]);
    YAML::Node tp = p["targetPort"];
    if (tp && !tp.IsNull()) {
      IntOrString v;
      if (schema::classify_scalar(tp) == schema::ScalarKind::Int) {
        v.is_int = true;
        v.i = i32(tp);
      } else {
        v.is_int = false;
        v.s = tp.Scalar();
      }
      sp.target_port = v;
    }
    svc.ports.push_back(sp);
  });
  return svc;
}

EndpointPort endpoint_port(const YAML::Node& p) {
  EndpointPort ep;
  if (p["name"] && !p["name"].IsNull()) ep.name = s(p["name"]);
  if (p["port"] && !p["port"].IsNull()) ep.port = i32(p["port"]);
  if (!s(p["protocol"]).empty()) ep.protocol = s(p["protocol"]);
  return ep;
}

EndpointSlice to_endpoint_slice(const YAML::Node& n) {
  EndpointSlice es;
  es.meta = meta(n["metadata"], true);
  es.address_type = s(n["addressType"]);
  each(n["endpoints"], [&](const YAML::Node& e) {
    Endpoint ep;
    each(e["addresses"], [&](const YAML::Node& a) { ep.addresses.push_back(s(a)); });
    YAML::Node c = e["conditions"];
    if (c && c.IsMap()) {
      ep.conditions.ready = ob(c["ready"]);
      ep.conditions.serving = ob(c["serving"]);
      ep.conditions.terminating = ob(c["terminating"]);
    }
    es.endpoints.push_back(ep);
  });
  each(n["ports"], [&](const YAML::Node& p) { es.ports.push_back(endpoint_port(p)); });
  return es;
}

Endpoints to_endpoints(const YAML::Node& n) {
  Endpoints e;
  e.meta = meta(n["metadata"], true);
  each(n["subsets"], [&](const YAML::Node& sub) {
    EndpointsSubset ss;
    each(sub["addresses"], [&](const YAML::Node& a) { ss.addresses.push_back({s(a["ip"])}); });
    each(sub["notReadyAddresses"], [&](const YAML::Node& a) { ss.not_ready_addresses.push_back({s(a["ip"])}); });
    each(sub["ports"], [&](const YAML::Node& p) { ss.ports.push_back(endpoint_port(p)); });
    e.subsets.push_back(ss);
  });
  return e;
}

Secret to_secret(const YAML::Node& n, std::vector<FieldError>& errs) {
  Secret sec;
  sec.meta = meta(n["metadata"], true);
  sec.type = s(n["type"]);
  if (sec.type.empty()) sec.type = "Opaque";
  YAML::Node data = n["data"];
  if (data && data.IsMap()) {
    for (auto it = data.begin(); it != data.end(); ++it) {
      std::string k = it->first.Scalar();
      auto v = base64_decode(s(it->second));
      if (!v) errs.push_back({"data[" + k + "]", "Invalid value: illegal base64 data"});
      else sec.data[k] = *v;
    }
  }
  for (auto& [k, v] : smap(n["stringData"])) sec.data[k] = v;
  return sec;
}

struct KindInfo {
  Kind kind;
  bool namespaced;
  bool custom;  // a CRD kind: errors worded by apiextensions-apiserver, not encoding/json
};
std::optional<KindInfo> known_kind(const std::string& api_version, const std::string& kind) {
  struct Entry {
    const char* api_version;
    const char* kind;
    Kind k;
  };
  static const Entry kinds[] = {
      {"networking.k8s.io/v1", "Ingress", Kind::Ingress},
      {"networking.k8s.io/v1", "IngressClass", Kind::IngressClass},
      {"v1", "Service", Kind::Service},
      {"discovery.k8s.io/v1", "EndpointSlice", Kind::EndpointSlice},
      {"v1", "Endpoints", Kind::Endpoints},
      {"v1", "Secret", Kind::Secret},
      {"v1", "Namespace", Kind::Namespace},
      // The standard channel serves v1 and v1beta1 of these with one schema.
      {"gateway.networking.k8s.io/v1", "GatewayClass", Kind::GatewayClass},
      {"gateway.networking.k8s.io/v1beta1", "GatewayClass", Kind::GatewayClass},
      {"gateway.networking.k8s.io/v1", "Gateway", Kind::Gateway},
      {"gateway.networking.k8s.io/v1beta1", "Gateway", Kind::Gateway},
      {"gateway.networking.k8s.io/v1", "HTTPRoute", Kind::HTTPRoute},
      {"gateway.networking.k8s.io/v1beta1", "HTTPRoute", Kind::HTTPRoute},
      {"gateway.networking.k8s.io/v1", "ReferenceGrant", Kind::ReferenceGrant},
      {"gateway.networking.k8s.io/v1beta1", "ReferenceGrant", Kind::ReferenceGrant},
      {"gateway.networking.k8s.io/v1", "GRPCRoute", Kind::GRPCRoute},
      {"gateway.networking.k8s.io/v1", "BackendTLSPolicy", Kind::BackendTLSPolicy},
      {"gateway.networking.k8s.io/v1alpha3", "BackendTLSPolicy", Kind::BackendTLSPolicy},
  };
  for (const Entry& e : kinds)
    if (api_version == e.api_version && kind == e.kind)
      return KindInfo{e.k, !is_cluster_scoped(e.k), starts_with(api_version, "gateway.networking.k8s.io/")};
  return std::nullopt;
}

// Best-effort identity of a document whose kind we may not know, so that a
// broken edit can keep the last good version of the same object in force.
std::optional<ObjectKey> guess_key(const YAML::Node& doc) {
  std::string kind = to_lower(scalar_or(doc, "kind"));
  YAML::Node md = doc["metadata"];
  std::string name = md && md.IsMap() ? scalar_or(md, "name") : "";
  if (name.empty()) return std::nullopt;
  std::string ns = md && md.IsMap() ? scalar_or(md, "namespace") : "";
  static const std::pair<const char*, Kind> kinds[] = {{"ingress", Kind::Ingress},
                                                       {"ingressclass", Kind::IngressClass},
                                                       {"service", Kind::Service},
                                                       {"endpointslice", Kind::EndpointSlice},
                                                       {"endpoints", Kind::Endpoints},
                                                       {"secret", Kind::Secret},
                                                       {"gatewayclass", Kind::GatewayClass},
                                                       {"gateway", Kind::Gateway},
                                                       {"httproute", Kind::HTTPRoute},
                                                       {"referencegrant", Kind::ReferenceGrant},
                                                       {"namespace", Kind::Namespace},
                                                       {"grpcroute", Kind::GRPCRoute},
                                                       {"backendtlspolicy", Kind::BackendTLSPolicy}};
  for (auto& [n, k] : kinds)
    if (kind == n) return ObjectKey{k, is_cluster_scoped(k) ? "" : (ns.empty() ? "default" : ns), name};
  return std::nullopt;
}

void decode_object(const YAML::Node& doc, const std::string& file, const std::string& path_prefix,
                   std::vector<DecodedObject>& out, bool tolerate_unknown = false);

void decode_list(const YAML::Node& doc, const std::string& file, std::vector<DecodedObject>& out) {
  YAML::Node items = doc["items"];
  if (!items || items.IsNull()) return;
  if (!items.IsSequence()) {
    DecodedObject d;
    d.pos = {file, schema::line_of(items)};
    d.errors.push_back({Severity::Error, file, schema::line_of(items), "", "Invalid", "items: must be a list"});
    out.push_back(std::move(d));
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) decode_object(items[i], file, fmt::format("items[{}].", i), out);
}

void decode_object(const YAML::Node& doc, const std::string& file, const std::string& path_prefix,
                   std::vector<DecodedObject>& out, bool tolerate_unknown) {
  DecodedObject d;
  d.pos = {file, schema::line_of(doc)};
  auto fail = [&](int line, std::string reason, std::string msg) {
    d.errors.push_back({Severity::Error, file, line, d.key ? d.key->str() : "", std::move(reason), std::move(msg)});
  };
  if (!doc.IsMap()) {
    fail(schema::line_of(doc), "Invalid", "a manifest document must be an object with apiVersion and kind");
    out.push_back(std::move(d));
    return;
  }
  d.key = guess_key(doc);
  YAML::Node av = doc["apiVersion"];
  YAML::Node kd = doc["kind"];
  std::string api_version = scalar_or(doc, "apiVersion");
  std::string kind = scalar_or(doc, "kind");
  if (api_version.empty() || kind.empty()) {
    std::vector<std::string> missing;
    if (api_version.empty()) missing.push_back("apiVersion not set");
    if (kind.empty()) missing.push_back("kind not set");
    fail(schema::line_of(doc), "Invalid", fmt::format("error validating data: [{}]", fmt::join(missing, ", ")));
    out.push_back(std::move(d));
    return;
  }
  if (kind == "List" || (kind.size() > 4 && kind.substr(kind.size() - 4) == "List" &&
                         known_kind(api_version, kind.substr(0, kind.size() - 4)))) {
    decode_list(doc, file, out);
    return;
  }
  auto ki = known_kind(api_version, kind);
  if (!ki) {
    fail(schema::line_of(kd), "UnknownKind",
         fmt::format("{}no kind \"{}\" is registered for version \"{}\"", path_prefix.empty() ? "" : path_prefix + ": ",
                     kind, api_version));
    out.push_back(std::move(d));
    return;
  }
  // Identity is now certain.
  {
    YAML::Node md = doc["metadata"];
    std::string name = md && md.IsMap() ? scalar_or(md, "name") : "";
    std::string ns = ki->namespaced ? (md && md.IsMap() ? scalar_or(md, "namespace") : "") : "";
    if (ki->namespaced && ns.empty()) ns = "default";
    d.key = ObjectKey{ki->kind, ns, name};
  }
  const schema::Type* type = schema::lookup(api_version, kind);
  std::vector<TypeError> terrs;
  schema::check(doc, *type, "", terrs);
  // Like the API server: type errors first; otherwise all unknown/duplicate
  // fields in one "strict decoding error" message.
  std::vector<TypeError> hard, strict;
  for (auto& e : terrs) (e.unknown_field || e.duplicate_field ? strict : hard).push_back(e);
  // The API server's shape: Ingress.networking.k8s.io "name" is invalid: field: detail
  std::string group =
      api_version.find('/') == std::string::npos ? "" : "." + api_version.substr(0, api_version.find('/'));
  auto invalid = [&](const std::string& path, const std::string& message) {
    return fmt::format("{}{} \"{}\" is invalid: {}: {}", kind, group, d.key->name, path, message);
  };
  if (!hard.empty()) {
    // Custom resources are decoded as unstructured JSON, so their type errors
    // come from the OpenAPI schema validation rather than encoding/json.
    for (auto& e : hard)
      fail(e.line, "Invalid",
           ki->custom && !e.openapi_message.empty()
               ? invalid(e.path, e.openapi_message)
               : fmt::format("{} in version \"{}\" cannot be handled as a {}: json: {}", kind,
                             api_version.substr(api_version.find('/') + 1), kind, e.message));
  } else if (!strict.empty() && !tolerate_unknown) {
    std::vector<std::string> parts;
    for (auto& e : strict) parts.push_back(e.message);
    fail(strict.front().line, "StrictDecoding", fmt::format("strict decoding error: {}", fmt::join(parts, ", ")));
  }
  if (!d.errors.empty()) {
    out.push_back(std::move(d));
    return;
  }
  std::vector<FieldError> ferrs;
  Object obj;
  switch (ki->kind) {
    case Kind::Ingress: obj = to_ingress(doc, ferrs); break;
    case Kind::IngressClass: obj = to_ingress_class(doc); break;
    case Kind::Service: obj = to_service(doc); break;
    case Kind::EndpointSlice: obj = to_endpoint_slice(doc); break;
    case Kind::Endpoints: obj = to_endpoints(doc); break;
    case Kind::Secret: obj = to_secret(doc, ferrs); break;
    case Kind::GatewayClass: obj = to_gateway_class(doc, ferrs); break;
    case Kind::Gateway: obj = to_gateway(doc, ferrs); break;
    case Kind::HTTPRoute: obj = to_http_route(doc, ferrs); break;
    case Kind::ReferenceGrant: obj = to_reference_grant(doc, ferrs); break;
    case Kind::Namespace: obj = to_namespace(doc); break;
    case Kind::GRPCRoute: obj = to_grpc_route(doc, ferrs); break;
    case Kind::BackendTLSPolicy: obj = to_backend_tls_policy(doc, ferrs); break;
  }
  bool blocked = std::any_of(ferrs.begin(), ferrs.end(), is_blocking);
  // A field reported missing is not also reported for the empty value the
  // struct holds in its place (nor are the fields under it).
  auto under_missing = [&](const std::string& path) {
    for (const auto& e : ferrs)
      if (e.message == "Required value" && starts_with(path, e.path) &&
          (path.size() == e.path.size() || path[e.path.size()] == '.' || path[e.path.size()] == '['))
        return true;
    return false;
  };
  for (auto& e : validate(obj, !blocked))
    if (!under_missing(e.path)) ferrs.push_back(e);
  if (!ferrs.empty()) {
    for (auto& e : ferrs) fail(line_for_path(doc, e.path), "Invalid", invalid(e.path, e.message));
    out.push_back(std::move(d));
    return;
  }
  d.object = std::move(obj);
  out.push_back(std::move(d));
}

// A JSON value as the YAML tree the schema checker walks. Strings are tagged
// as quoted, so that "80" or "true" stay strings, as they are in JSON.
YAML::Node json_to_yaml(const nlohmann::json& j) {
  using J = nlohmann::json::value_t;
  switch (j.type()) {
    case J::object: {
      YAML::Node n(YAML::NodeType::Map);
      for (auto it = j.begin(); it != j.end(); ++it) n[it.key()] = json_to_yaml(it.value());
      return n;
    }
    case J::array: {
      YAML::Node n(YAML::NodeType::Sequence);
      for (const auto& e : j) n.push_back(json_to_yaml(e));
      return n;
    }
    case J::string: {
      YAML::Node n(j.get<std::string>());
      n.SetTag("!");
      return n;
    }
    case J::boolean: {
      YAML::Node n(j.get<bool>() ? "true" : "false");
      n.SetTag("tag:yaml.org,2002:bool");
      return n;
    }
    case J::number_integer:
    case J::number_unsigned: {
      YAML::Node n(j.dump());
      n.SetTag("tag:yaml.org,2002:int");
      return n;
    }
    case J::number_float: return YAML::Node(j.dump());
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

}  // namespace

DecodedObject decode_api_object(const nlohmann::json& obj, const std::string& api_version, const std::string& kind,
                                const std::string& source) {
  std::vector<DecodedObject> out;
  try {
    YAML::Node doc = json_to_yaml(obj);
    if (doc.IsMap()) {
      doc["apiVersion"] = api_version;
      doc["kind"] = kind;
    }
    decode_object(doc, source, "", out, true);
  } catch (const YAML::Exception&) {
    out.clear();
  }
  if (out.size() != 1) {
    DecodedObject d;
    d.pos = {source, 0};
    d.errors.push_back({Severity::Error, source, 0, "", "Internal", "could not decode this object"});
    return d;
  }
  return std::move(out.front());
}

DecodeResult decode_manifests(std::string_view text, const std::string& file) {
  DecodeResult r;
  // Split on document markers ourselves, so that a syntax error in one
  // document does not hide the others in the same file.
  std::vector<std::pair<int, std::string>> docs;  // first line (0-based), text
  {
    std::string cur;
    int cur_start = 0;
    int line = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      std::string_view ln = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      bool marker = ln.substr(0, 3) == "---" && (ln.size() == 3 || ln[3] == ' ' || ln[3] == '\t' || ln[3] == '\r');
      if (marker) {
        docs.emplace_back(cur_start, std::move(cur));
        cur.clear();
        cur_start = line;
        // keep the line (minus the marker) so inline content after "--- " parses
        cur += std::string(3, ' ');
        cur += std::string(ln.substr(3));
        cur += '\n';
      } else {
        cur += std::string(ln);
        if (nl != std::string_view::npos) cur += '\n';
      }
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
      ++line;
    }
    docs.emplace_back(cur_start, std::move(cur));
  }
  int total_lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + (text.empty() || text.back() == '\n' ? 0 : 1);
  if (total_lines == 0) total_lines = 1;
  for (auto& [start, body] : docs) {
    if (auto se = yaml_syntax_error(body)) {
      int line = std::min(se->line + start, total_lines);
      r.file_errors.push_back({Severity::Error, file, line, "", "Syntax",
                               fmt::format("error converting YAML to JSON: yaml: line {}: {}", line, se->message)});
      continue;
    }
    YAML::Node node;
    try {
      node = YAML::Load(body);
    } catch (const YAML::Exception& e) {
      int line = std::min(e.mark.line >= 0 ? e.mark.line + 1 + start : start + 1, total_lines);
      r.file_errors.push_back({Severity::Error, file, line, "", "Syntax",
                               fmt::format("error converting YAML to JSON: yaml: line {}: {}", line, e.msg)});
      continue;
    }
    if (!node || node.IsNull()) continue;  // empty document
    schema::tl_line_offset = start;
    try {
      decode_object(node, file, "", r.objects);
    } catch (const YAML::Exception& e) {
      // Extraction runs after the schema check, so this is a bug of ours;
      // still, one odd document must not take the process down.
      r.file_errors.push_back({Severity::Error, file, start + 1, "", "Internal",
                               fmt::format("could not decode this document: {}", e.what())});
    }
    schema::tl_line_offset = 0;
  }
  return r;
}

}  // namespace ingressd::model
