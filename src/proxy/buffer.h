// A byte buffer for one direction of one connection: read into the free tail,
// consume from the head, compact when needed. Storage is allocated when bytes
// arrive and can be released when the connection goes idle.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace ingressd {

// Blocks are recycled per thread, so a keep-alive connection that releases its
// buffers between requests costs no malloc. Sizes are 16 KiB × 2^k: the
// common 16 KiB block (up to 256 kept), and the larger blocks a body stream
// grows into (32–256 KiB, up to 16 of each kept). Without the larger ones, a
// 1 MiB upload grew and freed its buffers on every request and the allocator
// handed the pages back and faulted them in again (~10 % of the CPU of a
// 1 MiB POST). Larger blocks not asked for between two sweeps (the worker's
// 250 ms timer) are freed: a burst of big transfers does not pin memory.
class BlockCache {
 public:
  static constexpr size_t kBlock = 16 * 1024;
  static constexpr int kClasses = 5;  // 16, 32, 64, 128, 256 KiB
  static char* get(size_t size = kBlock) {
    int k = size_class(size);
    if (k < 0) return static_cast<char*>(std::malloc(size));
    auto& c = cache().cls[k];
    c.used = true;
    if (c.n == 0) return static_cast<char*>(std::malloc(size));
    return c.blocks[--c.n];
  }
  static void put(char* b, size_t size = kBlock) {
    int k = size_class(size);
    if (k >= 0) {
      auto& c = cache().cls[k];
      if (c.n < (k == 0 ? kMaxSmall : kMaxLarge)) {
        c.blocks[c.n++] = b;
        return;
      }
    }
    std::free(b);
  }
  // Frees the larger blocks of every class nobody asked for since the last call.
  static void sweep() {
    auto& all = cache();
    for (int k = 1; k < kClasses; ++k) {
      auto& c = all.cls[k];
      if (!c.used)
        while (c.n > 0) std::free(c.blocks[--c.n]);
      c.used = false;
    }
  }
  // Blocks of this size kept now (for tests).
  static size_t cached(size_t size) {
    int k = size_class(size);
    return k < 0 ? 0 : cache().cls[k].n;
  }
  // 0 for 16 KiB, 1 for 32 KiB, ...; -1 for a size that is not cached.
  static int size_class(size_t size) {
    for (int k = 0; k < kClasses; ++k)
      if (size == kBlock << k) return k;
    return -1;
  }

 private:
  static constexpr size_t kMaxSmall = 256, kMaxLarge = 16;
  struct Class {
    char* blocks[kMaxSmall];
    size_t n = 0;
    bool used = false;
  };
  struct Cache {
    Class cls[kClasses];
    ~Cache() {
      for (auto& c : cls)
        for (size_t i = 0; i < c.n; ++i) std::free(c.blocks[i]);
    }
  };
  static Cache& cache() {
    static thread_local Cache c;
    return c;
  }
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { free_storage(); }

  const char* data() const { return buf_ + start_; }
  char* data() { return buf_ + start_; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  size_t capacity() const { return cap_; }
  std::string_view view() const { return {data(), size()}; }

  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }
  // Room for at least `min` bytes at the tail (compacting or growing).
  char* prepare(size_t min) {
    if (cap_ - end_ >= min) return buf_ + end_;
    if (start_ > 0) {
      std::memmove(buf_, buf_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      if (cap_ - end_ >= min) return buf_ + end_;
    }
    // Here start_ == 0: grow to the next 16 KiB × 2^k that fits.
    size_t ncap = cap_ ? cap_ : BlockCache::kBlock;
    while (ncap - end_ < min) ncap *= 2;
    char* nb = BlockCache::get(ncap);
    if (!nb) std::abort();
    if (buf_) {
      std::memcpy(nb, buf_, end_);
      BlockCache::put(buf_, cap_);
    }
    buf_ = nb;
    cap_ = ncap;
    return buf_ + end_;
  }
  size_t tail_room() const { return cap_ - end_; }
  char* tail() { return buf_ + end_; }
  void commit(size_t n) { end_ += n; }
  void append(const char* p, size_t n) {
    std::memcpy(prepare(n), p, n);
    end_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void clear() { start_ = end_ = 0; }
  // Drops bytes from the tail so that `n` remain.
  void truncate(size_t n) {
    if (n < size()) end_ = start_ + n;
    if (start_ == end_) start_ = end_ = 0;
  }
  // Frees the storage if empty (idle connections hold no buffer).
  void release_if_empty() {
    if (empty() && buf_) free_storage();
  }

 private:
  void free_storage() {
    if (!buf_) return;
    BlockCache::put(buf_, cap_);
    buf_ = nullptr;
    cap_ = 0;
    start_ = end_ = 0;
  }
  char* buf_ = nullptr;
  size_t start_ = 0, end_ = 0, cap_ = 0;
};

}  // namespace ingressd
