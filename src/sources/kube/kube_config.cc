#include "sources/kube/kube_config.h"

#include <signal.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"
#include "core/strings.h"

extern char** environ;

namespace ingressd::kube {
namespace {

std::string str(const YAML::Node& n, const char* key) {
  const YAML::Node v = n[key];
  return (v && v.IsScalar()) ? v.Scalar() : std::string();
}

std::string resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || base_dir.empty()) return p;
  return base_dir + "/" + p;
}

// The entry `name` of a kubeconfig list (clusters, users, contexts): its inner map.
std::optional<YAML::Node> named(const YAML::Node& root, const char* list, const char* inner, const std::string& name) {
  const YAML::Node l = root[list];
  if (!l || !l.IsSequence()) return std::nullopt;
  for (size_t i = 0; i < l.size(); ++i) {
    const YAML::Node e = l[i];
    if (e.IsMap() && str(e, "name") == name) {
      const YAML::Node v = e[inner];
      return v && v.IsMap() ? v : YAML::Node(YAML::NodeType::Map);
    }
  }
  return std::nullopt;
}

int64_t now_unix_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace


std::optional<std::string> read_small_file(const std::string& path, std::string& err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    err = fmt::format("cannot read {}", path);
    return std::nullopt;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<KubeConfig> parse_kubeconfig(std::string_view text, const std::string& context,
                                           const std::string& base_dir, std::string& err) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    err = fmt::format("kubeconfig: {}", e.what());
    return std::nullopt;
  }
  if (!root || !root.IsMap()) {
    err = "kubeconfig: not a map";
    return std::nullopt;
  }
  KubeConfig c;
  c.context = context.empty() ? str(root, "current-context") : context;
  if (c.context.empty()) {
    err = "kubeconfig: no current-context, and no --context given";
    return std::nullopt;
  }
  auto ctx_n = named(root, "contexts", "context", c.context);
  if (!ctx_n) {
    err = fmt::format("kubeconfig: context \"{}\" not found", c.context);
    return std::nullopt;
  }
  const YAML::Node ctx = *ctx_n;
  std::string cluster_name = str(ctx, "cluster"), user_name = str(ctx, "user");
  c.namespace_ = str(ctx, "namespace");
  auto cl_n = named(root, "clusters", "cluster", cluster_name);
  if (!cl_n) {
    err = fmt::format("kubeconfig: cluster \"{}\" (of context \"{}\") not found", cluster_name, c.context);
    return std::nullopt;
  }
  const YAML::Node cl = *cl_n;
  c.server = str(cl, "server");
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (c.server.empty()) {
    err = fmt::format("kubeconfig: cluster \"{}\" has no server", cluster_name);
    return std::nullopt;
  }
  c.ca_file = resolve(base_dir, str(cl, "certificate-authority"));
  if (auto d = str(cl, "certificate-authority-data"); !d.empty()) {
    auto pem = base64_decode(d);
    if (!pem) {
      err = "kubeconfig: certificate-authority-data is not base64";
      return std::nullopt;
    }
    c.ca_pem = *pem;
  }
  c.insecure_skip_tls_verify = str(cl, "insecure-skip-tls-verify") == "true";
  c.tls_server_name = str(cl, "tls-server-name");
  if (!user_name.empty()) {
    auto u_n = named(root, "users", "user", user_name);
    if (!u_n) {
      err = fmt::format("kubeconfig: user \"{}\" (of context \"{}\") not found", user_name, c.context);
      return std::nullopt;
    }
    const YAML::Node u = *u_n;
    c.token = str(u, "token");
    c.token_file = resolve(base_dir, str(u, "tokenFile"));
    c.client_cert_file = resolve(base_dir, str(u, "client-certificate"));
    c.client_key_file = resolve(base_dir, str(u, "client-key"));
    for (auto [key, out] : {std::pair{"client-certificate-data", &c.client_cert_pem},
                            std::pair{"client-key-data", &c.client_key_pem}}) {
      if (auto d = str(u, key); !d.empty()) {
        auto pem = base64_decode(d);
        if (!pem) {
          err = fmt::format("kubeconfig: {} is not base64", key);
          return std::nullopt;
        }
        *out = *pem;
      }
    }
    if (const YAML::Node ex = u["exec"]; ex && ex.IsMap()) {
      ExecConfig e;
      e.api_version = str(ex, "apiVersion");
      e.command = str(ex, "command");
      if (ex["args"] && ex["args"].IsSequence())
        for (size_t i = 0; i < ex["args"].size(); ++i) e.args.push_back(ex["args"][i].Scalar());
      if (ex["env"] && ex["env"].IsSequence())
        for (size_t i = 0; i < ex["env"].size(); ++i) e.env.emplace_back(str(ex["env"][i], "name"), str(ex["env"][i], "value"));
      if (e.command.empty()) {
        err = fmt::format("kubeconfig: user \"{}\": exec has no command", user_name);
        return std::nullopt;
      }
      // A command with a slash is relative to the kubeconfig (client-go does the same).
      if (e.command.find('/') != std::string::npos) e.command = resolve(base_dir, e.command);
      c.exec = std::move(e);
    }
  }
  return c;
}

std::optional<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context, std::string& err) {
  auto text = read_small_file(path, err);
  if (!text) return std::nullopt;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  return parse_kubeconfig(*text, context, dir, err);
}

bool in_cluster_available(const std::string& sa_dir) {
  return std::getenv("KUBERNETES_SERVICE_HOST") && std::getenv("KUBERNETES_SERVICE_PORT") &&
         ::access((sa_dir + "/token").c_str(), R_OK) == 0;
}

std::optional<KubeConfig> in_cluster_config(std::string& err, const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port || !*host || !*port) {
    err = "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod?)";
    return std::nullopt;
  }
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = fmt::format("https://{}:{}", h, port);
  c.token_file = sa_dir + "/token";
  c.ca_file = sa_dir + "/ca.crt";
  c.context = "in-cluster";
  if (::access(c.token_file.c_str(), R_OK) != 0) {
    err = fmt::format("in-cluster: cannot read {}", c.token_file);
    return std::nullopt;
  }
  std::string ignored;
  if (auto ns = read_small_file(sa_dir + "/namespace", ignored)) c.namespace_ = std::string(trim_ows(*ns));
  while (!c.namespace_.empty() && (c.namespace_.back() == '\n' || c.namespace_.back() == '\r')) c.namespace_.pop_back();
  return c;
}

std::optional<ExecCredential> parse_exec_credential(std::string_view json_text, std::string& err) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    err = "exec plugin: output is not a JSON object";
    return std::nullopt;
  }
  if (!j.contains("kind") || j["kind"] != "ExecCredential") {
    err = "exec plugin: output is not an ExecCredential";
    return std::nullopt;
  }
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) {
    err = "exec plugin: ExecCredential has no status";
    return std::nullopt;
  }
  ExecCredential c;
  auto get = [&](const char* k) {
    auto it = st->find(k);
    return it != st->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  c.token = get("token");
  c.client_cert_pem = get("clientCertificateData");
  c.client_key_pem = get("clientKeyData");
  if (c.token.empty() && c.client_cert_pem.empty()) {
    err = "exec plugin: ExecCredential status has neither token nor clientCertificateData";
    return std::nullopt;
  }
  std::string exp = get("expirationTimestamp");
  if (!exp.empty()) {
    auto ns = parse_rfc3339_ns(exp);
    if (!ns) {
      err = fmt::format("exec plugin: bad expirationTimestamp \"{}\"", exp);
      return std::nullopt;
    }
    c.expires_unix_s = *ns / 1000000000;
  }
  return c;
}

std::string Credentials::bearer(std::string& err) {
  std::lock_guard<std::mutex> g(mu_);
  if (cfg_.exec) {
    if (expires_unix_s_ >= 0 && (expires_unix_s_ == 0 || now_unix_s() < expires_unix_s_ - 10)) return cached_;
    return run_exec(err);
  }
  if (!cfg_.token_file.empty()) {
    struct stat st {};
    if (::stat(cfg_.token_file.c_str(), &st) != 0) {
      err = fmt::format("cannot stat token file {}", cfg_.token_file);
      return cached_;  // keep using the last token
    }
    int64_t mt = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (mt != file_mtime_ns_ || st.st_size != file_size_) {
      auto t = read_small_file(cfg_.token_file, err);
      if (t) {
        std::string tok(trim_ows(*t));
        while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r')) tok.pop_back();
        if (!cached_.empty() && tok != cached_) log_info("kube: token file {} changed; using the new token", cfg_.token_file);
        cached_ = tok;
        file_mtime_ns_ = mt;
        file_size_ = st.st_size;
      }
    }
    return cached_;
  }
  return cfg_.token;
}

void Credentials::invalidate() {
  std::lock_guard<std::mutex> g(mu_);
  file_mtime_ns_ = -1;
  expires_unix_s_ = -1;
}

// Runs the plugin with KUBERNETES_EXEC_INFO set, reads its stdout (bounded:
// 1 MiB, 30 s), and parses the ExecCredential. Called with mu_ held.
std::string Credentials::run_exec(std::string& err) {
  const ExecConfig& e = *cfg_.exec;
  std::string api = e.api_version.empty() ? "client.authentication.k8s.io/v1" : e.api_version;
  std::string info = fmt::format(R"({{"apiVersion":"{}","kind":"ExecCredential","spec":{{"interactive":false}}}})", api);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    err = "exec plugin: pipe failed";
    return cached_;
  }
  std::vector<std::string> envs;
  for (char** p = environ; *p; ++p) envs.emplace_back(*p);
  for (auto& [k, v] : e.env) envs.push_back(k + "=" + v);
  envs.push_back("KUBERNETES_EXEC_INFO=" + info);
  std::vector<char*> envp, argv;
  for (auto& s : envs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string cmd = e.command;
  std::vector<std::string> args = e.args;
  argv.push_back(cmd.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    err = "exec plugin: fork failed";
    return cached_;
  }
  if (pid == 0) {
    // The child starts with our signal setup (SIGTERM/SIGINT/SIGHUP blocked
    // for the signalfd, SIGPIPE ignored): give the plugin the defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(out[1], 1);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvpe(cmd.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char tmp[4096];
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0 || buf.size() > (1 << 20)) break;
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::read(out[0], tmp, sizeof tmp);
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 500 && done == 0; ++i) {  // its stdout is closed: it should exit at once (5 s at most)
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) ::usleep(10000);
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    err = fmt::format("exec plugin {} timed out", e.command);
    return cached_;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    err = fmt::format("exec plugin {} failed (status {})", e.command, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return cached_;
  }
  auto cred = parse_exec_credential(buf, err);
  if (!cred) return cached_;
  cached_ = cred->token;
  expires_unix_s_ = cred->expires_unix_s;
  return cached_;
}

}  // namespace ingressd::kube
