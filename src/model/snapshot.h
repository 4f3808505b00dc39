// A Snapshot: every object of one moment, keyed by kind/namespace/name, with
// where each came from. Immutable once published by the ObjectStore; read by
// compile(), explain and the TLS certificate store, none of which need to know
// which source filled it.
#pragma once
#include <map>
#include <string>

#include "model/decode.h"
#include "model/objects.h"

namespace ingressd {

struct StoredObject {
  model::Object object;
  model::SourcePos pos;
};

struct Snapshot {
  std::map<model::ObjectKey, StoredObject> objects;
  size_t count(model::Kind k) const {
    size_t n = 0;
    for (auto& [key, _] : objects) n += key.kind == k;
    return n;
  }
  template <typename T>
  const T* get(model::Kind k, const std::string& ns, const std::string& name) const {
    auto it = objects.find(model::ObjectKey{k, ns, name});
    return it == objects.end() ? nullptr : std::get_if<T>(&it->second.object);
  }
};

}  // namespace ingressd
