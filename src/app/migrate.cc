// `ingressd migrate PATH`: for every Ingress, what becomes of its
// ingress-nginx annotations under ingressd (honoured, approximate, accepted,
// not yet, fail closed, refused, unknown), and whether its routes would serve.
// `--table` prints the whole annotation table (docs/migrating-from-ingress-nginx.md
// is made from it).
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/config_state.h"
#include "routing/annotations.h"

namespace ingressd {

using routing::Support;

int run_migrate(const MigrateOptions& o) {
  if (o.table) {
    std::puts("| annotation | ingressd | notes |\n|---|---|---|");
    for (const auto& a : routing::annotation_table())
      std::printf("| `%.*s` | %s | %.*s |\n", static_cast<int>(a.name.size()), a.name.data(), routing::support_name(a.support),
                  static_cast<int>(a.note.size()), a.note.data());
    return 0;
  }
  ObjectStore store;
  LoadOutcome out = load_manifests_into(o.manifests, store);
  std::map<std::string, size_t> totals;
  size_t blocked = 0, ingresses = 0;
  nlohmann::json items = nlohmann::json::array();
  std::string text;
  for (const auto& [key, so] : store.snapshot()->objects) {
    if (key.kind != model::Kind::Ingress) continue;
    ++ingresses;
    const auto& ing = std::get<model::Ingress>(so.object);
    std::vector<routing::AnnotationIssue> issues;
    routing::IngressOptions opt = routing::parse_annotations(ing.meta.annotations, o.allow_unenforced, issues);
    nlohmann::json anns = nlohmann::json::array();
    std::string lines;
    for (const auto& [k, v] : ing.meta.annotations) {
      std::string_view kv(k);
      bool nginx = kv.starts_with(routing::kNginxPrefix), ours = kv.starts_with(routing::kOurPrefix);
      if (!nginx && !ours) continue;
      std::string name(kv.substr(nginx ? routing::kNginxPrefix.size() : routing::kOurPrefix.size()));
      const routing::AnnotationInfo* info = routing::find_annotation(name);
      std::string status = info ? routing::support_name(info->support) : "unknown";
      std::string note = info ? std::string(info->note) : "not an annotation ingressd knows; it has no effect";
      // A value that does not parse says so, whatever the support.
      for (const auto& is : issues)
        if (is.reason == "InvalidAnnotation" && is.annotation == k) {
          status = "invalid";
          note = is.message;
        }
      ++totals[status];
      anns.push_back({{"annotation", k}, {"value", v}, {"status", status}, {"note", note}});
      lines += fmt::format("  {:<12} {}: {}\n", status, k, note);
    }
    if (anns.empty()) continue;
    const bool serves = opt.refuse.empty();
    if (!serves) ++blocked;
    std::string verdict = !opt.refuse.empty() ? "its routes answer 503: " + opt.refuse
                          : opt.canary         ? "serves as a canary of the main Ingress of its paths"
                                               : "serves";
    items.push_back({{"ingress", key.namespace_ + "/" + key.name}, {"file", so.pos.file}, {"line", so.pos.line},
                     {"serves", serves}, {"verdict", verdict}, {"annotations", anns}});
    text += fmt::format("Ingress {}/{} ({}:{}): {}\n{}", key.namespace_, key.name, so.pos.file, so.pos.line, verdict,
                        lines);
  }
  if (o.output == "json") {
    nlohmann::json j = {{"ingresses", items}, {"summary", totals}, {"blocked", blocked}, {"scanned", ingresses}};
    std::puts(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs(text.c_str(), stdout);
    std::string sum;
    for (const auto& [k, n] : totals) sum += fmt::format("{}{} {}", sum.empty() ? "" : ", ", n, k);
    std::printf("%zu Ingress(es) scanned, %zu with annotations; annotations: %s; %zu Ingress(es) would not serve as "
                "they do under ingress-nginx\n",
                ingresses, items.size(), sum.empty() ? "none" : sum.c_str(), blocked);
  }
  for (const auto& d : out.diagnostics)
    if (d.severity == Severity::Error) std::fprintf(stderr, "%s\n", d.str().c_str());
  // 1: some Ingress would answer 503 or get no traffic; 2: some annotation is not honoured or unknown.
  if (blocked) return 1;
  if (totals.count("not yet") || totals.count("unknown") || totals.count("invalid")) return 2;
  return 0;
}

}  // namespace ingressd
