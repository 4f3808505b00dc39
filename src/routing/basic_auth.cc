#include "routing/basic_auth.h"

#include <apr_general.h>
#include <apr_md5.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "core/strings.h"

namespace ingressd::routing {

namespace {
std::atomic<uint64_t> g_next_id{1};

// Verified credentials of this thread: SHA-256 of (id, header value).
struct Verified {
  std::unordered_set<std::string> keys;
};
thread_local Verified t_verified;
constexpr size_t kMaxVerified = 4096;

std::string cache_key(uint64_t id, std::string_view value) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, &id, sizeof id);
  EVP_DigestUpdate(ctx, value.data(), value.size());
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(md), len);
}
}  // namespace

BasicAuth::BasicAuth(std::string realm, std::map<std::string, std::string, std::less<>> users)
    : users_(std::move(users)), id_(g_next_id.fetch_add(1)) {
  www_authenticate_ = "WWW-Authenticate: Basic realm=\"" + realm + "\", charset=\"UTF-8\"\r\n";
}

std::map<std::string, std::string, std::less<>> BasicAuth::parse_htpasswd(std::string_view text, int& bad) {
  std::map<std::string, std::string, std::less<>> users;
  bad = 0;
  for (auto line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim_ows(line);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon + 1 == line.size()) {
      ++bad;
      continue;
    }
    users.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return users;
}

bool BasicAuth::check(std::string_view authorization) const {
  // RFC 7617 §2: "Basic" (case-insensitive), one or more spaces, token68.
  if (authorization.size() < 6 || !iequals(authorization.substr(0, 5), "basic") || authorization[5] != ' ') return false;
  std::string_view cred = trim_ows(authorization.substr(6));
  if (cred.empty() || cred.size() > 4096) return false;
  std::string key = cache_key(id_, cred);
  if (t_verified.keys.count(key)) return true;
  auto decoded = base64_decode(cred);
  if (!decoded) return false;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  std::string user = decoded->substr(0, colon), password = decoded->substr(colon + 1);
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  static std::once_flag apr_once;
  std::call_once(apr_once, [] { apr_initialize(); });
  if (apr_password_validate(password.c_str(), it->second.c_str()) != APR_SUCCESS) return false;
  if (t_verified.keys.size() >= kMaxVerified) t_verified.keys.clear();
  t_verified.keys.insert(std::move(key));
  return true;
}

}  // namespace ingressd::routing
