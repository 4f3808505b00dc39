// The ingressd binary: flags → options → one of the commands.
#include <CLI/CLI.hpp>
#include <thread>

#include "app/commands.h"
#include "core/log.h"

using namespace ingressd;

namespace {
// The flags that change what compile() serves: the same on every command, so
// that `check`, `routes` and `explain` answer for the config `serve` runs.
struct ClassFlags {
  std::vector<std::string> watch_ns;
  bool ignore_classless = false;
  void add(CLI::App* cmd, routing::CompileOptions& c) {
    cmd->add_option("--controller-name", c.controller_name,
                    "The spec.controller value of the IngressClasses this controller owns")->capture_default_str();
    cmd->add_option("--ingress-class", c.legacy_class,
                    "Class name honoured in the deprecated kubernetes.io/ingress.class annotation")->capture_default_str();
    cmd->add_flag("--ignore-classless", ignore_classless, "Do not serve Ingresses that name no class");
    cmd->add_option("--watch-namespace", watch_ns, "Serve only Ingresses of this namespace (repeatable)");
    cmd->add_flag("--serve-nginx-class", c.serve_nginx_class,
                  "Also serve Ingresses of ingress-nginx's classes (IngressClass controller k8s.io/ingress-nginx, "
                  "legacy annotation kubernetes.io/ingress.class: nginx): take over without editing them");
    cmd->add_flag("--allow-unenforced-annotations", c.allow_unenforced_annotations,
                  "Serve Ingresses whose security annotations ingressd cannot enforce (auth-*, auth-tls-*, "
                  "enable-modsecurity, satisfy, snippets) instead of answering 503 for their routes: UNPROTECTED");
  }
  void apply(routing::CompileOptions& c) const {
    c.serve_classless = !ignore_classless;
    c.watch_namespaces = {watch_ns.begin(), watch_ns.end()};
  }
};
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ingressd: a Kubernetes ingress controller"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  ServeOptions so;
  ClassFlags serve_flags, check_flags, routes_flags, explain_flags;
  auto* serve = app.add_subcommand("serve", "Serve HTTP by the Ingress objects in a folder of manifests");
  serve->add_option("--manifests", so.manifests, "A manifest file, or a folder read recursively (*.yaml, *.yml, *.json)")->required();
  serve->add_option("--http-port", so.proxy.http_port, "Plain HTTP port")->capture_default_str();
  serve->add_option("--https-port", so.proxy.https_port, "HTTPS port (0 = no TLS listener)")->capture_default_str();
  serve->add_option("--default-ssl-certificate", so.default_ssl_certificate,
                    "NAMESPACE/NAME of the kubernetes.io/tls Secret served when no Ingress's certificate matches the "
                    "SNI name (default: a self-signed certificate made at start-up)");
  serve->add_option("--ssl-redirect", so.proxy.ssl_redirect,
                    "Answer plain HTTP for hosts with TLS with a 308 to https (true/false)")->capture_default_str();
  serve->add_option("--redirect-https-port", so.proxy.redirect_https_port,
                    "The https port written in redirects (default: --https-port; 443 is left out)");
  serve->add_option("--hsts", so.proxy.hsts,
                    "Strict-Transport-Security value for HTTPS responses, e.g. \"max-age=31536000\" (default: none)");
  serve->add_option("--http2", so.h2, "Offer HTTP/2 to TLS clients by ALPN (true/false)")->capture_default_str();
  serve->add_flag("--h2c", so.proxy.h2c, "Accept HTTP/2 with prior knowledge (h2c) on the plain HTTP port");
  serve->add_option("--http2-max-concurrent-streams", so.proxy.h2_max_concurrent_streams,
                    "SETTINGS_MAX_CONCURRENT_STREAMS per HTTP/2 connection")->capture_default_str();
  serve->add_option("--admin-port", so.admin_port, "Admin port: /healthz /readyz /config /debug/routes /metrics")->capture_default_str();
  serve->add_option("--admin-bind", so.admin_bind, "Admin address")->capture_default_str();
  serve->add_option("--bind", so.proxy.bind, "Address the HTTP(S) listeners bind to")->capture_default_str();
  serve->add_option("--workers", so.proxy.workers, "Worker threads (0 = one per core)")->capture_default_str();
  serve_flags.add(serve, so.compile);
  serve->add_option("--client-header-timeout-ms", so.proxy.client_header_timeout_ms)->capture_default_str();
  serve->add_option("--client-idle-timeout-ms", so.proxy.client_idle_timeout_ms)->capture_default_str();
  serve->add_option("--client-body-timeout-ms", so.proxy.client_body_timeout_ms)->capture_default_str();
  serve->add_option("--client-send-timeout-ms", so.proxy.client_send_timeout_ms)->capture_default_str();
  serve->add_option("--upstream-connect-timeout-ms", so.proxy.upstream_connect_timeout_ms)->capture_default_str();
  serve->add_option("--upstream-read-timeout-ms", so.proxy.upstream_read_timeout_ms)->capture_default_str();
  serve->add_option("--upstream-idle-timeout-ms", so.proxy.upstream_idle_timeout_ms)->capture_default_str();
  serve->add_option("--max-header-bytes", so.proxy.limits.max_head_bytes, "Largest request head (431 beyond)")->capture_default_str();
  serve->add_option("--shutdown-grace-ms", so.proxy.shutdown_grace_ms,
                    "After SIGTERM and the delay: how long requests in flight may take to finish")->capture_default_str();
  serve->add_option("--shutdown-delay-ms", so.shutdown_delay_ms,
                    "After SIGTERM: keep accepting this long with /readyz failing, so load balancers notice")->capture_default_str();
  serve->add_option("--access-log", so.access_log, "Access log: - (stdout), off, or a file path")->capture_default_str();
  serve->add_option("--access-log-format", so.access_log_format, "json or text (see docs/observability.md)")
      ->check(CLI::IsMember({"json", "text"}))->capture_default_str();
  serve->add_option("--access-log-sample", so.access_log_sample, "Log one request in N")->capture_default_str();
  serve->add_option("--request-metrics", so.proxy.request_metrics,
                    "Per-route request counters and histograms at /metrics (true/false)")->capture_default_str();
  serve->add_option("--max-body-bytes", so.proxy.max_body_bytes, "Request body limit, 413 beyond (0 = none)")->capture_default_str();
  serve->add_option("--max-connections", so.proxy.max_connections, "Client connections (0 = no limit); excess get 503")->capture_default_str();
  serve->add_option("--max-requests-per-backend", so.proxy.max_requests_per_backend,
                    "Concurrent requests per backend per worker (0 = no limit); excess get 503")->capture_default_str();
  serve->add_option("--eject-after-failures", so.proxy.eject_after_failures,
                    "Consecutive connect failures or resets before an endpoint is ejected (0 = never)")->capture_default_str();
  serve->add_option("--eject-ms", so.proxy.eject_ms, "How long an ejected endpoint gets no requests")->capture_default_str();
  serve->add_option("--webhook-port", so.webhook_port,
                    "Validating admission webhook (HTTPS) on this port, for the API server (0 = off; docs/operator.md)")
      ->capture_default_str();
  serve->add_option("--webhook-bind", so.webhook_bind, "Address the webhook listens on")->capture_default_str();
  serve->add_option("--webhook-cert-file", so.webhook_cert_file, "The webhook's certificate chain (PEM), e.g. a mounted Secret's tls.crt");
  serve->add_option("--webhook-key-file", so.webhook_key_file, "The webhook's private key (PEM), e.g. tls.key");
  // Operator mode (docs/operator.md): the API server instead of --manifests.
  {
    KubeServeOptions& k = so.kube;
    serve->get_option("--manifests")->required(false);
    serve->add_option("--kubeconfig", k.kubeconfig, "Operator mode: watch the API server of this kubeconfig");
    serve->add_option("--context", k.context, "kubeconfig context (default: current-context)");
    serve->add_flag("--in-cluster", k.in_cluster, "Operator mode with the pod's service account (KUBERNETES_SERVICE_HOST)");
    serve->add_option("--publish-service", k.publish_service,
                      "[NAMESPACE/]NAME of the Service whose load balancer addresses go into Ingress status (default namespace: our own)");
    serve->add_option("--publish-status-address", k.publish_status_address,
                      "Addresses (IP or hostname) to write into Ingress status instead (comma-separated)")->delimiter(',');
    serve->add_option("--update-status", k.update_status, "Write Ingress status")->capture_default_str();
    serve->add_option("--leader-elect", k.leader_elect, "Only the holder of a Lease writes status and Events")->capture_default_str();
    serve->add_option("--leader-election-namespace", k.leader_election_namespace, "Namespace of the Lease (default: ours)");
    serve->add_option("--leader-election-id", k.leader_election_id, "Name of the Lease")->capture_default_str();
    serve->add_option("--lease-duration", k.lease_duration, "How long a Lease not renewed stays held")->capture_default_str();
    serve->add_option("--renew-deadline", k.renew_deadline, "The leader steps down if it cannot renew within this")->capture_default_str();
    serve->add_option("--retry-period", k.retry_period, "How often candidates try, and the leader renews")->capture_default_str();
    serve->add_option("--resync-period", k.resync_period, "Full relist of every watched kind this often (0: never; a watch that expires still relists)")->capture_default_str();
    serve->add_option("--gateway-api-discovery-period", k.gateway_discovery_period,
                      "Look for the Gateway API's CRDs again this often, so that installing them later is picked up "
                      "(0: only at start)")->capture_default_str();
    serve->add_option("--kube-holdoff-ms", k.holdoff_ms, "Hold-off from a cluster change to the rebuild (capped at 10x)")->capture_default_str();
    serve->callback([&so] {
      int sources = !so.manifests.empty() + !so.kube.kubeconfig.empty() + so.kube.in_cluster;
      if (sources != 1) throw CLI::ValidationError("serve", "give exactly one of --manifests, --kubeconfig, --in-cluster");
      if (so.webhook_port && (so.webhook_cert_file.empty() || so.webhook_key_file.empty()))
        throw CLI::ValidationError("serve", "--webhook-port needs --webhook-cert-file and --webhook-key-file");
    });
  }

  EchoOptions eo;
  auto* echo = app.add_subcommand("echo", "A small upstream that answers with a JSON description of each request");
  echo->add_option("--name", eo.name, "Name it reports (as the service)")->capture_default_str();
  echo->add_option("--namespace", eo.namespace_)->capture_default_str();
  echo->add_option("--port", eo.port)->capture_default_str();
  echo->add_option("--bind", eo.bind)->capture_default_str();

  CheckOptions co;
  auto* check = app.add_subcommand("check", "Validate manifests offline; exit 1 on errors");
  check->add_option("path", co.manifests, "A manifest file or folder")->required();
  check->add_option("--output,-o", co.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  check->add_option("--default-ssl-certificate", co.default_ssl_certificate,
                    "NAMESPACE/NAME of the default certificate's Secret, checked like the others");
  check_flags.add(check, co.compile);

  CheckOptions ro;
  auto* routes = app.add_subcommand("routes", "Print the route table compiled from manifests");
  routes->add_option("path", ro.manifests, "A manifest file or folder")->required();
  routes->add_option("--output,-o", ro.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  routes_flags.add(routes, ro.compile);

  ExplainOptions xo;
  auto* explain = app.add_subcommand("explain", "Which route a request takes, and why the others do not");
  explain->add_option("path", xo.manifests, "A manifest file or folder")->required();
  explain->add_option("url", xo.url, "http://HOST/PATH, or /PATH with --header Host:HOST")->required();
  explain->add_option("--header,-H", xo.headers, "A request header K:V (repeatable)");
  explain->add_option("--method,-X", xo.method, "Request method")->capture_default_str();
  explain->add_option("--client", xo.client, "The client's address (for source-range annotations)");
  explain->add_option("--https-port", xo.proxy.https_port, "As serve's --https-port (0 = no TLS listener: no redirect to https)")->capture_default_str();
  explain->add_option("--ssl-redirect", xo.proxy.ssl_redirect, "As serve's --ssl-redirect")->capture_default_str();
  explain->add_option("--redirect-https-port", xo.proxy.redirect_https_port, "As serve's --redirect-https-port");
  explain->add_option("--max-body-bytes", xo.proxy.max_body_bytes, "As serve's --max-body-bytes");
  explain->add_option("--output,-o", xo.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  explain_flags.add(explain, xo.compile);

  MigrateOptions mo;
  auto* migrate = app.add_subcommand(
      "migrate", "What becomes of each Ingress's ingress-nginx annotations under ingressd; exit 1 when an Ingress "
                 "would not serve (503), 2 when an annotation is not honoured, unknown or invalid");
  migrate->add_option("path", mo.manifests, "A manifest file or folder");
  migrate->add_option("--output,-o", mo.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  migrate->add_flag("--table", mo.table, "Print every annotation ingress-nginx documents and ingressd's support (markdown)");
  migrate->add_flag("--allow-unenforced-annotations", mo.allow_unenforced, "As serve's flag");
  ConvertOptions vo;
  auto* convert = app.add_subcommand(
      "convert", "Ingress objects (and the ingress-nginx annotations ingressd honours) as Gateway API objects, with "
                 "a note for every annotation that cannot be expressed; exit 1 when a protective one (auth, source "
                 "ranges, limits) would be lost");
  convert->add_option("path", vo.manifests, "A manifest file or folder")->required();
  convert->add_option("--output,-o", vo.output, "yaml or json")->check(CLI::IsMember({"yaml", "json"}));
  convert->add_option("--gateway-class", vo.gateway_class, "The GatewayClass to write")->capture_default_str();
  convert->add_option("--gateway-name", vo.gateway_name, "The Gateway to write in each namespace")->capture_default_str();
  convert->add_option("--controller-name", vo.controller_name, "The GatewayClass's controllerName")->capture_default_str();
  app.add_subcommand("version", "Print the version")->callback([] { std::printf("ingressd %s\n", INGRESSD_VERSION); });

  CLI11_PARSE(app, argc, argv);
  set_log_level(log_level == "debug" ? LogLevel::Debug
                : log_level == "warn" ? LogLevel::Warn
                : log_level == "error" ? LogLevel::Error
                                       : LogLevel::Info);
  serve_flags.apply(so.compile);
  check_flags.apply(co.compile);
  routes_flags.apply(ro.compile);
  explain_flags.apply(xo.compile);
  if (*serve) return run_serve(so);
  if (*echo) return run_echo(eo);
  if (*check) return run_check(co);
  if (*routes) return run_routes(ro);
  if (*explain) return run_explain(xo);
  if (*convert) return run_convert(vo);
  if (*migrate) {
    if (!mo.table && mo.manifests.empty()) {
      std::fprintf(stderr, "migrate: a manifest file or folder is required (or --table)\n");
      return 2;
    }
    return run_migrate(mo);
  }
  return 0;
}
