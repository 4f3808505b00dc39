// Where the API server is and how to authenticate to it: from a kubeconfig
// file (current context or a named one) or from the in-cluster service account.
// Credentials (bearer tokens) are fetched through a Credentials object that
// re-reads a rotated token file and runs exec credential plugins, caching
// their token until it expires.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingressd::kube {

// users[].user.exec: a client.authentication.k8s.io credential plugin.
struct ExecConfig {
  std::string api_version;  // client.authentication.k8s.io/v1 (or v1beta1)
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
};

struct KubeConfig {
  std::string server;               // https://host:port (no trailing slash)
  std::string ca_file, ca_pem;      // certificate-authority (path) / -data (decoded PEM)
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string token;                // a static bearer token
  std::string token_file;           // re-read when it changes (service-account tokens rotate)
  std::string client_cert_file, client_cert_pem;
  std::string client_key_file, client_key_pem;
  std::optional<ExecConfig> exec;
  std::string namespace_;           // the context's namespace, or the pod's namespace in-cluster
  std::string context;              // the context used, for messages
};

// Parses kubeconfig text. `context` empty = current-context. Relative paths
// are taken relative to `base_dir` (the kubeconfig's folder), as kubectl does.
std::optional<KubeConfig> parse_kubeconfig(std::string_view text, const std::string& context,
                                           const std::string& base_dir, std::string& err);
std::optional<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context, std::string& err);

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT, and the token,
// ca.crt and namespace under `sa_dir`.
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
std::optional<KubeConfig> in_cluster_config(std::string& err, const std::string& sa_dir = kServiceAccountDir);
bool in_cluster_available(const std::string& sa_dir = kServiceAccountDir);

// A parsed ExecCredential (status.token, status.expirationTimestamp).
struct ExecCredential {
  std::string token;
  std::string client_cert_pem, client_key_pem;
  int64_t expires_unix_s = 0;  // 0 = does not expire
};
std::optional<ExecCredential> parse_exec_credential(std::string_view json_text, std::string& err);

// Thread-safe source of the bearer token for each request.
class Credentials {
 public:
  explicit Credentials(const KubeConfig& cfg) : cfg_(cfg) {}
  // The token to send ("" = none). Cached; a token file is re-read when its
  // modification time or size changes, an exec plugin is run again when its
  // credential is within 10 s of expiry.
  std::string bearer(std::string& err);
  // After a 401: forget the cached token so that the next call fetches anew.
  void invalidate();

 private:
  std::string run_exec(std::string& err);
  const KubeConfig& cfg_;
  std::mutex mu_;
  std::string cached_;
  int64_t file_mtime_ns_ = -1, file_size_ = -1;
  int64_t expires_unix_s_ = -1;  // exec: -1 = nothing cached
};

std::optional<std::string> read_small_file(const std::string& path, std::string& err);

}  // namespace ingressd::kube
