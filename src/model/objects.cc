#include "model/objects.h"

namespace ingressd::model {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Ingress: return "Ingress";
    case Kind::IngressClass: return "IngressClass";
    case Kind::Service: return "Service";
    case Kind::EndpointSlice: return "EndpointSlice";
    case Kind::Endpoints: return "Endpoints";
    case Kind::Secret: return "Secret";
    case Kind::GatewayClass: return "GatewayClass";
    case Kind::Gateway: return "Gateway";
    case Kind::HTTPRoute: return "HTTPRoute";
    case Kind::ReferenceGrant: return "ReferenceGrant";
    case Kind::Namespace: return "Namespace";
    case Kind::GRPCRoute: return "GRPCRoute";
    case Kind::BackendTLSPolicy: return "BackendTLSPolicy";
  }
  return "?";
}

const char* path_type_name(PathType t) {
  switch (t) {
    case PathType::Exact: return "Exact";
    case PathType::Prefix: return "Prefix";
    case PathType::ImplementationSpecific: return "ImplementationSpecific";
  }
  return "?";
}

std::string EndpointSlice::service_name() const {
  auto it = meta.labels.find("kubernetes.io/service-name");
  return it == meta.labels.end() ? std::string() : it->second;
}

Kind object_kind(const Object& o) { return static_cast<Kind>(o.index()); }
static_assert(std::variant_size_v<Object> == static_cast<size_t>(Kind::BackendTLSPolicy) + 1,
              "Kind and Object list the same kinds in the same order");
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(Kind::GatewayClass), Object>, GatewayClass>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(Kind::BackendTLSPolicy), Object>, BackendTLSPolicy>);

bool is_cluster_scoped(Kind k) { return k == Kind::IngressClass || k == Kind::GatewayClass || k == Kind::Namespace; }

const ObjectMeta& object_meta(const Object& o) {
  return std::visit([](const auto& x) -> const ObjectMeta& { return x.meta; }, o);
}

ObjectKey object_key(const Object& o) {
  const ObjectMeta& m = object_meta(o);
  return ObjectKey{object_kind(o), m.namespace_, m.name};
}

std::string ObjectKey::str() const {
  if (namespace_.empty()) return std::string(kind_name(kind)) + " " + name;
  return std::string(kind_name(kind)) + " " + namespace_ + "/" + name;
}

}  // namespace ingressd::model
