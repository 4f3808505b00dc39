// The subcommands of the ingressd binary. main.cc parses flags into these.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "routing/compile.h"

namespace ingressd {

// Operator mode (docs/operator.md): on with --kubeconfig or --in-cluster.
struct KubeServeOptions {
  std::string kubeconfig, context;
  bool in_cluster = false;
  std::string publish_service;                      // NAMESPACE/NAME
  std::vector<std::string> publish_status_address;  // or fixed addresses
  bool update_status = true;
  bool leader_elect = true;
  std::string leader_election_namespace;            // default: our own namespace
  std::string leader_election_id = "ingressd-leader";
  std::string lease_duration = "15s", renew_deadline = "10s", retry_period = "2s";
  std::string resync_period = "10m";
  std::string gateway_discovery_period = "60s";     // Gateway API discovery again this often ("0": at start only)
  int holdoff_ms = 20;                              // events → table hold-off (capped at 10x)
  bool enabled() const { return !kubeconfig.empty() || in_cluster; }
};

struct ServeOptions {
  std::string manifests;
  KubeServeOptions kube;
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
  uint16_t webhook_port = 0;  // 0: no admission webhook
  std::string webhook_bind = "0.0.0.0";
  std::string webhook_cert_file, webhook_key_file;
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

struct MigrateOptions {
  std::string manifests;
  std::string output = "text";  // text | json
  bool table = false;           // print the annotation table instead
  bool allow_unenforced = false;
};
int run_migrate(const MigrateOptions& o);

struct ConvertOptions {
  std::string manifests;
  std::string output = "yaml";  // yaml | json
  std::string gateway_class = "ingressd";
  std::string gateway_name = "ingressd";
  std::string controller_name = routing::kDefaultControllerName;
};
int run_convert(const ConvertOptions& o);
int run_routes(const CheckOptions& o);

struct ExplainOptions {
  std::string manifests;
  std::string url;
  std::vector<std::string> headers;  // "K:V"
  std::string method = "GET";
  std::string output = "text";
  routing::CompileOptions compile;
  ProxyConfig proxy;  // the flags of `serve` that decide answers (redirects, limits)
  std::string client;  // the client's address
};
int run_explain(const ExplainOptions& o);

}  // namespace ingressd
