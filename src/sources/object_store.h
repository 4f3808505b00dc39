// The ObjectStore: every object ingressd knows, keyed by kind/namespace/name,
// with where it came from. One writer (the control thread); readers get
// immutable snapshots.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/diagnostic.h"
#include "model/decode.h"
#include "model/objects.h"
#include "model/snapshot.h"

namespace ingressd {

// One manifest file as read and decoded.
struct LoadedFile {
  std::string path;
  model::DecodeResult decoded;
  Diagnostics read_errors;  // could not read the file at all
  int64_t mtime_ns = 0;     // modification time when read (0 if unknown)
};

class ObjectStore {
 public:
  // File mode: the new contents of every manifest file. Objects that decoded
  // are taken; an object that failed keeps its last good version in force
  // (reported as a warning); objects gone from the files are removed.
  // Returns the diagnostics of this load.
  Diagnostics replace_from_files(const std::vector<LoadedFile>& files);

  // Kube mode: one object added or changed (`obj` set) or deleted (nullopt),
  // as a watch event says. Changes accumulate in a working copy until
  // commit(), so that a burst of events costs one copy of the store.
  // Returns whether the store changed.
  bool apply(const model::ObjectKey& key, std::optional<StoredObject> obj);
  // Makes the changes applied since the last commit visible to snapshot().
  // Returns whether there were any.
  bool commit();

  std::shared_ptr<const Snapshot> snapshot() const { return snap_; }

 private:
  std::shared_ptr<const Snapshot> snap_ = std::make_shared<Snapshot>();
  std::shared_ptr<Snapshot> work_;  // pending apply()s, null when none
};

}  // namespace ingressd
