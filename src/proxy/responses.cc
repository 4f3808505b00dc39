#include "proxy/responses.h"

#include <fmt/format.h>

namespace ingressd {

const char* status_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void append_error_response(Buffer& out, int status, std::string_view detail, bool close, bool head_only,
                           const std::string& date_line, std::string_view extra) {
  if (status == 204) {  // RFC 9110 §15.3.5: no content, no Content-Length
    out.append(fmt::format("HTTP/1.1 204 No Content\r\n{}{}Server: ingressd\r\n{}\r\n", date_line, extra,
                           close ? "Connection: close\r\n" : ""));
    return;
  }
  std::string body = detail.empty() ? fmt::format("{} {}\n", status, status_reason(status))
                                    : fmt::format("{} {}: {}\n", status, status_reason(status), detail);
  std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}{}Server: ingressd\r\n{}\r\n",
      status, status_reason(status), body.size(), date_line, extra, close ? "Connection: close\r\n" : "");
  out.append(head);
  if (!head_only) out.append(body);
}

}  // namespace ingressd
