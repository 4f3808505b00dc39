// Where `serve` gets its configuration: a folder of manifests (file mode) or
// the API server (operator mode). The control loop (serve.cc) knows only this
// interface: it polls fd(), asks when the next reload is due, and runs one
// reload path for both: update_store(), compile, publish certificates then
// the table, record the ConfigState, after_publish(), log.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "app/commands.h"
#include "app/config_state.h"
#include "sources/object_store.h"

namespace ingressd {

int64_t steady_ms();  // the control loop's clock (due times)
int64_t unix_ms();    // wall clock, for ConfigState and file modification times

enum class ReloadTrigger {
  Start,   // the first load, before serving
  Signal,  // SIGHUP
  Change,  // the source saw a change and its hold-off ran out
};

class ConfigSource {
 public:
  virtual ~ConfigSource() = default;

  // Starts watching. False: `serve` cannot start (err says why).
  virtual bool start(std::string& err) = 0;
  virtual void stop() {}  // operator mode: hands the lease over
  // What is served, for the log: the manifest path, or the API server.
  virtual std::string describe() const = 0;
  // Polled for POLLIN by the control loop; -1 when there is nothing to poll.
  virtual int fd() const = 0;
  // Whether a reload may run now (at start, on SIGHUP, when one is due):
  // always for files; for the cluster, once every informer has listed (until
  // then no route exists and /readyz says not ready).
  virtual bool can_reload() const = 0;

  // fd() is readable: takes in what it says (the cluster's changes go into
  // `store`, uncommitted) and, if anything changed, schedules a reload after
  // a hold-off.
  virtual void on_readable(ObjectStore& store) = 0;
  // Steady ms (steady_ms()) at which a change reload is due; 0 = none.
  virtual int64_t reload_due_ms() const = 0;
  // The due time has come. Returns the reason to log for a reload now
  // ("file change", "cluster change"), or null when the source would rather
  // wait (it moved the due time on).
  virtual const char* take_due(int64_t now_ms) = 0;
  // After the change reload take_due() asked for: whether it was applied
  // (false: deferred, nothing changed). `now_ms` is the time take_due() had.
  virtual void change_reload_done(bool applied, int64_t now_ms) { (void)applied, (void)now_ms; }

  // One reload, first half: brings `store` up to date and puts the source's
  // own diagnostics into `out` (out.listed = false: nothing could be read,
  // the previous configuration stays). When the input changed under the read,
  // nothing is applied: out.deferred is set and `deferred_why` says what was
  // seen.
  virtual void update_store(ObjectStore& store, ReloadTrigger trigger, LoadOutcome& out, std::string& deferred_why) = 0;
  // One reload, after the table is published and recorded.
  virtual void after_publish(const LoadOutcome& out, const Snapshot& snap,
                             std::chrono::steady_clock::time_point published) {
    (void)out, (void)snap, (void)published;
  }
  // The verb of the reload's summary line: files are "loaded", the cluster's
  // objects "compiled".
  virtual const char* summary_verb() const = 0;
  virtual void metrics(std::string& out) const { (void)out; }  // the source's own families
};

// The file source (--manifests) or, with o.kube.enabled(), the kube source.
std::unique_ptr<ConfigSource> make_config_source(const ServeOptions& o);

}  // namespace ingressd
