// Validation of the Gateway API kinds as the API server applies their CRDs
// (config/crd/standard/gateway.networking.k8s.io_*.yaml): first the OpenAPI
// schema (patterns, enums, bounds, list sizes, list-map keys), then the CEL
// rules (x-kubernetes-validations), each error worded as the API server words
// it. Like apiextensions-apiserver, the CEL rules are not evaluated when the
// schema phase found a "blocking" error (required, enum, too long, too many):
// one note says so instead. Internal to src/model: validate() calls it.
#pragma once
#include <vector>

#include "model/objects.h"
#include "model/validate.h"

namespace ingressd::model {

// HTTPRequestRedirectFilter.statusCode's enum, as field.NotSupported lists it.
inline constexpr const char* kRedirectStatusCodes = "\"301\", \"302\", \"303\", \"307\", \"308\"";

// The errors of the schema phase and then of the CEL rules of one Gateway
// API object (a no-op for other kinds). `rules` false skips the CEL phase,
// for a caller that already holds a blocking error of this object.
void validate_gateway_api(const Object& o, bool rules, std::vector<FieldError>& out);

}  // namespace ingressd::model
