#include "proxy/endpoint_picker.h"

namespace ingressd {

const routing::WeightedBackend* pick_weighted(const routing::RouteAction& a, uint64_t roll) {
  if (a.backends.size() == 1) return &a.backends.front();
  if (a.total_weight == 0) return nullptr;
  uint64_t r = roll % a.total_weight;
  for (const auto& wb : a.backends) {
    if (r < wb.weight) return &wb;
    r -= wb.weight;
  }
  return nullptr;  // unreachable: the weights sum to total_weight
}

const routing::Backend* pick_backend(const routing::RouteAction& a, uint64_t roll) {
  const routing::WeightedBackend* wb = pick_weighted(a, roll);
  return wb ? wb->backend : nullptr;
}

size_t first_endpoint(const routing::Backend& b, uint32_t& cursor, const EndpointHealth& health) {
  const size_t n = b.endpoints.size();
  size_t i = cursor++ % n;
  for (size_t k = 0; k < n && health.ejected(b.endpoints[i]); ++k) i = (i + 1) % n;
  return i;
}

}  // namespace ingressd
