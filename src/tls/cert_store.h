// Certificates for TLS termination: parsed from kubernetes.io/tls Secrets on
// the control thread, selected by SNI on the workers.
//
// A CertMap is immutable once built and published whole (like the
// RouteTable): a handshake takes the map in force when it starts.
#pragma once
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/diagnostic.h"
#include "routing/compile.h"
#include "model/snapshot.h"

namespace ingressd::tls {

// A certificate chain and its key. Owns one reference to each.
struct Certificate {
  X509* cert = nullptr;
  STACK_OF(X509)* chain = nullptr;  // intermediates, in the order written (may be empty)
  EVP_PKEY* key = nullptr;
  std::string source;  // "namespace/secret", or "self-signed"
  std::string subject;
  std::string serial;  // hex
  std::vector<std::string> dns_names;  // subjectAltName DNS entries, lower case
  int64_t not_after = 0;  // unix seconds
  Certificate() = default;
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;
  ~Certificate();
  // Whether the certificate's names cover `host` (exact, or "*.suffix" by an
  // identical wildcard name).
  bool covers(const std::string& host) const;
};
using CertPtr = std::shared_ptr<const Certificate>;

// Parses a PEM chain (leaf first) and its PEM private key. On failure
// returns null with `err` saying what is wrong (no PEM, key does not match...).
CertPtr parse_certificate(std::string_view crt_pem, std::string_view key_pem, std::string source, std::string& err);

// A self-signed certificate (ECDSA P-256, one year) for handshakes no Secret
// answers for.
CertPtr make_self_signed(std::string& err);

class CertMap {
 public:
  // The certificate for a server name: exact, then "*.suffix" (one label),
  // then the default. `sni` must be lower case; "" = no SNI.
  const Certificate* select(std::string_view sni) const;
  const Certificate* fallback() const { return fallback_.get(); }
  size_t size() const { return exact_.size() + wildcard_.size(); }
  // host → source, for /debug and tests.
  std::map<std::string, std::string> bindings() const;
  // source → notAfter of every certificate in the map (the default too).
  std::map<std::string, int64_t> expiries() const;

 private:
  friend std::shared_ptr<const CertMap> build_cert_map(const Snapshot&, const std::vector<routing::TlsBinding>&,
                                                       const std::string&, CertPtr, int64_t, Diagnostics&,
                                                       class CertCache*);
  std::unordered_map<std::string, CertPtr> exact_;
  std::unordered_map<std::string, CertPtr> wildcard_;  // key: the suffix after "*."
  CertPtr fallback_;
};

// Parsed certificates by Secret, reused while the Secret's bytes are the same.
class CertCache {
 public:
  CertPtr get(const std::string& source, const std::string& crt, const std::string& key, std::string& err);
  void retain(const std::map<std::string, bool>& used);  // drop entries not used by the last build

 private:
  struct Entry {
    std::string crt, key;
    CertPtr cert;
    std::string err;
  };
  std::map<std::string, Entry> entries_;
};

// Builds the SNI map from the tls entries of the served Ingresses (in
// precedence order: the first binding of a host wins) and their Secrets.
// `default_secret` ("namespace/name" or "") names the default certificate;
// without it, or when it is unusable, `self_signed` is the default. `now` is
// unix seconds (expired certificates are refused). Problems become
// diagnostics naming the Ingress and the Secret; a host whose certificate is
// unusable gets the default one.
std::shared_ptr<const CertMap> build_cert_map(const Snapshot& snap, const std::vector<routing::TlsBinding>& bindings,
                                              const std::string& default_secret, CertPtr self_signed, int64_t now,
                                              Diagnostics& diags, CertCache* cache = nullptr);

}  // namespace ingressd::tls
