// compile(): a pure function from a store snapshot to a RouteTable and the
// diagnostics that explain it. No I/O, no clock: the same snapshot always
// gives the same table and the same dump.
#pragma once
#include <memory>
#include <set>
#include <string>

#include "core/diagnostic.h"
#include "routing/gateway_compile.h"
#include "routing/route_table.h"
#include "model/snapshot.h"

namespace ingressd::routing {

// The controller name we answer to, when none is given.
inline constexpr const char* kDefaultControllerName = "ingressd.dev/ingress-controller";

struct CompileOptions {
  std::string controller_name = kDefaultControllerName;
  // Serve Ingresses that name no class at all (file mode default: yes).
  bool serve_classless = true;
  // The legacy annotation kubernetes.io/ingress.class is honoured when it
  // names one of our IngressClasses or this value.
  std::string legacy_class = "ingressd";
  std::set<std::string> watch_namespaces;  // empty = all
  // Serve Ingresses whose security annotations ingressd cannot enforce (auth,
  // client certificates, WAF, snippets) instead of answering 503 for them.
  bool allow_unenforced_annotations = false;
  // Taking over from ingress-nginx: also serve Ingresses of its classes
  // (IngressClass controller k8s.io/ingress-nginx, or the legacy annotation
  // kubernetes.io/ingress.class: nginx), so a cluster can switch without
  // editing its Ingresses.
  bool serve_nginx_class = false;
};

inline constexpr const char* kNginxController = "k8s.io/ingress-nginx";
inline constexpr const char* kNginxLegacyClass = "nginx";
// Whether an IngressClass's spec.controller is one this controller serves.
bool controller_is_ours(const std::string& controller, const CompileOptions& opts);

// What became of an Ingress: all of it served, some paths dropped, none
// served, or not ours (another class or namespace).
enum class IngressState { Accepted, PartiallyAccepted, Rejected, Ignored };

// The state as `check` and the admin port show it: "Accepted", ...
constexpr const char* ingress_state_name(IngressState s) {
  switch (s) {
    case IngressState::Accepted: return "Accepted";
    case IngressState::PartiallyAccepted: return "PartiallyAccepted";
    case IngressState::Rejected: return "Rejected";
    case IngressState::Ignored: return "Ignored";
  }
  return "Unknown";
}

struct IngressStatus {
  std::string ingress;  // namespace/name
  IngressState state = IngressState::Accepted;
  std::string detail;
};

// One spec.tls entry of a served Ingress, in precedence order (oldest
// Ingress first): its hosts (the Ingress's rule hosts when it names none) and
// the Secret in the Ingress's namespace ("" = the default certificate).
struct TlsBinding {
  std::string ingress;  // namespace/name
  std::string namespace_;
  std::string secret;
  std::vector<std::string> hosts;
  int index = 0;  // position in spec.tls
  model::SourcePos pos;
  std::string object = {};  // "Gateway ns/name" for a Gateway listener ("" = "Ingress " + ingress)
};

struct CompileResult {
  std::shared_ptr<const RouteTable> table;
  Diagnostics diagnostics;
  std::vector<IngressStatus> statuses;  // sorted by ingress
  std::vector<TlsBinding> tls;          // precedence order
  std::vector<GatewayObjectStatus> gateway_status;  // Gateway API objects of our classes, in the API's shape
  size_t ignored_other_class = 0;      // Ingresses of another controller (or no class, when not served)
  size_t ignored_other_namespace = 0;  // Ingresses outside --watch-namespace
};

CompileResult compile(const Snapshot& snap, const CompileOptions& opts);

// Whether one of our IngressClasses is marked as the default class.
bool have_default_class(const Snapshot& snap, const CompileOptions& opts);
// Whether this Ingress belongs to us, and why not (for diagnostics).
bool ingress_is_ours(const Snapshot& snap, const model::Ingress& ing, const CompileOptions& opts, bool default_class,
                     std::string& why);

}  // namespace ingressd::routing
