#include "sources/object_store.h"

#include <fmt/format.h>

#include <set>

namespace ingressd {

Diagnostics ObjectStore::replace_from_files(const std::vector<LoadedFile>& files) {
  Diagnostics diags;
  auto next = std::make_shared<Snapshot>();
  const Snapshot& prev = *snap_;
  std::set<model::ObjectKey> failed_keys;
  std::set<std::string> degraded_files;  // a file with an error we cannot pin to one object

  for (const LoadedFile& f : files) {
    for (auto& d : f.read_errors) diags.push_back(d);
    for (auto& d : f.decoded.file_errors) diags.push_back(d);
    if (!f.read_errors.empty() || !f.decoded.file_errors.empty()) degraded_files.insert(f.path);
    for (const model::DecodedObject& d : f.decoded.objects) {
      if (!d.object) {
        for (auto& e : d.errors) diags.push_back(e);
        if (d.key) failed_keys.insert(*d.key);
        else degraded_files.insert(f.path);
        continue;
      }
      model::ObjectKey key = model::object_key(*d.object);
      auto [it, inserted] = next->objects.emplace(key, StoredObject{*d.object, d.pos});
      if (!inserted) {
        diags.push_back({Severity::Error, d.pos.file, d.pos.line, key.str(), "Duplicate",
                         fmt::format("duplicate object: already defined at {}; this copy is ignored", it->second.pos.str())});
      }
    }
  }
  // Last good versions stay in force for objects whose new version is bad.
  for (const auto& [key, so] : prev.objects) {
    if (next->objects.count(key)) continue;
    bool keep = failed_keys.count(key) > 0 || degraded_files.count(so.pos.file) > 0;
    if (!keep) continue;
    next->objects.emplace(key, so);
    diags.push_back({Severity::Warning, so.pos.file, so.pos.line, key.str(), "KeptLastGood",
                     "the new version of this object is invalid; its last good version stays in force"});
  }
  snap_ = std::move(next);
  work_.reset();
  return diags;
}

bool ObjectStore::apply(const model::ObjectKey& key, std::optional<StoredObject> obj) {
  const Snapshot& cur = work_ ? *work_ : *snap_;
  auto it = cur.objects.find(key);
  if (!obj && it == cur.objects.end()) return false;
  if (!work_) work_ = std::make_shared<Snapshot>(*snap_);
  if (obj) work_->objects.insert_or_assign(key, std::move(*obj));
  else work_->objects.erase(key);
  return true;
}

bool ObjectStore::commit() {
  if (!work_) return false;
  snap_ = std::move(work_);
  work_.reset();
  return true;
}

}  // namespace ingressd
