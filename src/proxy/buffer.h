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

// Blocks of the common size are recycled per thread, so a keep-alive
// connection that releases its buffers between requests costs no malloc.
class BlockCache {
 public:
  static constexpr size_t kBlock = 16 * 1024;
  static char* get() {
    auto& c = cache();
    if (c.n == 0) return static_cast<char*>(std::malloc(kBlock));
    return c.blocks[--c.n];
  }
  static void put(char* b) {
    auto& c = cache();
    if (c.n < kMax) c.blocks[c.n++] = b;
    else std::free(b);
  }

 private:
  static constexpr size_t kMax = 256;
  struct Cache {
    char* blocks[kMax];
    size_t n = 0;
    ~Cache() {
      for (size_t i = 0; i < n; ++i) std::free(blocks[i]);
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
    if (!buf_ && min <= BlockCache::kBlock) {
      buf_ = BlockCache::get();
      if (!buf_) std::abort();
      cap_ = BlockCache::kBlock;
      return buf_;
    }
    size_t ncap = cap_ ? cap_ : BlockCache::kBlock;
    while (ncap - end_ < min) ncap *= 2;
    char* nb;
    if (cap_ == BlockCache::kBlock) {  // a cached block cannot be realloc'd in place of a malloc'd one
      nb = static_cast<char*>(std::malloc(ncap));
      if (nb) std::memcpy(nb, buf_, end_);
      BlockCache::put(buf_);
    } else {
      nb = static_cast<char*>(std::realloc(buf_, ncap));
    }
    if (!nb) std::abort();
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
    if (cap_ == BlockCache::kBlock) BlockCache::put(buf_);
    else std::free(buf_);
    buf_ = nullptr;
    cap_ = 0;
    start_ = end_ = 0;
  }
  char* buf_ = nullptr;
  size_t start_ = 0, end_ = 0, cap_ = 0;
};

}  // namespace ingressd
