#include "tls/tls_server.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstring>

namespace ingressd::tls {
namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ALPN protocols we offer, in our order of preference (wire format).
constexpr unsigned char kAlpnH2[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kAlpnH1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

}  // namespace

// Mozilla's "intermediate" profile (v5.7) without the DHE suites (we ship no
// DH parameters): ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2; TLS
// 1.3's suites are OpenSSL's defaults (AES-GCM and ChaCha20), all AEAD.
const char* TlsServer::kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
const char* TlsServer::kGroups = "X25519:P-256:P-384";

TlsServer::~TlsServer() {
  if (ctx_) SSL_CTX_free(ctx_);
}

bool TlsServer::init(const TlsOptions& o, std::string& err) {
  opts_ = o;
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx_) {
    err = "cannot create the TLS context";
    return false;
  }
  SSL_CTX_set_app_data(ctx_, this);
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx_, TLS1_3_VERSION);
  // No renegotiation (a DoS vector), no compression (CRIME); a client that
  // closes without close_notify is an ordinary EOF (as browsers do).
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set_cipher_list(ctx_, kCiphers12) != 1 || SSL_CTX_set1_groups_list(ctx_, kGroups) != 1) {
    err = "cannot set the cipher list";
    return false;
  }
  // Partial writes from a buffer that moves (ours compacts); buffers released
  // while a connection is idle (an idle TLS connection costs little memory).
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // Read-ahead: one read() takes a record's header and body (and whatever
  // follows) instead of two reads per record (nginx does the same). With the
  // short-read flag of watch_raw_reads() a request over TLS costs one read, as
  // over plain HTTP. That flag assumes OpenSSL's raw reads fill what they
  // ask for while the socket has bytes: never enable kernel TLS receive
  // (SSL_OP_ENABLE_KTLS) without revisiting it (the kernel returns one record
  // per read, so a short read would no longer mean a drained socket).
  SSL_CTX_set_read_ahead(ctx_, 1);
  SSL_CTX_set_cert_cb(ctx_, &TlsServer::cert_cb, this);
  SSL_CTX_set_alpn_select_cb(ctx_, &TlsServer::alpn_cb, this);
  // Resumption by tickets only (no server-side session cache to share
  // between workers); keys rotate, see ticket().
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx_, 1);
  SSL_CTX_set_timeout(ctx_, static_cast<long>(3 * o.ticket_key_rotation_s));  // as long as a key can decrypt
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx_, &TlsServer::ticket_cb);
  {
    std::lock_guard<std::mutex> g(mu_);
    rotate_locked(now_s());
  }
  return true;
}

void TlsServer::publish(std::shared_ptr<const CertMap> m) {
  std::lock_guard<std::mutex> g(mu_);
  certs_ = std::move(m);
}

std::shared_ptr<const CertMap> TlsServer::current() const {
  std::lock_guard<std::mutex> g(mu_);
  return certs_;
}

namespace {
// Sees the result of every raw read on the socket BIO (after OpenSSL made it).
long raw_read_cb(BIO* b, int oper, const char*, size_t len, int, long, int ret, size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
    if (auto* flag = reinterpret_cast<bool*>(BIO_get_callback_arg(b)))
      *flag = ret > 0 && processed != nullptr && *processed < len;
  }
  return ret;
}
}  // namespace

void TlsServer::watch_raw_reads(SSL* ssl, bool* short_read) {
  BIO* rb = SSL_get_rbio(ssl);
  BIO_set_callback_ex(rb, &raw_read_cb);
  BIO_set_callback_arg(rb, reinterpret_cast<char*>(short_read));
}

SSL* TlsServer::new_ssl(int fd) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

// After the ClientHello: the certificate for its server name.
int TlsServer::cert_cb(SSL* ssl, void* arg) {
  auto* self = static_cast<TlsServer*>(arg);
  std::shared_ptr<const CertMap> m = self->current();
  if (!m) return 0;
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::string name;
  if (sni) {
    name = sni;
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  const Certificate* c = m->select(name);
  if (!c) return 0;
  if (SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1) != 1) return 0;
  return 1;
}

int TlsServer::alpn_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                       unsigned int inlen, void* arg) {
  auto* self = static_cast<TlsServer*>(arg);
  const unsigned char* ours = self->opts_.offer_h2 ? kAlpnH2 : kAlpnH1;
  const unsigned int ours_len = self->opts_.offer_h2 ? sizeof kAlpnH2 : sizeof kAlpnH1;
  unsigned char* sel = nullptr;
  unsigned char sel_len = 0;
  if (SSL_select_next_proto(&sel, &sel_len, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN (HTTP/1.1)
  *out = sel;
  *outlen = sel_len;
  return SSL_TLSEXT_ERR_OK;
}

void TlsServer::rotate_locked(int64_t now) {
  TicketKey k;
  RAND_bytes(k.name, sizeof k.name);
  RAND_bytes(k.aes, sizeof k.aes);
  RAND_bytes(k.hmac, sizeof k.hmac);
  k.created = now;
  keys_.insert(keys_.begin(), k);
  if (keys_.size() > 3) keys_.resize(3);
}

void TlsServer::rotate_ticket_keys() {
  std::lock_guard<std::mutex> g(mu_);
  rotate_locked(now_s());
}

int TlsServer::ticket_cb(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* ctx,
                         EVP_MAC_CTX* hctx, int enc) {
  auto* self = static_cast<TlsServer*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  return self->ticket(key_name, iv, ctx, hctx, enc);
}

// Session tickets: encrypted with the newest key; the two keys before it
// still decrypt (and the ticket is then renewed), so a ticket lives between
// one and three rotation periods.
int TlsServer::ticket(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* ctx, EVP_MAC_CTX* hctx, int enc) {
  std::lock_guard<std::mutex> g(mu_);
  const int64_t now = now_s();
  if (keys_.empty() || now - keys_.front().created >= opts_.ticket_key_rotation_s) rotate_locked(now);
  auto mac = [&](const TicketKey& k) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(k.hmac), sizeof k.hmac);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
  };
  if (enc) {
    const TicketKey& k = keys_.front();
    std::memcpy(key_name, k.name, sizeof k.name);
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1 || !mac(k)) return -1;
    return 1;
  }
  for (size_t i = 0; i < keys_.size(); ++i) {
    const TicketKey& k = keys_[i];
    if (std::memcmp(key_name, k.name, sizeof k.name) != 0) continue;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1 || !mac(k)) return -1;
    return i == 0 ? 1 : 2;  // 2: resume, and issue a ticket under the newest key
  }
  return 0;  // unknown or expired key: a full handshake
}

}  // namespace ingressd::tls
