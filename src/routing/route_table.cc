#include "routing/route_table.h"

#include "routing/path_regex.h"

#include <re2/re2.h>

#include <algorithm>

namespace ingressd::routing {

uint64_t affinity_key(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h ? h : 1;
}

std::string Backend::str() const { return namespace_ + "/" + service + ":" + port; }

std::string_view prefix_key(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path;
}

bool full_match(const re2::RE2& re, std::string_view value) {
  return re2::RE2::FullMatch(re2::StringPiece(value.data(), value.size()), re);
}

bool RegexRoute::matches(std::string_view path) const { return full ? full_match(*full, path) : re->match(path, nullptr, 0); }

const VHost* RouteTable::find_vhost(std::string_view host) const {
  if (!host.empty()) {
    auto it = exact_hosts_.find(host);
    if (it != exact_hosts_.end()) return &it->second;
  }
  return broader_vhost(host, nullptr);
}

// The chain for "a.b.example.com": exact, "*.b.example.com" (one label more,
// Ingress or Gateway), the Gateway's deeper "*.example.com" and "*.com", then
// any host. A wildcard vhost's own suffix says where the walk is.
const VHost* RouteTable::broader_vhost(std::string_view host, const VHost* vh) const {
  if (vh && vh == any_host_.get()) return nullptr;
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return any_host_.get();
  std::string_view suffix;
  if (vh && vh->host.size() > 2 && vh->host[0] == '*' && vh->host[1] == '.') {
    suffix = std::string_view(vh->host).substr(2);
  } else {
    suffix = host.substr(dot + 1);
    auto wit = wildcard_hosts_.find(suffix);
    if (wit != wildcard_hosts_.end()) return &wit->second;
  }
  if (!deep_wildcard_hosts_.empty()) {
    for (size_t d = suffix.find('.'); d != std::string_view::npos; d = suffix.find('.')) {
      suffix = suffix.substr(d + 1);
      auto it = deep_wildcard_hosts_.find(suffix);
      if (it != deep_wildcard_hosts_.end()) return &it->second;
    }
  }
  return any_host_.get();
}

bool RouteTable::tls_host(std::string_view host) const {
  if (host.empty()) return false;
  if (tls_exact_.find(host) != tls_exact_.end()) return true;
  size_t dot = host.find('.');
  return dot != std::string_view::npos && dot > 0 && tls_wildcard_.find(host.substr(dot + 1)) != tls_wildcard_.end();
}

void TableBuilder::add_tls_host(const std::string& host) {
  if (host.size() > 2 && host[0] == '*' && host[1] == '.') table_->tls_wildcard_.insert(host.substr(2));
  else if (!host.empty()) table_->tls_exact_.insert(host);
}

namespace {

// Whether the query string holds `name=value` (exact on both; the first
// occurrence of the name decides, as the Gateway API allows).
bool query_has(std::string_view query, std::string_view name, std::string_view value) {
  if (!query.empty() && query[0] == '?') query.remove_prefix(1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) return eq != std::string_view::npos ? kv.substr(eq + 1) == value : value.empty();
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

// Whether the first parameter named `name` has a value `re` matches as a whole.
bool query_matches(std::string_view query, std::string_view name, const re2::RE2& re) {
  if (!query.empty() && query[0] == '?') query.remove_prefix(1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) return full_match(re, eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

// Whether a Cookie field value ("a=1; b=2") holds `name=value`.
bool cookie_has(std::string_view cookies, std::string_view name, std::string_view value) {
  while (!cookies.empty()) {
    size_t semi = cookies.find(';');
    std::string_view kv = cookies.substr(0, semi);
    while (!kv.empty() && kv.front() == ' ') kv.remove_prefix(1);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == name) return kv.substr(eq + 1) == value;
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return false;
}

}  // namespace

bool request_matches(const RequestMatch& m, const RequestFacts* f) {
  if (m.empty()) return true;
  if (!f) return false;
  if (m.listeners != kAnyListener && !(m.listeners & (f->secure ? kTlsListener : kPlainListener))) return false;
  if (!m.method.empty() && m.method != f->method) return false;
  for (const auto& h : m.headers) {
    std::string_view v;
    if (!f->header || !f->header(f->ctx, h.name, v)) return false;
    if (h.regex ? !full_match(*h.regex, v) : v != h.value) return false;
  }
  for (const auto& q : m.query)
    if (q.regex ? !query_matches(f->query, q.name, *q.regex) : !query_has(f->query, q.name, q.value)) return false;
  if (!m.cookies.empty()) {
    std::string_view c;
    if (!f->header || !f->header(f->ctx, "cookie", c)) return false;
    for (const auto& k : m.cookies)
      if (!cookie_has(c, k.name, k.value)) return false;
  }
  return true;
}

bool RouteTable::match_in(const VHost& vh, std::string_view path, const RequestFacts* facts, Match& m) const {
  auto take = [&](const Route& r) {
    const RouteCandidate* c = r.pick(facts);
    if (!c) return false;
    m.kind = MatchKind::Path;
    m.vhost = &vh;
    m.route = &r;
    m.action = c->action;
    m.backend = c->action ? c->action->primary() : nullptr;
    m.stats_id = c->stats_id;
    return true;
  };
  // Exact first: an Exact rule that matches is at least as long as any
  // matching Prefix rule's matched part, and wins the tie (Ingress spec).
  if (!vh.exact.empty()) {
    auto it = vh.exact.find(path);
    if (it != vh.exact.end() && take(it->second)) return true;
  }
  for (const RegexRoute& rr : vh.regex)
    if (rr.matches(path) && take(rr.route)) return true;
  if (!vh.prefix.empty()) {
    // Element-wise prefix: candidates end at a '/' boundary or at the end,
    // longest first. "/foo/bar/" → "/foo/bar", "/foo", "".
    std::string_view p = prefix_key(path);
    for (;;) {
      auto it = vh.prefix.find(p);
      if (it != vh.prefix.end() && take(it->second)) return true;
      if (p.empty()) break;
      size_t slash = p.rfind('/');
      p = p.substr(0, slash == std::string_view::npos ? 0 : slash);
      p = prefix_key(p);
    }
  }
  return false;
}

Match RouteTable::match(std::string_view host, std::string_view path, const RequestFacts* facts) const {
  Match m;
  const VHost* first = find_vhost(host);
  for (const VHost* vh = first; vh; vh = vh->fall_through ? broader_vhost(host, vh) : nullptr)
    if (match_in(*vh, path, facts, m)) return m;
  if (first) {
    m.vhost = first;
    if (first->default_action) {
      m.kind = MatchKind::HostDefault;
      m.action = first->default_action;
      m.backend = first->default_action->primary();
      m.stats_id = first->default_stats_id;
      return m;
    }
  }
  if (global_default_) {
    m.kind = MatchKind::GlobalDefault;
    m.action = global_default_;
    m.backend = global_default_->primary();
    m.stats_id = global_default_stats_id_;
  }
  return m;
}

size_t RouteTable::route_count() const {
  size_t n = 0;
  auto add = [&](const VHost& v) { n += v.exact.size() + v.prefix.size() + v.regex.size(); };
  for (auto& [_, v] : exact_hosts_) add(v);
  for (auto& [_, v] : wildcard_hosts_) add(v);
  for (auto& [_, v] : deep_wildcard_hosts_) add(v);
  if (any_host_) add(*any_host_);
  return n;
}

std::vector<const Route*> RouteTable::sorted_routes() const {
  std::vector<const Route*> out;
  auto add = [&](const VHost& v) {
    for (auto& [_, r] : v.exact) out.push_back(&r);
    for (auto& [_, r] : v.prefix) out.push_back(&r);
    for (auto& rr : v.regex) out.push_back(&rr.route);
  };
  for (auto& [_, v] : exact_hosts_) add(v);
  for (auto& [_, v] : wildcard_hosts_) add(v);
  for (auto& [_, v] : deep_wildcard_hosts_) add(v);
  if (any_host_) add(*any_host_);
  std::sort(out.begin(), out.end(), [](const Route* a, const Route* b) {
    if (a->host != b->host) return a->host < b->host;
    if (a->path != b->path) return a->path < b->path;
    return a->type < b->type;
  });
  return out;
}

std::vector<const VHost*> RouteTable::sorted_vhosts() const {
  std::vector<const VHost*> out;
  for (auto& [_, v] : exact_hosts_) out.push_back(&v);
  for (auto& [_, v] : wildcard_hosts_) out.push_back(&v);
  if (any_host_) out.push_back(any_host_.get());
  std::sort(out.begin(), out.end(), [](const VHost* a, const VHost* b) { return a->host < b->host; });
  return out;
}

namespace {
std::string prom_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
std::string labels(std::string_view ingress, std::string_view host, std::string_view path, std::string_view type,
                   const Backend* b) {
  std::string svc = b ? b->namespace_ + "/" + b->service : "";
  std::string port = b ? b->port : "";
  return "ingress=\"" + prom_escape(ingress) + "\",host=\"" + prom_escape(host) + "\",path=\"" + prom_escape(path) +
         "\",path_type=\"" + prom_escape(type) + "\",service=\"" + prom_escape(svc) + "\",service_port=\"" +
         prom_escape(port) + "\"";
}
}  // namespace

std::shared_ptr<const RouteTable> TableBuilder::finish() {
  RouteTable& t = *table_;
  t.stat_labels_.clear();
  t.stat_labels_.push_back(labels("", "", "", "", nullptr));  // 0: no route
  auto assign_route = [&](Route& r) {
    for (auto& c : r.candidates) {
      c.stats_id = static_cast<uint32_t>(t.stat_labels_.size());
      t.stat_labels_.push_back(labels(c.action ? std::string_view(c.action->owner) : std::string_view(r.ingress),
                                      r.host, r.path, model::path_type_name(r.type),
                                      c.action ? c.action->primary() : nullptr));
    }
  };
  auto assign = [&](VHost& v) {
    for (auto* m : {&v.exact, &v.prefix})
      for (auto& [_, r] : *m) assign_route(r);
    for (auto& rr : v.regex) assign_route(rr.route);
    if (v.default_action) {
      v.default_stats_id = static_cast<uint32_t>(t.stat_labels_.size());
      t.stat_labels_.push_back(labels(v.default_source, v.host, "", "defaultBackend", v.default_backend()));
    }
  };
  for (auto& [_, v] : t.exact_hosts_) assign(v);
  for (auto& [_, v] : t.wildcard_hosts_) assign(v);
  for (auto& [_, v] : t.deep_wildcard_hosts_) assign(v);
  if (t.any_host_) assign(*t.any_host_);
  if (t.global_default_) {
    t.global_default_stats_id_ = static_cast<uint32_t>(t.stat_labels_.size());
    t.stat_labels_.push_back(labels(t.global_default_source_, "", "", "defaultBackend", t.global_default_->primary()));
  }
  return std::move(table_);
}

Backend* TableBuilder::add_backend(std::unique_ptr<Backend> b) {
  b->id = static_cast<uint32_t>(table_->backends_.size());
  table_->backends_.push_back(std::move(b));
  return table_->backends_.back().get();
}

bool TableBuilder::add_regex_route(VHost& v, std::shared_ptr<const PathRegex> re, Route r) {
  for (const auto& rr : v.regex)
    if (rr.route.path == r.path) return false;
  v.regex.push_back({std::move(re), std::move(r)});
  return true;
}

void TableBuilder::sort_regex_routes() {
  auto sort = [](VHost& v) {
    std::stable_sort(v.regex.begin(), v.regex.end(),
                     [](const RegexRoute& a, const RegexRoute& b) { return a.route.path.size() > b.route.path.size(); });
  };
  for (auto& [_, v] : table_->exact_hosts_) sort(v);
  for (auto& [_, v] : table_->wildcard_hosts_) sort(v);
  for (auto& [_, v] : table_->deep_wildcard_hosts_) sort(v);
  if (table_->any_host_) sort(*table_->any_host_);
}

const RouteAction* TableBuilder::add_action(std::unique_ptr<RouteAction> a) {
  uint32_t w = 0;
  for (const auto& b : a->backends) w += b.weight;
  a->total_weight = w;
  a->is_plain = a->plain_forward();
  table_->actions_.push_back(std::move(a));
  return table_->actions_.back().get();
}

VHost& TableBuilder::vhost(const std::string& host) {
  if (host.empty()) {
    if (!table_->any_host_) table_->any_host_ = std::make_unique<VHost>();
    return *table_->any_host_;
  }
  if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
    VHost& v = table_->wildcard_hosts_[host.substr(2)];
    v.host = host;
    return v;
  }
  VHost& v = table_->exact_hosts_[host];
  v.host = host;
  return v;
}

VHost& TableBuilder::deep_wildcard_vhost(const std::string& host) {
  VHost& v = table_->deep_wildcard_hosts_[host.substr(2)];
  v.host = host;
  v.fall_through = true;
  return v;
}

}  // namespace ingressd::routing
