// The subcommands of the ingressd binary. main.cc parses flags into these.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "routing/compile.h"

namespace ingressd {

struct ServeOptions {
  std::string manifests;
  ProxyConfig proxy;
  std::string default_ssl_certificate;  // NAMESPACE/NAME of a kubernetes.io/tls Secret
  bool h2 = true;                       // offer HTTP/2 by ALPN
  uint16_t admin_port = 10254;
  std::string admin_bind = "127.0.0.1";
  routing::CompileOptions compile;
  int reload_holdoff_ms = 100;
  int shutdown_delay_ms = 0;
  std::string access_log = "-";  // "-" stdout, "off", or a file
  std::string access_log_format = "json";
  int access_log_sample = 1;
};
int run_serve(const ServeOptions& o);

struct EchoOptions {
  std::string name = "echo";
  std::string namespace_ = "default";
  std::string bind = "127.0.0.1";
  uint16_t port = 8080;
};
int run_echo(const EchoOptions& o);

struct CheckOptions {
  std::string manifests;
  std::string default_ssl_certificate;  // check: as serve's flag
  std::string output = "text";  // text | json
  routing::CompileOptions compile;
};
int run_check(const CheckOptions& o);
int run_routes(const CheckOptions& o);

struct ExplainOptions {
  std::string manifests;
  std::string url;
  std::vector<std::string> headers;  // "K:V"
  std::string method = "GET";
  std::string output = "text";
  routing::CompileOptions compile;
};
int run_explain(const ExplainOptions& o);

}  // namespace ingressd
