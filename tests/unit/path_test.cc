#include <gtest/gtest.h>

#include "routing/path.h"

using namespace ingressd::routing;

namespace {
std::string norm(std::string_view in) {
  std::string out;
  switch (normalize_path(in, out)) {
    case PathVerdict::Unchanged: return std::string(in);
    case PathVerdict::Ok: return out;
    case PathVerdict::BadEncoding: return "BAD";
    case PathVerdict::EncodedSlash: return "SLASH";
    case PathVerdict::NotAbsolute: return "REL";
  }
  return "?";
}
std::string host(std::string_view in) {
  std::string out;
  return normalize_host(in, out) ? out : "INVALID";
}
}  // namespace

TEST(Path, DotSegmentsAndEncodings) {
  EXPECT_EQ(norm("/"), "/");
  EXPECT_EQ(norm("/foo/bar/"), "/foo/bar/");
  EXPECT_EQ(norm("/a/../admin"), "/admin");
  EXPECT_EQ(norm("/a/%2e%2e/admin"), "/admin");
  EXPECT_EQ(norm("/a/%2E./admin"), "/admin");
  EXPECT_EQ(norm("/a/./b"), "/a/b");
  EXPECT_EQ(norm("/.."), "/");
  EXPECT_EQ(norm("/../../x"), "/x");
  EXPECT_EQ(norm("/a/b/.."), "/a/");
  EXPECT_EQ(norm("/a/."), "/a/");
  EXPECT_EQ(norm("/%61dmin"), "/admin");
  EXPECT_EQ(norm("/a%20b"), "/a%20b");
  EXPECT_EQ(norm("/a%c3%a9"), "/a%C3%A9");
  EXPECT_EQ(norm("/.well-known/x"), "/.well-known/x");
  EXPECT_EQ(norm("/a..b/c"), "/a..b/c");
  EXPECT_EQ(norm("/a/%2F/b"), "SLASH");
  EXPECT_EQ(norm("/a/%5c/b"), "SLASH");
  EXPECT_EQ(norm("/a\\b"), "SLASH");
  EXPECT_EQ(norm("/a%zz"), "BAD");
  EXPECT_EQ(norm("/a%2"), "BAD");
  EXPECT_EQ(norm("a"), "REL");
}

TEST(Path, Hosts) {
  EXPECT_EQ(host("Example.COM"), "example.com");
  EXPECT_EQ(host("example.com:8080"), "example.com");
  EXPECT_EQ(host("example.com."), "example.com");
  EXPECT_EQ(host("[::1]:80"), "[::1]");
  EXPECT_EQ(host(""), "");
  EXPECT_EQ(host("a b"), "INVALID");
  EXPECT_EQ(host("a.com:x"), "INVALID");
  EXPECT_EQ(host("u@a.com"), "INVALID");
}
