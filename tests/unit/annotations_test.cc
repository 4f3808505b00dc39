// The ingress-nginx annotations: strict parsing, compile into route actions,
// and what a request then gets (decide + the upstream head), without sockets.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "proxy/decide.h"
#include "proxy/upstream_request.h"
#include "core/strings.h"
#include "routing/annotations.h"
#include "routing/path_regex.h"
#include "routing/rate_limit.h"
#include "test_util.h"

using namespace ingressd;
using namespace ingressd::routing;
using namespace ingressd::testing;

namespace {

std::string ingress_with(const std::string& name, const std::string& host, const std::string& annotations,
                         const std::vector<std::pair<std::string, std::string>>& paths, const std::string& svc = "web") {
  std::string s = "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n";
  if (!annotations.empty()) s += "  annotations:\n" + annotations;
  s += "spec:\n  rules:\n  - host: " + host + "\n    http:\n      paths:\n";
  for (auto& [p, t] : paths)
    s += "      - path: \"" + p + "\"\n        pathType: " + t + "\n        backend: {service: {name: " + svc +
         ", port: {number: 8080}}}\n";
  return s;
}

// A request head parsed from its bytes (kept alive beside it).
struct Parsed {
  std::string wire;
  http1::RequestHead head;
  explicit Parsed(std::string w) : wire(std::move(w)) {
    http1::ParseError err;
    EXPECT_GT(http1::parse_request_head(wire.data(), wire.size(), head, err, {}), 0) << wire;
  }
};

struct Seen {
  Verdict verdict;
  int status;
  std::string service;  // the backend, or ""
  std::string upstream_target;  // the request line's target as sent upstream
  std::string location;
  std::string head;
};

Seen request(const RouteTable& t, const std::string& host, const std::string& target, const std::string& extra = "",
             ConnFacts conn = {false, true, {4, {127, 0, 0, 1}}}) {
  const Parsed parsed("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n");
  const http1::RequestHead& req = parsed.head;
  DecideScratch s;
  Decision d = decide(req, conn, &t, ProxyConfig{}, nullptr, 0, s);
  Seen out{d.verdict, d.status, d.match.backend ? d.match.backend->service : "", "", s.location, ""};
  if (d.verdict == Verdict::Forward) {
    std::string scratch;
    write_upstream_head(req, d.path, d.match.action, UpstreamRequestFacts{"127.0.0.1", false, 8080, ""}, scratch,
                        out.head);
    out.upstream_target = out.head.substr(4, out.head.find(" HTTP/1.1") - 4);
  }
  return out;
}

bool has_diag(const Diagnostics& ds, Severity sev, const std::string& reason, const std::string& text) {
  for (const auto& d : ds)
    if (d.severity == sev && d.reason == reason && d.message.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(AnnotationParse, Values) {
  uint64_t n = 0;
  EXPECT_TRUE(parse_size("8m", n));
  EXPECT_EQ(n, 8u << 20);
  EXPECT_TRUE(parse_size("512k", n));
  EXPECT_EQ(n, 512u << 10);
  EXPECT_TRUE(parse_size("0", n));
  EXPECT_EQ(n, 0u);
  for (const char* badv : {"", "10Q", "m", "-1", "1.5m", "8 m"}) EXPECT_FALSE(parse_size(badv, n)) << badv;
  int ms = 0;
  EXPECT_TRUE(parse_seconds("30", ms));
  EXPECT_EQ(ms, 30000);
  EXPECT_TRUE(parse_seconds("500ms", ms));
  EXPECT_EQ(ms, 500);
  EXPECT_TRUE(parse_seconds("2m", ms));
  EXPECT_EQ(ms, 120000);
  for (const char* badv : {"-1", "", "s", "1h", "abc"}) EXPECT_FALSE(parse_seconds(badv, ms)) << badv;
  bool b = false;
  EXPECT_TRUE(parse_bool("True", b) && b);
  EXPECT_TRUE(parse_bool("0", b) && !b);
  EXPECT_FALSE(parse_bool("yes", b));
  std::string rw, why;
  EXPECT_TRUE(parse_rewrite_target("/$2", rw, why));
  EXPECT_EQ(rw, "/\\2");
  EXPECT_FALSE(parse_rewrite_target("/$host", rw, why));
  EXPECT_FALSE(parse_rewrite_target("/a b", rw, why));
  EXPECT_FALSE(parse_rewrite_target("http://x/", rw, why));
}

TEST(AnnotationParse, Cidrs) {
  Cidr c;
  ASSERT_TRUE(Cidr::parse("10.0.0.0/8", c));
  EXPECT_TRUE(c.contains({4, {10, 1, 2, 3}}));
  EXPECT_FALSE(c.contains({4, {11, 0, 0, 1}}));
  ASSERT_TRUE(Cidr::parse("192.168.1.7", c));
  EXPECT_TRUE(c.contains({4, {192, 168, 1, 7}}));
  EXPECT_FALSE(c.contains({4, {192, 168, 1, 8}}));
  ASSERT_TRUE(Cidr::parse("2001:db8::/32", c));
  EXPECT_TRUE(c.contains({6, {0x20, 0x01, 0x0d, 0xb8, 1}}));
  EXPECT_FALSE(c.contains({4, {32, 1, 13, 184}}));
  for (const char* badv : {"10.0.0.0/33", "10.0.0/8", "", "10.0.0.0/", "::/129", "10.0.0.0/8x"})
    EXPECT_FALSE(Cidr::parse(badv, c)) << badv;
}

// docs/examples/rewrite/README.md of ingress-nginx.
TEST(Annotations, RewriteTargetWithCaptureGroupsAsTheIngressNginxDocs) {
  auto c = compile_text(ingress_with("rw", "rewrite.bar.com",
                                     "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n"
                                     "    nginx.ingress.kubernetes.io/rewrite-target: /$2\n",
                                     {{"/something(/|$)(.*)", "ImplementationSpecific"}}) +
                        service("web"));
  const auto& t = *c->result.table;
  struct Row {
    const char *target, *upstream;
  };
  for (Row r : {Row{"/something", "/"}, Row{"/something/", "/"}, Row{"/something/new", "/new"},
                Row{"/SOMETHING/new?x=1", "/new?x=1"}}) {
    Seen s = request(t, "rewrite.bar.com", r.target);
    EXPECT_EQ(s.verdict, Verdict::Forward) << r.target;
    EXPECT_EQ(s.upstream_target, r.upstream) << r.target;
  }
  EXPECT_EQ(request(t, "rewrite.bar.com", "/other").verdict, Verdict::Respond);  // 404: anchored at the start
}

TEST(Annotations, RegexModeLongestFirstAndForTheWholeHost) {
  auto c = compile_text(
      ingress_with("a", "test.com", "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n",
                   {{"/foo/bar/bar", "Prefix"}}, "short") +
      ingress_with("b", "test.com", "", {{"/foo/bar/[A-Z0-9]{3}", "ImplementationSpecific"}}, "long") +
      ingress_with("c", "test.com", "", {{"/exact", "Exact"}}, "exact") + service("short") + service("long") +
      service("exact"));
  const auto& t = *c->result.table;
  // The docs' warning: the longer regex wins, even for /foo/bar/bar.
  EXPECT_EQ(request(t, "test.com", "/foo/bar/bar").service, "long");
  EXPECT_EQ(request(t, "test.com", "/foo/bar/ABC").service, "long");
  EXPECT_EQ(request(t, "test.com", "/foo/bar/b").service, "");  // neither regex: 404
  EXPECT_EQ(request(t, "test.com", "/exact").service, "exact");
  EXPECT_EQ(request(t, "test.com", "/exact/x").service, "");  // Exact stays exact
}

TEST(Annotations, LiteralRegexIsWarnedNotSilentlyAPrefix) {
  auto c = compile_text(ingress_with("a", "x.com", "", {{"/app(/|$)(.*)", "ImplementationSpecific"}}) + service("web"));
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Warning, "LiteralRegex", "looks like a regex"));
}

TEST(Annotations, InvalidRegexIsThatIngresssDiagnosticAlone) {
  auto c = compile_text(ingress_with("bad", "x.com", "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n",
                                     {{"/a(", "ImplementationSpecific"}}) +
                        ingress_with("good", "y.com", "", {{"/", "Prefix"}}) + service("web"));
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "InvalidRegex", "/a("));
  EXPECT_EQ(request(*c->result.table, "y.com", "/z").service, "web");
}

TEST(Annotations, RedirectsAppRootVhostPrefixHeaders) {
  auto c = compile_text(
      ingress_with("perm", "perm.com",
                   "    nginx.ingress.kubernetes.io/permanent-redirect: https://www.example.com/new\n"
                   "    nginx.ingress.kubernetes.io/permanent-redirect-code: \"308\"\n",
                   {{"/", "Prefix"}}) +
      ingress_with("temp", "temp.com", "    nginx.ingress.kubernetes.io/temporal-redirect: https://t.example.com/\n",
                   {{"/", "Prefix"}}) +
      ingress_with("root", "root.com", "    nginx.ingress.kubernetes.io/app-root: /app1\n", {{"/", "Prefix"}}) +
      ingress_with("vh", "vh.com",
                   "    nginx.ingress.kubernetes.io/upstream-vhost: internal.svc\n"
                   "    ingressd.io/upstream-vhost: ours.svc\n"
                   "    nginx.ingress.kubernetes.io/x-forwarded-prefix: /api\n"
                   "    ingressd.io/request-headers: |\n      X-A: 1\n      X-B: two words\n",
                   {{"/", "Prefix"}}) +
      service("web"));
  const auto& t = *c->result.table;
  Seen s = request(t, "perm.com", "/x?y");
  EXPECT_EQ(s.verdict, Verdict::Redirect);
  EXPECT_EQ(s.status, 308);
  EXPECT_EQ(s.location, "https://www.example.com/new");
  s = request(t, "temp.com", "/x");
  EXPECT_EQ(s.status, 302);
  EXPECT_EQ(s.location, "https://t.example.com/");
  s = request(t, "root.com:80", "/?q=1");
  EXPECT_EQ(s.status, 302);
  EXPECT_EQ(s.location, "http://root.com:80/app1");  // the Host as sent, no query: nginx's $http_host
  EXPECT_EQ(request(t, "root.com", "/other").verdict, Verdict::Forward);
  s = request(t, "vh.com", "/p");
  EXPECT_NE(s.head.find("\r\nHost: ours.svc\r\n"), std::string::npos) << s.head;  // ingressd.io/ wins
  EXPECT_NE(s.head.find("\r\nx-forwarded-prefix: /api\r\n"), std::string::npos) << s.head;
  EXPECT_NE(s.head.find("\r\nx-a: 1\r\nx-b: two words\r\n"), std::string::npos) << s.head;
}

TEST(Annotations, SourceRangesAndBodySize) {
  auto c = compile_text(
      ingress_with("allow", "allow.com", "    nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/8, 192.168.0.1\"\n",
                   {{"/", "Prefix"}}) +
      ingress_with("deny", "deny.com", "    nginx.ingress.kubernetes.io/denylist-source-range: 127.0.0.0/8\n",
                   {{"/", "Prefix"}}) +
      ingress_with("typo", "typo.com", "    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/33\n",
                   {{"/", "Prefix"}}) +
      ingress_with("body", "body.com", "    nginx.ingress.kubernetes.io/proxy-body-size: 1k\n", {{"/", "Prefix"}}) +
      service("web"));
  const auto& t = *c->result.table;
  ConnFacts inside{false, true, {4, {10, 9, 9, 9}}}, outside{false, true, {4, {127, 0, 0, 1}}};
  EXPECT_EQ(request(t, "allow.com", "/", "", inside).verdict, Verdict::Forward);
  EXPECT_EQ(request(t, "allow.com", "/", "", outside).status, 403);
  EXPECT_EQ(request(t, "deny.com", "/", "", outside).status, 403);
  EXPECT_EQ(request(t, "deny.com", "/", "", inside).verdict, Verdict::Forward);
  // An allow list that does not parse fails closed, for everyone.
  EXPECT_EQ(request(t, "typo.com", "/", "", inside).status, 503);
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "InvalidAnnotation", "10.0.0.0/33"));
  const Parsed parsed("POST / HTTP/1.1\r\nHost: body.com\r\nContent-Length: 2048\r\n\r\n");
  const http1::RequestHead& req = parsed.head;
  DecideScratch s;
  EXPECT_EQ(decide(req, outside, &t, ProxyConfig{}, nullptr, 0, s).status, 413);
}

TEST(Annotations, SecurityAnnotationsFailClosed) {
  const std::string text =
      ingress_with("auth", "auth.com", "    nginx.ingress.kubernetes.io/auth-url: http://auth.example/check\n",
                   {{"/", "Prefix"}}) +
      ingress_with("snip", "snip.com", "    nginx.ingress.kubernetes.io/configuration-snippet: \"deny all;\"\n",
                   {{"/", "Prefix"}}) +
      ingress_with("tls", "tls.com", "    nginx.ingress.kubernetes.io/auth-tls-secret: default/ca\n", {{"/", "Prefix"}}) +
      ingress_with("grpc", "grpc.com", "    nginx.ingress.kubernetes.io/backend-protocol: GRPC\n", {{"/", "Prefix"}}) +
      ingress_with("plain", "plain.com", "    nginx.ingress.kubernetes.io/no-such-thing: x\n", {{"/", "Prefix"}}) +
      service("web");
  auto c = compile_text(text);
  const auto& t = *c->result.table;
  for (const char* host : {"auth.com", "snip.com", "tls.com", "grpc.com"}) {
    Seen s = request(t, host, "/");
    EXPECT_EQ(s.verdict, Verdict::Respond) << host;
    EXPECT_EQ(s.status, 503) << host;
  }
  EXPECT_EQ(request(t, "plain.com", "/").verdict, Verdict::Forward);  // one bad Ingress takes no other down
  const auto& ds = c->result.diagnostics;
  EXPECT_TRUE(has_diag(ds, Severity::Error, "UnsupportedAnnotation", "auth-url"));
  EXPECT_TRUE(has_diag(ds, Severity::Error, "RefusedAnnotation", "configuration-snippet"));
  EXPECT_TRUE(has_diag(ds, Severity::Warning, "UnknownAnnotation", "nginx.ingress.kubernetes.io/no-such-thing"));
  for (const auto& st : c->result.statuses)
    if (st.ingress == "default/auth") {
      EXPECT_EQ(st.state, IngressState::Rejected);
    }

  CompileOptions open;
  open.allow_unenforced_annotations = true;
  auto o = compile_text(text, open);
  EXPECT_EQ(request(*o->result.table, "auth.com", "/").verdict, Verdict::Forward);
  EXPECT_TRUE(has_diag(o->result.diagnostics, Severity::Error, "UnsupportedAnnotation", "auth-url"));
}

TEST(Annotations, CanaryByHeaderCookieWeight) {
  auto c = compile_text(ingress_with("main", "c.com", "    nginx.ingress.kubernetes.io/x-forwarded-prefix: /m\n",
                                     {{"/", "Prefix"}}, "main") +
                        ingress_with("canary", "c.com",
                                     "    nginx.ingress.kubernetes.io/canary: \"true\"\n"
                                     "    nginx.ingress.kubernetes.io/canary-by-header: X-Canary\n"
                                     "    nginx.ingress.kubernetes.io/canary-by-cookie: cn\n"
                                     "    nginx.ingress.kubernetes.io/canary-weight: \"25\"\n",
                                     {{"/", "Prefix"}}, "canary") +
                        service("main") + service("canary"));
  const auto& t = *c->result.table;
  EXPECT_EQ(request(t, "c.com", "/", "X-Canary: always\r\n").service, "canary");
  EXPECT_EQ(request(t, "c.com", "/", "X-Canary: never\r\nCookie: cn=always\r\n").service, "main");
  EXPECT_EQ(request(t, "c.com", "/", "Cookie: a=1; cn=always\r\n").service, "canary");
  EXPECT_EQ(request(t, "c.com", "/", "X-Canary: other\r\nCookie: cn=never\r\n").service, "main");
  // The main Ingress's annotations apply to the canary's requests too.
  EXPECT_NE(request(t, "c.com", "/", "X-Canary: always\r\n").head.find("x-forwarded-prefix: /m"), std::string::npos);
  // The weight: 25 of every 100 draws.
  int canary = 0;
  for (uint64_t roll = 0; roll < 400; ++roll) {
    const Parsed parsed("GET / HTTP/1.1\r\nHost: c.com\r\n\r\n");
    const http1::RequestHead& req = parsed.head;
    DecideScratch s;
    canary += decide(req, {false, true, {}}, &t, ProxyConfig{}, nullptr, roll, s).match.backend->service == "canary";
  }
  EXPECT_EQ(canary, 100);
  // Without a main Ingress for its path, a canary gets nothing.
  auto lone = compile_text(ingress_with("canary", "l.com", "    nginx.ingress.kubernetes.io/canary: \"true\"\n",
                                        {{"/", "Prefix"}}, "canary") + service("canary"));
  EXPECT_EQ(request(*lone->result.table, "l.com", "/").service, "");
  EXPECT_TRUE(has_diag(lone->result.diagnostics, Severity::Warning, "CanaryWithoutMain", "no main Ingress"));
}

TEST(Annotations, SslRedirectOffAndForced) {
  std::string text = ingress_with("nossl", "off.com", "    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"\n",
                                  {{"/", "Prefix"}}) +
                     ingress_with("force", "force.com", "    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n",
                                  {{"/", "Prefix"}}) +
                     service("web");
  // off.com has TLS.
  text.replace(text.find("spec:\n  rules:\n  - host: off.com"), std::string("spec:\n").size(),
               "spec:\n  tls: [{hosts: [off.com]}]\n");
  auto c = compile_text(text);
  const auto& t = *c->result.table;
  EXPECT_EQ(request(t, "off.com", "/").verdict, Verdict::Forward);
  Seen s = request(t, "force.com", "/a");
  EXPECT_EQ(s.status, 308);
  EXPECT_EQ(s.location, "https://force.com:8443/a");
}


// The fast forms of PathRegex answer exactly as RE2 does, groups included.
TEST(PathRegexTest, FastFormsAgreeWithRe2) {
  const char* patterns[] = {"/something(/|$)(.*)", "/Api/V1(.*)", "/app", "/", "/a-b_c~d(/|$)(.*)", "/x/(.*)"};
  const char* paths[] = {"/", "/something", "/something/", "/something/new", "/SOMETHING/new/x?y", "/somethingelse",
                         "/api/v1", "/API/V1/users", "/api/v", "/app", "/application", "/App/x", "/a-b_c~d",
                         "/A-B_C~D/e", "/a-b_c~dx", "/x/", "/x/y/z", "/x", ""};
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_encoding(RE2::Options::EncodingLatin1);
  for (const char* pat : patterns) {
    std::string err;
    auto fast = PathRegex::compile(pat, err);
    ASSERT_TRUE(fast) << err;
    EXPECT_TRUE(fast->fast()) << pat;
    RE2 ref(std::string("^") + pat, o);
    const int n = ref.NumberOfCapturingGroups() + 1;
    for (const char* path : paths) {
      re2::StringPiece a[10], b[10];
      bool x = fast->match(path, a, n);
      bool y = ref.Match(path, 0, std::strlen(path), RE2::ANCHOR_START, b, n);
      ASSERT_EQ(x, y) << pat << " " << path;
      if (!x) continue;
      for (int k = 0; k < n; ++k) EXPECT_EQ(a[k].as_string(), b[k].as_string()) << pat << " " << path << " $" << k;
    }
  }
  std::string err;
  EXPECT_FALSE(PathRegex::compile("/foo/bar/[A-Z0-9]{3}", err)->fast());
  EXPECT_FALSE(PathRegex::compile("/a(", err));
}


// docs/migrating-from-ingress-nginx.md holds the table the binary prints
// (`ingressd migrate --table`): the doc cannot drift from the code.
TEST(AnnotationTable, TheMigrationDocumentAgrees) {
  std::ifstream f(std::string(INGRESSD_SOURCE_DIR) + "/docs/migrating-from-ingress-nginx.md");
  ASSERT_TRUE(f) << "docs/migrating-from-ingress-nginx.md";
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();
  for (const auto& a : annotation_table()) {
    std::string row = "| `" + std::string(a.name) + "` | " + support_name(a.support) + " | " + std::string(a.note) + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "missing or stale row: " << row
                                                << " (regenerate with ingressd migrate --table)";
  }
}

TEST(Takeover, ServeNginxClassServesIngressNginxIngresses) {
  std::string text =
      "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}\n" +
      ingress_with("byclass", "a.com", "", {{"/", "Prefix"}}) +
      ingress_with("legacy", "b.com", "    kubernetes.io/ingress.class: nginx\n", {{"/", "Prefix"}}) + service("web");
  text.replace(text.find("spec:\n  rules:\n  - host: a.com"), std::string("spec:\n").size(),
               "spec:\n  ingressClassName: nginx\n");
  auto before = compile_text(text);
  EXPECT_EQ(request(*before->result.table, "a.com", "/").service, "");
  EXPECT_EQ(request(*before->result.table, "b.com", "/").service, "");
  CompileOptions o;
  o.serve_nginx_class = true;
  auto after = compile_text(text, o);
  EXPECT_EQ(request(*after->result.table, "a.com", "/").service, "web");
  EXPECT_EQ(request(*after->result.table, "b.com", "/").service, "web");
}

// auth-type: basic with an htpasswd Secret (hashes as htpasswd -B, -m, -s write them).
TEST(Annotations, BasicAuthWithAnHtpasswdSecret) {
  const std::string htpasswd =
      "alice:$2y$05$td4HjiugnuGF6Gtd8x6AnuZtG9V54WDupprCmTeeVnzgPzwFOVbbi\n"
      "bob:$apr1$1L10CLJn$Rfh35a9/GbnaYasAmCltN1\n"
      "carol:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n";
  std::string indented;
  for (auto line : split(htpasswd, '\n'))
    if (!line.empty()) indented += "    " + std::string(line) + "\n";
  const std::string secret =
      "---\napiVersion: v1\nkind: Secret\nmetadata: {name: users, namespace: default}\nstringData:\n  auth: |\n" + indented;
  const std::string auth = "    nginx.ingress.kubernetes.io/auth-type: basic\n"
                           "    nginx.ingress.kubernetes.io/auth-secret: users\n"
                           "    nginx.ingress.kubernetes.io/auth-realm: Staff only\n";
  auto c = compile_text(ingress_with("auth", "auth.com", auth, {{"/", "Prefix"}}) +
                        ingress_with("other-ns", "x.com",
                                     "    nginx.ingress.kubernetes.io/auth-type: basic\n"
                                     "    nginx.ingress.kubernetes.io/auth-secret: kube-system/users\n",
                                     {{"/", "Prefix"}}) +
                        ingress_with("missing", "m.com",
                                     "    nginx.ingress.kubernetes.io/auth-type: basic\n"
                                     "    nginx.ingress.kubernetes.io/auth-secret: nope\n",
                                     {{"/", "Prefix"}}) +
                        secret + service("web"));
  const auto& t = *c->result.table;
  auto status = [&](const std::string& host, const std::string& extra) {
    Seen s = request(t, host, "/", extra);
    return s.verdict == Verdict::Forward ? 200 : s.status;
  };
  EXPECT_EQ(status("auth.com", ""), 401);
  EXPECT_EQ(status("auth.com", "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n"), 200);  // bcrypt
  EXPECT_EQ(status("auth.com", "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n"), 200);  // again (remembered)
  EXPECT_EQ(status("auth.com", "Authorization: basic Ym9iOmJ1aWxkZXI=\r\n"), 200);          // apr1
  EXPECT_EQ(status("auth.com", "Authorization: Basic Y2Fyb2w6czNjcmV0\r\n"), 200);          // SHA-1
  EXPECT_EQ(status("auth.com", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"), 401);          // wrong password
  EXPECT_EQ(status("auth.com", "Authorization: Bearer YWxpY2U6d29uZGVybGFuZA==\r\n"), 401);
  EXPECT_EQ(status("auth.com", "Authorization: Basic !!!\r\n"), 401);
  // The challenge names the realm.
  const Parsed parsed("GET / HTTP/1.1\r\nHost: auth.com\r\n\r\n");
  const http1::RequestHead& req = parsed.head;
  DecideScratch s;
  Decision d = decide(req, {false, true, {4, {127, 0, 0, 1}}}, &t, ProxyConfig{}, nullptr, 0, s);
  EXPECT_EQ(d.headers, "WWW-Authenticate: Basic realm=\"Staff only\", charset=\"UTF-8\"\r\n");
  // Another namespace's Secret, or none: fail closed.
  EXPECT_EQ(status("x.com", "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n"), 503);
  EXPECT_EQ(status("m.com", ""), 503);
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "AuthSecretInvalid", "another namespace"));
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "AuthSecretInvalid", "not found"));
}

TEST(Annotations, ReviewFindings) {
  auto c = compile_text(
      ingress_with("allownew", "new.com", "    nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8\n",
                   {{"/", "Prefix"}}) +
      ingress_with("disagree", "dis.com",
                   "    nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8\n"
                   "    nginx.ingress.kubernetes.io/whitelist-source-range: 0.0.0.0/0\n",
                   {{"/", "Prefix"}}) +
      ingress_with("future", "fut.com", "    nginx.ingress.kubernetes.io/auth-oidc-issuer: https://idp/\n",
                   {{"/", "Prefix"}}) +
      ingress_with("xff", "xff.com", "    ingressd.io/request-headers: \"X-Forwarded-For: 1.2.3.4\"\n", {{"/", "Prefix"}}) +
      ingress_with("q", "q.com", "    nginx.ingress.kubernetes.io/rewrite-target: /a?b=1\n", {{"/", "Prefix"}}) +
      service("web"));
  const auto& t = *c->result.table;
  EXPECT_EQ(request(t, "new.com", "/").status, 403);  // 127.0.0.1 is outside 10.0.0.0/8
  EXPECT_EQ(request(t, "dis.com", "/", "", {false, true, {4, {10, 1, 1, 1}}}).status, 503);  // even inside both lists
  EXPECT_EQ(request(t, "fut.com", "/").status, 503);
  EXPECT_EQ(request(t, "xff.com", "/").verdict, Verdict::Forward);
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "InvalidAnnotation", "X-Forwarded-For is managed"));
  EXPECT_TRUE(has_diag(c->result.diagnostics, Severity::Error, "InvalidAnnotation", "without a query"));
  std::vector<AnnotationIssue> issues;
  IngressOptions o = parse_annotations({{"nginx.ingress.kubernetes.io/proxy-send-timeout", "5"}}, false, issues);
  EXPECT_EQ(o.read_timeout_ms, 0);  // the read timeout stays the flag's
  EXPECT_EQ(o.send_timeout_ms, 5000);
}

TEST(Annotations, CorsPreflightAndResponseFields) {
  auto c = compile_text(
      ingress_with("cors", "api.com",
                   "    nginx.ingress.kubernetes.io/enable-cors: \"true\"\n"
                   "    nginx.ingress.kubernetes.io/cors-allow-origin: \"https://app.example.com, https://*.corp.example\"\n"
                   "    nginx.ingress.kubernetes.io/cors-allow-credentials: \"false\"\n"
                   "    nginx.ingress.kubernetes.io/cors-max-age: \"600\"\n",
                   {{"/", "Prefix"}}) +
      ingress_with("any", "any.com", "    nginx.ingress.kubernetes.io/enable-cors: \"true\"\n", {{"/", "Prefix"}}) +
      service("web"));
  const auto& t = *c->result.table;
  auto run_req = [&](const std::string& wire) {
    const Parsed parsed(wire);
    auto s = std::make_unique<DecideScratch>();
    Decision d = decide(parsed.head, {false, true, {}}, &t, ProxyConfig{}, nullptr, 0, *s);
    return std::make_pair(d.status + (d.verdict == Verdict::Forward ? 200 : 0), std::string(d.headers));
  };
  auto [st, h] = run_req("OPTIONS /x HTTP/1.1\r\nHost: api.com\r\nOrigin: https://app.example.com\r\n"
                         "Access-Control-Request-Method: PUT\r\n\r\n");
  EXPECT_EQ(st, 204);
  EXPECT_NE(h.find("Access-Control-Allow-Origin: https://app.example.com\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("Vary: Origin\r\n"), std::string::npos);
  EXPECT_NE(h.find("Access-Control-Allow-Methods: GET, PUT, POST, DELETE, PATCH, OPTIONS\r\n"), std::string::npos);
  EXPECT_NE(h.find("Access-Control-Max-Age: 600\r\n"), std::string::npos);
  EXPECT_EQ(h.find("Allow-Credentials"), std::string::npos);
  std::tie(st, h) = run_req("GET /x HTTP/1.1\r\nHost: api.com\r\nOrigin: https://team.corp.example\r\n\r\n");
  EXPECT_EQ(st, 200);
  EXPECT_NE(h.find("Access-Control-Allow-Origin: https://team.corp.example\r\n"), std::string::npos) << h;
  EXPECT_EQ(h.find("Max-Age"), std::string::npos);
  std::tie(st, h) = run_req("GET /x HTTP/1.1\r\nHost: api.com\r\nOrigin: https://evil.example\r\n\r\n");
  EXPECT_EQ(st, 200);
  EXPECT_TRUE(h.empty()) << h;
  std::tie(st, h) = run_req("GET /x HTTP/1.1\r\nHost: any.com\r\nOrigin: https://x.example\r\n\r\n");
  EXPECT_NE(h.find("Access-Control-Allow-Origin: *\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("Access-Control-Allow-Credentials: true\r\n"), std::string::npos) << h;
}


TEST(RateLimitTest, LeakyBucketWithBurstPerClient) {
  RateLimit rl(10, 50);  // limit-rps 10 with ingress-nginx's multiplier 5
  ClientAddr a{4, {10, 0, 0, 1}}, b{4, {10, 0, 0, 2}};
  int passed = 0;
  for (int i = 0; i < 100; ++i) passed += rl.allow(a, 1000);  // one instant
  EXPECT_EQ(passed, 51);  // nginx: burst + 1 at once
  EXPECT_TRUE(rl.allow(b, 1000));  // another client has its own bucket
  EXPECT_FALSE(rl.allow(a, 1050));  // 50 ms drain half a request
  EXPECT_TRUE(rl.allow(a, 1100));   // 100 ms: one request's room
  EXPECT_FALSE(rl.allow(a, 1100));
  // After the bucket drains, a full burst again.
  passed = 0;
  for (int i = 0; i < 100; ++i) passed += rl.allow(a, 20000);
  EXPECT_EQ(passed, 51);
}

TEST(Annotations, LimitRpsThroughDecide) {
  auto c = compile_text(ingress_with("lim", "lim.com",
                                     "    nginx.ingress.kubernetes.io/limit-rps: \"2\"\n"
                                     "    nginx.ingress.kubernetes.io/limit-burst-multiplier: \"1\"\n"
                                     "    nginx.ingress.kubernetes.io/limit-allowlist: 10.0.0.0/8\n",
                                     {{"/", "Prefix"}}) +
                        service("web"));
  const auto& t = *c->result.table;
  const Parsed parsed("GET / HTTP/1.1\r\nHost: lim.com\r\n\r\n");
  const http1::RequestHead& req = parsed.head;
  auto status = [&](ClientAddr who) {
    DecideScratch s;
    Decision d = decide(req, {false, true, who, 5000}, &t, ProxyConfig{}, nullptr, 0, s);
    return d.verdict == Verdict::Forward ? 200 : d.status;
  };
  ClientAddr outside{4, {192, 0, 2, 1}}, inside{4, {10, 1, 1, 1}};
  EXPECT_EQ(status(outside), 200);
  EXPECT_EQ(status(outside), 200);
  EXPECT_EQ(status(outside), 200);  // burst 2 + 1
  EXPECT_EQ(status(outside), 503);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(status(inside), 200);  // exempt
}

TEST(Annotations, LimitConnectionsCountsRequestsInProgress) {
  auto c = compile_text(ingress_with("lim", "lim.com", "    nginx.ingress.kubernetes.io/limit-connections: \"2\"\n",
                                     {{"/", "Prefix"}}) +
                        service("web"));
  const auto& t = *c->result.table;
  const Parsed parsed("GET / HTTP/1.1\r\nHost: lim.com\r\n\r\n");
  const http1::RequestHead& req = parsed.head;
  ClientAddr a{4, {192, 0, 2, 1}}, b{4, {192, 0, 2, 2}};
  auto go = [&](ClientAddr who) {
    DecideScratch s;
    return decide(req, {false, true, who, 1000}, &t, ProxyConfig{}, nullptr, 0, s);
  };
  Decision d1 = go(a), d2 = go(a);
  ASSERT_EQ(d1.verdict, Verdict::Forward);
  ASSERT_EQ(d2.verdict, Verdict::Forward);
  ASSERT_NE(d1.conn_slot, nullptr);
  Decision d3 = go(a);
  EXPECT_EQ(d3.status, 503);  // a third at once
  EXPECT_EQ(d3.conn_slot, nullptr);
  EXPECT_EQ(go(b).verdict, Verdict::Forward);  // another client has its own count
  d1.conn_slot->release(a);                    // the first exchange ends
  EXPECT_EQ(go(a).verdict, Verdict::Forward);
  // explain (no clock) takes no slot.
  DecideScratch s;
  EXPECT_EQ(decide(req, {false, true, a, 0}, &t, ProxyConfig{}, nullptr, 0, s).conn_slot, nullptr);
}

TEST(Annotations, MirrorTargetNamesAServiceOfTheNamespace) {
  std::string svc, ns, why;
  int32_t port = 0;
  ASSERT_TRUE(parse_mirror_target("http://mirror.team-a.svc.cluster.local:8080$request_uri", svc, ns, port, why));
  EXPECT_EQ(svc, "mirror");
  EXPECT_EQ(ns, "team-a");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(parse_mirror_target("http://mirror/$request_uri", svc, ns, port, why));
  EXPECT_EQ(svc, "mirror");
  EXPECT_EQ(ns, "");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(parse_mirror_target("http://mirror.team-a.svc", svc, ns, port, why));
  for (const char* bad : {"https://mirror$request_uri", "http://mirror/other-path", "http://mirror:0",
                          "http://mirror.ns.notsvc", "http://mirror.ns.svc.cluster", "http://Mirror", "http://10.0.0.1",
                          "mirror", "http://mirror:99999"})
    EXPECT_FALSE(parse_mirror_target(bad, svc, ns, port, why)) << bad;
}
