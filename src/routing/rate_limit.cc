#include "routing/rate_limit.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace ingressd::routing {

RateLimit::RateLimit(double per_second, double burst) : rate_(per_second), burst_(burst) {}

size_t RateLimit::KeyHash::operator()(const Key& k) const {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.family == 4 ? 4 : 16));
}

bool RateLimit::allow(const ClientAddr& client, int64_t now_ms) const {
  Key k{client.family, {}};
  std::memcpy(k.bytes.data(), client.bytes, sizeof client.bytes);
  Shard& s = shards_[KeyHash{}(k) % kShards];
  std::lock_guard<std::mutex> g(s.mu);
  // Forget drained buckets now and then (and whenever a shard is full), so
  // that memory is bounded by the clients active in the last burst / rate seconds.
  const int64_t drain_ms = static_cast<int64_t>((burst_ + 1) / rate_ * 1000) + 1;
  if (s.buckets.size() >= kMaxPerShard || now_ms - s.last_sweep_ms > std::max<int64_t>(drain_ms, 1000)) {
    s.last_sweep_ms = now_ms;
    for (auto it = s.buckets.begin(); it != s.buckets.end();)
      it = now_ms - it->second.at_ms > drain_ms ? s.buckets.erase(it) : std::next(it);
    if (s.buckets.size() >= kMaxPerShard) return false;  // every bucket still busy: refuse rather than grow
  }
  Bucket& b = s.buckets[k];
  const double elapsed = b.at_ms ? static_cast<double>(now_ms - b.at_ms) / 1000.0 : 0;
  double excess = std::max(0.0, b.excess - rate_ * elapsed) + 1;
  // nginx limit_req: the request is refused when the excess passes the burst
  // (the first request of a fresh bucket counts as 1, within any burst ≥ 0).
  if (excess > burst_ + 1) {
    b.excess = std::max(0.0, b.excess - rate_ * elapsed);
    b.at_ms = now_ms;
    return false;
  }
  b.excess = excess;
  b.at_ms = now_ms;
  return true;
}

ConnLimit::Key ConnLimit::key(const ClientAddr& c) {
  Key k{};
  k[0] = c.family;
  std::memcpy(k.data() + 1, c.bytes, 16);
  return k;
}

size_t ConnLimit::KeyHash::operator()(const Key& k) const {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

bool ConnLimit::acquire(const ClientAddr& client) const {
  Key k = key(client);
  Shard& s = shards_[KeyHash{}(k) % shards_.size()];
  std::lock_guard<std::mutex> g(s.mu);
  int& n = s.counts[k];
  if (n >= max_) {
    if (n == 0) s.counts.erase(k);
    return false;
  }
  ++n;
  return true;
}

void ConnLimit::release(const ClientAddr& client) const {
  Key k = key(client);
  Shard& s = shards_[KeyHash{}(k) % shards_.size()];
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.counts.find(k);
  if (it != s.counts.end() && --it->second <= 0) s.counts.erase(it);  // entries only for clients with requests in progress
}

}  // namespace ingressd::routing
