// Typed reads from a YAML tree that schema::check has accepted, shared by the
// decoders of decode.cc and gateway_decode.cc. Internal to src/model.
//
// yaml-cpp pitfall: assigning one YAML::Node to another that already refers
// to a node of the tree rebinds that tree node (Node::operator= is "assign
// the value"). These helpers only copy-construct nodes and never assign.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/strings.h"
#include "model/object_meta.h"
#include "model/schema.h"

namespace ingressd::model::fields {

inline bool present(const YAML::Node& n) { return n && !n.IsNull(); }
inline std::string s(const YAML::Node& n) { return (n && n.IsScalar() && !n.IsNull()) ? n.Scalar() : std::string(); }
inline std::optional<std::string> os(const YAML::Node& n) {
  if (!present(n)) return std::nullopt;
  return s(n);
}
inline int32_t i32(const YAML::Node& n) {
  if (!n || !n.IsScalar()) return 0;
  return static_cast<int32_t>(schema::scalar_int(n).value_or(0));
}
inline std::optional<int32_t> oi32(const YAML::Node& n) {
  if (!present(n)) return std::nullopt;
  return i32(n);
}
inline std::optional<bool> ob(const YAML::Node& n) {
  if (!present(n)) return std::nullopt;
  return schema::scalar_bool(n);
}
inline std::map<std::string, std::string> smap(const YAML::Node& n) {
  std::map<std::string, std::string> m;
  if (n && n.IsMap())
    for (auto it = n.begin(); it != n.end(); ++it) m[it->first.Scalar()] = s(it->second);
  return m;
}
// Calls f for each element; null elements (allowed by the schema, as in
// encoding/json) are passed as an empty map so that lookups stay valid.
template <typename F>
void each(const YAML::Node& n, F f) {
  if (!n || !n.IsSequence()) return;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    if (e.IsNull()) f(YAML::Node(YAML::NodeType::Map));
    else f(e);
  }
}
// As each, with the element's index.
template <typename F>
void each_i(const YAML::Node& n, F f) {
  size_t i = 0;
  each(n, [&](const YAML::Node& e) { f(e, i++); });
}

inline ObjectMeta meta(const YAML::Node& n, bool namespaced) {
  ObjectMeta m;
  if (!n || !n.IsMap()) {
    if (namespaced) m.namespace_ = "default";
    return m;  // validation reports the missing name
  }
  m.name = s(n["name"]);
  m.namespace_ = namespaced ? s(n["namespace"]) : "";
  if (namespaced && m.namespace_.empty()) m.namespace_ = "default";
  m.uid = s(n["uid"]);
  m.resource_version = s(n["resourceVersion"]);
  if (present(n["generation"]) && n["generation"].IsScalar())
    m.generation = schema::scalar_int(n["generation"]).value_or(0);
  m.creation_timestamp = s(n["creationTimestamp"]);
  if (YAML::Node g = n["generation"]; g && g.IsScalar()) {
    try {
      m.generation = g.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
  }
  if (auto t = parse_rfc3339_ns(m.creation_timestamp)) m.creation_ns = *t;
  m.labels = smap(n["labels"]);
  m.annotations = smap(n["annotations"]);
  return m;
}

}  // namespace ingressd::model::fields
