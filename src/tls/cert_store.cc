#include "tls/cert_store.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

namespace ingressd::tls {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return s;
}

// The first OpenSSL error in the queue, as text, and the queue cleared.
std::string ssl_error(const char* fallback) {
  unsigned long e = ERR_peek_last_error();
  std::string out = fallback;
  if (e) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    out += fmt::format(" ({})", reason ? reason : buf);
  }
  ERR_clear_error();
  return out;
}

void fill_names(Certificate& c) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(c.cert), buf, sizeof buf);
  c.subject = buf;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c.cert), nullptr)) {
    char* hex = BN_bn2hex(bn);
    c.serial = lower(hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
  }
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c.cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const unsigned char* d = ASN1_STRING_get0_data(g->d.dNSName);
      c.dns_names.push_back(lower(std::string(reinterpret_cast<const char*>(d), ASN1_STRING_length(g->d.dNSName))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (c.dns_names.empty()) {
    // No subjectAltName: clients ignore the CN these days, but name it anyway.
    int idx = X509_NAME_get_index_by_NID(X509_get_subject_name(c.cert), NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(c.cert), idx));
      c.dns_names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                                              ASN1_STRING_length(cn))));
    }
  }
  tm t{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(c.cert), &t) == 1) c.not_after = timegm(&t);
}

}  // namespace

Certificate::~Certificate() {
  X509_free(cert);
  if (chain) sk_X509_pop_free(chain, X509_free);
  EVP_PKEY_free(key);
}

bool Certificate::covers(const std::string& host) const {
  const std::string h = lower(host);
  for (const auto& n : dns_names) {
    if (n == h) return true;
    // A "*.suffix" name covers one more label; a wildcard host is covered only
    // by the same wildcard.
    if (n.size() > 2 && n[0] == '*' && n[1] == '.' && h.rfind("*.", 0) != 0) {
      size_t dot = h.find('.');
      if (dot != std::string::npos && dot > 0 && h.compare(dot + 1, std::string::npos, n, 2) == 0) return true;
    }
  }
  return false;
}

CertPtr parse_certificate(std::string_view crt_pem, std::string_view key_pem, std::string source, std::string& err) {
  ERR_clear_error();
  auto c = std::make_shared<Certificate>();
  c->source = std::move(source);
  {
    BIO* bio = BIO_new_mem_buf(crt_pem.data(), static_cast<int>(crt_pem.size()));
    c->cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (c->cert) {
      c->chain = sk_X509_new_null();
      while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) sk_X509_push(c->chain, x);
      // The loop ends on "no start line" at the end of the data; anything else is a broken block.
      unsigned long e = ERR_peek_last_error();
      if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        err = ssl_error("tls.crt holds a malformed PEM certificate after the first one");
        BIO_free(bio);
        return nullptr;
      }
      ERR_clear_error();
    }
    BIO_free(bio);
    if (!c->cert) {
      err = ssl_error("tls.crt holds no PEM certificate");
      return nullptr;
    }
  }
  {
    BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    c->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!c->key) {
      err = ssl_error("tls.key holds no PEM private key");
      return nullptr;
    }
  }
  if (X509_check_private_key(c->cert, c->key) != 1) {
    err = ssl_error("tls.key does not match the certificate in tls.crt");
    return nullptr;
  }
  fill_names(*c);
  return c;
}

CertPtr make_self_signed(std::string& err) {
  ERR_clear_error();
  auto c = std::make_shared<Certificate>();
  c->source = "self-signed";
  c->key = EVP_EC_gen("P-256");
  c->cert = X509_new();
  if (!c->key || !c->cert) {
    err = ssl_error("cannot generate a key");
    return nullptr;
  }
  X509_set_version(c->cert, 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c->cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(c->cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c->cert), 365L * 24 * 3600);
  X509_set_pubkey(c->cert, c->key);
  X509_NAME* name = X509_get_subject_name(c->cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ingressd"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ingressd default certificate"), -1, -1, 0);
  X509_set_issuer_name(c->cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, c->cert, c->cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_ext_key_usage, "serverAuth"},
                            std::pair{NID_subject_alt_name, "DNS:ingressd.invalid"}}) {
    if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)) {
      X509_add_ext(c->cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
  }
  if (X509_sign(c->cert, c->key, EVP_sha256()) == 0) {
    err = ssl_error("cannot sign the self-signed certificate");
    return nullptr;
  }
  c->chain = sk_X509_new_null();
  fill_names(*c);
  return c;
}

const Certificate* CertMap::select(std::string_view sni) const {
  if (!sni.empty()) {
    std::string key(sni);
    if (!key.empty() && key.back() == '.') key.pop_back();  // "example.com." names the same host
    auto it = exact_.find(key);
    if (it != exact_.end()) return it->second.get();
    size_t dot = key.find('.');
    if (dot != std::string::npos && dot > 0) {
      auto w = wildcard_.find(key.substr(dot + 1));
      if (w != wildcard_.end()) return w->second.get();
    }
  }
  return fallback_.get();
}

std::map<std::string, std::string> CertMap::bindings() const {
  std::map<std::string, std::string> out;
  for (auto& [h, c] : exact_) out[h] = c->source;
  for (auto& [h, c] : wildcard_) out["*." + h] = c->source;
  return out;
}

std::map<std::string, int64_t> CertMap::expiries() const {
  std::map<std::string, int64_t> out;
  for (const auto* m : {&exact_, &wildcard_})
    for (auto& [h, c] : *m) out[c->source] = c->not_after;
  if (fallback_) out[fallback_->source] = fallback_->not_after;
  return out;
}

CertPtr CertCache::get(const std::string& source, const std::string& crt, const std::string& key, std::string& err) {
  auto it = entries_.find(source);
  if (it != entries_.end() && it->second.crt == crt && it->second.key == key) {
    err = it->second.err;
    return it->second.cert;
  }
  Entry e{crt, key, parse_certificate(crt, key, source, err), err};
  CertPtr c = e.cert;
  entries_[source] = std::move(e);
  return c;
}

void CertCache::retain(const std::map<std::string, bool>& used) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (used.count(it->first)) ++it;
    else it = entries_.erase(it);
  }
}

std::shared_ptr<const CertMap> build_cert_map(const Snapshot& snap, const std::vector<routing::TlsBinding>& bindings,
                                              const std::string& default_secret, CertPtr self_signed, int64_t now,
                                              Diagnostics& diags, CertCache* cache) {
  auto map = std::make_shared<CertMap>();
  std::map<std::string, bool> used;
  // Parses and checks one Secret; null (with a diagnostic) when unusable.
  auto load = [&](const std::string& ns, const std::string& name, const model::SourcePos& pos,
                  const std::string& object, const char* role) -> CertPtr {
    const auto* sec = snap.get<model::Secret>(model::Kind::Secret, ns, name);
    std::string id = ns + "/" + name;
    auto fail = [&](Severity sev, const std::string& reason, const std::string& why) {
      diags.push_back({sev, pos.file, pos.line, object, reason,
                       fmt::format("{}: secret \"{}\": {}; {}", role, id, why,
                                   object.rfind("Ingress", 0) == 0 ? "its hosts get the default certificate"
                                                                   : "a self-signed certificate is served instead")});
    };
    if (!sec) {
      // An Ingress's missing Secret is reported by compile(); the default one is ours to report.
      if (object.rfind("Ingress", 0) != 0) fail(Severity::Error, "SecretNotFound", "not found");
      return nullptr;
    }
    auto crt = sec->data.find("tls.crt"), key = sec->data.find("tls.key");
    if (crt == sec->data.end() || key == sec->data.end()) {
      if (object.rfind("Ingress", 0) != 0) fail(Severity::Error, "SecretNotFound", "has no tls.crt and tls.key");
      return nullptr;
    }
    std::string err;
    used[id] = true;
    CertPtr c = cache ? cache->get(id, crt->second, key->second, err) : parse_certificate(crt->second, key->second, id, err);
    if (!c) {
      fail(Severity::Error, "InvalidCertificate", err);
      return nullptr;
    }
    if (c->not_after > 0 && c->not_after < now) {
      char when[32];
      time_t t = static_cast<time_t>(c->not_after);
      tm tmv{};
      gmtime_r(&t, &tmv);
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
      fail(Severity::Error, "CertificateExpired", fmt::format("the certificate (serial {}) expired at {}", c->serial, when));
      return nullptr;
    }
    if (sec->type != "kubernetes.io/tls")
      diags.push_back({Severity::Warning, pos.file, pos.line, object, "SecretType",
                       fmt::format("{}: secret \"{}\" has type \"{}\", not kubernetes.io/tls; used anyway", role, id,
                                   sec->type)});
    return c;
  };

  map->fallback_ = self_signed;
  if (!default_secret.empty()) {
    size_t slash = default_secret.find('/');
    std::string ns = slash == std::string::npos ? "default" : default_secret.substr(0, slash);
    std::string name = slash == std::string::npos ? default_secret : default_secret.substr(slash + 1);
    if (CertPtr c = load(ns, name, model::SourcePos{}, "--default-ssl-certificate", "the default certificate"))
      map->fallback_ = c;
  }
  for (const auto& b : bindings) {
    if (b.secret.empty()) continue;  // the default certificate answers for these hosts
    std::string object = b.object.empty() ? "Ingress " + b.ingress : b.object;
    std::string role = b.object.empty() ? fmt::format("spec.tls[{}]", b.index) : fmt::format("spec.listeners[{}].tls", b.index);
    CertPtr c = load(b.namespace_, b.secret, b.pos, object, role.c_str());
    if (!c) continue;
    for (const auto& h : b.hosts) {
      if (h.empty()) {
        // A Gateway listener without a hostname: its certificate answers for
        // every name no other certificate covers (unless --default-ssl-certificate says otherwise).
        if (map->fallback_ == self_signed) map->fallback_ = c;
        continue;
      }
      const bool wild = h.size() > 2 && h[0] == '*' && h[1] == '.';
      auto& slot = wild ? map->wildcard_[h.substr(2)] : map->exact_[h];
      if (slot) {
        if (slot->source != c->source)
          diags.push_back({Severity::Warning, b.pos.file, b.pos.line, object, "Conflict",
                           fmt::format("{}: host {} already has the certificate of secret \"{}\" (an older Ingress, "
                                       "or first by namespace/name); secret \"{}/{}\" is not used for it",
                                       role, h, slot->source, b.namespace_, b.secret)});
        continue;
      }
      slot = c;
      if (!c->covers(h))
        diags.push_back({Severity::Warning, b.pos.file, b.pos.line, object, "CertificateNameMismatch",
                         fmt::format("{}: the certificate of secret \"{}/{}\" does not cover host {} (its names: {}); "
                                     "clients will reject it",
                                     role, b.namespace_, b.secret, h, fmt::join(c->dns_names, ", "))});
    }
  }
  if (cache) cache->retain(used);
  return map;
}

}  // namespace ingressd::tls
