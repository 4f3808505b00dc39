// Typed extraction of the Gateway API kinds and Namespace from a YAML tree
// that schema::check accepted, with the CRD's OpenAPI defaults applied (the
// API server defaults before it validates). Missing required fields are
// reported here ("Required value"), since the typed structs cannot tell an
// absent string from an empty one; everything else is gateway_validate.cc's.
// Internal to src/model: decode.cc calls these.
#pragma once
#include <yaml-cpp/yaml.h>

#include <vector>

#include "model/objects.h"
#include "model/validate.h"

namespace ingressd::model {

GatewayClass to_gateway_class(const YAML::Node& doc, std::vector<FieldError>& errs);
Gateway to_gateway(const YAML::Node& doc, std::vector<FieldError>& errs);
HTTPRoute to_http_route(const YAML::Node& doc, std::vector<FieldError>& errs);
ReferenceGrant to_reference_grant(const YAML::Node& doc, std::vector<FieldError>& errs);
Namespace to_namespace(const YAML::Node& doc);
GRPCRoute to_grpc_route(const YAML::Node& doc, std::vector<FieldError>& errs);
BackendTLSPolicy to_backend_tls_policy(const YAML::Node& doc, std::vector<FieldError>& errs);

}  // namespace ingressd::model
