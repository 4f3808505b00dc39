// Escaping for the access log (JSON and text formats).
#include "core/strings.h"

#include <gtest/gtest.h>

#include <string>

namespace ingressd {
namespace {

std::string json(std::string_view s) {
  std::string out(6 * s.size(), '\0');
  out.resize(static_cast<size_t>(json_escape_to(out.data(), s) - out.data()));
  return out;
}

std::string text(std::string_view s) {
  std::string out(4 * s.size(), '\0');
  out.resize(static_cast<size_t>(text_escape_to(out.data(), s) - out.data()));
  return out;
}

TEST(Escape, Json) {
  EXPECT_EQ(json("plain/path?q=1"), "plain/path?q=1");
  EXPECT_EQ(json("a\"b\\c\n\r\t"), "a\\\"b\\\\c\\n\\r\\t");
  EXPECT_EQ(json(std::string_view("\x01\x7f\xc3\xa9", 4)), "\\u0001\\u007f\\u00c3\\u00a9");
  // Longer than the 16-byte fast path, the byte to escape after it, and every byte value (worst-case room).
  EXPECT_EQ(json(std::string(40, 'x') + "\"" + std::string(5, 'y')), std::string(40, 'x') + "\\\"" + std::string(5, 'y'));
  EXPECT_EQ(json(std::string(33, '\x1f')).size(), 33u * 6);
  EXPECT_EQ(json(""), "");
}

TEST(Escape, Text) {
  EXPECT_EQ(text("GET"), "GET");
  EXPECT_EQ(text("a b\"\\\x80"), "a\\x20b\\x22\\x5c\\x80");
  EXPECT_EQ(text(""), "");
}

}  // namespace
}  // namespace ingressd
