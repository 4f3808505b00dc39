#include "routing/cors.h"

#include <fmt/format.h>

#include "core/strings.h"

namespace ingressd::routing {

std::string_view CorsPolicy::allow_origin(std::string_view origin) const {
  for (const auto& o : origins) {
    if (o == "*") return "*";
    if (origin.empty()) continue;
    if (iequals(o, origin)) return origin;
    // "https://*.example.com": the scheme, then any non-empty labels, then the suffix.
    size_t star = o.find("://*.");
    if (star == std::string::npos) continue;
    std::string_view scheme = std::string_view(o).substr(0, star + 3);
    std::string_view suffix = std::string_view(o).substr(star + 4);  // ".example.com" (and maybe ":port")
    if (origin.size() > scheme.size() + suffix.size() && iequals(origin.substr(0, scheme.size()), scheme) &&
        iequals(origin.substr(origin.size() - suffix.size()), suffix) && origin[scheme.size()] != '.')
      return origin;
  }
  return {};
}

void CorsPolicy::append_headers(std::string_view origin, bool preflight, std::string& out, std::string_view req_method,
                                std::string_view req_headers) const {
  std::string_view allow = allow_origin(origin);
  if (allow.empty()) return;
  if (gateway) {
    if (allow == "*" && credentials && !origin.empty()) allow = origin;
    out.append("Access-Control-Allow-Origin: ").append(allow).append("\r\n");
    if (allow != "*") out.append("Vary: Origin\r\n");
    if (credentials) out.append("Access-Control-Allow-Credentials: true\r\n");
    if (preflight) {
      std::string_view m = methods == "*" && !req_method.empty() ? req_method : std::string_view(methods);
      if (!m.empty()) out.append("Access-Control-Allow-Methods: ").append(m).append("\r\n");
      std::string_view hd = headers == "*" && !req_headers.empty() ? req_headers : std::string_view(headers);
      if (!hd.empty()) out.append("Access-Control-Allow-Headers: ").append(hd).append("\r\n");
      out.append("Access-Control-Max-Age: ").append(fmt::format_int(max_age).c_str()).append("\r\n");
    }
    if (!expose.empty()) out.append("Access-Control-Expose-Headers: ").append(expose).append("\r\n");
    return;
  }
  out.append("Access-Control-Allow-Origin: ").append(allow).append("\r\n");
  if (allow != "*") out.append("Vary: Origin\r\n");
  if (credentials) out.append("Access-Control-Allow-Credentials: true\r\n");
  out.append("Access-Control-Allow-Methods: ").append(methods).append("\r\n");
  out.append("Access-Control-Allow-Headers: ").append(headers).append("\r\n");
  if (!expose.empty()) out.append("Access-Control-Expose-Headers: ").append(expose).append("\r\n");
  if (preflight) out.append("Access-Control-Max-Age: ").append(fmt::format_int(max_age).c_str()).append("\r\n");
}

}  // namespace ingressd::routing
