// The endpoint picking phase: which backend of a route's traffic split, which
// of its endpoints first (round robin, ejected endpoints skipped), and which
// next when one fails. Sans-I/O: the worker supplies its passive-health view
// through EndpointHealth and its per-backend round-robin cursors.
#pragma once
#include <cstddef>
#include <cstdint>

#include "routing/route_table.h"

namespace ingressd {

class EndpointHealth {
 public:
  virtual bool ejected(const routing::EndpointAddr& ep) const = 0;

 protected:
  ~EndpointHealth() = default;
};

// The backend of a weighted split for a request whose random draw is `roll`:
// each backend gets its weight's share; weight 0 gets none. Null when every
// weight is 0.
const routing::Backend* pick_backend(const routing::RouteAction& a, uint64_t roll);
// The same draw, as the split's entry (its own action, when it has one).
const routing::WeightedBackend* pick_weighted(const routing::RouteAction& a, uint64_t roll);

// The first endpoint to try (an index into b.endpoints, which must not be
// empty): the next in round-robin order by `cursor`, skipping ejected ones;
// when all are ejected, the round-robin one anyway (better a chance than a
// certain 503).
size_t first_endpoint(const routing::Backend& b, uint32_t& cursor, const EndpointHealth& health);

// The endpoint after `current` (a failed one), in order.
inline size_t next_endpoint(const routing::Backend& b, size_t current) { return (current + 1) % b.endpoints.size(); }

// How many endpoints one request tries before 502: the flag, at most every endpoint once.
inline int max_attempts(const routing::Backend& b, int flag) {
  return flag < static_cast<int>(b.endpoints.size()) ? flag : static_cast<int>(b.endpoints.size());
}

}  // namespace ingressd
