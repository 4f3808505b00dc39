#include "proxy/socket_io.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <algorithm>
#include <cstring>

#include "proxy/http1/chunked.h"

namespace ingressd {

// Reads until EAGAIN, EOF or a short read (which in edge-triggered mode
// means the socket is drained: a later arrival raises a new edge).
// Returns false on a hard error.
// When the peer has closed its side (EPOLLRDHUP), data and FIN may come in
// one edge: then read on until read() says 0.
bool read_into(int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool peer_closed) {
  while (can_read && b.size() < limit) {
    char* p = b.prepare(kReadChunk);
    size_t room = b.tail_room();
    ssize_t n = ::read(fd, p, room);
    if (n > 0) {
      b.commit(static_cast<size_t>(n));
      if (static_cast<size_t>(n) < room && !peer_closed) can_read = false;
      continue;
    }
    if (n == 0) {
      eof = true;
      can_read = false;
      return true;
    }
    if (errno == EINTR) continue;
    can_read = false;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    eof = true;
    return false;
  }
  return true;
}

// Writes what it can. Returns false on a hard error.
bool write_from(int fd, Buffer& b, bool& can_write) {
  while (!b.empty() && can_write) {
    ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bool partial = static_cast<size_t>(n) < b.size();
      b.consume(static_cast<size_t>(n));
      if (partial) can_write = false;  // the socket buffer is full; EPOLLOUT will tell
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      can_write = false;
      return true;
    }
    return false;
  }
  return true;
}

// The same over TLS. SSL_read returns one record at a time, so "short read
// means drained" holds only for OpenSSL's own raw reads (read-ahead on): the
// socket BIO's callback sets `raw_short` (TlsServer::watch_raw_reads). Once
// OpenSSL holds nothing more and its last raw read was short, the socket is
// drained, as in read_into(): one read() per request, not three.
//
// OpenSSL frees its 16 KiB read buffer (SSL_MODE_RELEASE_BUFFERS) once a
// record is consumed, but allocates it again for a read that then finds the
// socket empty. So when OpenSSL holds nothing and cannot tell, ask the socket
// (MSG_PEEK) instead: an idle TLS connection then holds no OpenSSL buffer.
bool tls_read_into(SSL* ssl, int fd, Buffer& b, bool& can_read, bool& eof, size_t limit, bool& wants_write,
                   bool& raw_short, bool peer_closed) {
  while (can_read && b.size() < limit) {
    char* p = b.prepare(kReadChunk);
    size_t room = b.tail_room();
    ERR_clear_error();
    raw_short = false;
    int n = SSL_read(ssl, p, static_cast<int>(std::min<size_t>(room, 1 << 30)));
    if (n > 0) {
      b.commit(static_cast<size_t>(n));
      if (!SSL_has_pending(ssl)) {
        if (raw_short && !peer_closed) {
          can_read = false;
          return true;
        }
        char c;
        ssize_t r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          can_read = false;
          return true;
        }
      }
      continue;
    }
    switch (SSL_get_error(ssl, n)) {
      case SSL_ERROR_WANT_READ:
        can_read = false;
        return true;
      case SSL_ERROR_WANT_WRITE:
        can_read = false;
        wants_write = true;
        return true;
      case SSL_ERROR_ZERO_RETURN:  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
        eof = true;
        can_read = false;
        return true;
      default:
        eof = true;
        can_read = false;
        return false;
    }
  }
  return true;
}

bool tls_write_from(SSL* ssl, Buffer& b, bool& can_write, bool& can_read) {
  while (!b.empty() && can_write) {
    ERR_clear_error();
    int n = SSL_write(ssl, b.data(), static_cast<int>(std::min<size_t>(b.size(), 1 << 30)));
    if (n > 0) {
      b.consume(static_cast<size_t>(n));
      continue;
    }
    switch (SSL_get_error(ssl, n)) {
      case SSL_ERROR_WANT_WRITE:
        can_write = false;
        return true;
      case SSL_ERROR_WANT_READ:
        can_read = true;  // rare (a TLS 1.3 post-handshake message): the next read makes progress
        return true;
      default:
        return false;
    }
  }
  return true;
}

void append_chunk(Buffer& out, const char* p, size_t n) {
  char hdr[24];
  size_t h = http1::chunk_header(hdr, n);
  char* dst = out.prepare(h + n + 2);
  std::memcpy(dst, hdr, h);
  std::memcpy(dst + h, p, n);
  dst[h + n] = '\r';
  dst[h + n + 1] = '\n';
  out.commit(h + n + 2);
}

}  // namespace ingressd
