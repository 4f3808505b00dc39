// Numeric addresses to socket addresses (core/sockaddr.h), and the endpoint
// keys built from them (proxy/worker.h).
#include "core/sockaddr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "proxy/worker.h"

namespace ingressd {
namespace {

bool all_zero(const sockaddr_storage& ss) {
  const auto* p = reinterpret_cast<const unsigned char*>(&ss);
  for (size_t i = 0; i < sizeof ss; ++i)
    if (p[i] != 0) return false;
  return true;
}

TEST(Sockaddr, IPv4) {
  sockaddr_storage ss;
  std::memset(&ss, 0xab, sizeof ss);  // parse_sockaddr zeroes it first
  socklen_t len = 0;
  ASSERT_TRUE(parse_sockaddr("10.1.2.3", 8080, ss, len));
  EXPECT_EQ(len, sizeof(sockaddr_in));
  const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
  EXPECT_EQ(s4->sin_family, AF_INET);
  EXPECT_EQ(ntohs(s4->sin_port), 8080);
  EXPECT_EQ(ntohl(s4->sin_addr.s_addr), 0x0a010203u);
  // The bytes past sockaddr_in stay zero: EndpointKey compares and hashes them.
  const auto* p = reinterpret_cast<const unsigned char*>(&ss);
  for (size_t i = sizeof(sockaddr_in); i < sizeof ss; ++i) ASSERT_EQ(p[i], 0) << i;
  for (size_t i = 0; i < sizeof s4->sin_zero; ++i) EXPECT_EQ(s4->sin_zero[i], 0);
}

TEST(Sockaddr, IPv6) {
  sockaddr_storage ss;
  std::memset(&ss, 0xab, sizeof ss);
  socklen_t len = 0;
  ASSERT_TRUE(parse_sockaddr("::1", 443, ss, len));
  EXPECT_EQ(len, sizeof(sockaddr_in6));
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  EXPECT_EQ(s6->sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(s6->sin6_port), 443);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
  EXPECT_EQ(s6->sin6_flowinfo, 0u);
  EXPECT_EQ(s6->sin6_scope_id, 0u);
  ASSERT_TRUE(parse_sockaddr("::ffff:192.0.2.1", 0, ss, len));  // v4-mapped is IPv6
  EXPECT_EQ(ss.ss_family, AF_INET6);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port), 0);
}

TEST(Sockaddr, NotANumericAddress) {
  for (std::string bad : {"", "localhost", "example.com", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "[::1]",
                          "::1%lo", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4:80", ":::", "fe80::1::2"}) {
    sockaddr_storage ss;
    std::memset(&ss, 0xab, sizeof ss);
    socklen_t len = 99;
    EXPECT_FALSE(parse_sockaddr(bad, 80, ss, len)) << bad;
    EXPECT_EQ(len, 0u) << bad;
    EXPECT_TRUE(all_zero(ss)) << bad;
    EXPECT_EQ(ip_family(bad), AF_UNSPEC) << bad;
  }
}

TEST(Sockaddr, StringViewIsNotReadPastItsEnd) {
  std::string s = "10.0.0.12";
  sockaddr_storage ss;
  socklen_t len;
  ASSERT_TRUE(parse_sockaddr(std::string_view(s).substr(0, 8), 1, ss, len));  // "10.0.0.1"
  EXPECT_EQ(ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr), 0x0a000001u);
}

TEST(Sockaddr, Family) {
  EXPECT_EQ(ip_family("127.0.0.1"), AF_INET);
  EXPECT_EQ(ip_family("0.0.0.0"), AF_INET);
  EXPECT_EQ(ip_family("::"), AF_INET6);
  EXPECT_EQ(ip_family("2001:db8::1"), AF_INET6);
  EXPECT_EQ(ip_family("::ffff:1.2.3.4"), AF_INET6);
  EXPECT_EQ(ip_family("lb.example.com"), AF_UNSPEC);
}

TEST(Sockaddr, JoinHostPort) {
  EXPECT_EQ(join_host_port("127.0.0.1", 8080), "127.0.0.1:8080");
  EXPECT_EQ(join_host_port("::1", 80), "[::1]:80");
  EXPECT_EQ(join_host_port("2001:DB8:0::1", 65535), "[2001:DB8:0::1]:65535");  // as given, not normalized
  EXPECT_EQ(join_host_port("0.0.0.0", 0), "0.0.0.0:0");
}

// The pool and health maps key endpoints by EndpointKey::of: the address
// bytes only, whatever the rest of the EndpointAddr's storage holds.
TEST(EndpointKey, OfAddress) {
  routing::EndpointAddr a, b, c;
  ASSERT_TRUE(parse_sockaddr("10.0.0.1", 80, a.sa, a.len));
  b = a;
  std::memset(reinterpret_cast<unsigned char*>(&b.sa) + b.len, 0x5a, sizeof b.sa - b.len);
  b.text = "other text";
  ASSERT_TRUE(parse_sockaddr("10.0.0.1", 81, c.sa, c.len));
  EndpointKey ka = EndpointKey::of(a), kb = EndpointKey::of(b), kc = EndpointKey::of(c);
  EXPECT_EQ(ka.len, sizeof(sockaddr_in));
  EXPECT_TRUE(ka == kb);
  EXPECT_EQ(EndpointKeyHash{}(ka), EndpointKeyHash{}(kb));
  EXPECT_EQ(std::memcmp(&ka.sa, &kb.sa, sizeof ka.sa), 0);  // the tail is zeroed too
  EXPECT_FALSE(ka == kc);
  routing::EndpointAddr v6;
  ASSERT_TRUE(parse_sockaddr("::1", 80, v6.sa, v6.len));
  EXPECT_EQ(EndpointKey::of(v6).len, sizeof(sockaddr_in6));
  EXPECT_FALSE(EndpointKey::of(v6) == ka);
}

}  // namespace
}  // namespace ingressd
