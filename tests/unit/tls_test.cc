// src/tls/cert_store.h: parsing certificates and keys, the self-signed
// default, and the SNI map built from Ingress spec.tls entries and Secrets
// (selection, and every bad input turned into a diagnostic).
//
// Certificates are made here with OpenSSL's API (EC P-256 keys), so nothing
// expires under the tests' feet; the expired one is signed with a validity
// period in the past.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "tls/cert_store.h"
#include "tls/tls_server.h"

using namespace ingressd;
using namespace ingressd::testing;
using ingressd::tls::CertPtr;

namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct KeyDel {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDel {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDel>;
using Cert = std::unique_ptr<X509, CertDel>;

Key new_key() { return Key(EVP_EC_gen("P-256")); }

std::string pem_of(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string pem_of(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

void add_ext(X509* c, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, c, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(e, nullptr) << value;
  X509_add_ext(c, e, -1);
  X509_EXTENSION_free(e);
}

struct CertSpec {
  std::string cn;
  std::vector<std::string> dns;  // subjectAltName DNS names (none: no SAN extension)
  long serial = 1;
  long not_before = -3600;  // seconds from now
  long not_after = 86400 * 30;
  bool ca = false;
};

// A certificate for `key`, signed by issuer/issuer_key (self-signed when null).
Cert make_cert(const CertSpec& s, EVP_PKEY* key, X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), s.serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), s.not_before);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), s.not_after);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : c.get();
  add_ext(c.get(), iss, NID_basic_constraints, s.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (s.ca) add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!s.dns.empty()) {
    std::string san;
    for (auto& d : s.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    add_ext(c.get(), iss, NID_subject_alt_name, san);
  }
  EXPECT_NE(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()), 0);
  return c;
}

// A leaf (self-signed) and its key, as PEM.
struct Pem {
  std::string crt, key;
  std::string serial_hex;  // lower case, as Certificate::serial
};

Pem leaf(const std::vector<std::string>& dns, long serial, long not_before = -3600, long not_after = 86400 * 30) {
  Key k = new_key();
  Cert c = make_cert(CertSpec{dns.empty() ? "no-san" : dns[0], dns, serial, not_before, not_after}, k.get());
  char buf[32];
  snprintf(buf, sizeof buf, "%lx", serial);
  std::string hex = buf;
  if (hex.size() % 2) hex = "0" + hex;  // whole bytes, as BN_bn2hex
  return Pem{pem_of(c.get()), pem_of(k.get()), hex};
}

std::string secret(const std::string& name, const std::string& crt, const std::string& key,
                   const std::string& ns = "default", const std::string& type = "kubernetes.io/tls") {
  nlohmann::json j = {{"apiVersion", "v1"},
                      {"kind", "Secret"},
                      {"metadata", {{"name", name}, {"namespace", ns}}},
                      {"type", type},
                      {"stringData", {{"tls.crt", crt}, {"tls.key", key}}}};
  return "---\n" + j.dump(2) + "\n";
}

struct Tls {
  std::vector<std::string> hosts;
  std::string secret;
};

// An Ingress with one rule (path "/", service `svc`) per host in `rule_hosts` and the given tls entries.
std::string tls_ingress(const std::string& name, const std::vector<std::string>& rule_hosts, const std::vector<Tls>& tls,
                        const std::string& ns = "default", const std::string& created = "") {
  nlohmann::json meta = {{"name", name}, {"namespace", ns}};
  if (!created.empty()) meta["creationTimestamp"] = created;
  nlohmann::json rules = nlohmann::json::array();
  for (auto& h : rule_hosts)
    rules.push_back({{"host", h},
                     {"http",
                      {{"paths",
                        {{{"path", "/"},
                          {"pathType", "Prefix"},
                          {"backend", {{"service", {{"name", "svc"}, {"port", {{"number", 8080}}}}}}}}}}}}});
  nlohmann::json tl = nlohmann::json::array();
  for (auto& t : tls) {
    nlohmann::json e = nlohmann::json::object();
    if (!t.hosts.empty()) e["hosts"] = t.hosts;
    if (!t.secret.empty()) e["secretName"] = t.secret;
    tl.push_back(e);
  }
  nlohmann::json j = {{"apiVersion", "networking.k8s.io/v1"},
                      {"kind", "Ingress"},
                      {"metadata", meta},
                      {"spec", {{"tls", tl}, {"rules", rules}}}};
  return "---\n" + j.dump(2) + "\n";
}

CertPtr self_signed() {
  std::string err;
  CertPtr c = tls::make_self_signed(err);
  EXPECT_NE(c, nullptr) << err;
  return c;
}

// Compiles the manifests and builds the certificate map; all diagnostics (compile's and the map's) in `diags`.
struct Built {
  std::unique_ptr<Compiled> compiled;
  std::shared_ptr<const tls::CertMap> map;
  Diagnostics diags;
  CertPtr fallback;

  std::string source_for(std::string_view sni) const {
    const tls::Certificate* c = map->select(sni);
    return c ? c->source : "<null>";
  }
  std::vector<Diagnostic> with_reason(const std::string& reason) const {
    std::vector<Diagnostic> out;
    for (auto& d : diags)
      if (d.reason == reason) out.push_back(d);
    return out;
  }
  std::string all() const {
    std::string s;
    for (auto& d : diags) s += d.reason + ": " + d.str() + "\n";
    return s;
  }
};

Built build(const std::string& text, const std::string& default_secret = "", int64_t now = now_s()) {
  Built b;
  b.compiled = compile_text(text);
  b.diags = b.compiled->load_diags;
  for (auto& d : b.compiled->result.diagnostics) b.diags.push_back(d);
  b.fallback = self_signed();
  b.map = tls::build_cert_map(*b.compiled->store.snapshot(), b.compiled->result.tls, default_secret, b.fallback, now,
                              b.diags);
  return b;
}

const std::string kSvc = service("svc");

}  // namespace

// ---------------------------------------------------------------------------
// parse_certificate, make_self_signed, covers
// ---------------------------------------------------------------------------

TEST(TlsParse, LeafWithSanAndSerial) {
  Pem p = leaf({"a.example.com", "*.b.example.com", "UPPER.Example.com"}, 0x1234abcd);
  std::string err;
  CertPtr c = tls::parse_certificate(p.crt, p.key, "default/a", err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(c->source, "default/a");
  EXPECT_EQ(c->serial, "1234abcd");
  EXPECT_EQ(c->dns_names, (std::vector<std::string>{"a.example.com", "*.b.example.com", "upper.example.com"}));
  EXPECT_NE(c->subject.find("CN=a.example.com"), std::string::npos) << c->subject;
  EXPECT_GT(c->not_after, now_s() + 86400 * 29);
  EXPECT_LT(c->not_after, now_s() + 86400 * 31);
  ASSERT_NE(c->chain, nullptr);
  EXPECT_EQ(sk_X509_num(c->chain), 0);
}

TEST(TlsParse, CommonNameWhenNoSan) {
  Pem p = leaf({}, 7);
  std::string err;
  CertPtr c = tls::parse_certificate(p.crt, p.key, "default/n", err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(c->dns_names, std::vector<std::string>{"no-san"});
}

TEST(TlsParse, FullChainKeepsIntermediatesInOrder) {
  Key root_k = new_key(), int_k = new_key(), leaf_k = new_key();
  Cert root = make_cert(CertSpec{"Test Root CA", {}, 1, -3600, 86400 * 365, true}, root_k.get());
  Cert inter = make_cert(CertSpec{"Test Intermediate CA", {}, 2, -3600, 86400 * 365, true}, int_k.get(), root.get(),
                         root_k.get());
  Cert lf = make_cert(CertSpec{"chain.example.com", {"chain.example.com"}, 3}, leaf_k.get(), inter.get(), int_k.get());
  std::string err;
  CertPtr c = tls::parse_certificate(pem_of(lf.get()) + pem_of(inter.get()), pem_of(leaf_k.get()), "default/chain", err);
  ASSERT_NE(c, nullptr) << err;
  ASSERT_NE(c->chain, nullptr);
  ASSERT_EQ(sk_X509_num(c->chain), 1);
  EXPECT_EQ(X509_cmp(sk_X509_value(c->chain, 0), inter.get()), 0);
  EXPECT_EQ(X509_cmp(c->cert, lf.get()), 0);

  // Root included too (some people paste it): two intermediates kept, in the order written.
  c = tls::parse_certificate(pem_of(lf.get()) + pem_of(inter.get()) + pem_of(root.get()), pem_of(leaf_k.get()),
                             "default/chain", err);
  ASSERT_NE(c, nullptr) << err;
  ASSERT_EQ(sk_X509_num(c->chain), 2);
  EXPECT_EQ(X509_cmp(sk_X509_value(c->chain, 1), root.get()), 0);
}

TEST(TlsParse, BadInputsSayWhatIsWrong) {
  Pem p = leaf({"a.example.com"}, 1);
  Pem other = leaf({"a.example.com"}, 2);
  std::string err;
  EXPECT_EQ(tls::parse_certificate("", p.key, "s", err), nullptr);
  EXPECT_NE(err.find("tls.crt"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tls::parse_certificate("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
                                   p.key, "s", err),
            nullptr);
  EXPECT_NE(err.find("tls.crt"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tls::parse_certificate(p.crt, "garbage", "s", err), nullptr);
  EXPECT_NE(err.find("tls.key"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tls::parse_certificate(p.crt, other.key, "s", err), nullptr);
  EXPECT_NE(err.find("does not match"), std::string::npos) << err;
  err.clear();
  // A truncated second block after a good leaf.
  std::string truncated = p.crt + other.crt.substr(0, other.crt.size() / 2);
  EXPECT_EQ(tls::parse_certificate(truncated, p.key, "s", err), nullptr);
  EXPECT_NE(err.find("malformed"), std::string::npos) << err;
}

TEST(TlsParse, SelfSigned) {
  std::string err;
  CertPtr c = tls::make_self_signed(err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(c->source, "self-signed");
  EXPECT_NE(c->subject.find("CN=ingressd default certificate"), std::string::npos) << c->subject;
  EXPECT_EQ(X509_check_private_key(c->cert, c->key), 1);
  EXPECT_EQ(X509_verify(c->cert, c->key), 1);  // signed by its own key
  EXPECT_GT(c->not_after, now_s() + 86400 * 360);
  EXPECT_FALSE(c->serial.empty());
  // Two start-ups, two serials.
  CertPtr d = tls::make_self_signed(err);
  ASSERT_NE(d, nullptr) << err;
  EXPECT_NE(c->serial, d->serial);
}

TEST(TlsParse, Covers) {
  Pem p = leaf({"a.example.com", "*.w.example.com"}, 1);
  std::string err;
  CertPtr c = tls::parse_certificate(p.crt, p.key, "s", err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_TRUE(c->covers("a.example.com"));
  EXPECT_TRUE(c->covers("A.Example.COM"));
  EXPECT_TRUE(c->covers("x.w.example.com"));
  EXPECT_TRUE(c->covers("*.w.example.com"));
  EXPECT_FALSE(c->covers("y.x.w.example.com"));  // one label only
  EXPECT_FALSE(c->covers("w.example.com"));
  EXPECT_FALSE(c->covers("b.example.com"));
  EXPECT_FALSE(c->covers("*.example.com"));
}

// ---------------------------------------------------------------------------
// build_cert_map: selection
// ---------------------------------------------------------------------------

TEST(TlsCertMap, SelectionExactWildcardDefault) {
  Pem a = leaf({"a.example.com"}, 0xa), w = leaf({"*.example.com"}, 0xb);
  Built b = build(kSvc + secret("a", a.crt, a.key) + secret("w", w.crt, w.key) +
                  tls_ingress("ing", {"a.example.com", "b.example.com"},
                              {{{"a.example.com"}, "a"}, {{"*.example.com"}, "w"}}));
  EXPECT_TRUE(b.with_reason("CertificateNameMismatch").empty()) << b.all();
  EXPECT_EQ(b.map->size(), 2u);
  EXPECT_EQ(b.source_for("a.example.com"), "default/a");    // exact beats the wildcard
  EXPECT_EQ(b.source_for("b.example.com"), "default/w");    // wildcard
  EXPECT_EQ(b.source_for("zzz.example.com"), "default/w");  // wildcard, host not in any rule
  EXPECT_EQ(b.source_for("x.b.example.com"), "self-signed");  // a wildcard covers one label only
  EXPECT_EQ(b.source_for("example.com"), "self-signed");      // nor the bare suffix
  EXPECT_EQ(b.source_for(""), "self-signed");                 // no SNI
  EXPECT_EQ(b.source_for("other.test"), "self-signed");       // unknown
  EXPECT_EQ(b.source_for("a.example.com."), "default/a");     // trailing dot: the same host
  EXPECT_EQ(b.source_for("b.example.com."), "default/w");
  EXPECT_EQ(b.map->fallback(), b.fallback.get());
  EXPECT_EQ(b.map->bindings(), (std::map<std::string, std::string>{{"*.example.com", "default/w"},
                                                                    {"a.example.com", "default/a"}}));
  EXPECT_EQ(b.map->select("a.example.com")->serial, "0a");
}

TEST(TlsCertMap, TlsEntryWithoutHostsTakesTheRuleHosts) {
  Pem a = leaf({"a.example.com", "b.example.com"}, 1);
  Built b = build(kSvc + secret("ab", a.crt, a.key) +
                  tls_ingress("ing", {"a.example.com", "b.example.com"}, {{{}, "ab"}}));
  EXPECT_EQ(b.source_for("a.example.com"), "default/ab");
  EXPECT_EQ(b.source_for("b.example.com"), "default/ab");
  EXPECT_EQ(b.source_for("c.example.com"), "self-signed");
  EXPECT_TRUE(b.with_reason("CertificateNameMismatch").empty()) << b.all();
}

TEST(TlsCertMap, SecretLookedUpInTheIngressNamespace) {
  Pem a = leaf({"a.example.com"}, 1), other = leaf({"a.example.com"}, 2);
  Built b = build(service("svc", "team") + secret("a", a.crt, a.key, "team") + secret("a", other.crt, other.key) +
                  tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}, "team"));
  EXPECT_EQ(b.source_for("a.example.com"), "team/a");
  EXPECT_EQ(b.map->select("a.example.com")->serial, "01");
}

TEST(TlsCertMap, SecretFromBase64Data) {
  Pem a = leaf({"a.example.com"}, 0x42);
  auto b64 = [](const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    out.resize(static_cast<size_t>(n));
    return out;
  };
  nlohmann::json j = {{"apiVersion", "v1"},
                      {"kind", "Secret"},
                      {"metadata", {{"name", "a"}, {"namespace", "default"}}},
                      {"type", "kubernetes.io/tls"},
                      {"data", {{"tls.crt", b64(a.crt)}, {"tls.key", b64(a.key)}}}};
  Built b = build(kSvc + "---\n" + j.dump() + "\n" + tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}));
  EXPECT_EQ(b.source_for("a.example.com"), "default/a") << b.all();
  EXPECT_EQ(b.map->select("a.example.com")->serial, "42");
}

TEST(TlsCertMap, DefaultCertificateFromSecret) {
  Pem a = leaf({"a.example.com"}, 1), d = leaf({"default.example.com"}, 0xd);
  Built b = build(kSvc + secret("a", a.crt, a.key) + secret("dflt", d.crt, d.key, "infra") +
                      tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}),
                  "infra/dflt");
  EXPECT_TRUE(b.with_reason("SecretNotFound").empty()) << b.all();
  EXPECT_EQ(b.source_for("a.example.com"), "default/a");
  EXPECT_EQ(b.source_for(""), "infra/dflt");
  EXPECT_EQ(b.source_for("unknown.test"), "infra/dflt");
  EXPECT_EQ(b.map->fallback()->serial, "0d");
}

// ---------------------------------------------------------------------------
// build_cert_map: bad input becomes diagnostics; other hosts keep serving
// ---------------------------------------------------------------------------

TEST(TlsCertMap, MissingDefaultSecretIsSecretNotFound) {
  Built b = build(kSvc, "infra/nope");
  auto ds = b.with_reason("SecretNotFound");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_EQ(ds[0].severity, Severity::Error);
  EXPECT_EQ(ds[0].object, "--default-ssl-certificate");
  EXPECT_NE(ds[0].message.find("infra/nope"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for(""), "self-signed");
  EXPECT_EQ(b.map->fallback(), b.fallback.get());
}

TEST(TlsCertMap, DefaultSecretWithoutNamespaceMeansDefault) {
  Pem d = leaf({"d.example.com"}, 0xd);
  Built b = build(kSvc + secret("dflt", d.crt, d.key), "dflt");
  EXPECT_EQ(b.source_for(""), "default/dflt") << b.all();
}

TEST(TlsCertMap, UnusableDefaultSecretFallsBackToSelfSigned) {
  Pem d = leaf({"d.example.com"}, 0xd), other = leaf({"d.example.com"}, 0xe);
  Built b = build(kSvc + secret("dflt", d.crt, other.key, "infra"), "infra/dflt");
  auto ds = b.with_reason("InvalidCertificate");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_EQ(ds[0].object, "--default-ssl-certificate");
  EXPECT_NE(ds[0].message.find("infra/dflt"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for("x.test"), "self-signed");
}

TEST(TlsCertMap, MissingIngressSecret) {
  Pem ok = leaf({"ok.example.com"}, 1);
  Built b = build(kSvc + secret("ok", ok.crt, ok.key) +
                  tls_ingress("ing", {"ok.example.com", "gone.example.com"},
                              {{{"ok.example.com"}, "ok"}, {{"gone.example.com"}, "gone"}}));
  auto ds = b.with_reason("SecretNotFound");
  ASSERT_EQ(ds.size(), 1u) << b.all();  // reported once (by compile), not twice
  EXPECT_EQ(ds[0].object, "Ingress default/ing");
  EXPECT_NE(ds[0].message.find("default/gone"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for("gone.example.com"), "self-signed");
  EXPECT_EQ(b.source_for("ok.example.com"), "default/ok");
}

TEST(TlsCertMap, MalformedPemIsInvalidCertificate) {
  Pem ok = leaf({"ok.example.com"}, 1), bad = leaf({"bad.example.com"}, 2);
  Built b = build(kSvc + secret("ok", ok.crt, ok.key) +
                  secret("bad", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", bad.key) +
                  tls_ingress("ing", {"ok.example.com", "bad.example.com"},
                              {{{"ok.example.com"}, "ok"}, {{"bad.example.com"}, "bad"}}));
  auto ds = b.with_reason("InvalidCertificate");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_EQ(ds[0].severity, Severity::Error);
  EXPECT_EQ(ds[0].object, "Ingress default/ing");
  EXPECT_NE(ds[0].message.find("default/bad"), std::string::npos) << ds[0].message;
  EXPECT_NE(ds[0].message.find("spec.tls[1]"), std::string::npos) << ds[0].message;
  EXPECT_EQ(ds[0].file, "test.yaml");
  EXPECT_GT(ds[0].line, 0);
  EXPECT_EQ(b.source_for("bad.example.com"), "self-signed");
  EXPECT_EQ(b.source_for("ok.example.com"), "default/ok");
}

TEST(TlsCertMap, KeyNotMatchingIsInvalidCertificate) {
  Pem ok = leaf({"ok.example.com"}, 1), bad = leaf({"bad.example.com"}, 2), other = leaf({"bad.example.com"}, 3);
  Built b = build(kSvc + secret("ok", ok.crt, ok.key) + secret("bad", bad.crt, other.key) +
                  tls_ingress("ing", {"ok.example.com", "bad.example.com"},
                              {{{"ok.example.com"}, "ok"}, {{"bad.example.com"}, "bad"}}));
  auto ds = b.with_reason("InvalidCertificate");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_NE(ds[0].message.find("default/bad"), std::string::npos) << ds[0].message;
  EXPECT_NE(ds[0].message.find("does not match"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for("bad.example.com"), "self-signed");
  EXPECT_EQ(b.source_for("ok.example.com"), "default/ok");
}

TEST(TlsCertMap, ExpiredCertificate) {
  Pem ok = leaf({"ok.example.com"}, 1);
  Pem old = leaf({"old.example.com"}, 0x0e0, -86400 * 10, -86400 * 2);
  Built b = build(kSvc + secret("ok", ok.crt, ok.key) + secret("old", old.crt, old.key) +
                  tls_ingress("ing", {"ok.example.com", "old.example.com"},
                              {{{"ok.example.com"}, "ok"}, {{"old.example.com"}, "old"}}));
  auto ds = b.with_reason("CertificateExpired");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_EQ(ds[0].severity, Severity::Error);
  EXPECT_EQ(ds[0].object, "Ingress default/ing");
  EXPECT_NE(ds[0].message.find("default/old"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for("old.example.com"), "self-signed");
  EXPECT_EQ(b.source_for("ok.example.com"), "default/ok");

  // `now` decides: the same certificate two days earlier is fine.
  Built earlier = build(kSvc + secret("old", old.crt, old.key) +
                            tls_ingress("ing", {"old.example.com"}, {{{"old.example.com"}, "old"}}),
                        "", now_s() - 86400 * 3);
  EXPECT_TRUE(earlier.with_reason("CertificateExpired").empty()) << earlier.all();
  EXPECT_EQ(earlier.source_for("old.example.com"), "default/old");
}

TEST(TlsCertMap, NameMismatchIsAWarningAndTheCertificateIsServed) {
  Pem a = leaf({"a.example.com"}, 1);
  Built b = build(kSvc + secret("a", a.crt, a.key) +
                  tls_ingress("ing", {"a.example.com", "other.example.com"},
                              {{{"a.example.com", "other.example.com"}, "a"}}));
  auto ds = b.with_reason("CertificateNameMismatch");
  ASSERT_EQ(ds.size(), 1u) << b.all();
  EXPECT_EQ(ds[0].severity, Severity::Warning);
  EXPECT_EQ(ds[0].object, "Ingress default/ing");
  EXPECT_NE(ds[0].message.find("other.example.com"), std::string::npos) << ds[0].message;
  EXPECT_NE(ds[0].message.find("default/a"), std::string::npos) << ds[0].message;
  EXPECT_EQ(b.source_for("other.example.com"), "default/a");
}

TEST(TlsCertMap, WildcardHostCoveredOnlyByWildcardName) {
  Pem single = leaf({"x.example.com"}, 1), wild = leaf({"*.example.com"}, 2);
  Built b = build(kSvc + secret("single", single.crt, single.key) + secret("wild", wild.crt, wild.key) +
                  tls_ingress("ing1", {"x.example.com"}, {{{"*.example.com"}, "single"}}) +
                  tls_ingress("ing2", {"y.example.org"}, {{{"*.example.org"}, "wild"}}));
  auto ds = b.with_reason("CertificateNameMismatch");
  ASSERT_EQ(ds.size(), 2u) << b.all();
}

TEST(TlsCertMap, ConflictOlderIngressWins) {
  Pem older = leaf({"c.example.com"}, 0x01d), newer = leaf({"c.example.com"}, 0x2e);
  // "a-newer" sorts first by name, but "z-older" has the older creationTimestamp.
  Built b = build(kSvc + secret("older", older.crt, older.key) + secret("newer", newer.crt, newer.key) +
                  tls_ingress("a-newer", {"c.example.com"}, {{{"c.example.com"}, "newer"}}, "default",
                              "2024-06-01T00:00:00Z") +
                  tls_ingress("z-older", {"c.example.com"}, {{{"c.example.com"}, "older"}}, "default",
                              "2023-01-01T00:00:00Z"));
  EXPECT_EQ(b.source_for("c.example.com"), "default/older");
  auto ds = b.with_reason("Conflict");
  ASSERT_GE(ds.size(), 1u) << b.all();
  bool found = false;
  for (auto& d : ds)
    if (d.object == "Ingress default/a-newer" && d.message.find("default/older") != std::string::npos &&
        d.message.find("c.example.com") != std::string::npos)
      found = true;
  EXPECT_TRUE(found) << b.all();
}

TEST(TlsCertMap, ConflictTieBrokenByNamespaceAndName) {
  Pem one = leaf({"c.example.com"}, 1), two = leaf({"c.example.com"}, 2);
  Built b = build(service("svc", "aaa") + service("svc", "bbb") + secret("s", two.crt, two.key, "bbb") +
                  secret("s", one.crt, one.key, "aaa") +
                  tls_ingress("ing", {"c.example.com"}, {{{"c.example.com"}, "s"}}, "bbb") +
                  tls_ingress("ing", {"c.example.com"}, {{{"c.example.com"}, "s"}}, "aaa"));
  EXPECT_EQ(b.source_for("c.example.com"), "aaa/s");
  bool found = false;
  for (auto& d : b.with_reason("Conflict"))
    if (d.object == "Ingress bbb/ing") found = true;
  EXPECT_TRUE(found) << b.all();
}

// Two Ingresses naming the same Secret for a host: no Conflict (serve builds with a CertCache, so both
// bindings get the same parsed certificate).
TEST(TlsCertMap, SameSecretTwiceIsNoConflict) {
  Pem s = leaf({"a.example.com", "b.example.com"}, 1);
  auto c = compile_text(kSvc + secret("s", s.crt, s.key) +
                        tls_ingress("one", {"a.example.com"}, {{{"a.example.com"}, "s"}}) +
                        tls_ingress("two", {"b.example.com"}, {{{"a.example.com", "b.example.com"}, "s"}}));
  tls::CertCache cache;
  Diagnostics diags;
  auto m = tls::build_cert_map(*c->store.snapshot(), c->result.tls, "", self_signed(), now_s(), diags, &cache);
  for (auto& d : diags) EXPECT_NE(d.reason, "Conflict") << d.str();
  EXPECT_EQ(m->select("a.example.com")->source, "default/s");
  EXPECT_EQ(m->select("b.example.com")->source, "default/s");
}

TEST(TlsCertMap, SecretOfAnotherTypeIsUsedWithAWarning) {
  Pem a = leaf({"a.example.com"}, 1);
  Built b = build(kSvc + secret("a", a.crt, a.key, "default", "Opaque") +
                  tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}));
  EXPECT_EQ(b.with_reason("SecretType").size(), 1u) << b.all();
  EXPECT_EQ(b.source_for("a.example.com"), "default/a");
}

TEST(TlsCertMap, CacheReusesUnchangedSecretsAndSeesRotation) {
  Pem v1 = leaf({"a.example.com"}, 0x1), v2 = leaf({"a.example.com"}, 0x2);
  tls::CertCache cache;
  CertPtr ss = self_signed();
  auto map_for = [&](const Pem& p) {
    auto c = compile_text(kSvc + secret("a", p.crt, p.key) +
                          tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}));
    Diagnostics d;
    return tls::build_cert_map(*c->store.snapshot(), c->result.tls, "", ss, now_s(), d, &cache);
  };
  auto m1 = map_for(v1);
  auto m1b = map_for(v1);
  EXPECT_EQ(m1->select("a.example.com"), m1b->select("a.example.com"));  // parsed once
  auto m2 = map_for(v2);
  EXPECT_EQ(m2->select("a.example.com")->serial, "02");
  EXPECT_EQ(m1->select("a.example.com")->serial, "01");  // the old map is untouched
}

// ---------------------------------------------------------------------------
// Key formats (docs/tls.md: RSA or ECDSA, PKCS#1/SEC1/PKCS#8)
// ---------------------------------------------------------------------------

TEST(TlsParse, KeyFormats) {
  auto traditional = [](EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey_traditional(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  };
  Key ec = new_key();
  Cert ec_cert = make_cert(CertSpec{"ec.example.com", {"ec.example.com"}, 1}, ec.get());
  Key rsa(EVP_RSA_gen(2048));
  ASSERT_NE(rsa, nullptr);
  Cert rsa_cert = make_cert(CertSpec{"rsa.example.com", {"rsa.example.com"}, 2}, rsa.get());
  struct Case {
    const char* what;
    std::string crt, key, marker;
  } cases[] = {
      {"EC PKCS#8", pem_of(ec_cert.get()), pem_of(ec.get()), "BEGIN PRIVATE KEY"},
      {"EC SEC1", pem_of(ec_cert.get()), traditional(ec.get()), "BEGIN EC PRIVATE KEY"},
      {"RSA PKCS#8", pem_of(rsa_cert.get()), pem_of(rsa.get()), "BEGIN PRIVATE KEY"},
      {"RSA PKCS#1", pem_of(rsa_cert.get()), traditional(rsa.get()), "BEGIN RSA PRIVATE KEY"},
  };
  for (auto& c : cases) {
    ASSERT_NE(c.key.find(c.marker), std::string::npos) << c.what << ": " << c.key.substr(0, 40);
    std::string err;
    EXPECT_NE(tls::parse_certificate(c.crt, c.key, "s", err), nullptr) << c.what << ": " << err;
  }
  // CRLF line ends (a Secret written on Windows) parse too.
  auto crlf = [](std::string s) {
    std::string o;
    for (char ch : s) o += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
    return o;
  };
  std::string err;
  EXPECT_NE(tls::parse_certificate(crlf(pem_of(ec_cert.get())), crlf(pem_of(ec.get())), "s", err), nullptr) << err;
}

TEST(TlsCertMap, IngressOfAnotherClassContributesNoCertificate) {
  Pem a = leaf({"a.example.com"}, 1);
  std::string ing = tls_ingress("theirs", {"a.example.com"}, {{{"a.example.com"}, "a"}});
  ing.replace(ing.find("\"spec\": {"), 9, "\"spec\": {\"ingressClassName\": \"someone-else\",");
  Built b = build(kSvc + secret("a", a.crt, a.key) + ing);
  EXPECT_TRUE(b.compiled->result.tls.empty());
  EXPECT_EQ(b.source_for("a.example.com"), "self-signed");
  EXPECT_FALSE(b.compiled->result.table->tls_host("a.example.com"));
}

TEST(TlsCertMap, EntryWithoutSecretGetsTheDefaultButIsATlsHost) {
  Built b = build(kSvc + tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, ""}}));
  EXPECT_EQ(b.source_for("a.example.com"), "self-signed");
  EXPECT_TRUE(b.compiled->result.table->tls_host("a.example.com"));
  EXPECT_TRUE(b.diags.empty()) << b.all();
}

// ---------------------------------------------------------------------------
// TlsServer in process: a client and the server over a socketpair, stepped by hand
// ---------------------------------------------------------------------------

namespace {

struct Pair {
  int fds[2] = {-1, -1};
  SSL* server = nullptr;
  SSL* client = nullptr;
  SSL_CTX* cctx = nullptr;
  ~Pair() {
    // A session whose connection ends without close_notify is marked not resumable (SSL_free).
    if (client && SSL_is_init_finished(client)) SSL_shutdown(client);
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(cctx);
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

// Runs a handshake between `srv` and a client (SNI `sni`, "" = none); true when both ends finish.
bool handshake(tls::TlsServer& srv, Pair& p, const std::string& sni, int client_max_version = 0,
               const std::vector<unsigned char>& alpn = {}, SSL_SESSION* resume = nullptr) {
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fds) != 0) return false;
  p.server = srv.new_ssl(p.fds[0]);
  p.cctx = SSL_CTX_new(TLS_client_method());
  if (client_max_version) {
    SSL_CTX_set_min_proto_version(p.cctx, 0);
    SSL_CTX_set_max_proto_version(p.cctx, client_max_version);
    SSL_CTX_set_security_level(p.cctx, 0);
    SSL_CTX_set_cipher_list(p.cctx, "DEFAULT@SECLEVEL=0");
  }
  p.client = SSL_new(p.cctx);
  SSL_set_fd(p.client, p.fds[1]);
  SSL_set_connect_state(p.client);
  if (!sni.empty()) SSL_set_tlsext_host_name(p.client, sni.c_str());
  if (!alpn.empty()) SSL_set_alpn_protos(p.client, alpn.data(), static_cast<unsigned>(alpn.size()));
  if (resume) SSL_set_session(p.client, resume);
  bool sdone = false, cdone = false;
  for (int i = 0; i < 100 && !(sdone && cdone); ++i) {
    if (!cdone) {
      int r = SSL_do_handshake(p.client);
      if (r == 1) cdone = true;
      else if (int e = SSL_get_error(p.client, r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
    }
    if (!sdone) {
      int r = SSL_do_handshake(p.server);
      if (r == 1) sdone = true;
      else if (int e = SSL_get_error(p.server, r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
    }
  }
  if (!(sdone && cdone)) return false;
  // TLS 1.3 tickets come after the handshake: move them to the client.
  char buf[64];
  SSL_write(p.server, "x", 1);
  for (int i = 0; i < 10; ++i)
    if (SSL_read(p.client, buf, sizeof buf) > 0) break;
  return true;
}

std::string peer_serial(const Pair& p) {
  X509* c = SSL_get1_peer_certificate(p.client);
  if (!c) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string s = hex;
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(c);
  return s;
}

struct ServerFixture : ::testing::Test {
  tls::TlsServer srv;
  Built b;
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(srv.init(tls::TlsOptions{}, err)) << err;
    Pem a = leaf({"a.example.com"}, 0xa), w = leaf({"*.w.example.com"}, 0xb);
    b = build(kSvc + secret("a", a.crt, a.key) + secret("w", w.crt, w.key) +
              tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}, {{"*.w.example.com"}, "w"}}));
    srv.publish(b.map);
  }
};

}  // namespace

TEST_F(ServerFixture, CertificateBySni) {
  {
    Pair p;
    ASSERT_TRUE(handshake(srv, p, "a.example.com"));
    EXPECT_EQ(peer_serial(p), "0a");
    EXPECT_EQ(SSL_version(p.client), TLS1_3_VERSION);
  }
  {
    Pair p;
    ASSERT_TRUE(handshake(srv, p, "X.W.Example.com"));
    EXPECT_EQ(peer_serial(p), "0b");
  }
  {
    Pair p;
    ASSERT_TRUE(handshake(srv, p, ""));
    EXPECT_EQ(peer_serial(p), b.fallback->serial);
  }
}

TEST_F(ServerFixture, PublishSwapsForNewHandshakesOnly) {
  Pair before;
  ASSERT_TRUE(handshake(srv, before, "a.example.com"));
  Pem a2 = leaf({"a.example.com"}, 0xa2);
  Built b2 = build(kSvc + secret("a", a2.crt, a2.key) + tls_ingress("ing", {"a.example.com"}, {{{"a.example.com"}, "a"}}));
  srv.publish(b2.map);
  Pair after;
  ASSERT_TRUE(handshake(srv, after, "a.example.com"));
  EXPECT_EQ(peer_serial(after), "a2");
  // The connection made before still works, with its certificate.
  EXPECT_EQ(peer_serial(before), "0a");
  char buf[8];
  ASSERT_EQ(SSL_write(before.client, "ping", 4), 4);
  EXPECT_EQ(SSL_read(before.server, buf, sizeof buf), 4);
}

TEST_F(ServerFixture, OnlyTls12And13) {
  for (int v : {TLS1_VERSION, TLS1_1_VERSION}) {
    Pair p;
    EXPECT_FALSE(handshake(srv, p, "a.example.com", v)) << std::hex << v;
  }
  Pair p;
  ASSERT_TRUE(handshake(srv, p, "a.example.com", TLS1_2_VERSION));
  EXPECT_EQ(SSL_version(p.client), TLS1_2_VERSION);
  const char* cipher = SSL_get_cipher_name(p.client);
  EXPECT_EQ(std::string(cipher).rfind("ECDHE-ECDSA-", 0), 0u) << cipher;
}

TEST_F(ServerFixture, AlpnPrefersH2WhenOffered) {
  const std::vector<unsigned char> both = {8, 'h', 't', 't', 'p', '/', '1', '.', '1', 2, 'h', '2'};
  const std::vector<unsigned char> h11 = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  auto selected = [](const Pair& p) {
    const unsigned char* d = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(p.client, &d, &n);
    return std::string(reinterpret_cast<const char*>(d), n);
  };
  {
    Pair p;
    ASSERT_TRUE(handshake(srv, p, "a.example.com", 0, both));
    EXPECT_EQ(selected(p), "h2");
  }
  {
    Pair p;
    ASSERT_TRUE(handshake(srv, p, "a.example.com", 0, h11));
    EXPECT_EQ(selected(p), "http/1.1");
  }
  tls::TlsServer no_h2;
  std::string err;
  tls::TlsOptions o;
  o.offer_h2 = false;
  ASSERT_TRUE(no_h2.init(o, err)) << err;
  no_h2.publish(b.map);
  EXPECT_FALSE(no_h2.offers_h2());
  Pair p;
  ASSERT_TRUE(handshake(no_h2, p, "a.example.com", 0, both));
  EXPECT_EQ(selected(p), "http/1.1");
}

TEST_F(ServerFixture, TicketsResumeAcrossTwoRotationsNotThree) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    auto session_of = [&](SSL_SESSION* resume, bool& reused) -> SSL_SESSION* {
      Pair p;
      if (!handshake(srv, p, "a.example.com", version, {}, resume)) return nullptr;
      reused = SSL_session_reused(p.client);
      return SSL_get1_session(p.client);
    };
    bool reused = false;
    SSL_SESSION* s = session_of(nullptr, reused);
    ASSERT_NE(s, nullptr);
    EXPECT_FALSE(reused);
    ASSERT_TRUE(SSL_SESSION_is_resumable(s));
    SSL_SESSION* s2 = session_of(s, reused);
    EXPECT_TRUE(reused);
    SSL_SESSION_free(s2);
    // Two rotations: the ticket's key is now the oldest kept; it still decrypts.
    srv.rotate_ticket_keys();
    srv.rotate_ticket_keys();
    s2 = session_of(s, reused);
    EXPECT_TRUE(reused);
    SSL_SESSION_free(s2);
    // A third: the key is gone, a full handshake.
    srv.rotate_ticket_keys();
    s2 = session_of(s, reused);
    EXPECT_FALSE(reused);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s);
  }
}

TEST(TlsServerNoCerts, HandshakeFailsBeforePublish) {
  tls::TlsServer srv;
  std::string err;
  ASSERT_TRUE(srv.init(tls::TlsOptions{}, err)) << err;
  Pair p;
  EXPECT_FALSE(handshake(srv, p, "a.example.com"));
}
