#include "sources/manifest_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <filesystem>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace ingressd {
namespace fs = std::filesystem;

namespace {
bool is_manifest_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::string name = p.filename().string();
  if (!name.empty() && name[0] == '.') return false;  // editor swap files, hidden files
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}
}  // namespace

std::vector<std::string> list_manifest_files(const std::string& root, Diagnostics& diags) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::file_status st = fs::status(root, ec);
  if (ec || !fs::exists(st)) {
    diags.push_back({Severity::Error, root, 0, "", "NotFound", "no such file or directory"});
    return out;
  }
  if (!fs::is_directory(st)) {
    out.push_back(root);
    return out;
  }
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink |
                                                            fs::directory_options::skip_permission_denied,
                                                  ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().rfind('.', 0) == 0 && it->is_directory()) {
      it.disable_recursion_pending();  // .git and friends
      continue;
    }
    if (it->is_regular_file() && is_manifest_name(it->path())) out.push_back(it->path().string());
  }
  if (ec) diags.push_back({Severity::Error, root, 0, "", "ReadError", ec.message()});
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
int64_t mtime_ns_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}
}  // namespace

LoadedFile load_manifest_file(const std::string& path) {
  LoadedFile f;
  f.path = path;
  f.mtime_ns = mtime_ns_of(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    f.read_errors.push_back({Severity::Error, path, 0, "", "ReadError", "cannot read file"});
    return f;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  f.decoded = model::decode_manifests(ss.str(), path);
  return f;
}

const LoadedFile& ManifestCache::load(const std::string& path) {
  // Keyed by content, not mtime: file timestamps are coarse (a jiffy), and two
  // same-sized writes in one tick must not look unchanged. Reading is cheap;
  // decoding is what we save.
  std::ifstream in(path, std::ios::binary);
  Entry& e = entries_[path];
  if (!in) {
    e = Entry{};
    e.file = load_manifest_file(path);
    return e.file;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  uint64_t h = std::hash<std::string>{}(text);
  const int64_t mtime = mtime_ns_of(path);
  if (e.size == text.size() && e.hash == h && !e.file.path.empty()) {
    e.file.mtime_ns = mtime;
    return e.file;
  }
  e.size = text.size();
  e.hash = h;
  e.file = LoadedFile{};
  e.file.path = path;
  e.file.decoded = model::decode_manifests(text, path);
  e.file.mtime_ns = mtime;
  return e.file;
}

void ManifestCache::retain_only(const std::vector<std::string>& paths) {
  std::set<std::string> keep(paths.begin(), paths.end());
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (keep.count(it->first)) ++it;
    else it = entries_.erase(it);
  }
}

std::vector<LoadedFile> load_manifests(const std::string& root, Diagnostics& diags) {
  std::vector<LoadedFile> files;
  for (const std::string& p : list_manifest_files(root, diags)) files.push_back(load_manifest_file(p));
  return files;
}

}  // namespace ingressd
