// The validating admission webhook: the API server asks, before it stores an
// Ingress (or a Gateway API object), whether ingressd would take it; ingressd
// answers with the same decode, validation and compile that `check` runs,
// against the objects it serves now (the live store). So `kubectl apply` of
// an Ingress that is invalid, that would take a path another Ingress already
// has, or that carries a refused annotation fails at apply time with the
// message `check` prints, instead of being stored and then reported.
//
// AdmissionReview (admission.k8s.io/v1): the request's uid is echoed, and a
// denial carries a metav1.Status (code 400, reason BadRequest) whose message
// the API server prefixes with `admission webhook "NAME" denied the request:`.
// Warnings (a backend Service that does not exist yet, an annotation that is
// approximated) are allowed and returned as `warnings`, which kubectl prints
// as "Warning: ...".
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "model/snapshot.h"
#include "routing/compile.h"

namespace ingressd {

struct AdmissionVerdict {
  bool allowed = true;
  std::string message;                // why not (one line per diagnostic)
  std::vector<std::string> warnings;  // shown by kubectl, the object is stored
};

// The verdict for one AdmissionRequest (the `request` member of an
// AdmissionReview) against the objects in force. Pure.
AdmissionVerdict review_admission(const nlohmann::json& request, const Snapshot& live,
                                  const routing::CompileOptions& opts);

// The AdmissionReview to answer with (apiVersion and kind of the question,
// the request's uid), or a 400 body text in `err` when `review` is not an
// AdmissionReview.
std::optional<nlohmann::json> answer_admission_review(const nlohmann::json& review, const Snapshot& live,
                                                      const routing::CompileOptions& opts, std::string& err);

// HTTPS for the API server: one thread accepting, one short-lived thread per
// connection (at most kMaxConnections; more are closed), POST of an
// AdmissionReview to any path. The certificate and key are read from files
// (a mounted Secret) and read again when either file changes, so a rotated
// certificate is used without a restart.
class WebhookServer {
 public:
  // The live store and the options compile() uses, as of the last reload.
  using LiveFn = std::function<std::pair<std::shared_ptr<const Snapshot>, routing::CompileOptions>()>;
  static constexpr int kMaxConnections = 32;

  ~WebhookServer();
  bool start(const std::string& bind, uint16_t port, const std::string& cert_file, const std::string& key_file,
             LiveFn live, std::string& err);
  void stop();
  uint64_t reviews(bool allowed) const { return allowed ? allowed_ : denied_; }
  uint64_t failures() const { return failures_; }

 private:
  struct Tls;
  void loop();
  void serve(int fd);
  bool load_certificate(std::string& err);
  std::shared_ptr<Tls> current_tls();

  std::string cert_file_, key_file_;
  LiveFn live_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;  // guards tls_, cert_mtime_, key_mtime_, checked_ms_
  std::shared_ptr<Tls> tls_;
  int64_t cert_mtime_ = 0, key_mtime_ = 0, checked_ms_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<uint64_t> allowed_{0}, denied_{0}, failures_{0};
};

}  // namespace ingressd
