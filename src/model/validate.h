// Semantic validation of decoded objects, following the API server's
// validation (k8s.io/kubernetes pkg/apis/networking/validation and core).
#pragma once
#include <string>
#include <vector>

#include "model/objects.h"

namespace ingressd::model {

struct FieldError {
  std::string path;     // "spec.rules[0].host"
  std::string message;  // "Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address"
};

// `rules` is for the Gateway API kinds (gateway_validate.h): false when the
// decoder already reported a blocking error (is_blocking), so that their CEL
// rules are skipped as the API server skips them.
std::vector<FieldError> validate(const Object& o, bool rules = true);

// An error after which the API server does not evaluate a CRD's CEL rules:
// Required, Unsupported value (enum), Too long, Too many (and type errors,
// which reject an object before validation here).
bool is_blocking(const FieldError& e);

bool is_dns1123_subdomain(std::string_view s);
bool is_dns1123_label(std::string_view s);
bool is_dns1035_label(std::string_view s);
bool is_wildcard_dns1123_subdomain(std::string_view s);
bool is_ip_address(std::string_view s);
bool is_iana_svc_name(std::string_view s);

}  // namespace ingressd::model
