// Reads manifest files from disk: a file, or a folder read recursively for
// *.yaml, *.yml and *.json, in a stable (sorted) order.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sources/object_store.h"

namespace ingressd {

std::vector<std::string> list_manifest_files(const std::string& root, Diagnostics& diags);
LoadedFile load_manifest_file(const std::string& path);
std::vector<LoadedFile> load_manifests(const std::string& root, Diagnostics& diags);

// Remembers decoded files by content, so that a reload decodes only what
// changed: with 10,000 Ingresses, decoding is most of a reload.
class ManifestCache {
 public:
  const LoadedFile& load(const std::string& path);
  void retain_only(const std::vector<std::string>& paths);  // forget deleted files

 private:
  struct Entry {
    uint64_t hash = 0, size = 0;
    LoadedFile file;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace ingressd
