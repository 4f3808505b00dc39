// Jittered exponential backoff for reconnecting to the API server: the n-th
// delay is drawn uniformly from [d/2, d] with d = min(max, base * 2^n), so
// that replicas that lost the server together do not come back in lockstep.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>

namespace ingressd::kube {

class Backoff {
 public:
  Backoff(int base_ms, int max_ms, uint64_t seed = std::random_device{}())
      : base_ms_(base_ms), max_ms_(max_ms), rng_(seed) {}
  int next_ms() {
    int64_t d = base_ms_;
    for (int i = 0; i < attempts_ && d < max_ms_; ++i) d *= 2;
    d = std::min<int64_t>(d, max_ms_);
    ++attempts_;
    std::uniform_int_distribution<int64_t> dist(d / 2, d);
    return static_cast<int>(dist(rng_));
  }
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  int base_ms_, max_ms_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ingressd::kube
