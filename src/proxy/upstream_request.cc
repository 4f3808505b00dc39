#include "proxy/upstream_request.h"

#include <fmt/format.h>

namespace ingressd {

void write_upstream_head(const http1::RequestHead& req, std::string_view path, const routing::RouteAction* action,
                         const UpstreamRequestFacts& facts, std::string& scratch, std::string& h) {
  const bool edits = action && !action->is_plain;
  const routing::HeaderEdits* hdr = edits && !action->request_headers.empty() ? &action->request_headers : nullptr;
  if (edits && action->rewrite.path.active()) {
    action->rewrite.path.apply(path, scratch);
    path = scratch;
  }
  h.clear();
  h.append(req.method);
  h += ' ';
  if (req.target == "*") h += '*';
  else h.append(path);
  h.append(req.query);
  h.append(" HTTP/1.1\r\n");
  // Host passes unchanged (unless the route rewrites it); an HTTP/1.0 request
  // without one gets the authority or nothing.
  if (edits && !action->rewrite.host.empty()) {
    h.append("Host: ").append(action->rewrite.host).append("\r\n");
  } else if (req.has_host) {
    h.append("Host: ").append(req.host).append("\r\n");
  } else if (!req.authority.empty()) {
    h.append("Host: ").append(req.authority).append("\r\n");
  } else {
    h.append("Host: \r\n");  // RFC 9112 §3.2: no authority → an empty Host
  }
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& f = req.headers[i];
    if (f.flags & (http1::kHopByHop | http1::kXForwarded | http1::kHost)) continue;
    if (hdr && hdr->drops(f.name)) continue;
    h.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (hdr) {
    for (const auto& [n, v] : hdr->set) h.append(n).append(": ").append(v).append("\r\n");
    for (const auto& [n, v] : hdr->add) h.append(n).append(": ").append(v).append("\r\n");
  }
  // X-Forwarded-For is appended to; the others describe this hop and are set by us
  // (a client must not be able to claim it came over https).
  h.append("X-Forwarded-For: ");
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& f = req.headers[i];
    if ((f.flags & http1::kXForwardedFor) && !f.value.empty()) h.append(f.value).append(", ");
  }
  h.append(facts.peer_ip).append("\r\nX-Real-IP: ").append(facts.peer_ip);
  h.append(facts.secure ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: "
                        : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
      .append(req.has_host ? req.host : req.authority);
  h.append("\r\nX-Forwarded-Port: ").append(fmt::format_int(facts.listener_port).c_str()).append("\r\n");
  if (!facts.new_request_id.empty()) h.append("X-Request-ID: ").append(facts.new_request_id).append("\r\n");
  switch (req.framing) {
    case http1::Framing::Length:
      h.append("Content-Length: ").append(fmt::format_int(req.content_length).c_str()).append("\r\n");
      break;
    case http1::Framing::Chunked:
      h.append("Transfer-Encoding: chunked\r\n");
      break;
    default:
      if (req.has_content_length) h.append("Content-Length: 0\r\n");
      break;
  }
  if (req.websocket) h.append("Connection: Upgrade\r\nUpgrade: ").append(req.upgrade).append("\r\n");
  h.append("\r\n");
}

}  // namespace ingressd
