#include "observe/access_line.h"

#include <fmt/format.h>

#include <cstring>

#include "core/strings.h"

namespace ingressd {

void append_access_line(std::string& b, const AccessRecord& r, AccessLogFormat format) {
  char when[40];
  {
    size_t k = std::strlen(r.iso_second);
    if (k > 32) k = 32;
    std::memcpy(when, r.iso_second, k);
    const int ms = r.millis;
    when[k] = '.';
    when[k + 1] = static_cast<char>('0' + ms / 100);
    when[k + 2] = static_cast<char>('0' + ms / 10 % 10);
    when[k + 3] = static_cast<char>('0' + ms % 10);
    when[k + 4] = 'Z';
    when[k + 5] = 0;
  }
  // The line is written straight into the buffer through a pointer, with
  // room reserved for the worst case (every request byte escaped): small
  // appends to a std::string cost more than the formatting itself.
  const bool json = format == AccessLogFormat::Json;
  const std::string_view request_fields[] = {r.client,     r.method,    r.host,          r.target,
                                             r.upstream,   r.ingress,   r.rule_host,     r.rule_path,
                                             r.request_id, r.service_namespace, r.service_name, r.service_port};
  size_t room = 512;
  for (auto v : request_fields) room += v.size() * 6;
  const size_t start = b.size();
  b.resize(start + room);
  char* p = b.data() + start;
  auto lit = [&](std::string_view v) {
    if (v.empty()) return;  // an empty view may have no data pointer: memcpy(p, nullptr, 0) is undefined
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  };
  auto esc = [&](std::string_view v) { p = json ? json_escape_to(p, v) : text_escape_to(p, v); };
  auto num = [&](uint64_t v) {
    fmt::format_int f(v);
    lit(std::string_view(f.data(), f.size()));
  };
  // Milliseconds with three decimals from integer microseconds (no floating point).
  auto ms3 = [&](int64_t us) {
    if (us < 0) return lit("-1.000");
    num(static_cast<uint64_t>(us / 1000));
    *p++ = '.';
    *p++ = static_cast<char>('0' + us % 1000 / 100);
    *p++ = static_cast<char>('0' + us % 100 / 10);
    *p++ = static_cast<char>('0' + us % 10);
  };
  auto service = [&] {
    esc(r.service_namespace);
    *p++ = '/';
    esc(r.service_name);
    *p++ = ':';
    esc(r.service_port);
  };
  if (json) {
    auto field = [&](std::string_view name, std::string_view v) {
      lit(name);  // ,"name":"
      esc(v);
      *p++ = '"';
    };
    lit("{\"time\":\"");
    lit(when);
    *p++ = '"';
    field(",\"client\":\"", r.client);
    field(",\"method\":\"", r.method);
    field(",\"host\":\"", r.host);
    field(",\"path\":\"", r.target);
    lit(",\"protocol\":\"");
    lit(r.protocol);
    lit("\",\"status\":");
    num(static_cast<uint64_t>(r.status));
    lit(",\"bytes_in\":");
    num(r.bytes_in);
    lit(",\"bytes_out\":");
    num(r.bytes_out);
    lit(",\"duration_ms\":");
    ms3(r.duration_us);
    field(",\"upstream\":\"", r.upstream);
    lit(",\"upstream_ms\":");
    ms3(r.upstream_us);
    field(",\"ingress\":\"", r.ingress);
    field(",\"rule_host\":\"", r.rule_host);
    field(",\"rule_path\":\"", r.rule_path);
    lit(",\"service\":\"");
    if (r.has_service) service();
    field("\",\"request_id\":\"", r.request_id);
    lit("}\n");
  } else {
    // Text: time client "method host path protocol" status bytes_in bytes_out duration_ms upstream upstream_ms
    //       ingress service request_id   (request-derived fields escaped as \xHH; "-" when empty)
    auto field = [&](std::string_view v) {
      if (v.empty()) *p++ = '-';
      else esc(v);
    };
    lit(when);
    *p++ = ' ';
    lit(r.client);
    lit(" \"");
    field(r.method);
    *p++ = ' ';
    field(r.host);
    *p++ = ' ';
    field(r.target);
    *p++ = ' ';
    lit(r.protocol);
    lit("\" ");
    num(static_cast<uint64_t>(r.status));
    *p++ = ' ';
    num(r.bytes_in);
    *p++ = ' ';
    num(r.bytes_out);
    *p++ = ' ';
    ms3(r.duration_us);
    *p++ = ' ';
    field(r.upstream);
    *p++ = ' ';
    ms3(r.upstream_us);
    *p++ = ' ';
    field(r.ingress);
    *p++ = ' ';
    if (r.has_service) service();
    else *p++ = '-';
    *p++ = ' ';
    field(r.request_id);
    *p++ = '\n';
  }
  b.resize(static_cast<size_t>(p - b.data()));
}

}  // namespace ingressd
