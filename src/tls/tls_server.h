// The process-wide server TLS context: protocol versions, ciphers, ALPN,
// session tickets with rotating keys, and the certificate chosen by SNI from
// the CertMap in force. Workers create one SSL per accepted connection.
#pragma once
#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tls/cert_store.h"

namespace ingressd::tls {

struct TlsOptions {
  bool offer_h2 = true;              // ALPN: "h2" before "http/1.1"
  int ticket_key_rotation_s = 3600;  // a new ticket key this often; the two before it still decrypt
};

class TlsServer {
 public:
  TlsServer() = default;
  ~TlsServer();
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  bool init(const TlsOptions& o, std::string& err);
  // Swaps the certificates in: new handshakes use them, established connections keep theirs.
  void publish(std::shared_ptr<const CertMap> m);
  std::shared_ptr<const CertMap> current() const;
  // A server-side SSL on a connected, non-blocking socket; null on failure.
  SSL* new_ssl(int fd) const;
  // From now on every raw read() OpenSSL makes on the socket of `ssl` sets
  // *short_read to whether it returned less than it asked for: with
  // read-ahead on, the socket was then drained (in edge-triggered mode no
  // read is needed until the next edge). The flag must outlive the SSL.
  static void watch_raw_reads(SSL* ssl, bool* short_read);
  bool offers_h2() const { return opts_.offer_h2; }
  // For tests: start a new ticket key now.
  void rotate_ticket_keys();

  // The cipher configuration, for docs and /debug.
  static const char* kCiphers12;
  static const char* kGroups;

 private:
  struct TicketKey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int64_t created = 0;
  };
  static int cert_cb(SSL* ssl, void* arg);
  static int alpn_cb(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                     unsigned int inlen, void* arg);
  static int ticket_cb(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* ctx,
                       EVP_MAC_CTX* hctx, int enc);
  int ticket(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* ctx, EVP_MAC_CTX* hctx, int enc);
  void rotate_locked(int64_t now);

  TlsOptions opts_;
  SSL_CTX* ctx_ = nullptr;
  mutable std::mutex mu_;  // certs_ and the ticket keys: taken once per handshake, never per request
  std::shared_ptr<const CertMap> certs_;
  std::vector<TicketKey> keys_;  // newest first, at most 3
};

}  // namespace ingressd::tls
