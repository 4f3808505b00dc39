// Fuzzes http1::parse_response_head (src/proxy/http1/parser.h), for a request
// that was HEAD and one that was not.
//
// Invariants (a violation traps):
//  - the common head invariants (http1_checks.h): length, CRLF-only line
//    endings, views inside the head, framing consistent with the headers;
//  - status is 3 digits in 100..599, the reason phrase lies in the status line;
//  - responses to HEAD, 1xx, 204 and 304 have no body (Framing::None); else no
//    Content-Length and no Transfer-Encoding means read until close;
//  - both request_is_head values give the same result except for framing;
//  - a prefix cut at a position derived from the first byte gives 0 or the same
//    result; parsing into a used ResponseHead gives the same as a fresh one.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "http1_checks.h"

using namespace ingressd::http1;
using fuzz::ieq;
using fuzz::inside;

namespace {

const Limits kDefaultLimits;
const Limits kTightLimits{512, 128, 8};

void check_response(const ResponseHead& h, bool request_is_head, const char* data, size_t len, long n,
                    const Limits& lim) {
  fuzz::check_common(h, data, len, n, lim, false);
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  FUZZ_CHECK(std::memcmp(data, "HTTP/1.", 7) == 0 && data[7] - '0' == h.minor);
  FUZZ_CHECK(inside(h.reason, data, static_cast<size_t>(n)));
  if (!h.reason.empty()) FUZZ_CHECK(h.reason.data() == data + 13);
  bool has_te = false, has_date = false, has_server = false;
  for (int i = 0; i < h.n_headers; ++i) {
    if (ieq(h.headers[i].name, "transfer-encoding")) has_te = true;
    if (ieq(h.headers[i].name, "date")) has_date = true;
    if (ieq(h.headers[i].name, "server")) has_server = true;
  }
  FUZZ_CHECK(h.has_date == has_date && h.has_server == has_server);
  bool no_body = request_is_head || h.status < 200 || h.status == 204 || h.status == 304;
  if (no_body) {
    FUZZ_CHECK(h.framing == Framing::None);
  } else if (has_te) {
    FUZZ_CHECK(h.framing == Framing::Chunked);
  } else if (h.has_content_length) {
    FUZZ_CHECK(h.framing == (h.content_length > 0 ? Framing::Length : Framing::None));
  } else {
    FUZZ_CHECK(h.framing == Framing::UntilClose);
  }
}

bool same_view(std::string_view a, const char* abase, std::string_view b, const char* bbase) {
  return a == b && (a.empty() || a.data() - abase == b.data() - bbase);
}

bool same_head(const ResponseHead& a, const char* abase, const ResponseHead& b, const char* bbase, bool cmp_framing) {
  if (a.n_headers != b.n_headers || a.minor != b.minor || (cmp_framing && a.framing != b.framing) ||
      a.content_length != b.content_length || a.has_content_length != b.has_content_length ||
      a.keep_alive != b.keep_alive || a.conn_upgrade != b.conn_upgrade || a.status != b.status ||
      a.has_date != b.has_date || a.has_server != b.has_server)
    return false;
  for (int i = 0; i < a.n_headers; ++i) {
    if (!same_view(a.headers[i].name, abase, b.headers[i].name, bbase) ||
        !same_view(a.headers[i].value, abase, b.headers[i].value, bbase) || a.headers[i].flags != b.headers[i].flags)
      return false;
  }
  return same_view(a.reason, abase, b.reason, bbase) && same_view(a.upgrade, abase, b.upgrade, bbase);
}

void check_error(long r, const ParseError& e) {
  FUZZ_CHECK(r >= -1);
  if (r == -1) FUZZ_CHECK(e.status == 502 && e.reason != nullptr && e.reason[0] != '\0');
}

ResponseHead g_head[2], g_part;

void run(const char* data, size_t len, const Limits& lim) {
  long r[2];
  for (int is_head = 0; is_head < 2; ++is_head) {
    g_head[is_head] = ResponseHead{};
    ParseError e;
    r[is_head] = parse_response_head(data, len, is_head != 0, g_head[is_head], e, lim);
    check_error(r[is_head], e);
    FUZZ_CHECK(r[is_head] <= static_cast<long>(len));
    if (r[is_head] > 0) check_response(g_head[is_head], is_head != 0, data, len, r[is_head], lim);
  }
  FUZZ_CHECK(r[0] == r[1]);
  if (r[0] > 0) FUZZ_CHECK(same_head(g_head[0], data, g_head[1], data, false));

  size_t k = len ? static_cast<size_t>(static_cast<unsigned char>(data[0])) * len / 256 : 0;
  std::unique_ptr<char[]> pre(new char[k ? k : 1]);
  if (k) std::memcpy(pre.get(), data, k);
  g_part = ResponseHead{};
  ParseError e2;
  long rp = parse_response_head(pre.get(), k, false, g_part, e2, lim);
  check_error(rp, e2);
  if (r[0] == 0) FUZZ_CHECK(rp == 0);
  if (r[0] > 0) FUZZ_CHECK(rp == 0 || rp == r[0]);
  if (rp < 0) FUZZ_CHECK(r[0] < 0);
  if (rp > 0) {
    check_response(g_part, false, pre.get(), k, rp, lim);
    FUZZ_CHECK(same_head(g_head[0], data, g_part, pre.get(), true));
  }
  // Reuse a head that held another result.
  ParseError e3;
  long r2 = parse_response_head(data, len, false, g_part, e3, lim);
  FUZZ_CHECK(r2 == r[0]);
  if (r2 > 0) FUZZ_CHECK(same_head(g_head[0], data, g_part, data, true));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  const char* data = reinterpret_cast<const char*>(d);
  run(data, len, kDefaultLimits);
  run(data, len, kTightLimits);
  return 0;
}
