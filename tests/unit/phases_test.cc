// The request phases without sockets: decide, upstream request, endpoint
// picking, response head, and the access-log line. Tables are built directly
// with TableBuilder, so each action can be set as a later feature (annotation
// or Gateway API filter) will compile it.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <map>
#include <set>
#include <memory>
#include <random>
#include <string>

#include "observe/access_line.h"
#include "proxy/decide.h"
#include "proxy/explain.h"
#include "proxy/endpoint_picker.h"
#include "proxy/response_head.h"
#include "proxy/timer_heap.h"
#include "proxy/upstream_request.h"
#include "routing/action.h"
#include "routing/route_table.h"
#include "test_util.h"

using namespace ingressd;
using namespace ingressd::routing;

namespace {

// A parsed request head with the bytes it points into.
struct Req {
  std::string wire;
  http1::RequestHead head;
  explicit Req(std::string w) : wire(std::move(w)) {
    http1::ParseError err;
    long n = http1::parse_request_head(wire.data(), wire.size(), head, err, http1::Limits{});
    EXPECT_GT(n, 0) << err.reason << " in " << wire;
  }
};

Req get(std::string_view host, std::string_view target, std::string_view extra = "") {
  return Req("GET " + std::string(target) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) +
             "\r\n");
}

struct ResponseBytes {
  std::string wire;
  http1::ResponseHead head;
  explicit ResponseBytes(std::string w, bool is_head = false) : wire(std::move(w)) {
    http1::ParseError err;
    long n = http1::parse_response_head(wire.data(), wire.size(), is_head, head, err, http1::Limits{});
    EXPECT_GT(n, 0) << err.reason;
  }
};

EndpointAddr endpoint(const char* text, uint16_t port) {
  EndpointAddr e;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&e.sa);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  s4->sin_addr.s_addr = htonl(0x7f000001);
  e.len = sizeof(sockaddr_in);
  e.text = text;
  return e;
}

// A table builder with named backends and one action per route.
struct Table {
  TableBuilder b;
  std::map<std::string, const Backend*> backends;
  std::shared_ptr<const RouteTable> t;

  const Backend* backend(const std::string& name, int endpoints = 1) {
    auto be = std::make_unique<Backend>();
    be->namespace_ = "default";
    be->service = name;
    be->port = "80";
    for (int i = 0; i < endpoints; ++i)
      be->endpoints.push_back(endpoint(("127.0.0.1:" + std::to_string(9000 + i)).c_str(), 9000 + i));
    if (!endpoints) be->unavailable = "no ready endpoints";
    return backends[name] = b.add_backend(std::move(be));
  }
  // Adds a route; `edit` fills in the action and the candidate's match.
  template <typename F>
  void route(const std::string& host, const std::string& path, model::PathType type, const std::string& be, F edit) {
    auto a = std::make_unique<RouteAction>();
    if (!be.empty()) a->backends.push_back({backends.at(be), 1});
    a->owner = "default/" + be;
    RouteCandidate c;
    edit(*a, c);
    c.action = b.add_action(std::move(a));
    VHost& v = b.vhost(host);
    bool exact = type == model::PathType::Exact;
    std::string key = exact ? path : std::string(prefix_key(path));
    auto& map = exact ? v.exact : v.prefix;
    Route& r = map[key];
    r.host = host;
    r.path = path;
    r.type = type;
    r.ingress = "default/" + be;
    r.candidates.push_back(c);
  }
  void route(const std::string& host, const std::string& path, const std::string& be) {
    route(host, path, model::PathType::Prefix, be, [](RouteAction&, RouteCandidate&) {});
  }
  const RouteTable& done() {
    t = b.finish();
    return *t;
  }
};

struct Decided {
  DecideScratch scratch;
  Decision d;
};

std::unique_ptr<Decided> run(const Req& r, const RouteTable* t, const ProxyConfig& cfg = {}, ConnFacts conn = {false, true},
                             const uint32_t* inflight = nullptr, uint64_t roll = 0) {
  auto out = std::make_unique<Decided>();
  out->d = decide(r.head, conn, t, cfg, inflight, roll, out->scratch);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- decide

TEST(Decide, ForwardsToTheMatchedBackendWithTheNormalisedPath) {
  Table tb;
  tb.backend("web");
  tb.route("a.example", "/app", "web");
  const auto& t = tb.done();
  Req r = get("A.Example:8080", "/x/../app/%7Euser?q=1");
  auto x = run(r, &t);
  EXPECT_EQ(x->d.verdict, Verdict::Forward);
  EXPECT_EQ(x->scratch.host, "a.example");
  EXPECT_EQ(x->d.path, "/app/~user");
  ASSERT_NE(x->d.match.backend, nullptr);
  EXPECT_EQ(x->d.match.backend->service, "web");
  EXPECT_EQ(x->d.match.owner(), "default/web");
}

TEST(Decide, EveryAnswerOfOurOwn) {
  Table tb;
  tb.backend("web");
  tb.backend("empty", 0);
  tb.route("a.example", "/", "web");
  tb.route("a.example", "/empty", "empty");
  const auto& t = tb.done();
  struct Row {
    std::string wire;
    int status;
    bool close;
  };
  const Row rows[] = {
      {"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", 400, true},
      {"GET * HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
      {"GET /a%2Fb HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
      {"GET /%zz HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
      {"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n", 404, false},
      {"POST / HTTP/1.1\r\nHost: other.example\r\nContent-Length: 3\r\n\r\n", 404, true},  // a body we will not read
      {"GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n", 404, true},
      {"GET /empty/x HTTP/1.1\r\nHost: a.example\r\n\r\n", 503, false},
  };
  for (const Row& row : rows) {
    Req r(row.wire);
    auto x = run(r, &t);
    EXPECT_EQ(x->d.verdict, Verdict::Respond) << row.wire;
    EXPECT_EQ(x->d.status, row.status) << row.wire;
    EXPECT_EQ(x->d.close, row.close) << row.wire;
  }
  // OPTIONS * is routed as "/".
  Req opt("OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n");
  EXPECT_EQ(run(opt, &t)->d.verdict, Verdict::Forward);
  // No configuration yet.
  Req any = get("a.example", "/");
  auto x = run(any, nullptr);
  EXPECT_EQ(x->d.status, 503);
  EXPECT_STREQ(x->d.detail, "no configuration loaded yet");
}

TEST(Decide, BodyLimitAndPerBackendLimit) {
  Table tb;
  tb.backend("web");
  tb.route("", "/", "web");
  const auto& t = tb.done();
  ProxyConfig cfg;
  cfg.max_body_bytes = 10;
  Req big("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
  auto x = run(big, &t, cfg);
  EXPECT_EQ(x->d.status, 413);
  EXPECT_TRUE(x->d.close);
  Req small("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
  EXPECT_EQ(run(small, &t, cfg)->d.verdict, Verdict::Forward);

  cfg.max_requests_per_backend = 2;
  uint32_t inflight[1] = {2};
  Req r = get("h", "/");
  x = run(r, &t, cfg, {false, true}, inflight);
  EXPECT_EQ(x->d.status, 503);
  inflight[0] = 1;
  EXPECT_EQ(run(r, &t, cfg, {false, true}, inflight)->d.verdict, Verdict::Forward);
  // explain passes no counts: the limit is not applied.
  EXPECT_EQ(run(r, &t, cfg, {false, true}, nullptr)->d.verdict, Verdict::Forward);
}

TEST(Decide, PlainHttpForATlsHostIsRedirected) {
  Table tb;
  tb.backend("web");
  tb.route("secure.example", "/", "web");
  tb.b.add_tls_host("secure.example");
  const auto& t = tb.done();
  Req r = get("Secure.Example", "/a/b?x=1");
  auto x = run(r, &t);
  EXPECT_EQ(x->d.verdict, Verdict::Redirect);
  EXPECT_EQ(x->d.status, 308);
  EXPECT_EQ(x->scratch.location, "https://secure.example:8443/a/b?x=1");
  ProxyConfig cfg;
  cfg.redirect_https_port = 443;
  EXPECT_EQ(run(r, &t, cfg)->scratch.location, "https://secure.example/a/b?x=1");
  // Not over TLS already, not without an HTTPS listener, not for ACME, not when turned off.
  EXPECT_EQ(run(r, &t, {}, {true, true})->d.verdict, Verdict::Forward);
  EXPECT_EQ(run(r, &t, {}, {false, false})->d.verdict, Verdict::Forward);
  Req acme = get("secure.example", "/.well-known/acme-challenge/token");
  EXPECT_EQ(run(acme, &t)->d.verdict, Verdict::Forward);
  cfg.ssl_redirect = false;
  EXPECT_EQ(run(r, &t, cfg)->d.verdict, Verdict::Forward);
}

TEST(Decide, RouteRedirectBuildsTheLocation) {
  Table tb;
  tb.backend("web");
  tb.route("a.example", "/old", model::PathType::Prefix, "", [](RouteAction& a, RouteCandidate&) {
    a.redirects = true;
    a.redirect.status = 301;
    a.redirect.path = {PathModifier::Kind::ReplacePrefixMatch, "/new", "/old"};
  });
  tb.route("a.example", "/tohttps", model::PathType::Prefix, "", [](RouteAction& a, RouteCandidate&) {
    a.redirects = true;
    a.redirect.scheme = "https";
  });
  tb.route("a.example", "/port", model::PathType::Prefix, "", [](RouteAction& a, RouteCandidate&) {
    a.redirects = true;
    a.redirect.host = "b.example";
    a.redirect.port = 8083;
  });
  tb.route("a.example", "/fixed", model::PathType::Prefix, "", [](RouteAction& a, RouteCandidate&) {
    a.redirects = true;
    a.redirect.url = "https://elsewhere.example/landing";
  });
  const auto& t = tb.done();
  auto loc = [&](std::string_view target, ConnFacts conn = {false, true}) {
    Req r = get("a.example", target);
    auto x = run(r, &t, {}, conn);
    EXPECT_EQ(x->d.verdict, Verdict::Redirect) << target;
    return std::to_string(x->d.status) + " " + x->scratch.location;
  };
  EXPECT_EQ(loc("/old/page?x=1"), "301 http://a.example:8080/new/page?x=1");
  EXPECT_EQ(loc("/old"), "301 http://a.example:8080/new");
  EXPECT_EQ(loc("/tohttps/a"), "302 https://a.example/tohttps/a");  // a new scheme: its well-known port, left out
  EXPECT_EQ(loc("/port"), "302 http://b.example:8083/port");
  EXPECT_EQ(loc("/port", {true, true}), "302 https://b.example:8083/port");
  EXPECT_EQ(loc("/fixed/x?y"), "302 https://elsewhere.example/landing");
}

TEST(Decide, RefusedRouteFailsClosed) {
  Table tb;
  tb.backend("web");
  tb.route("a.example", "/admin", model::PathType::Prefix, "web", [](RouteAction& a, RouteCandidate&) {
    a.refuse = "auth-url cannot be honoured";
  });
  const auto& t = tb.done();
  Req r = get("a.example", "/admin/x");
  auto x = run(r, &t);
  EXPECT_EQ(x->d.verdict, Verdict::Respond);
  EXPECT_EQ(x->d.status, 503);
  // The client learns nothing of the configuration; check and explain say why.
  EXPECT_EQ(std::string(x->d.detail).find("auth-url"), std::string::npos);
}

TEST(Decide, CandidatesByMethodHeaderQueryFallThroughToShorterPaths) {
  Table tb;
  tb.backend("canary");
  tb.backend("v2");
  tb.backend("root");
  tb.route("", "/api", model::PathType::Prefix, "canary", [](RouteAction&, RouteCandidate& c) {
    c.match.headers.push_back({"x-canary", "yes"});
  });
  tb.route("", "/", "root");
  // A second candidate on /api: the query v=2, POST only.
  {
    auto a = std::make_unique<RouteAction>();
    a->backends.push_back({tb.backends.at("v2"), 1});
    a->owner = "default/v2";
    RouteCandidate c;
    c.match.method = "POST";
    c.match.query.push_back({"v", "2"});
    c.action = tb.b.add_action(std::move(a));
    tb.b.vhost("").prefix["/api"].candidates.push_back(c);
  }
  const auto& t = tb.done();
  auto svc = [&](const std::string& wire) {
    Req r(wire);
    auto x = run(r, &t);
    return x->d.match.backend ? x->d.match.backend->service : std::string("none");
  };
  EXPECT_EQ(svc("GET /api/x HTTP/1.1\r\nHost: h\r\nX-Canary: yes\r\n\r\n"), "canary");
  EXPECT_EQ(svc("GET /api/x HTTP/1.1\r\nHost: h\r\nX-Canary: no\r\n\r\n"), "root");  // falls through to "/"
  EXPECT_EQ(svc("POST /api?a=1&v=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), "v2");
  EXPECT_EQ(svc("GET /api?v=2 HTTP/1.1\r\nHost: h\r\n\r\n"), "root");  // method does not match
  EXPECT_EQ(svc("POST /api?v=20 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), "root");
  // Without request facts (as RouteTable::match(host, path)), only unconditional candidates.
  EXPECT_EQ(t.match("h", "/api/x").backend->service, "root");
}

TEST(Decide, WeightedSplitPicksByTheDraw) {
  Table tb;
  tb.backend("a");
  tb.backend("b");
  tb.route("", "/", model::PathType::Prefix, "a", [&](RouteAction& a, RouteCandidate&) {
    a.backends = {{tb.backends.at("a"), 3}, {tb.backends.at("b"), 1}};
  });
  tb.route("", "/zero", model::PathType::Prefix, "a", [&](RouteAction& a, RouteCandidate&) {
    a.backends = {{tb.backends.at("a"), 0}, {tb.backends.at("b"), 0}};
  });
  const auto& t = tb.done();
  Req r = get("h", "/");
  std::map<std::string, int> seen;
  for (uint64_t roll = 0; roll < 400; ++roll) ++seen[run(r, &t, {}, {false, true}, nullptr, roll)->d.match.backend->service];
  EXPECT_EQ(seen["a"], 300);
  EXPECT_EQ(seen["b"], 100);
  Req z = get("h", "/zero");
  auto x = run(z, &t);
  EXPECT_EQ(x->d.status, 500);
}

// ---------------------------------------------------------------- upstream request

namespace {
std::string upstream_head(const http1::RequestHead& req, std::string_view path, const RouteAction* a,
                          std::string_view new_id = "") {
  std::string scratch, out;
  write_upstream_head(req, path, a, UpstreamRequestFacts{"10.1.2.3", false, 8080, new_id}, scratch, out);
  return out;
}
}  // namespace

TEST(UpstreamRequest, HopFieldsAndForwardedSet) {
  Req r("GET /p?q HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
        "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n");
  std::string h = upstream_head(r.head, "/p", nullptr, "abc");
  EXPECT_EQ(h,
            "GET /p?q HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n"
            "X-Real-IP: 10.1.2.3\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Port: 8080\r\n"
            "X-Request-ID: abc\r\n\r\n");
}

TEST(UpstreamRequest, RewritesAndHeaderEdits) {
  Req r("POST /app/v1/users?id=7 HTTP/1.1\r\nHost: a.example\r\nX-Remove: gone\r\nX-Set: old\r\nx-set: older\r\n"
        "Content-Length: 2\r\n\r\n");
  RouteAction a;
  a.rewrite.path = {PathModifier::Kind::ReplacePrefixMatch, "/", "/app"};
  a.rewrite.host = "internal.svc";
  a.request_headers.set = {{"x-set", "new"}};
  a.request_headers.add = {{"x-add", "1"}};
  a.request_headers.remove = {"x-remove"};
  std::string h = upstream_head(r.head, "/app/v1/users", &a);
  EXPECT_EQ(h,
            "POST /v1/users?id=7 HTTP/1.1\r\nHost: internal.svc\r\nx-set: new\r\nx-add: 1\r\n"
            "X-Forwarded-For: 10.1.2.3\r\nX-Real-IP: 10.1.2.3\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\nX-Forwarded-Port: 8080\r\nContent-Length: 2\r\n\r\n");
  a.rewrite.path = {PathModifier::Kind::ReplaceFullPath, "/fixed", ""};
  EXPECT_TRUE(upstream_head(r.head, "/app/v1/users", &a).starts_with("POST /fixed?id=7 HTTP/1.1\r\n"));
}

// Gateway API HTTPPathModifier ReplacePrefixMatch, the table of its documentation.
TEST(PathModifierTest, ReplacePrefixMatchTable) {
  struct Row {
    const char *prefix, *path, *replacement, *want;
  };
  const Row rows[] = {
      {"/foo", "/foo/bar", "/xyz", "/xyz/bar"},   {"/foo", "/foo/bar", "/xyz/", "/xyz/bar"},
      {"/foo/", "/foo/bar", "/xyz", "/xyz/bar"},  {"/foo/", "/foo/bar", "/xyz/", "/xyz/bar"},
      {"/foo", "/foo", "/xyz", "/xyz"},           {"/foo", "/foo/", "/xyz", "/xyz/"},
      {"/foo/", "/foo", "/xyz", "/xyz"},          {"/foo/", "/foo/", "/xyz", "/xyz/"},
      {"/foo", "/foo", "/", "/"},                 {"/foo", "/foo/", "/", "/"},
      {"/foo/", "/foo/bar", "/", "/bar"},         {"/", "/foo/bar", "/xyz", "/xyz/foo/bar"},
  };
  for (const Row& row : rows) {
    PathModifier m{PathModifier::Kind::ReplacePrefixMatch, row.replacement, row.prefix};
    std::string out;
    m.apply(row.path, out);
    EXPECT_EQ(out, row.want) << row.prefix << " " << row.path << " " << row.replacement;
  }
}

// ---------------------------------------------------------------- endpoint picking

namespace {
struct FakeHealth final : EndpointHealth {
  std::set<std::string> down;
  bool ejected(const EndpointAddr& ep) const override { return down.count(ep.text) > 0; }
};
}  // namespace

TEST(EndpointPicker, RoundRobinSkipsEjectedUnlessAllAre) {
  Backend b;
  for (int i = 0; i < 3; ++i) b.endpoints.push_back(endpoint(("e" + std::to_string(i)).c_str(), 9000 + i));
  FakeHealth h;
  uint32_t cursor = 0;
  EXPECT_EQ(first_endpoint(b, cursor, h), 0u);
  EXPECT_EQ(first_endpoint(b, cursor, h), 1u);
  EXPECT_EQ(first_endpoint(b, cursor, h), 2u);
  EXPECT_EQ(first_endpoint(b, cursor, h), 0u);
  h.down = {"e1"};
  EXPECT_EQ(first_endpoint(b, cursor, h), 2u);  // cursor at 1: e1 is skipped
  h.down = {"e0", "e1", "e2"};
  EXPECT_EQ(first_endpoint(b, cursor, h), 2u);  // all ejected: the round-robin one anyway
  EXPECT_EQ(next_endpoint(b, 2), 0u);
  EXPECT_EQ(max_attempts(b, 5), 3);
  EXPECT_EQ(max_attempts(b, 2), 2);
}

TEST(EndpointPicker, WeightsGiveTheirShare) {
  Backend a, b, c;
  RouteAction act;
  act.backends = {{&a, 1}, {&b, 0}, {&c, 2}};
  act.total_weight = 3;
  std::map<const Backend*, int> n;
  for (uint64_t roll = 0; roll < 300; ++roll) ++n[pick_backend(act, roll)];
  EXPECT_EQ(n[&a], 100);
  EXPECT_EQ(n[&b], 0);
  EXPECT_EQ(n[&c], 200);
  act.backends = {{&a, 0}};
  act.total_weight = 0;
  EXPECT_EQ(pick_backend(act, 7), &a);  // one backend: it, whatever its weight
}

// ---------------------------------------------------------------- response head

namespace {
std::string final_head(const http1::ResponseHead& resp, ResponseHeadFacts f) {
  Buffer out;
  f.date_line = "Date: D\r\n";
  write_final_head(out, resp, f);
  return std::string(out.view());
}
}  // namespace

TEST(ResponseHead, FinalHeadRestatesFramingForThisClient) {
  ResponseBytes r("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                  "X-App: 1\r\n\r\n");
  EXPECT_EQ(final_head(r.head, {}), "HTTP/1.1 200 OK\r\nX-App: 1\r\nContent-Length: 5\r\nDate: D\r\nServer: ingressd\r\n\r\n");
  ResponseHeadFacts f;
  f.client_keep_alive = false;
  EXPECT_NE(final_head(r.head, f).find("Connection: close\r\n"), std::string::npos);
  f.client_keep_alive = true;
  f.client_minor = 0;
  EXPECT_NE(final_head(r.head, f).find("Connection: keep-alive\r\n"), std::string::npos);
  ResponseBytes chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  f = {};
  f.chunk_out = true;
  EXPECT_NE(final_head(chunked.head, f).find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  ResponseBytes nc("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(final_head(nc.head, {}).find("Content-Length"), std::string::npos);  // RFC 9110 §8.6
}

TEST(ResponseHead, HstsOnlyOverTlsAndNotOverTheApplicationsOwn) {
  ResponseBytes r("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ResponseHeadFacts f;
  f.hsts = "max-age=60";
  EXPECT_EQ(final_head(r.head, f).find("Strict-Transport-Security"), std::string::npos);
  f.secure = true;
  EXPECT_NE(final_head(r.head, f).find("Strict-Transport-Security: max-age=60\r\n"), std::string::npos);
  ResponseBytes own("HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nContent-Length: 0\r\n\r\n");
  std::string h = final_head(own.head, f);
  EXPECT_NE(h.find("max-age=1"), std::string::npos);
  EXPECT_EQ(h.find("max-age=60"), std::string::npos);
}

TEST(ResponseHead, ResponseHeaderEdits) {
  ResponseBytes r("HTTP/1.1 200 OK\r\nServer: app\r\nX-Powered-By: php\r\nCache-Control: no-store\r\n"
                  "Content-Length: 0\r\n\r\n");
  RouteAction a;
  a.response_headers.remove = {"x-powered-by"};
  a.response_headers.set = {{"cache-control", "max-age=60"}};
  a.response_headers.add = {{"x-frame-options", "DENY"}};
  ResponseHeadFacts f;
  f.action = &a;
  EXPECT_EQ(final_head(r.head, f),
            "HTTP/1.1 200 OK\r\nServer: app\r\ncache-control: max-age=60\r\nx-frame-options: DENY\r\n"
            "Content-Length: 0\r\nDate: D\r\n\r\n");
}

TEST(ResponseHead, DecidedLinesReplaceTheUpstreamsAccessControlFields) {
  ResponseBytes r("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: https://other\r\nX-App: 1\r\nContent-Length: 0\r\n\r\n");
  ResponseHeadFacts f;
  f.extra = "Access-Control-Allow-Origin: *\r\n";
  EXPECT_EQ(final_head(r.head, f),
            "HTTP/1.1 200 OK\r\nX-App: 1\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\nDate: D\r\n"
            "Server: ingressd\r\n\r\n");
}

TEST(ResponseHead, InterimHead) {
  ResponseBytes r("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nConnection: keep-alive\r\n\r\n");
  Buffer out;
  write_interim_head(out, r.head);
  EXPECT_EQ(std::string(out.view()), "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
}

// ---------------------------------------------------------------- access-log line

TEST(AccessLine, JsonAndTextEscapeRequestData) {
  AccessRecord r;
  r.iso_second = "2026-12-03T11:00:00";
  r.millis = 7;
  r.client = "10.0.0.1";
  r.method = "GET";
  r.host = "a.example";
  r.target = "/x\"y\n";
  r.protocol = "HTTP/1.1";
  r.status = 200;
  r.bytes_in = 10;
  r.bytes_out = 20;
  r.duration_us = 1234;
  r.upstream = "127.0.0.1:80";
  r.upstream_us = 1000;
  r.ingress = "default/web";
  r.rule_host = "a.example";
  r.rule_path = "/";
  r.has_service = true;
  r.service_namespace = "default";
  r.service_name = "web";
  r.service_port = "80";
  r.request_id = "rid";
  std::string b;
  append_access_line(b, r, AccessLogFormat::Json);
  EXPECT_EQ(b,
            "{\"time\":\"2026-12-03T11:00:00.007Z\",\"client\":\"10.0.0.1\",\"method\":\"GET\",\"host\":\"a.example\","
            "\"path\":\"/x\\\"y\\n\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":10,\"bytes_out\":20,"
            "\"duration_ms\":1.234,\"upstream\":\"127.0.0.1:80\",\"upstream_ms\":1.000,\"ingress\":\"default/web\","
            "\"rule_host\":\"a.example\",\"rule_path\":\"/\",\"service\":\"default/web:80\",\"request_id\":\"rid\"}\n");
  b.clear();
  r.upstream_us = -1;
  r.upstream = "";
  append_access_line(b, r, AccessLogFormat::Text);
  EXPECT_EQ(b, "2026-12-03T11:00:00.007Z 10.0.0.1 \"GET a.example /x\\x22y\\x0a HTTP/1.1\" 200 10 20 1.234 - -1.000 "
               "default/web default/web:80 rid\n");
}

// ---------------------------------------------------------------- explain uses decide


TEST(ExplainDecides, AnswersWhatTheDataPlaneAnswers) {
  using namespace ingressd::testing;
  std::string text =
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: default}\nspec:\n"
      "  tls: [{hosts: [secure.example]}]\n  rules:\n  - host: secure.example\n    http:\n      paths:\n"
      "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}\n"
      "  - host: plain.example\n    http:\n      paths:\n"
      "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}\n" +
      service("web");
  auto c = compile_text(text);
  const Snapshot& snap = *c->store.snapshot();
  ExplainRequest xr;
  xr.url = "http://secure.example/a?b=1";
  auto e = explain(snap, {}, *c->result.table, xr);
  EXPECT_EQ(e.json["decision"]["verdict"], "redirect") << e.json.dump();
  EXPECT_EQ(e.json["decision"]["status"], 308);
  EXPECT_EQ(e.json["decision"]["location"], "https://secure.example:8443/a?b=1");
  EXPECT_EQ(e.json["match"]["status"], 308);
  EXPECT_NE(e.text.find("308 redirect to https://secure.example:8443/a?b=1"), std::string::npos) << e.text;
  xr.https_listener = false;  // no HTTPS listener: nothing to redirect to
  EXPECT_EQ(explain(snap, {}, *c->result.table, xr).json["decision"]["verdict"], "forward");

  xr = {};
  xr.url = "http://plain.example/upload";
  xr.method = "POST";
  xr.headers = {{"Content-Length", "100"}};
  xr.proxy.max_body_bytes = 10;
  e = explain(snap, {}, *c->result.table, xr);
  EXPECT_EQ(e.json["decision"]["status"], 413) << e.json.dump();
  EXPECT_NE(e.text.find("413"), std::string::npos);

  // The parser's answers too: a request line no client could send.
  xr = {};
  xr.url = "http://plain.example/a b";
  e = explain(snap, {}, *c->result.table, xr);
  EXPECT_TRUE(e.json.contains("result")) << e.json.dump();
  EXPECT_EQ(e.json["result"].get<std::string>().substr(0, 3), "400");
}

// ---------------------------------------------------------------- timers


namespace {
struct Timed {
  int64_t timer_at = kNoDeadline;
  size_t timer_index = SIZE_MAX;
  int id = 0;
};
}  // namespace

// Against a plain reference: the heap gives back exactly the elements due,
// earliest first; arming later keeps the earlier deadline (lazy); cancel removes.
TEST(TimerHeapTest, MatchesAReferenceUnderRandomOperations) {
  std::mt19937 rng(7);
  std::vector<Timed> items(200);
  for (int i = 0; i < 200; ++i) items[i].id = i;
  std::map<int, int64_t> want;  // id → armed deadline
  TimerHeap<Timed> heap;
  int64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    Timed& t = items[rng() % items.size()];
    switch (rng() % 4) {
      case 0:
      case 1: {
        int64_t at = now + static_cast<int64_t>(rng() % 1000);
        heap.arm(&t, at);
        auto it = want.find(t.id);
        if (it == want.end()) want[t.id] = at;
        else it->second = std::min(it->second, at);
        break;
      }
      case 2:
        heap.cancel(&t);
        want.erase(t.id);
        break;
      case 3: {
        now += static_cast<int64_t>(rng() % 50);
        int64_t last = INT64_MIN;
        while (Timed* d = heap.pop_due(now)) {
          ASSERT_TRUE(want.count(d->id));
          EXPECT_EQ(want[d->id], d->timer_at);
          EXPECT_LE(d->timer_at, now);
          EXPECT_GE(d->timer_at, last);
          last = d->timer_at;
          want.erase(d->id);
        }
        for (auto& [id, at] : want) EXPECT_GT(at, now) << id;
        break;
      }
    }
    ASSERT_EQ(heap.size(), want.size());
  }
  heap.arm(&items[0], kNoDeadline);  // never: not armed
  EXPECT_EQ(items[0].timer_index == SIZE_MAX, !want.count(0));
}

TEST(EndpointPicking, AffinityCookieNamesAnEndpointOfTheBackend) {
  auto req = std::make_unique<http1::RequestHead>();
  std::string wire = "GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\nCookie: other=2; INGRESSCOOKIE=00000000000000ff; y=3\r\n\r\n";
  http1::ParseError err;
  ASSERT_GT(http1::parse_request_head(wire.data(), wire.size(), *req, err, http1::Limits{}), 0);
  EXPECT_EQ(affinity_from_cookies(*req, "INGRESSCOOKIE"), 0xffu);
  EXPECT_EQ(affinity_from_cookies(*req, "INGRESS"), 0u);
  std::string v;
  affinity_value(0xff, v);
  EXPECT_EQ(v, "00000000000000ff");
  routing::Backend b;
  b.endpoints.resize(2);
  b.endpoints[0].affinity = 0x11;
  b.endpoints[1].affinity = 0xff;
  struct NoneEjected final : EndpointHealth {
    bool ejected(const routing::EndpointAddr&) const override { return false; }
  } healthy;
  struct AllEjected final : EndpointHealth {
    bool ejected(const routing::EndpointAddr&) const override { return true; }
  } ejected;
  EXPECT_EQ(affine_endpoint(b, 0xff, healthy), 1u);
  EXPECT_EQ(affine_endpoint(b, 0x22, healthy), SIZE_MAX);
  EXPECT_EQ(affine_endpoint(b, 0xff, ejected), SIZE_MAX);  // a failing endpoint: the client moves on
  EXPECT_NE(routing::affinity_key("10.0.0.1:8080"), routing::affinity_key("10.0.0.2:8080"));
}
