// Request rate limits per client address (ingress-nginx limit-rps,
// limit-rpm, limit-burst-multiplier): nginx's limit_req with `nodelay`, per
// replica, shared by the workers. Each address has a leaky bucket that drains
// at the rate; a request that would fill it past the burst (rate × multiplier,
// ingress-nginx's default 5) is refused with 503. State is kept per limiter and
// bounded: addresses whose bucket has drained are forgotten.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "routing/action.h"

namespace ingressd::routing {

class RateLimit {
 public:
  // `per_second`: requests per second (limit-rpm / 60 for a per-minute limit).
  RateLimit(double per_second, double burst);
  // Whether a request from `client` at `now_ms` (a monotonic clock) passes.
  bool allow(const ClientAddr& client, int64_t now_ms) const;
  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  struct Key {
    uint8_t family;
    std::array<uint8_t, 16> bytes;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Bucket {
    double excess = 0;  // requests above the rate, drained at `rate_` per second
    int64_t at_ms = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<Key, Bucket, KeyHash> buckets;
    int64_t last_sweep_ms = 0;
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 1 << 16;
  double rate_, burst_;
  mutable std::array<Shard, kShards> shards_;
};

// Concurrent requests per client address (ingress-nginx limit-connections:
// nginx's limit_conn, where each HTTP/2 stream counts as a connection), per
// replica, shared by the workers. acquire() before forwarding, release() when
// the exchange ends.
class ConnLimit {
 public:
  explicit ConnLimit(int max) : max_(max) {}
  bool acquire(const ClientAddr& client) const;
  void release(const ClientAddr& client) const;
  int max() const { return max_; }

 private:
  using Key = std::array<uint8_t, 17>;  // family, then the address
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<Key, int, KeyHash> counts;
  };
  static Key key(const ClientAddr& c);
  int max_;
  mutable std::array<Shard, 16> shards_;
};

}  // namespace ingressd::routing
