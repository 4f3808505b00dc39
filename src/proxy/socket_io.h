// Non-blocking socket reads and writes, plain and over TLS, for the
// edge-triggered worker loop: each drains what it can and says whether the
// socket may have more (`can_read` / `can_write` stay true) or an edge must
// come first.
#pragma once
#include <openssl/ssl.h>

#include <cstddef>

#include "proxy/buffer.h"

namespace ingressd {

// Stop reading a side whose output is this far behind: bounds the memory of a
// busy connection (about 2 × 64 KiB per direction) while keeping the pipe full.
constexpr size_t kHigh = 64 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

bool read_into(int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool peer_closed);
bool write_from(int fd, Buffer& b, bool& can_write);
bool tls_read_into(SSL* ssl, int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool& wants_write,
                   bool& raw_short, bool peer_closed);
bool tls_write_from(SSL* ssl, Buffer& b, bool& can_write, bool& can_read);
// Appends `n` bytes as one chunk of a chunked body (RFC 9112 §7.1).
void append_chunk(Buffer& out, const char* p, size_t n);

}  // namespace ingressd
