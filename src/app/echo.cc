// `ingressd echo`: a small upstream for demos, tests and benchmarks. It answers
// every request with JSON describing the request, keeps connections alive,
// echoes WebSocket messages, and takes a few test knobs from the query
// string: status=N, size=N (a body of N bytes instead of JSON), chunked=1,
// delay_ms=N, close=1. Like the Gateway API conformance suite's echo-basic:
// delay=DURATION (Go syntax: 1s, 500ms, 1m30s) waits before answering, and
// the request header X-Echo-Set-Header: "Name:value,Name2:value2" sets those
// response headers. With INGRESSD_ECHO_LOG_REQUESTS=1 in the environment each
// request is logged to stderr as echo-basic does ("Echoing back request made
// to TARGET to client (PEER)", plus method and host), so that tests can look
// for mirrored requests in the log.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "core/strings.h"
#include "proxy/http1/chunked.h"
#include "proxy/http1/parser.h"
#include "proxy/responses.h"

namespace ingressd {
namespace {

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads more bytes into buf; false on EOF or error.
bool read_more(int fd, std::string& buf) {
  char tmp[16384];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

std::string canonical_header(std::string_view n) {
  std::string out(n);
  bool up = true;
  for (char& c : out) {
    c = up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : ascii_lower(c);
    up = c == '-';
  }
  return out;
}

std::string query_param(std::string_view q, std::string_view key) {
  if (!q.empty() && q[0] == '?') q.remove_prefix(1);
  for (auto kv : split(q, '&')) {
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key) return eq == std::string_view::npos ? "1" : std::string(kv.substr(eq + 1));
  }
  return "";
}

std::string http_date() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::string websocket_accept(std::string_view key) {
  std::string s(key);
  s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

// Echoes WebSocket frames until a close frame or EOF (RFC 6455 §5).
void websocket_echo(int fd, std::string buf) {
  for (;;) {
    while (buf.size() < 2)
      if (!read_more(fd, buf)) return;
    auto b0 = static_cast<unsigned char>(buf[0]), b1 = static_cast<unsigned char>(buf[1]);
    size_t hdr = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) hdr += 2;
    else if (len == 127) hdr += 8;
    bool masked = b1 & 0x80;
    if (masked) hdr += 4;
    while (buf.size() < hdr)
      if (!read_more(fd, buf)) return;
    if (len == 126) len = (static_cast<uint64_t>(static_cast<unsigned char>(buf[2])) << 8) | static_cast<unsigned char>(buf[3]);
    else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf[2 + i]);
    }
    if (len > (16u << 20)) return;
    while (buf.size() < hdr + len)
      if (!read_more(fd, buf)) return;
    std::string payload = buf.substr(hdr, len);
    if (masked) {
      const char* mk = buf.data() + hdr - 4;
      for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ mk[i % 4]);
    }
    buf.erase(0, hdr + len);
    int opcode = b0 & 0x0f;
    int reply_op = opcode == 0x9 ? 0xA : opcode;  // ping → pong
    std::string frame;
    frame += static_cast<char>(0x80 | reply_op);
    if (payload.size() < 126) frame += static_cast<char>(payload.size());
    else if (payload.size() < 65536) {
      frame += static_cast<char>(126);
      frame += static_cast<char>(payload.size() >> 8);
      frame += static_cast<char>(payload.size() & 0xff);
    } else {
      frame += static_cast<char>(127);
      for (int i = 7; i >= 0; --i) frame += static_cast<char>((payload.size() >> (8 * i)) & 0xff);
    }
    frame += payload;
    if (opcode == 0xA) continue;  // unsolicited pong: ignore
    if (!send_all(fd, frame)) return;
    if (opcode == 0x8) return;  // close echoed
  }
}

// Go's time.ParseDuration for the units echo-basic's delay= accepts ("1s",
// "500ms", "1.5s", "1m30s"); false when `s` is not a duration.
bool parse_go_duration(std::string_view s, std::chrono::nanoseconds& out) {
  if (s == "0") return out = {}, true;  // the one duration Go accepts without a unit
  if (s.empty()) return false;
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return false;
    std::string num(s.substr(0, i));
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return false;
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !std::isdigit(static_cast<unsigned char>(s[j])) && s[j] != '.') ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xc2\xb5s") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return false;
    total += v * scale;
  }
  if (total > 9e18) return false;  // beyond int64 nanoseconds, as Go's overflow error
  out = std::chrono::nanoseconds(static_cast<int64_t>(total));
  return true;
}

// echo-basic's writeEchoResponseHeaders: every "Name:value" of every
// X-Echo-Set-Header becomes a response header (names kept as written; a name
// given twice gets the values joined with ",").
std::string echo_set_headers(const std::vector<std::string>& specs) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& spec : specs) {
    for (auto kv : split(spec, ',')) {
      kv = trim_ows(kv);
      size_t colon = kv.find(':');
      std::string name(kv.substr(0, colon));
      std::string value(colon == std::string_view::npos ? std::string_view() : kv.substr(colon + 1));
      if (name.empty() || !http1::is_token(name)) continue;
      auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
      if (it == out.end()) out.emplace_back(name, value);
      else it->second += "," + std::string(trim_ows(value));
    }
  }
  std::string head;
  for (const auto& [name, value] : out) head += name + ": " + value + "\r\n";
  return head;
}

std::string peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "";
}

bool log_requests_enabled() {
  const char* v = std::getenv("INGRESSD_ECHO_LOG_REQUESTS");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

void serve_connection(int fd, EchoOptions o, std::string pod, bool log_requests) {
  std::string buf;
  auto req = std::make_unique<http1::RequestHead>();
  for (;;) {
    http1::ParseError err;
    long n;
    while ((n = http1::parse_request_head(buf.data(), buf.size(), *req, err, http1::Limits{})) == 0)
      if (!read_more(fd, buf)) return ::close(fd), void();
    if (n < 0) {
      send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      break;
    }
    nlohmann::json j;
    j["service"] = o.name;
    j["pod"] = pod;
    j["namespace"] = o.namespace_;
    j["method"] = std::string(req->method);
    j["path"] = std::string(req->target);
    j["host"] = std::string(req->host);
    j["proto"] = req->minor == 1 ? "HTTP/1.1" : "HTTP/1.0";
    nlohmann::json headers = nlohmann::json::object();
    std::string ws_key;
    std::vector<std::string> set_headers;
    for (int i = 0; i < req->n_headers; ++i) {
      std::string name = canonical_header(req->headers[i].name);
      headers[name].push_back(std::string(req->headers[i].value));
      if (name == "Sec-Websocket-Key") ws_key = std::string(req->headers[i].value);
      if (name == "X-Echo-Set-Header") set_headers.emplace_back(req->headers[i].value);
    }
    if (log_requests)
      log_info("Echoing back request made to {} to client ({}) method={} host={}", std::string_view(req->target),
               peer_address(fd), std::string_view(req->method), std::string_view(req->host));
    j["headers"] = headers;
    std::string query(req->query);
    bool keep = req->keep_alive;
    bool websocket = req->websocket;
    http1::Framing framing = req->framing;
    uint64_t cl = req->content_length;
    bool expect_continue = req->expect_continue && req->minor == 1;
    buf.erase(0, static_cast<size_t>(n));
    // Like Go's and most servers: answer the expectation before reading the body.
    if (expect_continue && framing != http1::Framing::None && buf.empty())
      send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    // The body: counted, not kept.
    uint64_t body = 0;
    if (framing == http1::Framing::Length) {
      while (buf.size() < cl) {
        body += buf.size();
        cl -= buf.size();
        buf.clear();
        if (!read_more(fd, buf)) return ::close(fd), void();
      }
      body += cl;
      buf.erase(0, cl);
    } else if (framing == http1::Framing::Chunked) {
      http1::ChunkedDecoder dec;
      for (;;) {
        auto r = dec.feed(buf.data(), buf.size());
        if (r.status == http1::ChunkedDecoder::Status::Data) body += r.data_len;
        buf.erase(0, r.consumed);
        if (r.status == http1::ChunkedDecoder::Status::Done) break;
        if (r.status == http1::ChunkedDecoder::Status::Error) return ::close(fd), void();
        if (r.status == http1::ChunkedDecoder::Status::NeedMore && !read_more(fd, buf)) return ::close(fd), void();
      }
    }
    j["body_size"] = body;
    if (websocket && !ws_key.empty()) {
      send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
                       websocket_accept(ws_key) + "\r\n\r\n");
      websocket_echo(fd, std::move(buf));
      break;
    }
    std::string delay = query_param(query, "delay_ms");
    if (!delay.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay.c_str())));
    int status = 200;
    if (std::string s = query_param(query, "status"); !s.empty()) status = std::atoi(s.c_str());
    if (std::string s = query_param(query, "delay"); !s.empty()) {
      std::chrono::nanoseconds d{};
      if (parse_go_duration(s, d)) std::this_thread::sleep_for(d);
      else status = 500;  // echo-basic answers a bad duration with 500
    }
    std::string content_type = "application/json";
    std::string payload;
    if (std::string s = query_param(query, "size"); !s.empty()) {
      payload.assign(static_cast<size_t>(std::strtoull(s.c_str(), nullptr, 10)), 'x');
      content_type = "text/plain";
    } else {
      payload = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    bool chunked = !query_param(query, "chunked").empty() && req->minor == 1;
    if (!query_param(query, "close").empty()) keep = false;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_reason(status) + "\r\nContent-Type: " +
                       content_type + "\r\nDate: " + http_date() + "\r\n" + echo_set_headers(set_headers);
    if (!keep) head += "Connection: close\r\n";
    bool head_req = j["method"] == "HEAD";
    if (chunked) {
      head += "Transfer-Encoding: chunked\r\n\r\n";
      std::string out = head;
      if (!head_req) {
        // Two chunks, so the framing is exercised.
        size_t half = payload.size() / 2;
        char hdr[24];
        for (auto part : {std::string_view(payload).substr(0, half), std::string_view(payload).substr(half)}) {
          if (part.empty()) continue;
          out.append(hdr, http1::chunk_header(hdr, part.size()));
          out.append(part);
          out += "\r\n";
        }
        out += "0\r\n\r\n";
      }
      if (!send_all(fd, out)) break;
    } else if (status == 204 || status == 304 || status < 200) {
      if (!send_all(fd, head + "\r\n")) break;  // no body, no Content-Length (RFC 9110 §8.6)
    } else {
      head += "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n";
      if (!send_all(fd, head_req ? head : head + payload)) break;
    }
    if (!keep) break;
  }
  ::close(fd);
}

}  // namespace

int run_echo(const EchoOptions& o) {
  ::signal(SIGPIPE, SIG_IGN);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!parse_sockaddr(o.bind, o.port, ss, len)) {
    log_error("echo: invalid --bind {}", o.bind);
    return 1;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    log_error("echo: cannot bind {}: {}", join_host_port(o.bind, o.port), std::strerror(e));
    return 1;
  }
  ::listen(fd, 1024);
  std::string pod = o.name + "-" + std::to_string(o.port);
  bool log_requests = log_requests_enabled();
  log_info("echo {} listening on {}:{}", o.name, o.bind, o.port);
  for (;;) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::thread(serve_connection, c, o, pod, log_requests).detach();
  }
}

}  // namespace ingressd
