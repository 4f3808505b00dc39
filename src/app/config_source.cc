#include "app/config_source.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "app/kube_mode.h"
#include "core/log.h"
#include "sources/file_source.h"
#include "sources/manifest_loader.h"

namespace ingressd {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// File mode: a manifest file or folder, watched with inotify. A change is
// reloaded after a hold-off (100 ms, capped at 10 hold-offs from the
// first event of a burst), and only once the files have settled: a reload
// that finds them changing under it applies nothing and is retried.
class FileConfigSource final : public ConfigSource {
 public:
  FileConfigSource(std::string path, int holdoff_ms) : path_(std::move(path)), holdoff_ms_(holdoff_ms), watcher_(path_) {}

  bool start(std::string& err) override {
    if (!watcher_.start(err)) log_warn("file watching is off: {}", err);  // still serves what it read at start
    return true;
  }
  std::string describe() const override { return path_; }
  int fd() const override { return watcher_.fd(); }
  bool can_reload() const override { return true; }

  void on_readable(ObjectStore&) override {
    if (watcher_.fd() < 0 || !watcher_.drain()) return;
    int64_t now = steady_ms();
    if (!due_) first_change_at_ = now;
    // Hold off until the burst is quiet, but never longer than 10 hold-offs.
    due_ = std::min<int64_t>(now + holdoff_ms_, first_change_at_ + 10 * holdoff_ms_);
  }
  int64_t reload_due_ms() const override { return due_; }
  const char* take_due(int64_t now) override {
    if (watcher_.writes_in_progress() && now < first_change_at_ + 20 * holdoff_ms_) {
      // A file is being rewritten in place: wait for its writer to close it
      // (for at most 20 hold-offs, in case a writer keeps it open).
      due_ = now + holdoff_ms_;
      return nullptr;
    }
    return "file change";
  }
  void change_reload_done(bool applied, int64_t now) override {
    if (applied) {
      due_ = 0;
      deferrals_ = 0;
      return;
    }
    // A file changed while it was read: the previous configuration stays until a quiet read. The
    // retry is jittered so that it does not fall into step with a writer working on a fixed period.
    due_ = now + holdoff_ms_ / 2 + static_cast<int64_t>(std::rand() % (holdoff_ms_ + 1));
    if (++deferrals_ % 50 == 0)
      log_warn("manifests keep changing while being read ({} attempts); the previous configuration stays in "
               "force until a quiet moment (write files elsewhere and rename them in to avoid this)", deferrals_);
  }

  void update_store(ObjectStore& store, ReloadTrigger trigger, LoadOutcome& out, std::string& unsettled) override {
    std::function<bool(int64_t, bool)> settled;
    uint64_t changes_before = 0;
    // Only a reload for a file change checks that the files have settled;
    // at start and on SIGHUP the files are read as they are.
    if (trigger == ReloadTrigger::Change && watcher_.fd() >= 0) {
      watcher_.drain();
      changes_before = watcher_.changes();
      // A file truncated and rewritten in place can be read empty or half
      // written. Not settled: an event came while reading, a writer still has a
      // file open, or a file was modified in the last 50 ms (the kernel changes
      // a file a moment before it queues the event that says so).
      // A file that became empty is most likely a writer between truncating
      // and writing: wait for it up to 10 attempts (about a second), then
      // believe it.
      settled = [&](int64_t newest_mtime_ns, bool emptied) {
        watcher_.drain();
        if (emptied && deferrals_ < 10) unsettled = "a manifest that had objects reads empty (a writer between truncating and writing?)";
        else if (watcher_.changes() != changes_before) unsettled = "a manifest changed while it was read";
        else if (watcher_.writes_in_progress()) unsettled = "a manifest is open for writing";
        else if (newest_mtime_ns >= unix_ms() * 1'000'000 - 50'000'000) unsettled = "a manifest was modified in the last 50 ms";
        else return true;
        return false;
      };
    }
    out = load_manifests_into(path_, store, &cache_, settled);
  }
  const char* summary_verb() const override { return "loaded"; }

 private:
  const std::string path_;
  const int holdoff_ms_;
  FileWatcher watcher_;
  ManifestCache cache_;         // decoded files by content: a reload decodes only what changed
  int64_t due_ = 0;             // pending reload (steady ms), 0 = none
  int64_t first_change_at_ = 0; // start of the current burst
  int deferrals_ = 0;           // file-change reloads in a row that found files changing under them
};

// Operator mode (docs/operator.md): the informers' changes, applied to the
// store as they arrive and committed by the reload after a short hold-off.
// Nothing is compiled until every informer has listed once.
class KubeConfigSource final : public ConfigSource {
 public:
  explicit KubeConfigSource(const ServeOptions& o) : holdoff_ms_(o.kube.holdoff_ms), kube_(o) {}

  bool start(std::string& err) override { return kube_.start(err); }
  void stop() override { kube_.stop(); }
  std::string describe() const override { return kube_.describe(); }
  int fd() const override { return kube_.fd(); }
  bool can_reload() const override { return kube_.synced(); }

  void on_readable(ObjectStore& store) override {
    std::chrono::steady_clock::time_point oldest;
    if (!kube_.drain_into(store, oldest)) return;
    int64_t now = steady_ms();
    if (!due_) {
      first_change_at_ = now;
      oldest_ = oldest;
    } else if (oldest < oldest_) {
      oldest_ = oldest;
    }
    // A short hold-off: a burst of events (a relist, kubectl apply of
    // many objects) becomes one rebuild, and one event still reaches the
    // table within a few tens of milliseconds.
    due_ = std::min<int64_t>(now + holdoff_ms_, first_change_at_ + 10 * holdoff_ms_);
  }
  int64_t reload_due_ms() const override { return due_; }
  const char* take_due(int64_t) override {
    due_ = 0;  // a change that comes before every informer has synced waits for the sync's own change
    return "cluster change";
  }

  void update_store(ObjectStore& store, ReloadTrigger, LoadOutcome& out, std::string&) override {
    store.commit();
    out.diagnostics = kube_.invalid_objects();  // objects in the cluster we could not decode
  }
  void after_publish(const LoadOutcome& out, const Snapshot& snap,
                     std::chrono::steady_clock::time_point published) override {
    kube_.after_compile(out, snap, published - oldest_);
  }
  const char* summary_verb() const override { return "compiled"; }
  void metrics(std::string& out) const override { kube_.metrics(out); }

 private:
  const int holdoff_ms_;
  KubeMode kube_;
  int64_t due_ = 0;             // pending reload (steady ms), 0 = none
  int64_t first_change_at_ = 0; // start of the current burst
  std::chrono::steady_clock::time_point oldest_{};  // arrival of the oldest event of the current (or last) burst
};

}  // namespace

std::unique_ptr<ConfigSource> make_config_source(const ServeOptions& o) {
  if (o.kube.enabled()) return std::make_unique<KubeConfigSource>(o);
  return std::make_unique<FileConfigSource>(o.manifests, o.reload_holdoff_ms);
}

}  // namespace ingressd
