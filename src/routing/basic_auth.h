// HTTP Basic authentication (RFC 7617) for the ingress-nginx annotations
// auth-type: basic, auth-secret, auth-secret-type, auth-realm. The users come
// from a Secret of the Ingress's namespace: an htpasswd file under the key
// "auth" (auth-file), or one key per user (auth-map). Hashes are checked with
// APR's apr_password_validate, the code htpasswd itself uses: bcrypt
// ($2y$), Apache MD5 ($apr1$), SHA-1 ({SHA}) and crypt(3).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace ingressd::routing {

class BasicAuth {
 public:
  // `www_authenticate` is built from the realm (validated: no quote, backslash or control character).
  BasicAuth(std::string realm, std::map<std::string, std::string, std::less<>> users);
  // Whether an Authorization field value ("Basic base64(user:password)") names
  // a user with that password. A verified credential is remembered by its
  // SHA-256 per worker thread, so a keep-alive client does not pay bcrypt on
  // every request.
  bool check(std::string_view authorization) const;
  const std::string& www_authenticate() const { return www_authenticate_; }  // "WWW-Authenticate: Basic realm=...\r\n"
  size_t users() const { return users_.size(); }

  // htpasswd text → users; `bad` counts lines that are not "user:hash".
  static std::map<std::string, std::string, std::less<>> parse_htpasswd(std::string_view text, int& bad);

 private:
  std::map<std::string, std::string, std::less<>> users_;
  std::string www_authenticate_;
  uint64_t id_;  // unique per object, so a cache entry never outlives the users it was checked against
};

}  // namespace ingressd::routing
