// Shared helpers for the fuzz targets. An invariant violation traps, which
// libFuzzer reports as a crash (with the input saved as crash-<sha1>).
#pragma once
#include <cstddef>
#include <cstdio>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                                  \
    }                                                                                    \
  } while (0)

namespace fuzz {

// Whether a non-empty view lies inside [buf, buf + len).
inline bool inside(std::string_view v, const char* buf, size_t len) {
  if (v.empty()) return true;
  return v.data() >= buf && v.data() + v.size() <= buf + len;
}

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

}  // namespace fuzz

