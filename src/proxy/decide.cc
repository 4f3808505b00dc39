#include "proxy/decide.h"

#include <strings.h>

#include <fmt/format.h>

#include "proxy/endpoint_picker.h"
#include "routing/basic_auth.h"
#include "routing/cors.h"
#include "routing/rate_limit.h"
#include "routing/path.h"

namespace ingressd {

namespace {

bool find_header(const void* ctx, std::string_view name, std::string_view& value) {
  const auto& req = *static_cast<const http1::RequestHead*>(ctx);
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& f = req.headers[i];
    if (f.name.size() == name.size() && strncasecmp(f.name.data(), name.data(), name.size()) == 0) {
      value = f.value;
      return true;
    }
  }
  return false;
}

Decision respond(Decision d, int status, const char* detail, bool close) {
  d.verdict = Verdict::Respond;
  d.status = status;
  d.detail = detail;
  d.close = close;
  return d;
}

void append_port(std::string& out, std::string_view scheme, uint16_t port) {
  if ((scheme == "http" && port == 80) || (scheme == "https" && port == 443) || port == 0) return;
  out.append(":").append(fmt::format_int(port).c_str());
}

}  // namespace

routing::RequestFacts request_facts(const http1::RequestHead& req, bool secure) {
  routing::RequestFacts f;
  f.method = req.method;
  f.query = req.query;
  f.secure = secure;
  f.ctx = &req;
  f.header = &find_header;
  return f;
}

// Gateway API HTTPRequestRedirectFilter: unset parts come from the request;
// an unset port is the scheme's well-known port when the scheme is changed,
// else the listener's; the well-known port of the scheme is left out.
void redirect_location(const routing::Redirect& r, const http1::RequestHead& req, std::string_view host,
                       std::string_view path, bool secure, uint16_t listener_port, std::string& out) {
  if (!r.url.empty()) {
    out.assign(r.url);
    return;
  }
  if (r.host_as_sent) {
    out.assign(secure ? "https://" : "http://").append(req.has_host ? req.host : req.authority);
    std::string p;
    r.path.apply(path, p);
    out.append(p);
    return;
  }
  std::string_view scheme = !r.scheme.empty() ? std::string_view(r.scheme) : secure ? "https" : "http";
  uint16_t port = r.port;
  if (!port && r.scheme.empty()) port = r.declared_listener_port ? (secure ? 443 : 80) : listener_port;
  if (!port) port = scheme == "https" ? 443 : 80;
  out.assign(scheme).append("://").append(r.host.empty() ? host : std::string_view(r.host));
  append_port(out, scheme, port);
  if (r.path.active()) {
    std::string p;
    r.path.apply(path, p);
    out.append(p);
  } else {
    out.append(req.path.empty() || req.path[0] != '/' ? "/" : "").append(req.path);
  }
  out.append(req.query);
}

Decision decide(const http1::RequestHead& req, const ConnFacts& conn, const routing::RouteTable* table,
                const ProxyConfig& cfg, const uint32_t* backend_inflight, uint64_t roll, DecideScratch& s) {
  Decision d;
  const bool has_body = req.framing != http1::Framing::None;
  // After an answer of ours, the connection is kept only when no body follows
  // the head that we would have to read past.
  const bool close_after = has_body || !req.keep_alive;

  std::string_view host_src = req.authority.empty() ? req.host : req.authority;
  if (!routing::normalize_host(host_src, s.host)) return respond(d, 400, "invalid Host", true);
  d.path = req.path;
  if (req.path == "*") {
    // RFC 9112 §3.2.4: the asterisk form is for OPTIONS only; routed as "/".
    if (req.method != "OPTIONS") return respond(d, 400, "invalid request target", true);
    d.path = "/";
  } else {
    switch (routing::normalize_path(req.path, s.norm_path)) {
      case routing::PathVerdict::Unchanged: break;
      case routing::PathVerdict::Ok: d.path = s.norm_path; break;
      case routing::PathVerdict::EncodedSlash: return respond(d, 400, "encoded slash or backslash in path", true);
      default: return respond(d, 400, "invalid path", true);
    }
  }
  if (!table) return respond(d, 503, "no configuration loaded yet", close_after);
  const routing::RequestFacts facts = request_facts(req, conn.secure);
  d.match = table->match(s.host, d.path, &facts);
  const routing::Match& m = d.match;

  // A plain action (forward to one backend, nothing else) skips every policy check.
  const routing::RouteAction* a = m.action && !m.action->is_plain ? m.action : nullptr;
  // Source-address rules first: a refused client learns nothing else (not
  // even that the host redirects to https).
  if (a && a->ip_access && !a->ip_access->allows(conn.client))
    return respond(d, 403, "your address is not allowed here", close_after);
  // Plain HTTP for a host named in spec.tls: 308 (method and body kept) to
  // the same host and target over https, as ingress-nginx does, except for
  // ACME HTTP-01 challenges. A request with a body is answered and the
  // connection closed (the body is not read). An Ingress can turn it off
  // (ssl-redirect: "false") or force it without TLS (force-ssl-redirect).
  const routing::SslRedirect ssl = a ? a->ssl_redirect : routing::SslRedirect::Default;
  if (!conn.secure && conn.https_listener && !d.path.starts_with("/.well-known/acme-challenge/") &&
      (ssl == routing::SslRedirect::Force ||
       (ssl == routing::SslRedirect::Default && cfg.ssl_redirect && table->has_tls_hosts() && table->tls_host(s.host)))) {
    routing::Redirect to_https;
    to_https.scheme = "https";
    to_https.port = cfg.redirect_https_port ? cfg.redirect_https_port : cfg.https_port;
    redirect_location(to_https, req, s.host, d.path, conn.secure, 0, s.location);
    d.verdict = Verdict::Redirect;
    d.status = 308;
    d.detail = "this host is served over https";
    d.close = close_after;
    return d;
  }
  // The reason (which Secret, which annotation) is for the operator: check,
  // explain, the log and the Ingress status say it; the client gets no detail.
  if (a && !a->refuse.empty())
    return respond(d, a->refuse_status,
                   a->refuse_status == 503
                       ? "this route is not served: its configuration asks for protection ingressd cannot enforce"
                       : "this route is not served: its configuration is invalid",
                   close_after);
  if (a && a->redirects) {
    redirect_location(a->redirect, req, s.host, d.path, conn.secure, conn.secure ? cfg.https_port : cfg.http_port,
                      s.location);
    d.verdict = Verdict::Redirect;
    d.status = a->redirect.status;
    d.detail = "redirected by the route";
    d.close = close_after;
    return d;
  }
  if (a && a->cors) {
    // ingress-nginx answers every OPTIONS of a CORS route itself (the
    // preflight), before authentication: browsers send no credentials there.
    std::string_view origin, req_method, req_headers;
    const bool has_origin = find_header(&req, "origin", origin);
    s.headers.clear();
    bool preflight = req.method == "OPTIONS";
    if (a->cors->gateway) {
      // The Gateway API: only a real preflight is ours; other OPTIONS go to the backend.
      preflight = preflight && has_origin && find_header(&req, "access-control-request-method", req_method);
      find_header(&req, "access-control-request-headers", req_headers);
    }
    a->cors->append_headers(origin, preflight, s.headers, req_method, req_headers);
    d.headers = s.headers;
    if (preflight) {
      d.verdict = Verdict::Respond;
      d.status = 204;
      d.detail = "";
      d.close = close_after;
      return d;
    }
  }
  bool limit_exempt = false;
  if (a && (!a->rate_limits.empty() || a->conn_limit) && conn.now_ms) {
    for (const auto& c : a->rate_limit_exempt) limit_exempt = limit_exempt || c.contains(conn.client);
    if (!limit_exempt)
      for (const auto& rl : a->rate_limits)
        if (!rl->allow(conn.client, conn.now_ms)) return respond(d, 503, "too many requests from your address", close_after);
  }
  if (a && a->basic_auth) {
    std::string_view cred;
    if (!find_header(&req, "authorization", cred) || !a->basic_auth->check(cred)) {
      d = respond(d, 401, "authentication required", close_after);
      d.headers = a->basic_auth->www_authenticate();
      return d;
    }
  }
  if (!m.action) return respond(d, 404, "no route matches this request", close_after);
  if (a && (a->backends.size() > 1 || (a->backends.size() == 1 && a->backends[0].action))) {
    // A traffic split: the draw picks the backend; the rest of the checks are its.
    const routing::WeightedBackend* wb = pick_weighted(*a, roll);
    if (!wb) return respond(d, 500, "every backend of the route has weight 0", close_after);
    d.match.backend = wb->backend;
    if (wb->action) d.match.action = wb->action;  // the backend's own filters
  }
  if (!m.backend) return respond(d, 404, "no route matches this request", close_after);
  if (m.backend->invalid) return respond(d, 500, "the route's backend reference is invalid", close_after);
  if (m.backend->endpoints.empty()) return respond(d, 503, "the backend service has no ready endpoint", close_after);
  const uint64_t limit = body_limit(a, cfg);
  if (limit && req.framing == http1::Framing::Length && req.content_length > limit)
    return respond(d, 413, "the request body is larger than allowed", true);
  if (backend_inflight && cfg.max_requests_per_backend > 0 &&
      backend_inflight[m.backend->id] >= static_cast<uint32_t>(cfg.max_requests_per_backend))
    return respond(d, 503, "too many requests in progress for this backend", close_after);
  // Last, so that a slot is taken only by a request that is forwarded.
  if (a && a->conn_limit && conn.now_ms && !limit_exempt) {
    if (!a->conn_limit->acquire(conn.client))
      return respond(d, 503, "too many requests in progress from your address", close_after);
    d.conn_slot = a->conn_limit.get();
  }
  d.verdict = Verdict::Forward;
  return d;
}

}  // namespace ingressd
