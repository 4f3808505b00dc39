#include "routing/path_regex.h"

namespace ingressd::routing {

namespace {
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Characters that are themselves in a regex (no metacharacter, ASCII only).
bool plain(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80 || std::string_view(".^$*+?()[]{}|\\").find(static_cast<char>(c)) != std::string_view::npos)
      return false;
  return true;
}
}  // namespace

std::shared_ptr<const PathRegex> PathRegex::compile(std::string_view path, std::string& error) {
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  o.set_max_mem(1 << 20);
  o.set_encoding(RE2::Options::EncodingLatin1);
  auto p = std::make_shared<PathRegex>();
  std::string pattern = "^" + std::string(path);
  p->re_ = std::make_unique<re2::RE2>(pattern, o);
  if (!p->re_->ok()) {
    error = p->re_->error();
    return nullptr;
  }
  auto fast = [&](std::string_view suffix, Tail t) {
    if (!path.ends_with(suffix) || !plain(path.substr(0, path.size() - suffix.size()))) return false;
    p->literal_.clear();
    for (char c : path.substr(0, path.size() - suffix.size())) p->literal_ += lower(c);
    p->tail_ = t;
    return true;
  };
  fast("(/|$)(.*)", Tail::SlashOrEnd) || fast("(.*)", Tail::Rest) || fast("", Tail::None);
  return p;
}

bool PathRegex::match(std::string_view path, re2::StringPiece* g, int n) const {
  if (tail_ == Tail::Slow)
    return re_->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(), RE2::ANCHOR_START, g, n);
  const size_t L = literal_.size();
  if (path.size() < L) return false;
  for (size_t i = 0; i < L; ++i)
    if (lower(path[i]) != literal_[i]) return false;
  auto set = [&](int k, size_t from, size_t len) {
    if (k < n) g[k] = re2::StringPiece(path.data() + from, len);
  };
  switch (tail_) {
    case Tail::None:
      set(0, 0, L);
      return true;
    case Tail::Rest:  // "(.*)": the rest (a path holds no newline)
      set(0, 0, path.size());
      set(1, L, path.size() - L);
      return true;
    case Tail::SlashOrEnd:  // "(/|$)(.*)": a '/' next, or the end
      if (L < path.size() && path[L] != '/') return false;
      set(0, 0, path.size());
      set(1, L, L < path.size() ? 1 : 0);
      set(2, L < path.size() ? L + 1 : L, L < path.size() ? path.size() - L - 1 : 0);
      return true;
    case Tail::Slow:
      break;
  }
  return false;
}

}  // namespace ingressd::routing
