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

}  // namespace ingressd::model
