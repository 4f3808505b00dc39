// Deadlines of the worker's connections: an intrusive binary min-heap, each
// element keeping its own deadline (`timer_at`) and position (`timer_index`),
// so arming, moving and cancelling are O(log n) and the loop looks only at
// the connections that are due: 10,000 idle keep-alive connections cost
// nothing between their deadlines.
//
// Deadlines are armed lazily: moving one later does nothing, and the timer
// then fires early, finds nothing due and is armed again for the real
// deadline. A busy connection thus touches the heap about once per timeout
// period, not once per request.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ingressd {

inline constexpr int64_t kNoDeadline = INT64_MAX;

template <typename T>
class TimerHeap {
 public:
  // Arms `t` for `at`, unless it is already armed for that time or earlier.
  void arm(T* t, int64_t at) {
    if (at == kNoDeadline) return;
    if (t->timer_index != kNotArmed) {
      if (at >= t->timer_at) return;
      t->timer_at = at;
      up(t->timer_index);
      return;
    }
    t->timer_at = at;
    t->timer_index = heap_.size();
    heap_.push_back(t);
    up(t->timer_index);
  }
  void cancel(T* t) {
    if (t->timer_index == kNotArmed) return;
    size_t i = t->timer_index;
    t->timer_index = kNotArmed;
    T* last = heap_.back();
    heap_.pop_back();
    if (last == t) return;
    heap_[i] = last;
    last->timer_index = i;
    up(i);
    down(last->timer_index);
  }
  // The first element due at `now` or before, taken off the heap; null when none.
  T* pop_due(int64_t now) {
    if (heap_.empty() || heap_[0]->timer_at > now) return nullptr;
    T* t = heap_[0];
    cancel(t);
    return t;
  }
  int64_t next() const { return heap_.empty() ? kNoDeadline : heap_[0]->timer_at; }
  size_t size() const { return heap_.size(); }
  static constexpr size_t kNotArmed = SIZE_MAX;

 private:
  void swap_at(size_t a, size_t b) {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->timer_index = a;
    heap_[b]->timer_index = b;
  }
  void up(size_t i) {
    while (i > 0) {
      size_t p = (i - 1) / 2;
      if (heap_[p]->timer_at <= heap_[i]->timer_at) break;
      swap_at(i, p);
      i = p;
    }
  }
  void down(size_t i) {
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && heap_[l]->timer_at < heap_[m]->timer_at) m = l;
      if (r < heap_.size() && heap_[r]->timer_at < heap_[m]->timer_at) m = r;
      if (m == i) return;
      swap_at(i, m);
      i = m;
    }
  }
  std::vector<T*> heap_;
};

}  // namespace ingressd
