// `ingressd serve`: wiring only. Control thread: signals, the configuration
// source (app/config_source.h: files or the API server) and the one reload
// path. Worker threads: the data plane. Admin thread: the admin port.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "app/config_state.h"
#include "app/config_source.h"
#include "core/log.h"
#include "core/strings.h"
#include "observe/admin_server.h"
#include "app/metrics_endpoint.h"
#include "app/webhook.h"
#include "proxy/table_publisher.h"
#include "proxy/worker.h"
#include "routing/dump.h"
#include "tls/tls_server.h"

namespace ingressd {
namespace {

void log_diagnostics(const Diagnostics& ds) {
  for (const auto& d : ds) {
    switch (d.severity) {
      case Severity::Error: log_error("{}", d.str()); break;
      case Severity::Warning: log_warn("{}", d.str()); break;
      case Severity::Info: log_info("{}", d.str()); break;
    }
  }
}

// The control thread's work once everything is wired: the one reload path
// for both sources, and the loop over the signalfd and the source's fd.
struct ControlLoop {
  const ServeOptions& o;
  int sfd;
  ConfigSource& source;
  ObjectStore& store;
  ConfigState& state;
  TablePublisher& publisher;
  tls::TlsServer* tls_server;    // null: TLS off
  const CertInputs* cert_inputs;  // null: TLS off

  // The source brings the store up to date, then compile, publish, record,
  // and one summary line. Returns false when the reload was deferred (a file
  // changed while it was read: nothing applied).
  bool reload(const char* why, ReloadTrigger trigger) {
    auto t0 = std::chrono::steady_clock::now();
    LoadOutcome out;
    std::string unsettled;
    source.update_store(store, trigger, out, unsettled);
    if (out.deferred) {
      log_debug("reload ({}) deferred: {}", why, unsettled);
      return false;
    }
    if (out.listed) compile_into(*store.snapshot(), o.compile, cert_inputs, out);
    log_diagnostics(out.diagnostics);
    if (out.certs && tls_server) tls_server->publish(out.certs);  // before the table: its hosts may redirect to https
    if (out.table) publisher.publish(out.table);
    auto published = std::chrono::steady_clock::now();
    state.record(out, store.snapshot(), o.compile, unix_ms());
    source.after_publish(out, *store.snapshot(), published);
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count() / 1000.0;
    if (!out.listed) {
      log_error("reload ({}) skipped: {} cannot be read; the previous configuration stays in force", why,
                source.describe());
      return true;
    }
    size_t errors = 0;
    for (auto& d : out.diagnostics) errors += d.severity == Severity::Error;
    log_info("configuration {} ({}): {} ingresses, {} routes, {} errors, in {:.1f} ms", source.summary_verb(), why,
             store.snapshot()->count(model::Kind::Ingress), out.table ? out.table->route_count() : 0, errors, ms);
    return true;
  }

  // The first load, before serving (the cluster's waits for every informer's
  // first list).
  void start() {
    if (source.can_reload()) reload("start", ReloadTrigger::Start);
  }

  // Until SIGTERM or SIGINT.
  void run() {
    for (;;) {
      pollfd fds[2] = {{sfd, POLLIN, 0}, {source.fd(), POLLIN, 0}};
      int timeout = -1;
      if (int64_t due = source.reload_due_ms()) timeout = static_cast<int>(std::max<int64_t>(0, due - steady_ms()));
      int n = ::poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout);
      if (n < 0 && errno != EINTR) return;
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo si;
        bool stop = false;
        while (::read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            if (source.can_reload()) reload("SIGHUP", ReloadTrigger::Signal);
          } else {
            log_info("received {}, shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stop = true;
          }
        }
        if (stop) return;
      }
      if (fds[1].fd >= 0 && (fds[1].revents & POLLIN)) source.on_readable(store);
      if (int64_t due = source.reload_due_ms(); due && steady_ms() >= due) {
        int64_t now = steady_ms();
        if (const char* why = source.take_due(now); why && source.can_reload())
          source.change_reload_done(reload(why, ReloadTrigger::Change), now);
      }
    }
  }
};

}  // namespace

int run_serve(const ServeOptions& o) {
  // Signals are taken by the control loop through a signalfd; every thread
  // started below inherits this mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  // TLS: the context, a self-signed default certificate, and parsed
  // certificates reused across reloads.
  std::unique_ptr<tls::TlsServer> tls_server;
  tls::CertCache cert_cache;
  CertInputs cert_inputs;
  if (o.proxy.https_port) {
    std::string terr;
    cert_inputs.self_signed = tls::make_self_signed(terr);
    tls_server = std::make_unique<tls::TlsServer>();
    tls::TlsOptions to;
    to.offer_h2 = o.h2;
    if (!cert_inputs.self_signed || !tls_server->init(to, terr)) {
      log_error("TLS: {}", terr);
      return 1;
    }
    cert_inputs.default_secret = o.default_ssl_certificate;
    cert_inputs.cache = &cert_cache;
    if (o.default_ssl_certificate.empty())
      log_info("TLS: no --default-ssl-certificate given: clients whose server name (SNI) matches no Ingress's "
               "certificate get a self-signed certificate generated at start-up (serial {})",
               cert_inputs.self_signed->serial);
  }

  ObjectStore store;
  ConfigState state;
  state.set_proxy(o.proxy, tls_server != nullptr);
  TablePublisher publisher;
  std::unique_ptr<ConfigSource> source = make_config_source(o);
  ControlLoop control{o, sfd, *source, store, state, publisher, tls_server.get(), tls_server ? &cert_inputs : nullptr};

  std::string err;
  if (!source->start(err)) {
    log_error("{}", err);
    return 1;
  }
  control.start();
  state.set_start_time(unix_ms());

  AdminServer admin;
  WebhookServer webhook;
  admin.handle("/healthz", [](const std::string&, const std::string&) { return AdminResponse{200, "text/plain", "ok\n"}; });
  std::atomic<bool> shutting_down{false};
  admin.handle("/readyz", [&](const std::string&, const std::string&) {
    if (shutting_down) return AdminResponse{503, "text/plain", "shutting down\n"};
    return state.ready() ? AdminResponse{200, "text/plain", "ready\n"} : AdminResponse{503, "text/plain", "not ready\n"};
  });
  auto config_handler = [&](const std::string&, const std::string&) {
    return AdminResponse{200, "application/json", state.summary().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
  };
  admin.handle("/config", config_handler);
  admin.handle("/debug/config", config_handler);
  admin.handle("/debug/explain", [&](const std::string&, const std::string& q) {
    auto param = [&](const std::string& k) {
      for (auto kv : split(q, '&')) {
        size_t eq = kv.find('=');
        if (kv.substr(0, eq) == k && eq != std::string_view::npos) return percent_decode(kv.substr(eq + 1));
      }
      return std::string();
    };
    std::string url = param("url"), host = param("host");
    if (url.empty()) url = param("path");
    if (url.empty()) return AdminResponse{400, "text/plain", "usage: /debug/explain?url=http://HOST/PATH (or ?host=H&path=P)\n"};
    return AdminResponse{200, "application/json", state.explain(url, host).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
  });
  admin.handle("/debug/objects", [&](const std::string&, const std::string&) {
    return AdminResponse{200, "application/json", state.objects_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
  });
  admin.handle("/debug/routes", [&](const std::string&, const std::string& q) {
    if (q.find("format=json") != std::string::npos)
      return AdminResponse{200, "application/json", state.routes_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
    return AdminResponse{200, "text/plain; charset=utf-8", state.routes_text()};
  });

  AccessLog access_log;
  if (!access_log.open(o.access_log, o.access_log_format == "text" ? AccessLogFormat::Text : AccessLogFormat::Json,
                       o.access_log_sample, err)) {
    log_error("{}", err);
    return 1;
  }
  std::atomic<int> open_connections{0};
  int nworkers = o.proxy.workers > 0 ? o.proxy.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < nworkers; ++i) {
    workers.push_back(std::make_unique<Worker>(i, o.proxy, publisher));
    workers.back()->set_shared(&open_connections, &access_log);
    if (tls_server) workers.back()->set_tls(tls_server.get());
    if (!workers.back()->listen(err)) {
      log_error("{}", err);
      return 1;
    }
  }
  admin.handle("/metrics", [&](const std::string&, const std::string&) {
    std::string text = render_metrics(workers, state, access_log, tls_server.get());
    source->metrics(text);
    if (o.webhook_port) {
      text += "# HELP ingressd_admission_reviews_total Admission reviews answered, by verdict.\n"
              "# TYPE ingressd_admission_reviews_total counter\n";
      text += fmt::format("ingressd_admission_reviews_total{{result=\"allowed\"}} {}\n", webhook.reviews(true));
      text += fmt::format("ingressd_admission_reviews_total{{result=\"denied\"}} {}\n", webhook.reviews(false));
      text += fmt::format("ingressd_admission_reviews_total{{result=\"failed\"}} {}\n", webhook.failures());
    }
    return AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)};
  });
  if (!admin.start(o.admin_bind, o.admin_port, err)) {
    log_error("{}", err);
    return 1;
  }
  if (o.webhook_port) {
    if (!webhook.start(o.webhook_bind, o.webhook_port, o.webhook_cert_file, o.webhook_key_file,
                       [&state] { return state.live(); }, err)) {
      log_error("{}", err);
      return 1;
    }
    log_info("admission webhook on https://{}:{}", o.webhook_bind, o.webhook_port);
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  log_info("ingressd {} serving {} on http://{}:{}{} with {} worker(s); admin on http://{}:{}", INGRESSD_VERSION,
           source->describe(), o.proxy.bind, o.proxy.http_port,
           tls_server ? fmt::format(" and https://{}:{}", o.proxy.bind, o.proxy.https_port) : std::string(), nworkers,
           o.admin_bind, o.admin_port);

  control.run();  // until SIGTERM or SIGINT
  shutting_down = true;  // /readyz fails from now on
  if (o.shutdown_delay_ms > 0) {
    // Keep serving while load balancers notice; a second signal cuts it short.
    log_info("readiness off; still accepting for {} ms", o.shutdown_delay_ms);
    pollfd p{sfd, POLLIN, 0};
    ::poll(&p, 1, o.shutdown_delay_ms);
  }
  source->stop();  // operator mode: hands the lease over
  for (auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  admin.stop();
  webhook.stop();
  workers.clear();  // flushes their access-log buffers
  access_log.stop();
  log_info("stopped");
  return 0;
}

}  // namespace ingressd
