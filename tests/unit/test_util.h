// Helpers shared by the unit tests: manifests in, objects/tables out.
#pragma once
#include <string>
#include <vector>

#include "model/decode.h"
#include "routing/compile.h"
#include "routing/path.h"
#include "sources/object_store.h"

namespace ingressd::testing {

inline std::vector<LoadedFile> files_from(const std::vector<std::pair<std::string, std::string>>& named_texts) {
  std::vector<LoadedFile> out;
  for (auto& [name, text] : named_texts) {
    LoadedFile f;
    f.path = name;
    f.decoded = model::decode_manifests(text, name);
    out.push_back(std::move(f));
  }
  return out;
}

struct Compiled {
  ObjectStore store;
  Diagnostics load_diags;
  routing::CompileResult result;
};

inline std::unique_ptr<Compiled> compile_texts(const std::vector<std::pair<std::string, std::string>>& named_texts,
                                               routing::CompileOptions opts = {}) {
  auto c = std::make_unique<Compiled>();
  c->load_diags = c->store.replace_from_files(files_from(named_texts));
  c->result = routing::compile(*c->store.snapshot(), opts);
  return c;
}

inline std::unique_ptr<Compiled> compile_text(const std::string& text, routing::CompileOptions opts = {}) {
  return compile_texts({{"test.yaml", text}}, opts);
}

// The service a request reaches ("404" when none), after the proxy's own normalisation.
inline std::string route(const routing::RouteTable& t, std::string_view host, std::string_view path) {
  std::string h, p;
  if (!routing::normalize_host(host, h)) return "bad-host";
  switch (routing::normalize_path(path, p)) {
    case routing::PathVerdict::Unchanged: p = std::string(path); break;
    case routing::PathVerdict::Ok: break;
    default: return "400";
  }
  routing::Match m = t.match(h, p);
  return m.backend ? m.backend->service : "404";
}

// A Service named `name` with port 8080 → targetPort 8080 and an EndpointSlice with one ready endpoint.
inline std::string service(const std::string& name, const std::string& ns = "default", const std::string& ip = "10.0.0.1") {
  return "---\napiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: " + ns +
         "}\nspec:\n  ports: [{name: http, port: 8080, targetPort: 8080}]\n---\napiVersion: discovery.k8s.io/v1\n"
         "kind: EndpointSlice\nmetadata: {name: " + name + "-x, namespace: " + ns +
         ", labels: {kubernetes.io/service-name: " + name + "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\n"
         "endpoints: [{addresses: [\"" + ip + "\"], conditions: {ready: true}}]\n";
}

}  // namespace ingressd::testing
