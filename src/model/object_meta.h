// Identity and metadata every Kubernetes object carries, and where a decoded
// object came from. Shared by objects.h and gateway_objects.h.
#pragma once
#include <climits>
#include <cstdint>
#include <map>
#include <string>

namespace ingressd::model {

// Where an object came from: a file and the line of its document (1-based).
struct SourcePos {
  std::string file;
  int line = 0;
  std::string str() const { return line > 0 ? file + ":" + std::to_string(line) : file; }
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // "default" when absent (namespaced kinds), "" for cluster-scoped
  std::string uid;
  std::string resource_version;
  // metadata.generation: the API server bumps it on every spec change; the
  // Gateway API's conditions carry it back as observedGeneration. 0 = absent.
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339 as written; "" when absent (file mode)
  int64_t creation_ns = INT64_MAX;  // the same instant in ns since the epoch; absent = newest
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

}  // namespace ingressd::model
