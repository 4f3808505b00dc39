// The API schema of the kinds we decode, as data, and a strict checker that
// walks a YAML tree against it (unknown fields, duplicate fields, wrong types).
#pragma once
#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ingressd::model::schema {

enum class T { String, Int32, Int64, Bool, Float, Object, Array, StringMap, IntOrString, Any, Time, Bytes };

struct Type;
using TypeP = std::shared_ptr<const Type>;
struct Type {
  T t;
  std::string go_name;                               // Go type name, for messages ("ServiceBackendPort")
  std::vector<std::pair<std::string, TypeP>> fields;  // for Object
  TypeP elem;                                        // for Array
  bool open = false;                                 // Object that accepts unknown fields (status etc.)
};

// The schema for a top-level object of this apiVersion/kind, or nullptr.
const Type* lookup(const std::string& api_version, const std::string& kind);

struct TypeError {
  std::string path;  // "spec.rules[0].host"
  int line = 0;      // 1-based
  std::string message;
  bool unknown_field = false;  // strict decoding class (collected into one message like the API server)
  bool duplicate_field = false;
  // The same type error as kube-openapi words it for custom resources
  // ("Invalid value: \"80\": spec.port in body must be of type integer: \"string\"");
  // empty for unknown and duplicate fields.
  std::string openapi_message;
};

// Scalar resolution the way sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) does it.
enum class ScalarKind { Null, Bool, Int, Float, String };
ScalarKind classify_scalar(const YAML::Node& n);
bool scalar_bool(const YAML::Node& n);  // only valid when classify_scalar == Bool
std::optional<long long> scalar_int(const YAML::Node& n);  // Int, or Float with integral value

// Documents are parsed one at a time from their own text; this is the line
// of the file where the current one starts, added to every reported line.
inline thread_local int tl_line_offset = 0;
// 1-based file line of a node (0 when unknown).
inline int line_of(const YAML::Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 + tl_line_offset : 0; }

void check(const YAML::Node& node, const Type& type, const std::string& path, std::vector<TypeError>& out);

}  // namespace ingressd::model::schema
