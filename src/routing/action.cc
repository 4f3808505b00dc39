#include "routing/action.h"

#include <strings.h>

#include "routing/route_table.h"

namespace ingressd::routing {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

bool HeaderEdits::drops(std::string_view name) const {
  for (const auto& r : remove)
    if (iequals(r, name)) return true;
  for (const auto& [n, _] : set)
    if (iequals(n, name)) return true;
  return false;
}

// Gateway API HTTPPathModifier. ReplacePrefixMatch replaces the matched
// element-wise prefix and keeps the rest, so "/foo" → "/xyz" turns "/foo/bar"
// into "/xyz/bar" and "/foo/" into "/xyz/"; a replacement of "/" strips the
// prefix ("/foo/bar" → "/bar", "/foo" → "/"), never leaving "//".
void PathModifier::apply(std::string_view request_path, std::string& out) const {
  switch (kind) {
    case Kind::None:
      out.assign(request_path);
      return;
    case Kind::ReplaceFullPath:
      out.assign(value.empty() ? std::string_view("/") : std::string_view(value));
      return;
    case Kind::ReplacePrefixMatch: {
      std::string_view key = prefix_key(matched_prefix);
      std::string_view rest = request_path.size() >= key.size() ? request_path.substr(key.size()) : std::string_view();
      out.assign(prefix_key(value));
      out.append(rest);
      if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
      return;
    }
  }
}

}  // namespace ingressd::routing
