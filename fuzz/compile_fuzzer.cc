// Fuzzes the control path: decode_manifests → ObjectStore::replace_from_files
// → routing::compile → RouteTable::match, dump_text / dump_json /
// diagnostics_json (serialised with .dump(2), replacing invalid UTF-8, as `ingressd check -o json` and
// the admin port do) and explain (src/proxy/explain.h).
//
// Invariants (a violation traps; an escaping exception is a crash too, since
// ingressd has no handler above these calls):
//  - compile is deterministic: the same snapshot gives the same dump and diagnostics;
//  - loading the same files again keeps the same objects;
//  - every route has a backend (or redirects: app-root, permanent-redirect); a request for a route's own host and path
//    (when already normalised) matches a route with that path;
//  - whatever match() returns is consistent: a Path match's rule matches the
//    request by the Ingress spec (routing::path_matches), a default match
//    returns the default backend;
//  - the JSON views serialise.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "model/decode.h"
#include "routing/compile.h"
#include "routing/dump.h"
#include "proxy/explain.h"
#include "routing/path.h"
#include "sources/object_store.h"

using namespace ingressd;
using namespace ingressd::routing;

namespace {

bool host_matches(std::string_view rule_host, std::string_view host) {
  if (rule_host.empty()) return true;
  if (rule_host.size() > 2 && rule_host[0] == '*' && rule_host[1] == '.') {
    size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 && host.substr(dot + 1) == rule_host.substr(2);
  }
  return rule_host == host;
}

// Checks one request against the table; returns the match.
Match check_match(const RouteTable& t, std::string_view host_in, std::string_view path_in) {
  std::string host, path_buf;
  if (!normalize_host(host_in, host)) return {};
  std::string_view path = path_in;
  switch (normalize_path(path_in, path_buf)) {
    case PathVerdict::Unchanged: break;
    case PathVerdict::Ok: path = path_buf; break;
    default: return {};
  }
  Match m = t.match(host, path);
  switch (m.kind) {
    case MatchKind::Path:
      // A route's action forwards to a backend, or (app-root, redirects) answers itself.
      FUZZ_CHECK(m.vhost && m.route && m.action && m.backend == m.action->primary());
      FUZZ_CHECK(m.backend || m.action->redirects);
      FUZZ_CHECK(host_matches(m.route->host, host));
      FUZZ_CHECK(m.vhost->host == m.route->host);
      if (!m.route->regex) FUZZ_CHECK(path_matches(m.route->path, m.route->type, path));
      break;
    case MatchKind::HostDefault:
      FUZZ_CHECK(m.vhost && !m.route && m.backend && m.backend == m.vhost->default_backend());
      FUZZ_CHECK(host_matches(m.vhost->host, host));
      break;
    case MatchKind::GlobalDefault:
      FUZZ_CHECK(!m.route && m.backend && m.backend == t.global_default());
      break;
    case MatchKind::None:
      FUZZ_CHECK(!m.route && !m.backend && !t.global_default());
      break;
  }
  return m;
}

// A concrete request host for a rule host.
std::string request_host(const std::string& rule_host) {
  if (rule_host.empty()) return "any.fuzz.example";
  if (rule_host.size() > 2 && rule_host[0] == '*') return "fz" + rule_host.substr(1);
  return rule_host;
}

void serialise(const Diagnostics& load, const CompileResult& r) {
  Diagnostics all = load;
  all.insert(all.end(), r.diagnostics.begin(), r.diagnostics.end());
  // As `check -o json` and the admin port dump them (bytes that are not UTF-8 replaced).
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  std::string s = diagnostics_json(all).dump(2, ' ', false, kReplace);
  s += dump_json(*r.table).dump(2, ' ', false, kReplace);
  nlohmann::json st = nlohmann::json::array();
  for (const auto& x : r.statuses)
    st.push_back({{"ingress", x.ingress}, {"state", routing::ingress_state_name(x.state)}, {"detail", x.detail}});
  s += st.dump(2, ' ', false, kReplace);
  for (const auto& d : all) s += d.str();
  FUZZ_CHECK(!s.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  std::string_view text(reinterpret_cast<const char*>(d), len);
  std::vector<LoadedFile> files(1);
  files[0].path = "fuzz.yaml";
  files[0].decoded = model::decode_manifests(text, files[0].path);

  ObjectStore store;
  Diagnostics load_diags = store.replace_from_files(files);
  std::shared_ptr<const Snapshot> snap = store.snapshot();
  FUZZ_CHECK(snap != nullptr);

  CompileOptions opts;
  CompileResult res = compile(*snap, opts);
  FUZZ_CHECK(res.table != nullptr);
  const RouteTable& table = *res.table;
  std::string dump = dump_text(table);

  // Deterministic.
  CompileResult again = compile(*snap, opts);
  FUZZ_CHECK(dump_text(*again.table) == dump);
  FUZZ_CHECK(again.diagnostics == res.diagnostics);
  FUZZ_CHECK(again.statuses.size() == res.statuses.size());

  serialise(load_diags, res);

  // Routes: each reachable by its own host and path.
  std::vector<const Route*> routes = table.sorted_routes();
  FUZZ_CHECK(routes.size() == table.route_count());
  size_t checked = 0;
  for (const Route* r : routes) {
    FUZZ_CHECK(r->backend() != nullptr || (r->default_candidate() && r->default_candidate()->action &&
                                            r->default_candidate()->action->redirects));
    if (++checked > 64) break;
    std::string host = request_host(r->host);
    std::string norm_host, norm_path;
    const VHost* vh = normalize_host(host, norm_host) && norm_host == host ? table.find_vhost(host) : nullptr;
    if (!r->regex && vh && vh->host == r->host && normalize_path(r->path, norm_path) == PathVerdict::Unchanged) {
      Match m = check_match(table, host, r->path);
      FUZZ_CHECK(m.kind == MatchKind::Path && m.route->path == r->path);
      if (r->type == model::PathType::Exact) FUZZ_CHECK(m.route == r);
    }
    check_match(table, host, r->path + "/x");
    check_match(table, host, r->path + "x");
    check_match(table, host, r->path.substr(0, r->path.size() / 2));
    check_match(table, "Other.Example:8080", r->path);
    if (checked <= 4) {
      Explanation e = explain(*snap, opts, table, "http://" + host + r->path + "?q", "");
      FUZZ_CHECK(!e.text.empty());
      (void)e.json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  check_match(table, "", "/");
  check_match(table, "fuzz.example", "/");
  // A request spelled by the end of the input.
  std::string_view tail = text.substr(text.size() > 48 ? text.size() - 48 : 0);
  check_match(table, "fuzz.example", "/" + std::string(tail));
  {
    // As /debug/explain?url=... does (percent-decoded bytes from the query).
    Explanation e = explain(*snap, opts, table, "/" + std::string(tail), "fuzz.example");
    // As the admin port and `explain -o json` dump it: bytes that are not UTF-8 are replaced, never thrown on.
    (void)e.json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  // The same files again: the same objects, no last-good copies.
  Diagnostics reload = store.replace_from_files(files);
  FUZZ_CHECK(store.snapshot()->objects.size() == snap->objects.size());
  FUZZ_CHECK(reload.size() == load_diags.size());

  // Other options: classless Ingresses not served, one namespace watched.
  CompileOptions narrow;
  narrow.serve_classless = false;
  narrow.watch_namespaces = {"default"};
  CompileResult res2 = compile(*snap, narrow);
  FUZZ_CHECK(res2.table != nullptr);
  serialise(load_diags, res2);
  return 0;
}
