#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/http1/chunked.h"
#include "proxy/http1/parser.h"

using namespace ingressd::http1;

namespace {

struct Parsed {
  long n;
  std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
  ParseError err;
};

Parsed parse(const std::string& s, Limits lim = {}) {  // views in the result point into `s`
  Parsed p;
  p.n = parse_request_head(s.data(), s.size(), *p.head, p.err, lim);
  return p;
}

int status_of(const std::string& s, Limits lim = {}) {
  Parsed p = parse(s, lim);
  return p.n < 0 ? p.err.status : (p.n == 0 ? 0 : 200);
}

std::string value_of(const RequestHead& h, std::string_view name) {
  for (int i = 0; i < h.n_headers; ++i)
    if (h.headers[i].name == name) return std::string(h.headers[i].value);
  return "<none>";
}

}  // namespace

TEST(Http1Request, ParsesATypicalRequest) {
  std::string s = "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t\r\nX-Forwarded-For: 1.2.3.4\r\n"
                  "Connection: keep-alive, X-Secret\r\nX-Secret: s\r\n\r\nEXTRA";
  Parsed p = parse(s);
  ASSERT_EQ(p.n, static_cast<long>(s.size() - 5));
  const RequestHead& h = *p.head;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "?x=1");
  EXPECT_EQ(h.host, "Example.com:8080");
  EXPECT_EQ(h.minor, 1);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.framing, Framing::None);
  EXPECT_EQ(value_of(h, "X-Forwarded-For"), "1.2.3.4");
  EXPECT_EQ(value_of(h, "User-Agent"), "t");
  for (int i = 0; i < h.n_headers; ++i) {
    if (h.headers[i].name == "X-Secret" || h.headers[i].name == "Connection") {
      EXPECT_TRUE(h.headers[i].flags & kHopByHop) << h.headers[i].name;
    }
    if (h.headers[i].name == "User-Agent") {
      EXPECT_EQ(h.headers[i].flags, 0);
    }
  }
}

TEST(Http1Request, IncompleteAtEveryByteThenComplete) {
  std::string s = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  for (size_t cut = 0; cut < s.size(); ++cut) {
    Parsed p = parse(s.substr(0, cut));
    EXPECT_EQ(p.n, 0) << "cut at " << cut;
  }
  Parsed p = parse(s);
  ASSERT_EQ(p.n, static_cast<long>(s.size()));
  EXPECT_EQ(p.head->framing, Framing::Length);
  EXPECT_EQ(p.head->content_length, 5u);
  EXPECT_TRUE(p.head->expect_continue);
}

TEST(Http1Request, Http10KeepAliveRules) {
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").head->keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").head->keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").head->keep_alive);
  EXPECT_EQ(status_of("GET / HTTP/1.0\r\n\r\n"), 200);  // no Host needed in 1.0
}

TEST(Http1Request, WebSocketUpgrade) {
  static const std::string ws = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
  Parsed p = parse(ws);
  ASSERT_GT(p.n, 0);
  EXPECT_TRUE(p.head->websocket);
}

TEST(Http1Request, AbsoluteFormTargetReplacesHost) {
  const std::string req = "GET http://a.com/x?y HTTP/1.1\r\nHost: a.com\r\n\r\n";
  Parsed p = parse(req);  // views point into `req`
  ASSERT_GT(p.n, 0);
  EXPECT_EQ(p.head->authority, "a.com");
  EXPECT_EQ(p.head->path, "/x");
  EXPECT_EQ(p.head->query, "?y");
  // RFC 9112 §3.2.2: the Host header is ignored; the target's authority is the host.
  const std::string other = "GET http://a.com/x HTTP/1.1\r\nHost: b.com\r\n\r\n";
  Parsed q = parse(other);
  ASSERT_GT(q.n, 0);
  EXPECT_EQ(q.head->host, "a.com");
  // Host is still required in HTTP/1.1 (§3.2), absolute-form or not.
  EXPECT_EQ(status_of("GET http://a.com:8080/x HTTP/1.1\r\n\r\n"), 400);
}

// Each of these must be refused, never forwarded (RFC 9112; request smuggling defences).
TEST(Http1Request, RejectsMalformedAndAmbiguous) {
  struct Case {
    const char* name;
    std::string req;
    int status;
  } cases[] = {
      {"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"two differing CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"CL list differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400},
      {"CL not a number", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
      {"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"TE not chunked last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"TE unsupported coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 33), 400},
      {"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
      {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
      {"bare LF in headers", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400},
      {"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"garbage version", "GET / HTPT/1.1\r\nHost: a\r\n\r\n", 400},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400},
      {"control in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"userinfo", "GET http://u@a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", 400},
  };
  for (auto& c : cases) EXPECT_EQ(status_of(c.req), c.status) << c.name;
}

TEST(Http1Request, Limits) {
  Limits lim;
  lim.max_request_line = 100;
  lim.max_head_bytes = 300;
  lim.max_headers = 5;
  EXPECT_EQ(status_of("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", lim), 414);
  EXPECT_EQ(status_of("GET /" + std::string(200, 'a'), lim), 414);  // incomplete but already too long
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(400, 'b') + "\r\n\r\n", lim), 431);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 6; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(many + "\r\n", lim), 431);
}

TEST(Http1Request, IdenticalContentLengthsAreOneValue) {
  Parsed p = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
  ASSERT_GT(p.n, 0);
  EXPECT_EQ(p.head->content_length, 3u);
}

TEST(Http1Response, FramingRules) {
  auto resp = std::make_unique<ResponseHead>();
  ParseError err;
  std::string s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nServer: x\r\n\r\n";
  ASSERT_EQ(parse_response_head(s.data(), s.size(), false, *resp, err, {}), static_cast<long>(s.size()));
  EXPECT_EQ(resp->framing, Framing::Length);
  EXPECT_TRUE(resp->has_server);
  EXPECT_FALSE(resp->has_date);
  ASSERT_GT(parse_response_head(s.data(), s.size(), true, *resp, err, {}), 0);
  EXPECT_EQ(resp->framing, Framing::None);  // HEAD
  EXPECT_TRUE(resp->has_content_length);
  s = "HTTP/1.1 204 No Content\r\n\r\n";
  ASSERT_GT(parse_response_head(s.data(), s.size(), false, *resp, err, {}), 0);
  EXPECT_EQ(resp->framing, Framing::None);
  s = "HTTP/1.0 200 OK\r\n\r\n";
  ASSERT_GT(parse_response_head(s.data(), s.size(), false, *resp, err, {}), 0);
  EXPECT_EQ(resp->framing, Framing::UntilClose);
  EXPECT_FALSE(resp->keep_alive);
  s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_GT(parse_response_head(s.data(), s.size(), false, *resp, err, {}), 0);
  EXPECT_EQ(resp->framing, Framing::Chunked);
  s = "HTTP/1.1 200\r\n\r\n";  // empty reason is allowed
  EXPECT_GT(parse_response_head(s.data(), s.size(), false, *resp, err, {}), 0);
  for (std::string bad : {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 OK\nX: y\n\n", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                          "ICY 200 OK\r\n\r\n"}) {
    EXPECT_EQ(parse_response_head(bad.data(), bad.size(), false, *resp, err, {}), -1) << bad;
    EXPECT_EQ(err.status, 502);
  }
}

namespace {
// Decodes `in` fed in pieces of `step` bytes; returns the data or "ERR".
std::string dechunk(const std::string& in, size_t step) {
  ChunkedDecoder d;
  std::string out;
  size_t pos = 0;
  std::string pending;
  while (pos < in.size() || !pending.empty()) {
    if (pos < in.size()) {
      pending += in.substr(pos, step);
      pos += step;
    }
    for (;;) {
      auto r = d.feed(pending.data(), pending.size());
      if (r.status == ChunkedDecoder::Status::Error) return "ERR";
      if (r.status == ChunkedDecoder::Status::Data) out.append(r.data, r.data_len);
      pending.erase(0, r.consumed);
      if (r.status == ChunkedDecoder::Status::Done) return out + (pending.empty() ? "" : "+REST");
      if (r.status == ChunkedDecoder::Status::NeedMore) break;
    }
    if (pos >= in.size() && !pending.empty()) {
      auto r = d.feed(pending.data(), pending.size());
      if (r.status != ChunkedDecoder::Status::Data) break;
    }
  }
  return d.done() ? out : "INCOMPLETE";
}
}  // namespace

TEST(Chunked, DecodesAtEverySplit) {
  std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step = 1; step <= body.size(); ++step) EXPECT_EQ(dechunk(body, step), "hello world0123456789") << step;
}

TEST(Chunked, RejectsBadFraming) {
  EXPECT_EQ(dechunk("zz\r\n", 100), "ERR");
  EXPECT_EQ(dechunk("5\nhello\r\n0\r\n\r\n", 100), "ERR");
  EXPECT_EQ(dechunk("5\r\nhelloX\r\n0\r\n\r\n", 100), "ERR");
  EXPECT_EQ(dechunk("ffffffffffffffffff\r\n", 100), "ERR");  // overflow
  EXPECT_EQ(dechunk("1;" + std::string(5000, 'e') + "\r\nx\r\n0\r\n\r\n", 100), "ERR");
  EXPECT_EQ(dechunk("0\r\n\n", 100), "ERR");
  EXPECT_EQ(dechunk("-1\r\n", 100), "ERR");
}

TEST(Chunked, HeaderEncoding) {
  char buf[24];
  EXPECT_EQ(std::string(buf, chunk_header(buf, 0)), "0\r\n");
  EXPECT_EQ(std::string(buf, chunk_header(buf, 255)), "ff\r\n");
  EXPECT_EQ(std::string(buf, chunk_header(buf, 4096)), "1000\r\n");
}

// The proxy appends to every X-Forwarded-For field as sent: it finds them by
// their flag (there is no single parsed value).
TEST(Http1Request, FlagsEveryXForwardedForField) {
  std::string s =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8, 9.9.9.9\r\n"
      "X-Real-IP: 1.1.1.1\r\n\r\n";
  Parsed p = parse(s);
  ASSERT_EQ(p.n, static_cast<long>(s.size()));
  std::vector<std::string> xff;
  for (int i = 0; i < p.head->n_headers; ++i) {
    const Header& f = p.head->headers[i];
    if (f.flags & kXForwardedFor) {
      EXPECT_TRUE(f.flags & kXForwarded) << f.name;
      xff.emplace_back(f.value);
    }
  }
  EXPECT_EQ(xff, (std::vector<std::string>{"1.2.3.4", "5.6.7.8, 9.9.9.9"}));
}
