#include "routing/action.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/strings.h"
#include "routing/path_regex.h"
#include "routing/route_table.h"

namespace ingressd::routing {

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
    case Kind::RegexReplace: {
      // One anchored match with the groups the target uses (the route's
      // match already found the path to start with the regex), then the
      // target copied with \N replaced: no RE2 rewrite-string parsing per request.
      re2::StringPiece g[10];
      const int n = std::min(regex ? regex->groups() + 1 : 0, 10);
      if (!regex || !regex->match(request_path, g, n)) {
        out.assign(request_path);
        return;
      }
      out.clear();
      for (size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\\' && i + 1 < value.size()) {
          char d = value[++i];
          if (d >= '0' && d <= '9') {
            int k = d - '0';
            if (k < n) out.append(g[k].data(), g[k].size());  // a group the regex lacks is empty, as in nginx
            continue;
          }
          out += d;  // an escaped backslash
          continue;
        }
        out += c;
      }
      if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
      return;
    }
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

bool Cidr::contains(const ClientAddr& a) const {
  if (a.family != family) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes, bytes, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (bytes[full] & mask);
}

bool Cidr::parse(std::string_view text, Cidr& out) {
  out = Cidr{};
  size_t slash = text.find('/');
  std::string addr(text.substr(0, slash));
  if (inet_pton(AF_INET, addr.c_str(), out.bytes) == 1) {
    out.family = 4;
    out.prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), out.bytes) == 1) {
    out.family = 6;
    out.prefix = 128;
  } else {
    return false;
  }
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    int v = -1;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty() || v < 0 || v > out.prefix) return false;
    out.prefix = v;
  }
  // Host bits set ("10.0.0.1/8") are ignored, as nginx's allow/deny does.
  return true;
}

bool IpAccess::allows(const ClientAddr& a) const {
  for (const auto& c : deny)
    if (c.contains(a)) return false;
  if (allow.empty()) return true;
  for (const auto& c : allow)
    if (c.contains(a)) return true;
  return false;
}

}  // namespace ingressd::routing
