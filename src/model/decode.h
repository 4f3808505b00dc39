// Strict decoding of Kubernetes manifests, like the API server's: unknown
// kinds, unknown or duplicate fields, wrong types and invalid values are
// errors naming the file, line, object and field path. No I/O here.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnostic.h"
#include "model/objects.h"

#include <nlohmann/json_fwd.hpp>

namespace ingressd::model {

struct DecodedObject {
  std::optional<Object> object;        // set when the document decoded and validated
  std::optional<ObjectKey> key;        // best guess at identity, also for a failed object
  SourcePos pos;
  Diagnostics errors;                  // non-empty exactly when !object
};

struct DecodeResult {
  std::vector<DecodedObject> objects;  // one per document or List item
  Diagnostics file_errors;             // errors that are not about one object (syntax)
};

// Decodes YAML (multi-document) or JSON text. `file` is only used in messages.
DecodeResult decode_manifests(std::string_view text, const std::string& file);

// Decodes one object as the API server serves it (JSON, from a LIST or a
// WATCH event). apiVersion and kind are set from the arguments, since list
// items carry neither. The server validated it already, and a newer server may
// add fields we do not know: unknown fields are ignored here, while wrong
// types and invalid values still reject the object. `source` names it in
// messages ("kube").
DecodedObject decode_api_object(const nlohmann::json& obj, const std::string& api_version, const std::string& kind,
                                const std::string& source);

}  // namespace ingressd::model
