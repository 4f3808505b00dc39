// The endpoint picking phase: which backend of a route's traffic split, which
// of its endpoints first (round robin, ejected endpoints skipped), and which
// next when one fails. Sans-I/O: the worker supplies its passive-health view
// through EndpointHealth and its per-backend round-robin cursors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http1/parser.h"
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

// Session affinity (ingress-nginx affinity: cookie): the endpoint key in the
// request's cookie `name` (every Cookie field is looked at; 0 when absent or
// not a key), the index of the endpoint of `b` with that key that is not
// ejected (SIZE_MAX when none), and the cookie value for a key (16 hex digits).
uint64_t affinity_from_cookies(const http1::RequestHead& req, std::string_view name);
size_t affine_endpoint(const routing::Backend& b, uint64_t key, const EndpointHealth& health);
void affinity_value(uint64_t key, std::string& out);

// The endpoint after `current` (a failed one), in order.
inline size_t next_endpoint(const routing::Backend& b, size_t current) { return (current + 1) % b.endpoints.size(); }

// How many endpoints one request tries before 502: the flag, at most every endpoint once.
inline int max_attempts(const routing::Backend& b, int flag) {
  return flag < static_cast<int>(b.endpoints.size()) ? flag : static_cast<int>(b.endpoints.size());
}

}  // namespace ingressd
