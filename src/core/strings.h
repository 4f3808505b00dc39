#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ingressd {

// 0-15 for a hex digit, -1 otherwise.
inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
std::string_view trim_ows(std::string_view s);  // spaces and tabs
std::vector<std::string_view> split(std::string_view s, char sep);
std::optional<uint64_t> parse_u64(std::string_view s);  // decimal digits only, no sign, no overflow
// Escaping for logs, into raw memory with room for the worst case (6 bytes per
// input byte for JSON, 4 for text); returns the end of what was written.
// JSON: ASCII-only output (controls and bytes >= 0x7f become \u00XX).
// Text (space-separated logs): bytes outside 0x21..0x7e, '"' and '\\' become \xHH.
char* json_escape_to(char* out, std::string_view s);
char* text_escape_to(char* out, std::string_view s);
bool ends_with(std::string_view s, std::string_view suffix);
// RFC 3339 date-time (as metav1.Time accepts) → nanoseconds since the epoch.
std::optional<int64_t> parse_rfc3339_ns(std::string_view s);
std::string percent_decode(std::string_view s);  // for query strings: %XX and '+'
// Standard base64 (RFC 4648 §4, padded); line breaks and spaces are skipped.
// nullopt when it is not base64.
std::optional<std::string> base64_decode(std::string_view in);
bool starts_with(std::string_view s, std::string_view prefix);

}  // namespace ingressd
