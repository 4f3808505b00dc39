// Fuzzes model::decode_manifests (src/model/decode.h): YAML (multi-document)
// or JSON text, Lists, every kind ingressd reads, schema checks and
// validation. An exception escaping decode_manifests is a crash (the program
// has no handler above it).
//
// Invariants (a violation traps):
//  - a DecodedObject has errors exactly when it has no object;
//  - a decoded object's key is its identity (object_key), with a name;
//  - every diagnostic is an error naming the file, with a reason and a message;
//  - a decoded Ingress has absolute Exact/Prefix paths and hosts without
//    upper case, ports or spaces (the route table and the proxy rely on it).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "model/decode.h"

using namespace ingressd;

namespace {

const std::string kFile = "fuzz.yaml";

void check_diag(const Diagnostic& d) {
  FUZZ_CHECK(d.severity == Severity::Error);
  FUZZ_CHECK(d.file == kFile);
  FUZZ_CHECK(d.line >= 0);
  FUZZ_CHECK(!d.reason.empty() && !d.message.empty());
}

bool host_ok(const std::string& h) {
  for (char c : h) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || (c >= 'A' && c <= 'Z') || c == ':' || c == '/' || c == '@') return false;
  }
  return true;
}

void check_ingress(const model::Ingress& ing) {
  for (const auto& r : ing.rules) {
    FUZZ_CHECK(host_ok(r.host));
    if (r.host.find('*') != std::string::npos) FUZZ_CHECK(r.host.size() > 2 && r.host.compare(0, 2, "*.") == 0);
    for (const auto& p : r.paths) {
      if (p.path_type != model::PathType::ImplementationSpecific)
        FUZZ_CHECK(!p.path.empty() && p.path[0] == '/');
      else
        FUZZ_CHECK(p.path.empty() || p.path[0] == '/');
      FUZZ_CHECK(p.backend.service.has_value() != p.backend.resource.has_value());
    }
  }
  if (ing.rules.empty()) FUZZ_CHECK(ing.default_backend.has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t len) {
  std::string_view text(reinterpret_cast<const char*>(d), len);
  model::DecodeResult r = model::decode_manifests(text, kFile);
  for (const Diagnostic& diag : r.file_errors) check_diag(diag);
  for (const model::DecodedObject& o : r.objects) {
    FUZZ_CHECK(o.errors.empty() == o.object.has_value());
    FUZZ_CHECK(o.pos.file == kFile);
    for (const Diagnostic& diag : o.errors) check_diag(diag);
    if (!o.object) continue;
    FUZZ_CHECK(o.key.has_value());
    model::ObjectKey k = model::object_key(*o.object);
    FUZZ_CHECK(k == *o.key);
    FUZZ_CHECK(!k.name.empty());
    if (const auto* ing = std::get_if<model::Ingress>(&*o.object)) check_ingress(*ing);
  }
  return 0;
}
