// Reads manifest files from disk: a file, or a folder read recursively for
// *.yaml, *.yml and *.json, in a stable (sorted) order.
#pragma once
#include <string>
#include <vector>

#include "sources/object_store.h"

namespace ingressd {

std::vector<std::string> list_manifest_files(const std::string& root, Diagnostics& diags);
LoadedFile load_manifest_file(const std::string& path);
std::vector<LoadedFile> load_manifests(const std::string& root, Diagnostics& diags);

}  // namespace ingressd
