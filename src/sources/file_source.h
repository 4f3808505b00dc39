// Watches a manifest file or folder (recursively) with inotify. The control
// loop polls fd(), calls drain() when readable, and reloads after a short
// hold-off so that a burst of writes gives one reload.
#pragma once
#include <map>
#include <set>
#include <string>

namespace ingressd {

class FileWatcher {
 public:
  explicit FileWatcher(std::string root);
  ~FileWatcher();
  bool start(std::string& err);
  int fd() const { return fd_; }
  // Reads pending events; true if any may change what the manifests say.
  bool drain();
  // Some manifest file was modified and not yet closed by its writer.
  bool writes_in_progress() const { return !writing_.empty(); }
  // Counts every event on manifest files (writes too): a reload compares it
  // before and after reading, to notice a file that changed under it.
  uint64_t changes() const { return changes_; }

 private:
  void watch_tree(const std::string& dir);
  std::string root_;
  int fd_ = -1;
  std::map<int, std::string> dirs_;  // watch descriptor → directory
  std::set<std::string> writing_;    // files modified since their last IN_CLOSE_WRITE
  uint64_t changes_ = 0;
};

}  // namespace ingressd
