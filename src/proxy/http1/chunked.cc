#include "proxy/http1/chunked.h"

#include <algorithm>

#include "core/strings.h"

namespace ingressd::http1 {

ChunkedDecoder::Result ChunkedDecoder::feed(const char* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    char c = p[i];
    switch (state_) {
      case State::Size: {
        int v = hex_digit_value(c);
        if (v >= 0) {
          if (++size_digits_ > 15) return fail(i, "chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail(i, "invalid chunk size");
        if (c == '\r') {
          state_ = State::SizeLF;
          ++i;
          break;
        }
        if (c == ';' || c == ' ' || c == '\t') {  // chunk-ext, possibly after BWS
          state_ = c == ';' ? State::Ext : State::ExtBws;
          ext_len_ = 0;
          ++i;
          break;
        }
        return fail(i, "invalid chunk size");
      }
      case State::ExtBws:
        if (c == ' ' || c == '\t') {
          if (++ext_len_ > kMaxExtension) return fail(i, "chunk extension too long");
          ++i;
          break;
        }
        if (c == ';') {
          state_ = State::Ext;
          ++i;
          break;
        }
        return fail(i, "invalid chunk size line");
      case State::Ext:
        if (c == '\r') {
          state_ = State::SizeLF;
          ++i;
          break;
        }
        if (c == '\n' || c == '\0') return fail(i, "invalid chunk extension");
        if (++ext_len_ > kMaxExtension) return fail(i, "chunk extension too long");
        ++i;
        break;
      case State::SizeLF:
        if (c != '\n') return fail(i, "bare CR in chunk size line");
        ++i;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::TrailerStart : State::Data;
        break;
      case State::Data: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::DataCR;
        return {Status::Data, i + take, p + i, take};
      }
      case State::DataCR:
        if (c != '\r') return fail(i, "chunk data longer than its size");
        state_ = State::DataLF;
        ++i;
        break;
      case State::DataLF:
        if (c != '\n') return fail(i, "bare CR after chunk data");
        state_ = State::Size;
        ++i;
        break;
      case State::TrailerStart:
        if (c == '\r') {
          state_ = State::FinalLF;
          ++i;
          break;
        }
        if (c == '\n') return fail(i, "bare LF in trailer section");
        state_ = State::Trailer;
        break;
      case State::Trailer:
        if (++trailer_len_ > kMaxTrailer) return fail(i, "trailer section too large");
        if (c == '\r') state_ = State::TrailerLF;
        else if (c == '\n' || c == '\0') return fail(i, "invalid trailer field");
        ++i;
        break;
      case State::TrailerLF:
        if (c != '\n') return fail(i, "bare CR in trailer section");
        state_ = State::TrailerStart;
        ++i;
        break;
      case State::FinalLF:
        if (c != '\n') return fail(i, "bare CR at end of chunked body");
        state_ = State::Done;
        return {Status::Done, i + 1};
      case State::Done:
        return {Status::Done, i};
      case State::Error:
        return {Status::Error, i};
    }
  }
  if (state_ == State::Done) return {Status::Done, i};
  return {Status::NeedMore, i};
}

size_t chunk_header(char* out, size_t n) {
  static const char* hex = "0123456789abcdef";
  char tmp[20];
  size_t len = 0;
  do {
    tmp[len++] = hex[n & 15];
    n >>= 4;
  } while (n);
  for (size_t i = 0; i < len; ++i) out[i] = tmp[len - 1 - i];
  out[len] = '\r';
  out[len + 1] = '\n';
  return len + 2;
}

}  // namespace ingressd::http1
