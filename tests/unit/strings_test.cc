// Escaping for the access log and JSON output: one rule per format, whichever form writes it.
#include "core/strings.h"

#include <gtest/gtest.h>

#include <string>

namespace ingressd {
namespace {

std::string via_pointer_json(std::string_view s) {
  std::string out(6 * s.size(), '\0');
  out.resize(static_cast<size_t>(json_escape_to(out.data(), s) - out.data()));
  return out;
}

TEST(Escape, Json) {
  EXPECT_EQ(json_escape("plain/path?q=1"), "plain/path?q=1");
  EXPECT_EQ(json_escape("a\"b\\c\n\r\t"), "a\\\"b\\\\c\\n\\r\\t");
  EXPECT_EQ(json_escape(std::string_view("\x01\x7f\xc3\xa9", 4)), "\\u0001\\u007f\\u00c3\\u00a9");
  // Longer than the 16-byte fast path, with the byte to escape after it.
  const std::string long_in = std::string(40, 'x') + "\"" + std::string(5, 'y');
  EXPECT_EQ(json_escape(long_in), std::string(40, 'x') + "\\\"" + std::string(5, 'y'));
  for (std::string_view s : {std::string_view("abc"), std::string_view(long_in), std::string_view("\x00\x1f", 2)})
    EXPECT_EQ(via_pointer_json(s), json_escape(s));
  std::string out = "prefix:";
  append_json_escaped(out, "q\"");
  EXPECT_EQ(out, "prefix:q\\\"");
}

TEST(Escape, Text) {
  EXPECT_EQ(text_escape("GET"), "GET");
  EXPECT_EQ(text_escape("a b\"\\\x80"), "a\\x20b\\x22\\x5c\\x80");
  std::string out = "x=";
  append_text_escaped(out, "");
  EXPECT_EQ(out, "x=");
}

}  // namespace
}  // namespace ingressd
