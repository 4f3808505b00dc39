#include "proxy/response_head.h"

#include <strings.h>

#include <cstring>

#include <fmt/format.h>

namespace ingressd {

namespace {

// The head is written through a pointer into room reserved once for its
// largest possible size: one bounds check per head, not per field.
struct Writer {
  char* p;
  void lit(std::string_view v) {
    if (v.empty()) return;  // an empty view may have no data pointer: memcpy(p, nullptr, 0) is undefined
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  }
  void field(std::string_view name, std::string_view value) {
    lit(name);
    *p++ = ':';
    *p++ = ' ';
    lit(value);
    *p++ = '\r';
    *p++ = '\n';
  }
  void status_line(int status, std::string_view reason) {
    lit("HTTP/1.1 ");
    *p++ = static_cast<char>('0' + status / 100);
    *p++ = static_cast<char>('0' + status / 10 % 10);
    *p++ = static_cast<char>('0' + status % 10);
    *p++ = ' ';
    lit(reason);
    *p++ = '\r';
    *p++ = '\n';
  }
  void number(uint64_t v) {
    fmt::format_int f(v);
    lit(std::string_view(f.data(), f.size()));
  }
};

size_t fields_size(const http1::ResponseHead& resp) {
  size_t n = 16 + resp.reason.size();
  for (int i = 0; i < resp.n_headers; ++i) n += resp.headers[i].name.size() + resp.headers[i].value.size() + 4;
  return n;
}

}  // namespace

void write_interim_head(Buffer& o, const http1::ResponseHead& resp) {
  char* start = o.prepare(fields_size(resp) + 2);
  Writer w{start};
  w.status_line(resp.status, resp.reason);
  for (int i = 0; i < resp.n_headers; ++i) {
    const auto& f = resp.headers[i];
    if (f.flags & http1::kHopByHop) continue;
    w.field(f.name, f.value);
  }
  w.lit("\r\n");
  o.commit(static_cast<size_t>(w.p - start));
}

void write_final_head(Buffer& o, const http1::ResponseHead& resp, const ResponseHeadFacts& f) {
  const bool upgrade = resp.status == 101;
  const routing::HeaderEdits* edits =
      f.action && !f.action->response_headers.empty() ? &f.action->response_headers : nullptr;
  size_t room = fields_size(resp) + 160 + resp.upgrade.size() + f.hsts.size() + f.date_line.size() + f.extra.size() +
                f.set_cookie.size();
  if (edits) {
    for (const auto& [n, v] : edits->set) room += n.size() + v.size() + 4;
    for (const auto& [n, v] : edits->add) room += n.size() + v.size() + 4;
  }
  char* start = o.prepare(room);
  Writer w{start};
  w.status_line(resp.status, resp.reason);
  bool upstream_hsts = false;
  for (int i = 0; i < resp.n_headers; ++i) {
    const auto& h = resp.headers[i];
    if (h.flags & http1::kHopByHop) continue;
    if (edits && edits->drops(h.name)) continue;
    if (!f.extra.empty() && h.name.size() > 15 && strncasecmp(h.name.data(), "access-control-", 15) == 0) continue;
    if (!f.hsts.empty() && h.name.size() == 25 && strncasecmp(h.name.data(), "strict-transport-security", 25) == 0)
      upstream_hsts = true;  // the application's own policy stands
    w.field(h.name, h.value);
  }
  if (edits) {
    for (const auto& [n, v] : edits->set) w.field(n, v);
    for (const auto& [n, v] : edits->add) w.field(n, v);
  }
  w.lit(f.extra);
  w.lit(f.set_cookie);
  if (upgrade) {
    w.lit("Connection: Upgrade\r\nUpgrade: ");
    w.lit(resp.upgrade);
    w.lit("\r\n");
  } else {
    switch (resp.framing) {
      case http1::Framing::Length:
        w.lit("Content-Length: ");
        w.number(resp.content_length);
        w.lit("\r\n");
        break;
      case http1::Framing::None:
        // RFC 9110 §8.6: never a Content-Length in a 204; HEAD and 304 keep the
        // length of the representation when the upstream gave one.
        if (resp.status == 204) break;
        if (resp.has_content_length) {
          w.lit("Content-Length: ");
          w.number(resp.content_length);
          w.lit("\r\n");
        } else if (!f.is_head && resp.status != 304) {
          w.lit("Content-Length: 0\r\n");
        }
        break;
      default:
        if (f.chunk_out) w.lit("Transfer-Encoding: chunked\r\n");
        break;
    }
    if (!f.client_keep_alive) w.lit("Connection: close\r\n");
    else if (f.client_minor == 0) w.lit("Connection: keep-alive\r\n");
  }
  if (f.secure && !f.hsts.empty() && !upstream_hsts) w.field("Strict-Transport-Security", f.hsts);
  if (!resp.has_date) w.lit(f.date_line);
  if (!resp.has_server) w.lit("Server: ingressd\r\n");
  w.lit("\r\n");
  o.commit(static_cast<size_t>(w.p - start));
}

}  // namespace ingressd
