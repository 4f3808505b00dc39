// The per-connection byte buffer and its per-thread block cache.
#include "proxy/buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace ingressd {
namespace {

std::string pattern(size_t n, size_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

TEST(Buffer, GrowsThroughTheSizeClassesKeepingItsBytes) {
  Buffer b;
  std::string all;
  for (size_t i = 0; i < 40; ++i) {  // 40 × 9,000 bytes: 16 → 32 → … → 512 KiB
    std::string part = pattern(9000, i);
    b.append(part);
    all += part;
    ASSERT_EQ(b.view(), all) << "after append " << i;
  }
  EXPECT_GE(b.capacity(), all.size());
  EXPECT_EQ(b.capacity() % BlockCache::kBlock, 0u);
}

TEST(Buffer, CompactsBeforeGrowing) {
  Buffer b;
  b.append(pattern(12000, 1));
  b.consume(10000);  // 2,000 left at offset 10,000
  char* p = b.prepare(8000);  // fits in the same 16 KiB block once compacted
  EXPECT_EQ(b.capacity(), BlockCache::kBlock);
  EXPECT_EQ(b.view(), pattern(12000, 1).substr(10000));
  std::memcpy(p, "xyz", 3);
  b.commit(3);
  EXPECT_EQ(b.view().substr(2000), "xyz");
}

TEST(Buffer, ReleasedWhenEmptyOnly) {
  Buffer b;
  b.append("abc");
  b.release_if_empty();
  EXPECT_EQ(b.view(), "abc");
  b.consume(3);
  b.release_if_empty();
  EXPECT_EQ(b.capacity(), 0u);
  b.append("again");
  EXPECT_EQ(b.view(), "again");
}

TEST(BlockCache, LargeBlocksAreReusedThenFreedWhenUnused) {
  // A fresh thread: its cache starts empty.
  std::thread([] {
    constexpr size_t k64 = 64 * 1024;
    EXPECT_EQ(BlockCache::cached(k64), 0u);
    {
      Buffer b;  // a body stream: grows 16 → 32 → 64 KiB as it reads, then is released
      for (int i = 0; i < 4; ++i) b.append(pattern(10000, i));
      EXPECT_EQ(b.capacity(), k64);
      b.consume(b.size());
      b.release_if_empty();
    }
    EXPECT_EQ(BlockCache::cached(k64), 1u);
    EXPECT_EQ(BlockCache::cached(32 * 1024), 1u);  // the blocks it outgrew
    EXPECT_EQ(BlockCache::cached(BlockCache::kBlock), 1u);
    char* again = BlockCache::get(k64);  // the next stream takes the same block: no malloc
    BlockCache::put(again, k64);
    BlockCache::sweep();  // asked for since the last sweep: kept
    EXPECT_EQ(BlockCache::cached(k64), 1u);
    BlockCache::sweep();  // not asked for since: freed
    EXPECT_EQ(BlockCache::cached(k64), 0u);
    EXPECT_EQ(BlockCache::cached(BlockCache::kBlock), 1u);  // 16 KiB blocks are never swept
  }).join();
}

TEST(BlockCache, KeepsAtMostSixteenLargeBlocksPerSize) {
  std::thread([] {
    constexpr size_t k128 = 128 * 1024;
    char* blocks[20];
    for (auto& p : blocks) p = BlockCache::get(k128);
    for (auto* p : blocks) BlockCache::put(p, k128);
    EXPECT_EQ(BlockCache::cached(k128), 16u);
    char* huge = BlockCache::get(1024 * 1024);  // beyond the classes: plain malloc/free
    ASSERT_NE(huge, nullptr);
    BlockCache::put(huge, 1024 * 1024);
    EXPECT_EQ(BlockCache::cached(1024 * 1024), 0u);
  }).join();
}

}  // namespace
}  // namespace ingressd
