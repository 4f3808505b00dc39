// Sans-I/O chunked transfer-coding decoder (RFC 9112 §7.1), strict: sizes
// are bounded hex, extensions bounded, line endings must be CRLF. Trailer
// fields are read and discarded.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ingressd::http1 {

class ChunkedDecoder {
 public:
  enum class Status { NeedMore, Data, Done, Error };
  struct Result {
    Status status;
    size_t consumed;          // input bytes used by this call
    const char* data = nullptr;  // for Data: a view into the input
    size_t data_len = 0;
  };
  static constexpr size_t kMaxExtension = 4096;  // per chunk line
  static constexpr size_t kMaxTrailer = 16 * 1024;

  // Feed bytes; returns after at most one data span. Call again with the
  // remaining input until NeedMore, Done or Error.
  Result feed(const char* p, size_t n);
  void reset() { *this = ChunkedDecoder(); }
  bool done() const { return state_ == State::Done; }
  const char* error() const { return error_; }

 private:
  enum class State { Size, ExtBws, Ext, SizeLF, Data, DataCR, DataLF, TrailerStart, Trailer, TrailerLF, FinalLF, Done, Error };
  State state_ = State::Size;
  uint64_t remaining_ = 0;
  int size_digits_ = 0;
  size_t ext_len_ = 0;
  size_t trailer_len_ = 0;
  const char* error_ = "";
  Result fail(size_t consumed, const char* why) {
    state_ = State::Error;
    error_ = why;
    return {Status::Error, consumed};
  }
};

// Writes the chunk-size line for `n` bytes ("1a\r\n") into out (≥ 20 bytes); returns its length.
size_t chunk_header(char* out, size_t n);

}  // namespace ingressd::http1
