// The control plane's view of the loaded configuration: what the store holds,
// what compile() said, and the history of reloads. Written by the control
// thread, read by the admin thread.
#pragma once
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "core/diagnostic.h"
#include "proxy/config.h"
#include "routing/compile.h"
#include "sources/manifest_loader.h"
#include "sources/object_store.h"
#include "tls/cert_store.h"

namespace ingressd {

struct LoadOutcome {
  Diagnostics diagnostics;           // decode + store + compile
  std::shared_ptr<const routing::RouteTable> table;  // null when nothing was (re)built
  std::vector<routing::IngressStatus> statuses;
  std::vector<routing::GatewayObjectStatus> gateway_status;
  size_t ignored_other_class = 0, ignored_other_namespace = 0;
  bool listed = true;                // the manifest path could be read at all
  bool deferred = false;             // files changed while being read: nothing applied, try again
  std::shared_ptr<const tls::CertMap> certs;  // null when TLS is off or nothing was (re)built
};

// What building the certificate map needs besides the snapshot.
struct CertInputs {
  std::string default_secret;  // --default-ssl-certificate NAMESPACE/NAME
  tls::CertPtr self_signed;    // the default when there is none
  tls::CertCache* cache = nullptr;
};

// compile() and, with `certs`, the certificate map: the part of a reload
// after the store is up to date (shared by the file and kube sources).
void compile_into(const Snapshot& snap, const routing::CompileOptions& opts, const CertInputs* certs, LoadOutcome& out);

// Reads PATH into `store` (the file source's half of a reload). Pure except
// for reading files. With a cache, files unchanged since the last load are not
// decoded again. `settled`, when given, is asked after the files are read
// (with the newest modification time among them, and whether a file that had
// objects now reads empty) and before anything is applied: false means a file
// changed meanwhile (a writer truncating and rewriting it in place), and the
// outcome is `deferred`. An unreadable PATH leaves the store as it was
// (`listed` false).
LoadOutcome load_manifests_into(const std::string& path, ObjectStore& store, ManifestCache* cache = nullptr,
                                const std::function<bool(int64_t newest_mtime_ns, bool emptied)>& settled = {});

// load_manifests_into(), then compile_into() unless deferred or unlisted.
LoadOutcome load_and_compile(const std::string& path, ObjectStore& store, const routing::CompileOptions& opts,
                             ManifestCache* cache = nullptr, const CertInputs* certs = nullptr,
                             const std::function<bool(int64_t newest_mtime_ns, bool emptied)>& settled = {});

class ConfigState {
 public:
  void record(const LoadOutcome& o, std::shared_ptr<const Snapshot> snap, const routing::CompileOptions& opts,
              int64_t unix_ms);
  nlohmann::json explain(const std::string& url, const std::string& host) const;
  // The data-plane flags explain decides with (serve's own), and whether an HTTPS listener runs.
  void set_proxy(const ProxyConfig& proxy, bool https_listener) {
    std::lock_guard<std::mutex> g(mu_);
    proxy_ = proxy;
    https_listener_ = https_listener;
  }
  bool ready() const;
  // The objects in force and the options they were compiled with (the
  // admission webhook compiles against them); null before the first load.
  std::pair<std::shared_ptr<const Snapshot>, routing::CompileOptions> live() const {
    std::lock_guard<std::mutex> g(mu_);
    return {snap_, opts_};
  }
  // Config families for /metrics: reloads, objects, routes, diagnostics.
  void metrics(std::string& out) const;
  void set_start_time(int64_t unix_ms) {
    std::lock_guard<std::mutex> g(mu_);
    start_ms_ = unix_ms;
  }
  int64_t start_time_ms() const {
    std::lock_guard<std::mutex> g(mu_);
    return start_ms_;
  }
  nlohmann::json summary() const;
  std::string routes_text() const;
  nlohmann::json routes_json() const;
  // Every object in force: kind, namespace, name, resourceVersion (no data).
  nlohmann::json objects_json() const;

 private:
  mutable std::mutex mu_;
  bool loaded_ = false;
  uint64_t reloads_ = 0;
  uint64_t failed_reloads_ = 0;
  int64_t last_success_ms_ = 0;
  int64_t start_ms_ = 0;
  size_t routes_ = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> diag_counts_;  // (severity, reason)
  int64_t last_reload_ms_ = 0;
  std::string last_error_;
  nlohmann::json diagnostics_ = nlohmann::json::array();
  nlohmann::json objects_ = nlohmann::json::object();
  nlohmann::json statuses_ = nlohmann::json::array();
  nlohmann::json gateway_status_ = nlohmann::json::array();
  nlohmann::json ignored_ = nlohmann::json::object();
  std::shared_ptr<const routing::RouteTable> table_;
  std::shared_ptr<const Snapshot> snap_;
  routing::CompileOptions opts_;
  ProxyConfig proxy_;
  bool https_listener_ = true;
};

}  // namespace ingressd
