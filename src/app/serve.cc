// `ingressd serve`: wiring only. Control thread: file watcher, signals,
// reloads. Worker threads: the data plane. Admin thread: the admin port.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "app/config_state.h"
#include "app/kube_mode.h"
#include "core/log.h"
#include "core/strings.h"
#include "observe/admin_server.h"
#include "app/metrics_endpoint.h"
#include "proxy/table_publisher.h"
#include "proxy/worker.h"
#include "routing/dump.h"
#include "sources/file_source.h"
#include "tls/tls_server.h"

namespace ingressd {
namespace {

constexpr bool kHttp2Built = true;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void log_diagnostics(const Diagnostics& ds) {
  for (const auto& d : ds) {
    switch (d.severity) {
      case Severity::Error: log_error("{}", d.str()); break;
      case Severity::Warning: log_warn("{}", d.str()); break;
      case Severity::Info: log_info("{}", d.str()); break;
    }
  }
}

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
    to.offer_h2 = o.h2 && kHttp2Built;
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
  ManifestCache cache;
  ConfigState state;
  state.set_proxy(o.proxy, tls_server != nullptr);
  TablePublisher publisher;

  FileWatcher watcher(o.kube.enabled() ? std::string() : o.manifests);
  int deferrals = 0;  // file-change reloads in a row that found files changing under them
  // Returns false when a file changed while it was being read (nothing applied).
  auto reload = [&](const char* why, bool check_settled) {
    auto t0 = std::chrono::steady_clock::now();
    std::function<bool(int64_t, bool)> settled;
    uint64_t changes_before = 0;
    const char* unsettled = "";
    if (check_settled && watcher.fd() >= 0) {
      watcher.drain();
      changes_before = watcher.changes();
      // A file truncated and rewritten in place can be read empty or half
      // written. Not settled: an event came while reading, a writer still has a
      // file open, or a file was modified in the last 50 ms (the kernel changes
      // a file a moment before it queues the event that says so).
      // A file that became empty is most likely a writer between truncating
      // and writing: wait for it up to 10 attempts (about a second), then
      // believe it.
      settled = [&](int64_t newest_mtime_ns, bool emptied) {
        watcher.drain();
        if (emptied && deferrals < 10) unsettled = "a manifest that had objects reads empty (a writer between truncating and writing?)";
        else if (watcher.changes() != changes_before) unsettled = "a manifest changed while it was read";
        else if (watcher.writes_in_progress()) unsettled = "a manifest is open for writing";
        else if (newest_mtime_ns >= unix_ms() * 1'000'000 - 50'000'000) unsettled = "a manifest was modified in the last 50 ms";
        else return true;
        return false;
      };
    }
    LoadOutcome out =
        load_and_compile(o.manifests, store, o.compile, &cache, tls_server ? &cert_inputs : nullptr, settled);
    if (out.deferred) {
      log_debug("reload ({}) deferred: {}", why, unsettled);
      return false;
    }
    log_diagnostics(out.diagnostics);
    if (out.certs && tls_server) tls_server->publish(out.certs);  // before the table: its hosts may redirect to https
    if (out.table) publisher.publish(out.table);
    state.record(out, store.snapshot(), o.compile, unix_ms());
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count() / 1000.0;
    if (!out.listed) {
      log_error("reload ({}) skipped: {} cannot be read; the previous configuration stays in force", why, o.manifests);
      return true;
    }
    size_t errors = 0;
    for (auto& d : out.diagnostics) errors += d.severity == Severity::Error;
    log_info("configuration loaded ({}): {} ingresses, {} routes, {} errors, in {:.1f} ms", why,
             store.snapshot()->count(model::Kind::Ingress), out.table ? out.table->route_count() : 0, errors, ms);
    return true;
  };

  // Operator mode: the API server instead of files (docs/operator.md).
  // Nothing is compiled until every informer has listed once: until then
  // /readyz says not ready and no route exists.
  std::unique_ptr<KubeMode> kube;
  std::chrono::steady_clock::time_point kube_oldest{};
  auto kube_reload = [&](const char* why) {
    auto t0 = std::chrono::steady_clock::now();
    store.commit();
    LoadOutcome out;
    out.diagnostics = kube->invalid_objects();  // objects in the cluster we could not decode
    compile_into(*store.snapshot(), o.compile, tls_server ? &cert_inputs : nullptr, out);
    log_diagnostics(out.diagnostics);
    if (out.certs && tls_server) tls_server->publish(out.certs);  // before the table, as in file mode
    if (out.table) publisher.publish(out.table);
    auto published = std::chrono::steady_clock::now();
    state.record(out, store.snapshot(), o.compile, unix_ms());
    kube->after_compile(out, *store.snapshot(), published - kube_oldest);
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count() / 1000.0;
    size_t errors = 0;
    for (auto& d : out.diagnostics) errors += d.severity == Severity::Error;
    log_info("configuration compiled ({}): {} ingresses, {} routes, {} errors, in {:.1f} ms", why,
             store.snapshot()->count(model::Kind::Ingress), out.table ? out.table->route_count() : 0, errors, ms);
  };

  std::string err;
  if (o.kube.enabled()) {
    kube = std::make_unique<KubeMode>(o);
    if (!kube->start(err)) {
      log_error("{}", err);
      return 1;
    }
  } else {
    if (!watcher.start(err)) log_warn("file watching is off: {}", err);
    reload("start", false);
  }
  state.set_start_time(unix_ms());

  AdminServer admin;
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
    if (kube) kube->metrics(text);
    return AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)};
  });
  if (!admin.start(o.admin_bind, o.admin_port, err)) {
    log_error("{}", err);
    return 1;
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  log_info("ingressd {} serving {} on http://{}:{}{} with {} worker(s); admin on http://{}:{}", INGRESSD_VERSION,
           kube ? kube->describe() : o.manifests, o.proxy.bind, o.proxy.http_port,
           tls_server ? fmt::format(" and https://{}:{}", o.proxy.bind, o.proxy.https_port) : std::string(), nworkers,
           o.admin_bind, o.admin_port);

  // Control loop.
  int64_t reload_at = 0;         // pending reload (steady ms), 0 = none
  int64_t first_change_at = 0;   // start of the current burst
  auto steady_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  int exit_code = 0;
  for (;;) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {kube ? kube->fd() : watcher.fd(), POLLIN, 0}};
    int timeout = -1;
    if (reload_at) timeout = static_cast<int>(std::max<int64_t>(0, reload_at - steady_ms()));
    int n = ::poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      bool stop = false;
      while (::read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
          if (!kube) reload("SIGHUP", false);
          else if (kube->synced()) kube_reload("SIGHUP");
        } else {
          log_info("received {}, shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
          stop = true;
        }
      }
      if (stop) break;
    }
    if (kube && (fds[1].revents & POLLIN)) {
      std::chrono::steady_clock::time_point oldest;
      if (kube->drain_into(store, oldest)) {
        int64_t now = steady_ms();
        if (!reload_at) {
          first_change_at = now;
          kube_oldest = oldest;
        } else if (oldest < kube_oldest) {
          kube_oldest = oldest;
        }
        // A short hold-off: a burst of events (a relist, kubectl apply of
        // many objects) becomes one rebuild, and one event still reaches the
        // table within a few tens of milliseconds.
        reload_at = std::min(now + o.kube.holdoff_ms, first_change_at + 10 * o.kube.holdoff_ms);
      }
    }
    if (kube && reload_at && steady_ms() >= reload_at) {
      reload_at = 0;
      if (kube->synced()) kube_reload("cluster change");
    }
    if (!kube && watcher.fd() >= 0 && (fds[1].revents & POLLIN) && watcher.drain()) {
      int64_t now = steady_ms();
      if (!reload_at) first_change_at = now;
      // Hold off until the burst is quiet, but never longer than 10 hold-offs.
      reload_at = std::min(now + o.reload_holdoff_ms, first_change_at + 10 * o.reload_holdoff_ms);
    }
    if (!kube && reload_at && steady_ms() >= reload_at) {
      int64_t now = steady_ms();
      if (watcher.writes_in_progress() && now < first_change_at + 20 * o.reload_holdoff_ms) {
        // A file is being rewritten in place: wait for its writer to close it
        // (for at most 20 hold-offs, in case a writer keeps it open).
        reload_at = now + o.reload_holdoff_ms;
      } else if (reload("file change", true)) {
        reload_at = 0;
        deferrals = 0;
      } else {
        // A file changed while it was read: the previous configuration stays until a quiet read. The
        // retry is jittered so that it does not fall into step with a writer working on a fixed period.
        reload_at = now + o.reload_holdoff_ms / 2 + static_cast<int64_t>(std::rand() % (o.reload_holdoff_ms + 1));
        if (++deferrals % 50 == 0)
          log_warn("manifests keep changing while being read ({} attempts); the previous configuration stays in "
                   "force until a quiet moment (write files elsewhere and rename them in to avoid this)", deferrals);
      }
    }
  }
  shutting_down = true;  // /readyz fails from now on
  if (o.shutdown_delay_ms > 0) {
    // Keep serving while load balancers notice; a second signal cuts it short.
    log_info("readiness off; still accepting for {} ms", o.shutdown_delay_ms);
    pollfd p{sfd, POLLIN, 0};
    ::poll(&p, 1, o.shutdown_delay_ms);
  }
  if (kube) kube->stop();  // hands the lease over
  for (auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  admin.stop();
  workers.clear();  // flushes their access-log buffers
  access_log.stop();
  log_info("stopped");
  return exit_code;
}

}  // namespace ingressd
