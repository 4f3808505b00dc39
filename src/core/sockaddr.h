// Numeric IP addresses as socket addresses: the one place that turns
// "10.0.0.1" or "::1" (and a port) into a sockaddr, and into "host:port" text.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace ingressd {

// `ip`:`port` as a socket address when `ip` is a numeric IPv4 address (tried
// first) or IPv6 address as inet_pton(3) reads them: no brackets, no zone, no
// host names. `out` is zeroed first; on false it stays zeroed and `len` is 0.
bool parse_sockaddr(std::string_view ip, uint16_t port, sockaddr_storage& out, socklen_t& len);

// AF_INET or AF_INET6 for a numeric address of that family (as parse_sockaddr
// reads it), AF_UNSPEC for anything else.
int ip_family(std::string_view ip);

// "1.2.3.4:80", "[::1]:80": `ip` as given (not normalized), in brackets when
// it is an IPv6 address (has a ':').
std::string join_host_port(std::string_view ip, uint16_t port);

}  // namespace ingressd
