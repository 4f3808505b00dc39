// An informer keeps one resource type (of one namespace, or of the cluster)
// in step with the API server: a paginated LIST, then a WATCH from the list's
// resourceVersion (with bookmarks). A broken stream is resumed from the last
// resourceVersion seen, after a jittered backoff; 410 Gone (as an HTTP status
// or as an ERROR event), or an expired continue token, means a full relist,
// diffed against what the informer knows so that nothing is lost and nothing
// stale stays. A relist also runs every resync period.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/objects.h"
#include "sources/kube/kube_client.h"
#include "sources/object_store.h"

namespace ingressd::kube {

struct ResourceInfo {
  model::Kind kind;
  std::string api_version;  // "networking.k8s.io/v1", "v1"
  std::string kind_name;    // "Ingress"
  std::string plural;       // "ingresses"
  bool namespaced = true;
  std::string field_selector;  // "type=kubernetes.io/tls" for Secrets
};
// An informer's `ns` for a cluster-scoped kind is only a label (the
// Namespaces informer of one watched namespace, by field selector).
// The five kinds operator mode always watches (the Gateway API's, when
// served, come from discovery: api_discovery.h).
std::vector<ResourceInfo> watched_resources();
// "/apis/networking.k8s.io/v1/namespaces/NS/ingresses" ("" ns = every namespace).
std::string collection_path(const ResourceInfo& r, const std::string& ns);

// One change for the ObjectStore.
struct Change {
  model::ObjectKey key;
  std::optional<StoredObject> object;  // nullopt = deleted (or could not be decoded)
  // When the object could not be decoded: why, and for an Ingress what we
  // could still read of it (metadata, class), so that an Event can say so.
  Diagnostics errors;
  std::optional<model::Ingress> invalid_ingress;
};

// One line of a WATCH stream: {"type": "...", "object": {...}}.
struct WatchEvent {
  enum class Type { Added, Modified, Deleted, Bookmark, Error } type = Type::Added;
  nlohmann::json object;
};
std::optional<WatchEvent> parse_watch_event(std::string_view line, std::string& err);
// The HTTP-like code of an ERROR event's Status object (410 = Gone), or 0.
int error_event_code(const WatchEvent& ev);

// What an informer knows: "namespace/name" → resourceVersion.
using KnownObjects = std::map<std::string, std::string>;
// A string member of a JSON object, "" when absent or not a string (never throws).
std::string json_str(const nlohmann::json& obj, const char* key);
std::string object_id(const nlohmann::json& obj);  // "namespace/name" ("/name" for cluster-scoped)
std::string object_rv(const nlohmann::json& obj);
// A fresh list against what is known: items that are new or whose
// resourceVersion changed (by index into `items`), and ids that are gone.
struct RelistDiff {
  std::vector<size_t> upserts;
  std::vector<std::string> deletes;
};
RelistDiff diff_relist(const KnownObjects& known, const std::vector<nlohmann::json>& items);

// Decodes an API object into a store change (deleted = the object is gone).
// An object that fails to decode is a deletion, with the reason in `err`.
Change to_change(const ResourceInfo& r, const nlohmann::json& obj, bool deleted, std::string& err);

struct InformerStats {
  std::atomic<uint64_t> watch_restarts{0};  // watches that ended in an error and were reopened
  std::atomic<uint64_t> relists{0};         // lists after the first one
  std::atomic<uint64_t> events{0};          // watch events received (bookmarks excluded)
  std::atomic<int64_t> last_event_unix_ms{0};
  std::atomic<bool> synced{false};
};

struct InformerOptions {
  int resync_s = 600;          // full relist period (0: none; 410 Gone still relists)
  int list_page_size = 500;
  int watch_timeout_min_s = 300;  // each WATCH asks the server to end it after a random time in [min, 2*min)
  int backoff_base_ms = 200, backoff_max_ms = 30000;
};

class Informer {
 public:
  // deliver: the changes of one event or one relist, and whether this delivery
  // completes the first sync. Called on the informer's thread.
  using Deliver = std::function<void(std::vector<Change>&&, bool first_sync)>;
  // observe: every object as received (deleted = true for a deletion), for
  // readers of fields the model does not keep (Ingress status).
  using Observe = std::function<void(const nlohmann::json&, bool deleted)>;

  Informer(KubeClient& client, ResourceInfo r, std::string ns, InformerOptions opts, Deliver deliver,
           Observe observe = nullptr);
  ~Informer();
  // Before start(): called (on the informer's thread) when the server
  // answers 404 for the collection, as it does once a CRD is removed.
  void set_on_not_found(std::function<void()> f) { on_not_found_ = std::move(f); }
  void start();
  void request_stop();  // asks the thread to end; does not wait
  void stop();          // request_stop() and join: returns within about a second
  const ResourceInfo& resource() const { return r_; }
  const std::string& namespace_() const { return ns_; }
  const InformerStats& stats() const { return stats_; }
  std::string name() const;  // "ingresses" or "ingresses/default"
  // After stop(): a deletion for every object the informer knew, for a kind
  // that is no longer served (its CRD was removed).
  std::vector<Change> forget();

 private:
  void run();
  bool list(KubeSession& s);  // false on error (backoff follows)
  enum class WatchEnd { Timeout, Gone, Error, Stopped };
  WatchEnd watch(KubeSession& s, int timeout_s);
  bool sleep_ms(int ms);  // false when stopped

  KubeClient& client_;
  ResourceInfo r_;
  std::string ns_;
  InformerOptions opts_;
  Deliver deliver_;
  Observe observe_;
  std::function<void()> on_not_found_;
  InformerStats stats_;
  KnownObjects known_;
  std::string rv_;
  bool first_list_done_ = false;
  bool watch_connected_ = false;  // the last WATCH got a 200
  // The last WATCH delivered something (an event or a bookmark) or stayed up
  // for a while: only then does a reconnect start again from a short delay.
  bool watch_productive_ = false;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace ingressd::kube
