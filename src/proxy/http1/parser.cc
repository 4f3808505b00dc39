#include "proxy/http1/parser.h"

#include <cstring>

#include "core/strings.h"

namespace ingressd::http1 {
namespace {

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
struct TokenTable {
  bool t[256] = {};
  bool v[256] = {};  // field-value octets: HTAB, SP, VCHAR, obs-text
  constexpr TokenTable() {
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    v['\t'] = true;
    for (int c = 0x20; c <= 0x7e; ++c) v[c] = true;
    for (int c = 0x80; c <= 0xff; ++c) v[c] = true;
  }
};
constexpr TokenTable kTable;

inline bool tchar(unsigned char c) { return kTable.t[c]; }

bool ieq(std::string_view a, const char* lit, size_t n) {
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (ascii_lower(a[i]) != lit[i]) return false;
  return true;
}
#define IEQ(a, lit) ieq((a), lit, sizeof(lit) - 1)

// Finds the end of the line starting at `p`. Returns the index of '\n' or -1
// if not found; sets bad when a bare LF or a bare CR is present.
inline long line_end(const char* data, size_t from, size_t len) {
  const void* nl = std::memchr(data + from, '\n', len - from);
  if (!nl) return -1;
  return static_cast<const char*>(nl) - data;
}

struct ConnTokens {
  std::string_view names[16];
  int n = 0;
};

// Connection: comma-separated tokens (RFC 9110 §7.6.1).
bool parse_connection(std::string_view v, MessageCommon& m, ConnTokens& named, bool& saw_close, bool& saw_keep_alive) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    std::string_view tok = trim_ows(v.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    if (!tok.empty()) {
      if (!is_token(tok)) return false;
      if (IEQ(tok, "close")) saw_close = true;
      else if (IEQ(tok, "keep-alive")) saw_keep_alive = true;
      else if (IEQ(tok, "upgrade")) m.conn_upgrade = true;
      else if (named.n < 16) named.names[named.n++] = tok;
      else return false;
    }
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  return true;
}

// Content-Length: 1*DIGIT; a list of identical values is accepted (RFC 9112 §6.3 item 5).
bool parse_content_length(std::string_view v, uint64_t& out, bool& seen) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    std::string_view tok = trim_ows(v.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    if (tok.empty() || tok.size() > 18) return false;
    uint64_t n = 0;
    for (char c : tok) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (seen && n != out) return false;
    out = n;
    seen = true;
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  return true;
}

enum class TeResult { Chunked, NotChunkedLast, Unsupported, Bad };
// Transfer-Encoding: we forward only "chunked"; the final coding must be chunked.
TeResult parse_te(std::string_view v, int& chunked_count) {
  size_t i = 0;
  bool last_chunked = false;
  bool other = false;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    std::string_view tok = trim_ows(v.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    if (tok.empty()) return TeResult::Bad;
    size_t semi = tok.find(';');
    std::string_view name = trim_ows(tok.substr(0, semi));
    if (!is_token(name)) return TeResult::Bad;
    if (IEQ(name, "chunked")) {
      if (semi != std::string_view::npos) return TeResult::Bad;  // chunked takes no parameters
      ++chunked_count;
      last_chunked = true;
    } else {
      last_chunked = false;
      other = true;
    }
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  if (!last_chunked) return TeResult::NotChunkedLast;
  if (other) return TeResult::Unsupported;
  return TeResult::Chunked;
}

// Parses header lines from `pos` to the empty line. Shared by both directions.
// Returns head length, 0 incomplete, -1 error.
long parse_fields(const char* data, size_t len, size_t pos, MessageCommon& m, ParseError& err, const Limits& limits,
                  bool request, RequestHead* req, ResponseHead* resp) {
  ConnTokens named;
  bool saw_close = false, saw_keep_alive = false, cl_seen = false, te_seen = false;
  int chunked_count = 0;
  TeResult te = TeResult::Chunked;
  m.n_headers = 0;
  const int bad_status = request ? 400 : 502;
  for (;;) {
    long nl = line_end(data, pos, len);
    if (nl < 0) {
      if (len > limits.max_head_bytes) {
        err = {request ? 431 : 502, "header section too large"};
        return -1;
      }
      return 0;
    }
    size_t end = static_cast<size_t>(nl);
    if (end + 1 > limits.max_head_bytes) {
      err = {request ? 431 : 502, "header section too large"};
      return -1;
    }
    if (end == pos || data[end - 1] != '\r') {
      err = {bad_status, "bare LF line ending"};  // RFC 9112 §2.2: we do not accept a lone LF
      return -1;
    }
    size_t line_len = end - 1 - pos;
    if (line_len == 0) {
      pos = end + 1;
      break;  // end of the header section
    }
    const char* line = data + pos;
    if (line[0] == ' ' || line[0] == '\t') {
      err = {bad_status, "obsolete line folding"};  // RFC 9112 §5.2: reject obs-fold
      return -1;
    }
    size_t colon = 0;
    while (colon < line_len && tchar(static_cast<unsigned char>(line[colon]))) ++colon;
    if (colon == 0 || colon == line_len || line[colon] != ':') {
      // Includes whitespace between the name and the colon (RFC 9112 §5.1: MUST reject with 400).
      err = {bad_status, "invalid header field name"};
      return -1;
    }
    size_t vb = colon + 1, ve = line_len;
    for (size_t i = vb; i < ve; ++i) {
      if (!kTable.v[static_cast<unsigned char>(line[i])]) {
        err = {bad_status, "invalid character in header field value"};  // NUL, CR, LF, other CTLs
        return -1;
      }
    }
    while (vb < ve && (line[vb] == ' ' || line[vb] == '\t')) ++vb;
    while (ve > vb && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) --ve;
    if (m.n_headers >= limits.max_headers || m.n_headers >= kMaxHeaders) {
      err = {request ? 431 : 502, "too many header fields"};
      return -1;
    }
    Header& h = m.headers[m.n_headers++];
    h.name = std::string_view(line, colon);
    h.value = std::string_view(line + vb, ve - vb);
    h.flags = 0;
    std::string_view n = h.name;
    switch (n.size()) {
      case 2:
        if (IEQ(n, "te")) h.flags = kHopByHop;
        break;
      case 4:
        if (IEQ(n, "host")) {
          h.flags = kHost;
          if (req) {
            if (req->has_host) {
              err = {400, "more than one Host header"};
              return -1;
            }
            req->has_host = true;
            req->host = h.value;
          }
        } else if (IEQ(n, "date")) {
          h.flags = kDate;
          if (resp) resp->has_date = true;
        }
        break;
      case 6:
        if (IEQ(n, "expect")) {
          if (req && IEQ(h.value, "100-continue")) req->expect_continue = true;
        } else if (IEQ(n, "server")) {
          h.flags = kServer;
          if (resp) resp->has_server = true;
        }
        break;
      case 7:
        if (IEQ(n, "upgrade")) {
          h.flags = kHopByHop;
          m.upgrade = h.value;
        } else if (IEQ(n, "trailer")) {
          h.flags = kHopByHop;
        }
        break;
      case 9:
        if (IEQ(n, "x-real-ip")) h.flags = kXForwarded;
        break;
      case 12:
        if (req && IEQ(n, "x-request-id")) {
          if (h.value.empty()) h.flags = kHopByHop;  // an empty id is dropped and replaced by ours
          else req->request_id = h.value;
        }
        break;
      case 10:
        if (IEQ(n, "connection")) {
          h.flags = kHopByHop;
          if (!parse_connection(h.value, m, named, saw_close, saw_keep_alive)) {
            err = {bad_status, "invalid Connection header"};
            return -1;
          }
        } else if (IEQ(n, "keep-alive")) {
          h.flags = kHopByHop;
        }
        break;
      case 14:
        if (IEQ(n, "content-length")) {
          h.flags = kHopByHop;  // re-generated from the framing we forward
          if (!parse_content_length(h.value, m.content_length, cl_seen)) {
            err = {bad_status, "invalid or conflicting Content-Length"};
            return -1;
          }
        }
        break;
      case 15:
        if (IEQ(n, "x-forwarded-for")) h.flags = kXForwarded | kXForwardedFor;
        break;
      case 16:
        if (IEQ(n, "proxy-connection")) h.flags = kHopByHop;
        else if (IEQ(n, "x-forwarded-host") || IEQ(n, "x-forwarded-port")) h.flags = kXForwarded;
        break;
      case 17:
        if (IEQ(n, "transfer-encoding")) {
          h.flags = kHopByHop;
          te_seen = true;
          TeResult r = parse_te(h.value, chunked_count);
          if (r != TeResult::Chunked) te = r;
        } else if (IEQ(n, "x-forwarded-proto")) {
          h.flags = kXForwarded;
        }
        break;
      case 19:
        if (IEQ(n, "proxy-authorization")) h.flags = kHopByHop;
        break;
      case 18:
        if (IEQ(n, "proxy-authenticate")) h.flags = kHopByHop;
        break;
      default:
        break;
    }
    pos = end + 1;
  }
  // Headers named by Connection are hop-by-hop too.
  for (int t = 0; t < named.n; ++t) {
    for (int i = 0; i < m.n_headers; ++i)
      if (iequals(m.headers[i].name, named.names[t])) m.headers[i].flags |= kHopByHop;
  }
  // Framing, RFC 9112 §6.
  if (te_seen) {
    if (cl_seen) {
      err = {bad_status, "both Transfer-Encoding and Content-Length"};
      return -1;
    }
    if (m.minor == 0) {
      err = {bad_status, "Transfer-Encoding in an HTTP/1.0 message"};
      return -1;
    }
    if (te == TeResult::Bad || chunked_count > 1) {
      err = {bad_status, "invalid Transfer-Encoding"};
      return -1;
    }
    if (te == TeResult::NotChunkedLast) {
      // A request whose final coding is not chunked has no determinable length (§6.3 item 4).
      if (request) {
        err = {400, "Transfer-Encoding does not end with chunked"};
        return -1;
      }
      err = {502, "upstream Transfer-Encoding does not end with chunked"};
      return -1;
    }
    if (te == TeResult::Unsupported) {
      err = {request ? 501 : 502, "unsupported transfer coding"};
      return -1;
    }
    m.framing = Framing::Chunked;
  } else if (cl_seen) {
    m.framing = m.content_length > 0 ? Framing::Length : Framing::None;
  } else {
    m.framing = request ? Framing::None : Framing::UntilClose;
  }
  m.has_content_length = cl_seen;
  m.keep_alive = m.minor >= 1 ? !saw_close : (saw_keep_alive && !saw_close);
  return static_cast<long>(pos);
}

}  // namespace

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!tchar(static_cast<unsigned char>(c))) return false;
  return true;
}

long parse_request_head(const char* data, size_t len, RequestHead& out, ParseError& err, const Limits& limits) {
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
  size_t pos = 0;
  if (len >= 2 && data[0] == '\r' && data[1] == '\n') pos = 2;
  long nl = line_end(data, pos, len);
  if (nl < 0) {
    if (len - pos > limits.max_request_line) {
      err = {414, "request line too long"};
      return -1;
    }
    // Reject garbage early instead of waiting for a newline.
    for (size_t i = pos; i < len; ++i) {
      unsigned char c = static_cast<unsigned char>(data[i]);
      if (c < 0x20 && c != '\r') {
        err = {400, "invalid request line"};
        return -1;
      }
    }
    return 0;
  }
  size_t end = static_cast<size_t>(nl);
  if (end - pos > limits.max_request_line) {
    err = {414, "request line too long"};
    return -1;
  }
  if (end == pos || data[end - 1] != '\r') {
    err = {400, "bare LF line ending"};
    return -1;
  }
  std::string_view line(data + pos, end - 1 - pos);
  // method SP request-target SP HTTP-version (exactly one SP each: §3)
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    err = {400, "invalid request line"};
    return -1;
  }
  out.method = line.substr(0, sp1);
  if (!is_token(out.method)) {
    err = {400, "invalid method"};
    return -1;
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    err = {400, "invalid request line"};
    return -1;
  }
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1.") {
    // 505 only for a well-formed HTTP-version of another major version.
    bool well_formed = version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[5] >= '0' &&
                       version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9';
    err = {well_formed ? 505 : 400, well_formed ? "unsupported HTTP version" : "invalid request line"};
    return -1;
  }
  if (version[7] == '1') out.minor = 1;
  else if (version[7] == '0') out.minor = 0;
  else {
    err = {505, "unsupported HTTP version"};
    return -1;
  }
  for (char c : out.target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || u == '#') {  // a fragment is never sent (RFC 9110 §7.1)
      err = {400, "invalid character in request target"};
      return -1;
    }
  }
  // Target forms (§3.2): origin-form, absolute-form, asterisk-form (OPTIONS).
  std::string_view t = out.target;
  out.authority = {};
  if (t[0] == '/') {
    size_t q = t.find('?');
    out.path = t.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view() : t.substr(q);
  } else if (t == "*") {
    out.path = t;
    out.query = {};
  } else {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    size_t scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos ||
        !(iequals(t.substr(0, scheme_end), "http") || iequals(t.substr(0, scheme_end), "https"))) {
      err = {400, "invalid request target"};
      return -1;
    }
    std::string_view rest = t.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    out.authority = rest.substr(0, path_start);
    if (out.authority.empty() || out.authority.find('@') != std::string_view::npos) {
      err = {400, "invalid request target"};
      return -1;
    }
    std::string_view pq = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    size_t q = pq.find('?');
    out.path = pq.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view() : pq.substr(q);
    if (out.path.empty()) out.path = "/";
  }
  out.has_host = false;
  out.host = {};
  out.expect_continue = false;
  out.request_id = {};
  out.conn_upgrade = false;
  out.upgrade = {};
  out.content_length = 0;
  long r = parse_fields(data, len, end + 1, out, err, limits, true, &out, nullptr);
  if (r <= 0) return r;
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without
  // Host, or with more than one (checked above).
  if (out.minor == 1 && !out.has_host) {
    err = {400, "missing Host header"};
    return -1;
  }
  if (!out.authority.empty()) {
    // §3.2.2: with an absolute-form target the server MUST ignore Host and
    // use the target's authority. It becomes the Host we route by and the
    // only Host forwarded (the client's Host line is dropped), so nobody
    // downstream can read the request differently.
    out.host = out.authority;
    out.has_host = true;
  }
  out.is_head = out.method == "HEAD";
  out.websocket = out.conn_upgrade && IEQ(out.upgrade, "websocket") && out.method == "GET" && out.minor == 1;
  return r;
}

long parse_response_head(const char* data, size_t len, bool request_is_head, ResponseHead& out, ParseError& err,
                         const Limits& limits) {
  long nl = line_end(data, 0, len);
  if (nl < 0) {
    if (len > limits.max_head_bytes) {
      err = {502, "upstream status line too long"};
      return -1;
    }
    return 0;
  }
  size_t end = static_cast<size_t>(nl);
  if (end == 0 || data[end - 1] != '\r') {
    err = {502, "upstream sent a bare LF"};
    return -1;
  }
  std::string_view line(data, end - 1);
  // HTTP-version SP 3DIGIT SP [reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
      line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
      (line.size() > 12 && line[12] != ' ')) {
    err = {502, "invalid upstream status line"};
    return -1;
  }
  out.minor = line[7] - '0';
  out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (char c : out.reason) {
    if (!kTable.v[static_cast<unsigned char>(c)]) {
      err = {502, "invalid upstream status line"};
      return -1;
    }
  }
  out.has_date = out.has_server = false;
  out.conn_upgrade = false;
  out.upgrade = {};
  out.content_length = 0;
  long r = parse_fields(data, len, end + 1, out, err, limits, false, nullptr, &out);
  if (r <= 0) return r;
  // §6.3: responses to HEAD, 1xx, 204 and 304 have no body whatever the headers say.
  if (request_is_head || out.status < 200 || out.status == 204 || out.status == 304) out.framing = Framing::None;
  return r;
}

}  // namespace ingressd::http1
