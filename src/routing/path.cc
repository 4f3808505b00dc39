#include "routing/path.h"

#include "core/strings.h"

namespace ingressd::routing {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// RFC 3986 §5.2.4 remove_dot_segments, on an absolute path.
void remove_dot_segments(std::string& p) {
  std::string out;
  out.reserve(p.size());
  size_t i = 0;
  const size_t n = p.size();
  while (i < n) {
    // p[i] == '/' always holds here for absolute paths.
    size_t next = p.find('/', i + 1);
    if (next == std::string::npos) next = n;
    std::string_view seg(p.data() + i + 1, next - i - 1);
    bool last = next == n;
    if (seg == ".") {
      if (last) out += '/';
    } else if (seg == "..") {
      size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
      if (last) out += '/';
    } else {
      out += '/';
      out.append(seg);
    }
    i = next;
  }
  if (out.empty()) out = "/";
  p.swap(out);
}

}  // namespace

PathVerdict normalize_path(std::string_view path, std::string& out) {
  if (path.empty() || path[0] != '/') return PathVerdict::NotAbsolute;
  bool needs = false;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%' || c == '\\') {
      needs = true;
      break;
    }
    if (c == '.' && path[i - 1] == '/') {  // i > 0: path[0] is '/'
      // "/." followed by end, '/', or ".": a dot-segment candidate
      if (i + 1 == path.size() || path[i + 1] == '/' || path[i + 1] == '.') {
        needs = true;
        break;
      }
    }
  }
  if (!needs) return PathVerdict::Unchanged;
  out.clear();
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '\\') return PathVerdict::EncodedSlash;
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= path.size()) return PathVerdict::BadEncoding;
    int h = hex_digit_value(path[i + 1]), l = hex_digit_value(path[i + 2]);
    if (h < 0 || l < 0) return PathVerdict::BadEncoding;
    unsigned char v = static_cast<unsigned char>(h * 16 + l);
    if (v == '/' || v == '\\') return PathVerdict::EncodedSlash;
    if (v == 0) return PathVerdict::BadEncoding;  // a NUL has no business in a path
    if (is_unreserved(v)) {
      out += static_cast<char>(v);
    } else {
      static const char* hex = "0123456789ABCDEF";
      out += '%';
      out += hex[v >> 4];
      out += hex[v & 15];
    }
    i += 2;
  }
  remove_dot_segments(out);
  return PathVerdict::Ok;
}

bool normalize_host(std::string_view host, std::string& out) {
  out.clear();
  if (host.empty()) return true;
  std::string_view name = host;
  if (host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !parse_u64(rest.substr(1)))) {
      if (rest != ":") return false;
    }
  } else {
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      std::string_view port = host.substr(colon + 1);
      if (!port.empty() && !parse_u64(port)) return false;
      name = host.substr(0, colon);
    }
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  }
  out.reserve(name.size());
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    // reg-name characters (RFC 3986): unreserved, sub-delims, pct-encoded; no spaces, slashes, '@'.
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#') return false;
    out += ascii_lower(c);
  }
  return true;
}

}  // namespace ingressd::routing
