#include "sources/file_source.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/log.h"

namespace ingressd {
namespace fs = std::filesystem;

namespace {
// IN_MODIFY does not trigger a reload: a file rewritten in place is
// truncated first and written after, and reading it in between would drop its
// objects for a moment. It marks the file as being written until its
// IN_CLOSE_WRITE, and reloads wait for that. Renames (the atomic way, and
// ConfigMap volume swaps) are IN_MOVED_TO. IN_CREATE matters for new folders.
constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |
                           IN_MOVE_SELF | IN_MODIFY;
}

FileWatcher::FileWatcher(std::string root) : root_(std::move(root)) {}
FileWatcher::~FileWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

bool FileWatcher::start(std::string& err) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    err = "inotify_init1 failed";
    return false;
  }
  std::error_code ec;
  if (fs::is_directory(root_, ec)) watch_tree(root_);
  else {
    // A single file: watch its folder (editors replace files by renaming).
    fs::path parent = fs::path(root_).parent_path();
    watch_tree(parent.empty() ? "." : parent.string());
  }
  return true;
}

void FileWatcher::watch_tree(const std::string& dir) {
  int wd = ::inotify_add_watch(fd_, dir.c_str(), kMask);
  if (wd >= 0) dirs_[wd] = dir;
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return;  // single-file mode: the parent folder only
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && it->path().filename().string().rfind('.', 0) != 0) watch_tree(it->path().string());
  }
}

bool FileWatcher::drain() {
  alignas(inotify_event) char buf[16384];
  bool relevant = false;
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;
        ++changes_;
        continue;
      }
      auto d = dirs_.find(ev->wd);
      if (ev->mask & IN_IGNORED) {
        if (d != dirs_.end()) dirs_.erase(d);
        continue;
      }
      std::string name = ev->len ? std::string(ev->name) : std::string();
      if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && d != dirs_.end()) {
        watch_tree(d->second + "/" + name);  // a new folder: watch it and what it already holds
        relevant = true;
        continue;
      }
      // Kubernetes ConfigMap/Secret volumes swap a "..data" symlink atomically.
      if (name.rfind("..", 0) == 0 && (ev->mask & (IN_MOVED_TO | IN_CREATE))) {
        relevant = true;
        ++changes_;
        continue;
      }
      if (!name.empty() && name[0] == '.') continue;  // editor swap files
      if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR)) continue;  // its content comes with IN_CLOSE_WRITE
      std::string full = (d != dirs_.end() ? d->second : std::string()) + "/" + name;
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_ISDIR)) {
        relevant = true;  // a watched folder went away or moved
        ++changes_;
        continue;
      }
      // Only manifest files matter (a log written into the folder must not cause reloads).
      auto ends = [&](const char* suf) {
        size_t len = std::strlen(suf);
        return name.size() >= len && name.compare(name.size() - len, len, suf) == 0;
      };
      if (!(ends(".yaml") || ends(".yml") || ends(".json"))) continue;
      ++changes_;
      if (ev->mask & IN_MODIFY) {
        writing_.insert(full);
        continue;
      }
      if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM)) writing_.erase(full);
      relevant = true;
    }
  }
  return relevant;
}

}  // namespace ingressd
