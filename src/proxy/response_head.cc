#include "proxy/response_head.h"

#include <strings.h>

#include <cstring>

#include <fmt/format.h>

namespace ingressd {

namespace {
void append_field(Buffer& o, std::string_view name, std::string_view value) {
  o.append(name);
  o.append(": ", 2);
  o.append(value);
  o.append("\r\n", 2);
}

void append_status_line(Buffer& o, int status, std::string_view reason) {
  char* p = o.prepare(13);
  std::memcpy(p, "HTTP/1.1 ", 9);
  p[9] = static_cast<char>('0' + status / 100);
  p[10] = static_cast<char>('0' + status / 10 % 10);
  p[11] = static_cast<char>('0' + status % 10);
  p[12] = ' ';
  o.commit(13);
  o.append(reason);
  o.append("\r\n", 2);
}
}  // namespace

void write_interim_head(Buffer& o, const http1::ResponseHead& resp) {
  append_status_line(o, resp.status, resp.reason);
  for (int i = 0; i < resp.n_headers; ++i) {
    const auto& f = resp.headers[i];
    if (f.flags & http1::kHopByHop) continue;
    append_field(o, f.name, f.value);
  }
  o.append("\r\n", 2);
}

void write_final_head(Buffer& o, const http1::ResponseHead& resp, const ResponseHeadFacts& f) {
  const bool upgrade = resp.status == 101;
  const routing::HeaderEdits* edits =
      f.action && !f.action->response_headers.empty() ? &f.action->response_headers : nullptr;
  append_status_line(o, resp.status, resp.reason);
  bool upstream_hsts = false;
  for (int i = 0; i < resp.n_headers; ++i) {
    const auto& h = resp.headers[i];
    if (h.flags & http1::kHopByHop) continue;
    if (edits && edits->drops(h.name)) continue;
    if (!f.hsts.empty() && h.name.size() == 25 && strncasecmp(h.name.data(), "strict-transport-security", 25) == 0)
      upstream_hsts = true;  // the application's own policy stands
    append_field(o, h.name, h.value);
  }
  if (edits) {
    for (const auto& [n, v] : edits->set) append_field(o, n, v);
    for (const auto& [n, v] : edits->add) append_field(o, n, v);
  }
  if (upgrade) {
    o.append("Connection: Upgrade\r\nUpgrade: ");
    o.append(resp.upgrade);
    o.append("\r\n");
  } else {
    switch (resp.framing) {
      case http1::Framing::Length:
        o.append("Content-Length: ");
        o.append(fmt::format_int(resp.content_length).c_str());
        o.append("\r\n");
        break;
      case http1::Framing::None:
        // RFC 9110 §8.6: never a Content-Length in a 204; HEAD and 304 keep the
        // length of the representation when the upstream gave one.
        if (resp.status == 204) break;
        if (resp.has_content_length) {
          o.append("Content-Length: ");
          o.append(fmt::format_int(resp.content_length).c_str());
          o.append("\r\n");
        } else if (!f.is_head && resp.status != 304) {
          o.append("Content-Length: 0\r\n");
        }
        break;
      default:
        if (f.chunk_out) o.append("Transfer-Encoding: chunked\r\n");
        break;
    }
    if (!f.client_keep_alive) o.append("Connection: close\r\n");
    else if (f.client_minor == 0) o.append("Connection: keep-alive\r\n");
  }
  if (f.secure && !f.hsts.empty() && !upstream_hsts) append_field(o, "Strict-Transport-Security", f.hsts);
  if (!resp.has_date) o.append(f.date_line);
  if (!resp.has_server) o.append("Server: ingressd\r\n");
  o.append("\r\n", 2);
}

}  // namespace ingressd
