// Fuzzes http1::parse_request_head (src/proxy/http1/parser.h).
//
// Invariants (a violation traps):
//  - the result is -1, 0 or a head length <= the input size, ending in CRLFCRLF,
//    with CR and LF only as CRLF pairs inside the head;
//  - every view points into the head (except the literal "/" given to an
//    absolute-form target without a path);
//  - framing agrees with the Content-Length / Transfer-Encoding headers, never
//    both, framing/connection headers are marked hop-by-hop;
//  - the same bytes cut at a position derived from the first byte give 0 or the
//    same result (TCP may deliver any prefix);
//  - parsing into a RequestHead that was used before (the session reuses one)
//    gives the same result as parsing into a fresh one;
//  - pipelined requests after the first (skipping Content-Length or chunked
//    bodies) satisfy the same invariants.
// Each input is parsed with the default limits and with tight ones, so that
// 414/431 paths are reachable with small inputs.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "http1_checks.h"
#include "proxy/http1/chunked.h"

using namespace ingressd::http1;
using fuzz::ieq;
using fuzz::inside;

namespace {

const Limits kDefaultLimits;
const Limits kTightLimits{512, 128, 8};

void check_request(const RequestHead& h, const char* data, size_t len, long n, const Limits& lim) {
  fuzz::check_common(h, data, len, n, lim, true);
  const size_t un = static_cast<size_t>(n);
  FUZZ_CHECK(!h.method.empty() && is_token(h.method));
  FUZZ_CHECK(inside(h.method, data, un));
  FUZZ_CHECK(h.method.data() == data || h.method.data() == data + 2);  // optional leading empty line
  FUZZ_CHECK(!h.target.empty() && inside(h.target, data, un));
  for (char c : h.target) {
    unsigned char u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u > 0x20 && u < 0x7f);
  }
  FUZZ_CHECK(inside(h.query, data, un) && inside(h.authority, data, un) && inside(h.host, data, un));
  FUZZ_CHECK(inside(h.path, data, un) || (h.path == "/" && !h.authority.empty()));
  FUZZ_CHECK(!h.path.empty());
  FUZZ_CHECK(h.path[0] == '/' || (h.path == "*" && h.target == "*"));
  FUZZ_CHECK(h.path.find('?') == std::string_view::npos);
  FUZZ_CHECK(h.query.empty() || h.query[0] == '?');
  if (h.target[0] == '/') {
    // origin-form: target = path [query]
    FUZZ_CHECK(h.authority.empty());
    FUZZ_CHECK(h.path.data() == h.target.data() && h.path.size() + h.query.size() == h.target.size());
  } else if (h.target != "*") {
    // absolute-form: an authority without userinfo
    FUZZ_CHECK(!h.authority.empty() && h.authority.find('@') == std::string_view::npos);
    FUZZ_CHECK(h.authority.find('/') == std::string_view::npos && h.authority.find('?') == std::string_view::npos);
  }
  // Host: at most one header, required for HTTP/1.1. With an absolute-form
  // target the authority is the host whatever the Host header says (RFC 9112
  // §3.2.2); otherwise the host is the Host header's value.
  int n_host = 0, n_expect_continue = 0;
  for (int i = 0; i < h.n_headers; ++i) {
    if (ieq(h.headers[i].name, "host")) {
      ++n_host;
      if (h.authority.empty())
        FUZZ_CHECK(h.headers[i].value.data() == h.host.data() && h.headers[i].value.size() == h.host.size());
    }
    if (ieq(h.headers[i].name, "expect") && ieq(h.headers[i].value, "100-continue")) ++n_expect_continue;
  }
  FUZZ_CHECK(n_host <= 1);
  if (h.minor == 1) FUZZ_CHECK(n_host == 1);
  if (h.authority.empty()) {
    FUZZ_CHECK(n_host == (h.has_host ? 1 : 0));
    if (!h.has_host) FUZZ_CHECK(h.host.empty());
  } else {
    FUZZ_CHECK(h.has_host && h.host.data() == h.authority.data() && h.host.size() == h.authority.size());
  }
  FUZZ_CHECK(h.expect_continue == (n_expect_continue > 0));
  FUZZ_CHECK(h.is_head == (h.method == "HEAD"));
  if (h.websocket)
    FUZZ_CHECK(h.method == "GET" && h.minor == 1 && h.conn_upgrade && ieq(h.upgrade, "websocket"));
}

// Views compared by content and by offset from their buffer.
bool same_view(std::string_view a, const char* abase, std::string_view b, const char* bbase) {
  if (a != b) return false;
  if (a.empty()) return true;
  return a.data() - abase == b.data() - bbase || (a == "/" && (a.data() < abase || b.data() < bbase));
}

bool same_head(const RequestHead& a, const char* abase, const RequestHead& b, const char* bbase) {
  if (a.n_headers != b.n_headers || a.minor != b.minor || a.framing != b.framing ||
      a.content_length != b.content_length || a.has_content_length != b.has_content_length ||
      a.keep_alive != b.keep_alive || a.conn_upgrade != b.conn_upgrade || a.has_host != b.has_host ||
      a.expect_continue != b.expect_continue || a.is_head != b.is_head || a.websocket != b.websocket)
    return false;
  for (int i = 0; i < a.n_headers; ++i) {
    if (!same_view(a.headers[i].name, abase, b.headers[i].name, bbase) ||
        !same_view(a.headers[i].value, abase, b.headers[i].value, bbase) || a.headers[i].flags != b.headers[i].flags)
      return false;
  }
  return same_view(a.method, abase, b.method, bbase) && same_view(a.target, abase, b.target, bbase) &&
         same_view(a.path, abase, b.path, bbase) && same_view(a.query, abase, b.query, bbase) &&
         same_view(a.authority, abase, b.authority, bbase) && same_view(a.host, abase, b.host, bbase) &&
         same_view(a.upgrade, abase, b.upgrade, bbase);
}

void check_error(long r, const ParseError& e) {
  FUZZ_CHECK(r >= -1);
  if (r == -1) {
    FUZZ_CHECK(e.status == 400 || e.status == 414 || e.status == 431 || e.status == 501 || e.status == 505);
    FUZZ_CHECK(e.reason != nullptr && e.reason[0] != '\0');
  }
}

// Heads are ~5 KB each: kept static, reset explicitly where a fresh one is wanted.
RequestHead g_full, g_part, g_pipe;

void run(const char* data, size_t len, const Limits& lim, bool pipeline) {
  g_full = RequestHead{};
  ParseError e1;
  long r = parse_request_head(data, len, g_full, e1, lim);
  check_error(r, e1);
  FUZZ_CHECK(r <= static_cast<long>(len));
  if (r > 0) check_request(g_full, data, len, r, lim);

  // The same bytes cut short, in a buffer of exactly that size (so ASan sees overreads).
  size_t k = len ? static_cast<size_t>(static_cast<unsigned char>(data[0])) * len / 256 : 0;  // k < len
  std::unique_ptr<char[]> pre(new char[k ? k : 1]);
  if (k) std::memcpy(pre.get(), data, k);
  g_part = RequestHead{};
  ParseError e2;
  long rp = parse_request_head(pre.get(), k, g_part, e2, lim);
  check_error(rp, e2);
  if (r == 0) FUZZ_CHECK(rp == 0);
  if (r > 0) FUZZ_CHECK(rp == 0 || rp == r);
  if (rp < 0) FUZZ_CHECK(r < 0);
  if (rp > 0) {
    check_request(g_part, pre.get(), k, rp, lim);
    FUZZ_CHECK(same_head(g_full, data, g_part, pre.get()));
  }

  // Reuse: the whole input parsed into the head that held the prefix's result.
  ParseError e3;
  long r2 = parse_request_head(data, len, g_part, e3, lim);
  FUZZ_CHECK(r2 == r);
  if (r > 0) FUZZ_CHECK(same_head(g_full, data, g_part, data));
  if (r < 0) FUZZ_CHECK(e3.status == e1.status);

  if (!pipeline || r <= 0) return;
  // Pipelined requests, reusing one head like the session does.
  size_t off = 0;
  for (int msg = 0; msg < 16 && off < len; ++msg) {
    ParseError e;
    long n = parse_request_head(data + off, len - off, g_pipe, e, lim);
    check_error(n, e);
    if (n <= 0) break;
    check_request(g_pipe, data + off, len - off, n, lim);
    off += static_cast<size_t>(n);
    if (g_pipe.conn_upgrade || !g_pipe.keep_alive) break;  // what follows is not HTTP/1 (or not read)
    if (g_pipe.framing == Framing::Length) {
      if (g_pipe.content_length > len - off) break;
      off += static_cast<size_t>(g_pipe.content_length);
    } else if (g_pipe.framing == Framing::Chunked) {
      ChunkedDecoder dec;
      ChunkedDecoder::Result cr{ChunkedDecoder::Status::NeedMore, 0};
      do {
        cr = dec.feed(data + off, len - off);
        FUZZ_CHECK(cr.consumed <= len - off);
        off += cr.consumed;
      } while (cr.status == ChunkedDecoder::Status::Data);
      if (cr.status != ChunkedDecoder::Status::Done) break;
    }
  }
  FUZZ_CHECK(off <= len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  const char* data = reinterpret_cast<const char*>(d);
  run(data, len, kDefaultLimits, true);
  run(data, len, kTightLimits, false);
  return 0;
}
