// Fuzzes http1::ChunkedDecoder (src/proxy/http1/chunked.h).
//
// The input is fed three ways: whole, byte by byte, and in pieces whose sizes
// come from the input's first byte. Invariants (a violation traps):
//  - every call consumes at most what it was given, a NeedMore call consumes
//    all of it, a Data span is non-empty and lies inside the consumed bytes;
//  - all feedings give the same decoded data, the same final status, the same
//    end offset (where the next pipelined message starts) and the same error;
//  - after Done or Error, feeding more returns the same status and consumes nothing;
//  - a decoded body re-encoded with chunk_header() decodes to the same data.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_check.h"
#include "proxy/http1/chunked.h"

using ingressd::http1::chunk_header;
using ingressd::http1::ChunkedDecoder;
using Status = ChunkedDecoder::Status;

namespace {

struct Outcome {
  Status status = Status::NeedMore;
  size_t end = 0;  // input offset after the last byte consumed
  std::string data;
  std::string error;
};

// Feeds `p[0..n)` in pieces of at most `piece` bytes (0 = all at once).
Outcome decode(const char* p, size_t n, size_t piece) {
  ChunkedDecoder dec;
  Outcome o;
  size_t off = 0;
  while (off < n) {
    size_t avail = piece ? std::min(piece, n - off) : n - off;
    ChunkedDecoder::Result r = dec.feed(p + off, avail);
    FUZZ_CHECK(r.consumed <= avail);
    if (r.status == Status::Data) {
      FUZZ_CHECK(r.data_len > 0 && r.data >= p + off && r.data + r.data_len <= p + off + r.consumed);
      o.data.append(r.data, r.data_len);
    } else {
      FUZZ_CHECK(r.data_len == 0);
    }
    if (r.status == Status::NeedMore) FUZZ_CHECK(r.consumed == avail);
    if (r.status == Status::Data && !piece) FUZZ_CHECK(r.consumed > 0);
    off += r.consumed;
    o.status = r.status;
    if (r.status == Status::Done || r.status == Status::Error) break;
    if (r.status == Status::Data && r.consumed == 0) break;  // no progress (checked above for whole input)
  }
  o.end = off;
  FUZZ_CHECK(dec.done() == (o.status == Status::Done));
  if (o.status == Status::Error) {
    FUZZ_CHECK(dec.error() != nullptr && dec.error()[0] != '\0');
    o.error = dec.error();
  }
  if (o.status == Status::Done || o.status == Status::Error) {
    // Terminal states stay terminal and take no more input.
    ChunkedDecoder::Result again = dec.feed(p, n);
    FUZZ_CHECK(n == 0 || (again.status == o.status && again.consumed == 0));
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  const char* p = reinterpret_cast<const char*>(d);
  Outcome whole = decode(p, len, 0);
  Outcome bytes = decode(p, len, 1);
  size_t piece = len ? static_cast<size_t>(static_cast<unsigned char>(p[0]) % 13) + 2 : 2;
  Outcome pieces = decode(p, len, piece);
  for (const Outcome* o : {&bytes, &pieces}) {
    FUZZ_CHECK(o->status == whole.status);
    FUZZ_CHECK(o->data == whole.data);
    FUZZ_CHECK(o->error == whole.error);
    if (whole.status == Status::Done || whole.status == Status::Error) FUZZ_CHECK(o->end == whole.end);
  }
  if (whole.status == Status::NeedMore) FUZZ_CHECK(whole.end == len);

  if (whole.status == Status::Done) {
    // Round trip through our own encoder, in chunks of varying size.
    std::string enc;
    char hdr[24];
    size_t off = 0, step = 1;
    while (off < whole.data.size()) {
      size_t n = std::min(step, whole.data.size() - off);
      enc.append(hdr, chunk_header(hdr, n));
      enc.append(whole.data, off, n);
      enc += "\r\n";
      off += n;
      step = step * 3 + 1;
    }
    enc += "0\r\n\r\n";
    Outcome rt = decode(enc.data(), enc.size(), 0);
    FUZZ_CHECK(rt.status == Status::Done && rt.end == enc.size() && rt.data == whole.data);
  }
  return 0;
}
