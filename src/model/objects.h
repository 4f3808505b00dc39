// Typed Kubernetes objects: only the fields ingressd reads. Decoding (decode.h)
// checks every field of the real API schema; these structs keep what we use.
#pragma once
#include <cstdint>
#include <climits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/gateway_objects.h"
#include "model/object_meta.h"

namespace ingressd::model {

// In the order of the Object variant below (object_kind relies on it); new
// kinds go at the end so that the store's ordering of the others stays.
enum class Kind {
  Ingress,
  IngressClass,
  Service,
  EndpointSlice,
  Endpoints,
  Secret,
  GatewayClass,
  Gateway,
  HTTPRoute,
  ReferenceGrant,
  Namespace,
  GRPCRoute,
  BackendTLSPolicy,
};
const char* kind_name(Kind k);

// An int-or-string field (targetPort).
struct IntOrString {
  bool is_int = true;
  int32_t i = 0;
  std::string s;
};

struct ServiceBackendPort {
  std::optional<int32_t> number;
  std::string name;
};
struct IngressServiceBackend {
  std::string name;
  ServiceBackendPort port;
};
struct TypedLocalObjectReference {
  std::string api_group;
  std::string kind;
  std::string name;
};
struct IngressBackend {
  std::optional<IngressServiceBackend> service;
  std::optional<TypedLocalObjectReference> resource;
};

enum class PathType { Exact, Prefix, ImplementationSpecific };
const char* path_type_name(PathType t);

struct HTTPIngressPath {
  std::string path;  // "" when absent (allowed for ImplementationSpecific)
  PathType path_type = PathType::Prefix;
  IngressBackend backend;
  int line = 0;
};
struct IngressRule {
  std::string host;  // "" = every host
  bool has_http = false;
  std::vector<HTTPIngressPath> paths;
  int line = 0;
};
struct IngressTLS {
  std::vector<std::string> hosts;
  std::string secret_name;
};
struct Ingress {
  ObjectMeta meta;
  std::optional<std::string> ingress_class_name;
  std::optional<IngressBackend> default_backend;
  std::vector<IngressTLS> tls;
  std::vector<IngressRule> rules;
};

struct IngressClassParameters {
  std::string api_group, kind, name, scope, namespace_;
};
struct IngressClass {
  ObjectMeta meta;
  std::string controller;
  std::optional<IngressClassParameters> parameters;
};

struct ServicePort {
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  std::optional<IntOrString> target_port;  // absent = same as port
  std::string app_protocol;
};
struct Service {
  ObjectMeta meta;
  std::string type = "ClusterIP";
  std::string external_name;
  std::vector<ServicePort> ports;
};

struct EndpointConditions {
  std::optional<bool> ready, serving, terminating;
};
struct Endpoint {
  std::vector<std::string> addresses;
  EndpointConditions conditions;
};
struct EndpointPort {
  std::optional<std::string> name;
  std::optional<int32_t> port;
  std::string protocol = "TCP";
};
struct EndpointSlice {
  ObjectMeta meta;
  std::string address_type;
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  std::string service_name() const;  // label kubernetes.io/service-name
};

struct EndpointAddress {
  std::string ip;
};
struct EndpointsSubset {
  std::vector<EndpointAddress> addresses;
  std::vector<EndpointAddress> not_ready_addresses;
  std::vector<EndpointPort> ports;
};
struct Endpoints {
  ObjectMeta meta;
  std::vector<EndpointsSubset> subsets;
};

struct Secret {
  ObjectMeta meta;
  std::string type;
  std::map<std::string, std::string> data;  // decoded bytes (data base64-decoded, stringData merged over it)
};

using Object = std::variant<Ingress, IngressClass, Service, EndpointSlice, Endpoints, Secret, GatewayClass, Gateway,
                            HTTPRoute, ReferenceGrant, Namespace, GRPCRoute, BackendTLSPolicy>;
// Cluster-scoped kinds have namespace_ "" in their metadata and key.
bool is_cluster_scoped(Kind k);
Kind object_kind(const Object& o);
const ObjectMeta& object_meta(const Object& o);

// kind/namespace/name: the identity of an object in the store.
struct ObjectKey {
  Kind kind;
  std::string namespace_;
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
  std::string str() const;  // "Ingress default/foo", "IngressClass ingressd", "HTTPRoute ns/r"
};
ObjectKey object_key(const Object& o);

}  // namespace ingressd::model
