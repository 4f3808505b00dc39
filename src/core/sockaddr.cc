#include "core/sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace ingressd {

bool parse_sockaddr(std::string_view ip, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  out = sockaddr_storage{};
  len = 0;
  const std::string z(ip);  // inet_pton wants a C string
  auto* s4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, z.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  out = sockaddr_storage{};
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, z.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  out = sockaddr_storage{};
  return false;
}

int ip_family(std::string_view ip) {
  sockaddr_storage ss;
  socklen_t len;
  return parse_sockaddr(ip, 0, ss, len) ? ss.ss_family : AF_UNSPEC;
}

std::string join_host_port(std::string_view ip, uint16_t port) {
  std::string out;
  const bool v6 = ip.find(':') != std::string_view::npos;
  out.reserve(ip.size() + 8);
  if (v6) out += '[';
  out += ip;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace ingressd
