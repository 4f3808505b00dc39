// Fuzzes routing::normalize_path and routing::normalize_host (src/routing/path.h).
// The input is the path; the same bytes are also tried as a Host value.
//
// Invariants (a violation traps):
//  - NotAbsolute exactly when the input is empty or does not start with '/';
//  - Unchanged only for inputs without '%', '\' or dot-segments;
//  - a normalised path starts with '/', has no dot-segment, no encoded or raw
//    (back)slash escape, only well-formed upper-case escapes of reserved
//    octets, is no longer than the input, and normalising it again is a no-op;
//  - a normalised host has no upper case, space, control, '/', '@', '?', '#'
//    and is no longer than the input.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "routing/path.h"

using namespace ingressd::routing;

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower-case hex is not normal form
}

bool has_dot_segment(std::string_view p) {
  size_t i = 0;
  while (i < p.size()) {
    size_t next = p.find('/', i + 1);
    if (next == std::string_view::npos) next = p.size();
    std::string_view seg = p.substr(i + 1, next - i - 1);
    if (seg == "." || seg == "..") return true;
    i = next;
  }
  return false;
}

void check_normal(std::string_view p) {
  FUZZ_CHECK(!p.empty() && p[0] == '/');
  FUZZ_CHECK(!has_dot_segment(p));
  FUZZ_CHECK(p.find('\\') == std::string_view::npos);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') continue;
    FUZZ_CHECK(i + 2 < p.size());
    int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
    FUZZ_CHECK(h >= 0 && l >= 0);
    unsigned char v = static_cast<unsigned char>(h * 16 + l);
    FUZZ_CHECK(!is_unreserved(v) && v != '/' && v != '\\');
    i += 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  std::string_view in(reinterpret_cast<const char*>(d), len);

  std::string out = "sentinel";
  PathVerdict v = normalize_path(in, out);
  FUZZ_CHECK((v == PathVerdict::NotAbsolute) == (in.empty() || in[0] != '/'));
  if (v == PathVerdict::Unchanged) {
    FUZZ_CHECK(out == "sentinel");  // untouched
    FUZZ_CHECK(in.find('%') == std::string_view::npos && in.find('\\') == std::string_view::npos);
    check_normal(in);
  }
  if (v == PathVerdict::Ok) {
    check_normal(out);
    FUZZ_CHECK(out.size() <= in.size());
    std::string out2;
    PathVerdict v2 = normalize_path(out, out2);
    FUZZ_CHECK(v2 == PathVerdict::Unchanged || (v2 == PathVerdict::Ok && out2 == out));
  }
  if (v == PathVerdict::EncodedSlash)
    FUZZ_CHECK(in.find('\\') != std::string_view::npos || in.find('%') != std::string_view::npos);
  if (v == PathVerdict::BadEncoding) FUZZ_CHECK(in.find('%') != std::string_view::npos);

  std::string host = "sentinel";
  if (normalize_host(in, host)) {
    FUZZ_CHECK(host.size() <= in.size());
    for (char c : host) {
      unsigned char u = static_cast<unsigned char>(c);
      FUZZ_CHECK(u > 0x20 && u < 0x7f && !(c >= 'A' && c <= 'Z'));
      FUZZ_CHECK(c != '/' && c != '@' && c != '?' && c != '#');
    }
  }
  return 0;
}
