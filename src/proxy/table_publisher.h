// Publishes RouteTables to workers. The control thread swaps a new table in;
// a worker checks one atomic generation number per loop iteration and takes
// a reference only when it changed, so the hot path shares no lock and no
// reference count with other threads.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>

#include "routing/route_table.h"

namespace ingressd {

class TablePublisher {
 public:
  void publish(std::shared_ptr<const routing::RouteTable> t) {
    std::lock_guard<std::mutex> g(mu_);
    table_ = std::move(t);
    gen_.fetch_add(1, std::memory_order_release);
  }
  uint64_t generation() const { return gen_.load(std::memory_order_acquire); }
  std::shared_ptr<const routing::RouteTable> current(uint64_t* gen = nullptr) const {
    std::lock_guard<std::mutex> g(mu_);
    if (gen) *gen = gen_.load(std::memory_order_relaxed);
    return table_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const routing::RouteTable> table_;
  std::atomic<uint64_t> gen_{0};
};

}  // namespace ingressd
