// CORS for the ingress-nginx annotations enable-cors, cors-allow-origin,
// cors-allow-methods, cors-allow-headers, cors-expose-headers,
// cors-allow-credentials and cors-max-age, with ingress-nginx's defaults: an
// OPTIONS request is answered 204 by ingressd (the preflight), and every
// response of the route gets the Access-Control-* fields when the request's
// Origin is allowed (with "*", every origin).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ingressd::routing {

struct CorsPolicy {
  std::vector<std::string> origins;  // "*", "https://a.example", "https://*.example.com" (one label or more)
  std::string methods = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
  std::string headers =
      "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
  std::string expose;
  bool credentials = true;
  int max_age = 1728000;
  // Gateway API HTTPCORSFilter semantics instead of ingress-nginx's: only a
  // real preflight (OPTIONS with Origin and Access-Control-Request-Method) is
  // answered; "*" methods or headers echo what the preflight asks; with
  // credentials the Origin is echoed rather than "*"; a simple request's
  // response gets the origin, credentials and exposed headers only.
  bool gateway = false;

  // The Access-Control-Allow-Origin value for a request's Origin ("" = not allowed).
  std::string_view allow_origin(std::string_view origin) const;
  // Appends the header lines for a response (`preflight`: with Max-Age) when
  // the origin is allowed; `req_method` / `req_headers`: the preflight's
  // Access-Control-Request-Method / -Headers.
  void append_headers(std::string_view origin, bool preflight, std::string& out, std::string_view req_method = {},
                      std::string_view req_headers = {}) const;
};

}  // namespace ingressd::routing
