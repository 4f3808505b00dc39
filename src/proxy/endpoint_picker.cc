#include "proxy/endpoint_picker.h"

#include <strings.h>

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

uint64_t affinity_from_cookies(const http1::RequestHead& req, std::string_view name) {
  for (int i = 0; i < req.n_headers; ++i) {
    const http1::Header& h = req.headers[i];
    if (h.name.size() != 6 || strncasecmp(h.name.data(), "cookie", 6) != 0) continue;
    std::string_view c = h.value;
    while (!c.empty()) {
      size_t semi = c.find(';');
      std::string_view kv = c.substr(0, semi);
      while (!kv.empty() && kv.front() == ' ') kv.remove_prefix(1);
      if (kv.size() == name.size() + 17 && kv.substr(0, name.size()) == name && kv[name.size()] == '=') {
        uint64_t k = 0;
        for (char ch : kv.substr(name.size() + 1)) {
          int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
          if (d < 0) return 0;
          k = k << 4 | static_cast<uint64_t>(d);
        }
        return k;
      }
      if (semi == std::string_view::npos) break;
      c.remove_prefix(semi + 1);
    }
  }
  return 0;
}

size_t affine_endpoint(const routing::Backend& b, uint64_t key, const EndpointHealth& health) {
  if (!key) return SIZE_MAX;
  for (size_t i = 0; i < b.endpoints.size(); ++i)
    if (b.endpoints[i].affinity == key) return health.ejected(b.endpoints[i]) ? SIZE_MAX : i;
  return SIZE_MAX;
}

void affinity_value(uint64_t key, std::string& out) {
  static const char* hex = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) out += hex[(key >> (4 * i)) & 15];
}

size_t first_endpoint(const routing::Backend& b, uint32_t& cursor, const EndpointHealth& health) {
  const size_t n = b.endpoints.size();
  size_t i = cursor++ % n;
  for (size_t k = 0; k < n && health.ejected(b.endpoints[i]); ++k) i = (i + 1) % n;
  return i;
}

}  // namespace ingressd
