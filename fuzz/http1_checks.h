// Invariants of a parsed HTTP/1 head, shared by the request and response
// fuzz targets. `data`/`n` is the head as returned (n = the parser's result).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_check.h"
#include "proxy/http1/parser.h"

namespace fuzz {

using namespace ingressd::http1;

inline bool field_value_ok(std::string_view v) {
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u == '\r' || u == '\n' || u == 0) return false;
  }
  if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t')) return false;
  return true;
}

// Trims optional whitespace (SP / HTAB).
inline std::string_view ows_trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each comma-separated, OWS-trimmed element.
template <typename F>
void each_element(std::string_view v, F f) {
  size_t i = 0;
  for (;;) {
    size_t comma = v.find(',', i);
    f(ows_trim(v.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i)));
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
}

// Checks that hold for any successfully parsed head of `n` bytes at `data`
// (the buffer is `len` bytes long).
inline void check_common(const MessageCommon& m, const char* data, size_t len, long n, const Limits& limits,
                         bool request) {
  FUZZ_CHECK(n > 0);
  FUZZ_CHECK(static_cast<size_t>(n) <= len);
  FUZZ_CHECK(static_cast<size_t>(n) <= limits.max_head_bytes);
  // The head ends with an empty line, and every line ending is CRLF: CR and LF
  // appear only as pairs (no bare CR / bare LF anywhere in the head).
  FUZZ_CHECK(n >= 4 && std::memcmp(data + n - 4, "\r\n\r\n", 4) == 0);
  for (long i = 0; i < n; ++i) {
    if (data[i] == '\n') FUZZ_CHECK(i > 0 && data[i - 1] == '\r');
    if (data[i] == '\r') FUZZ_CHECK(i + 1 < n && data[i + 1] == '\n');
  }
  FUZZ_CHECK(m.minor == 0 || m.minor == 1);
  FUZZ_CHECK(m.n_headers >= 0 && m.n_headers <= limits.max_headers && m.n_headers <= kMaxHeaders);
  FUZZ_CHECK(inside(m.upgrade, data, static_cast<size_t>(n)));

  int n_cl = 0, n_te = 0, n_conn = 0;
  bool cl_consistent = true;
  for (int i = 0; i < m.n_headers; ++i) {
    const Header& h = m.headers[i];
    FUZZ_CHECK(!h.name.empty());
    FUZZ_CHECK(is_token(h.name));
    FUZZ_CHECK(field_value_ok(h.value));
    FUZZ_CHECK(inside(h.name, data, static_cast<size_t>(n)));
    FUZZ_CHECK(inside(h.value, data, static_cast<size_t>(n)));
    // Framing and connection headers are never forwarded as they came.
    if (ieq(h.name, "content-length") || ieq(h.name, "transfer-encoding") || ieq(h.name, "connection") ||
        ieq(h.name, "upgrade") || ieq(h.name, "keep-alive") || ieq(h.name, "te") || ieq(h.name, "trailer") ||
        ieq(h.name, "proxy-connection"))
      FUZZ_CHECK(h.flags & kHopByHop);
    if (ieq(h.name, "content-length")) {
      ++n_cl;
      each_element(h.value, [&](std::string_view e) {
        uint64_t v = 0;
        bool ok = !e.empty() && e.size() <= 18;
        for (char c : e) {
          if (c < '0' || c > '9') ok = false;
          else v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        if (!ok || v != m.content_length) cl_consistent = false;
      });
    }
    if (ieq(h.name, "transfer-encoding")) ++n_te;
    if (ieq(h.name, "connection")) {
      ++n_conn;
      // Fields named by Connection are hop-by-hop too.
      each_element(h.value, [&](std::string_view tok) {
        if (tok.empty()) return;
        for (int j = 0; j < m.n_headers; ++j)
          if (ieq(m.headers[j].name, tok)) FUZZ_CHECK(m.headers[j].flags & kHopByHop);
      });
    }
  }
  // Content-Length: every value (and list element) is the same number.
  FUZZ_CHECK(m.has_content_length == (n_cl > 0));
  if (n_cl > 0) FUZZ_CHECK(cl_consistent);
  if (!m.has_content_length) FUZZ_CHECK(m.content_length == 0);
  // Never both framings at once (request smuggling).
  FUZZ_CHECK(!(n_cl > 0 && n_te > 0));
  if (n_te > 0) FUZZ_CHECK(m.minor == 1);
  if (request) {
    FUZZ_CHECK(m.framing != Framing::UntilClose);
    if (n_te > 0) FUZZ_CHECK(m.framing == Framing::Chunked);
  }
  switch (m.framing) {
    case Framing::Length:
      FUZZ_CHECK(m.has_content_length && m.content_length > 0);
      break;
    case Framing::Chunked:
      FUZZ_CHECK(!m.has_content_length && n_te > 0);
      break;
    case Framing::UntilClose:
      FUZZ_CHECK(!request && !m.has_content_length && n_te == 0);
      break;
    case Framing::None:
      break;
  }
  if (m.minor == 0 && n_conn == 0) FUZZ_CHECK(!m.keep_alive);
}

}  // namespace fuzz
