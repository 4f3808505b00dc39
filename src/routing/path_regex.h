// A regex-mode path (ingress-nginx use-regex / rewrite-target): "^<path>",
// case-insensitive, matched against the request path's bytes. Compiled with
// RE2 (linear time, memory-capped, Latin-1: a path is bytes, as nginx's PCRE
// sees it, so no Unicode case folding). The idiom nearly every ingress-nginx
// rewrite uses, a literal followed by "(/|$)(.*)" or "(.*)" (or nothing),
// is evaluated without running the automaton: same answer, same groups, a
// few dozen instructions instead of thousands.
#pragma once
#include <re2/re2.h>

#include <memory>
#include <string>
#include <string_view>

namespace ingressd::routing {

class PathRegex {
 public:
  // Null with `error` set when RE2 cannot compile the path.
  static std::shared_ptr<const PathRegex> compile(std::string_view path, std::string& error);
  // Whether the path matches at its start; `groups[0..n)` get the match and its
  // groups (n ≤ groups() + 1; an absent group is empty).
  bool match(std::string_view path, re2::StringPiece* groups, int n) const;
  int groups() const { return re_->NumberOfCapturingGroups(); }
  bool fast() const { return tail_ != Tail::Slow; }

 private:
  enum class Tail : uint8_t { Slow, None, SlashOrEnd, Rest };
  std::unique_ptr<re2::RE2> re_;
  std::string literal_;  // lower-case (fast forms)
  Tail tail_ = Tail::Slow;
};

}  // namespace ingressd::routing
