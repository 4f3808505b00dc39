#include <gtest/gtest.h>

#include "model/decode.h"

using namespace ingressd;
using namespace ingressd::model;

namespace {

DecodeResult decode(const std::string& s, const std::string& file = "m.yaml") { return decode_manifests(s, file); }

std::string first_error(const DecodeResult& r) {
  for (auto& o : r.objects)
    if (!o.errors.empty()) return o.errors.front().message;
  if (!r.file_errors.empty()) return r.file_errors.front().message;
  return "";
}

const char* kSeedV1 = R"(# simple-ingress.yaml v1
apiVersion: networking.k8s.io/v1
kind: ingress
metadata:
  name: simple-ingress
spec:
  service:
    name: alpaca
    port:
      number: 8080
)";

const char* kSeedV2 = R"(# simple-ingress.yaml v2
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: simple-ingress
spec:
  service:
    name: alpaca
    port:
      number: 8080
)";

std::string ingress_with_path(const std::string& path_block) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: t\nspec:\n  rules:\n  - host: a.example.com\n"
         "    http:\n      paths:\n" + path_block;
}

}  // namespace

TEST(Decode, SeedUnknownKindGivesApiServerMessage) {
  auto r = decode(kSeedV1, "simple-ingress-v1.yaml");
  ASSERT_EQ(r.objects.size(), 1u);
  ASSERT_FALSE(r.objects[0].object);
  const Diagnostic& d = r.objects[0].errors.at(0);
  EXPECT_EQ(d.message, "no kind \"ingress\" is registered for version \"networking.k8s.io/v1\"");
  EXPECT_EQ(d.file, "simple-ingress-v1.yaml");
  EXPECT_EQ(d.line, 3);
  EXPECT_NE(d.str().find("simple-ingress-v1.yaml:3:"), std::string::npos);
}

TEST(Decode, SeedUnknownFieldIsStrictDecodingError) {
  auto r = decode(kSeedV2, "simple-ingress-v2.yaml");
  ASSERT_FALSE(r.objects.at(0).object);
  const Diagnostic& d = r.objects[0].errors.at(0);
  EXPECT_EQ(d.message, "strict decoding error: unknown field \"spec.service\"");
  EXPECT_EQ(d.line, 7);
  EXPECT_EQ(d.object, "Ingress default/simple-ingress");
}

TEST(Decode, SeveralUnknownFieldsInOneMessage) {
  auto r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a, bogus: 1}\nspec: {ports: [{port: 80, extra: x}]}\n");
  EXPECT_EQ(first_error(r), "strict decoding error: unknown field \"metadata.bogus\", unknown field \"spec.ports[0].extra\"");
}

TEST(Decode, WorkingSeedIngress) {
  auto r = decode(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: simple-ingress
spec:
  defaultBackend:
    service:
      name: alpaca
      port:
        number: 8080
)");
  ASSERT_TRUE(r.objects.at(0).object);
  const auto& ing = std::get<Ingress>(*r.objects[0].object);
  EXPECT_EQ(ing.meta.namespace_, "default");
  ASSERT_TRUE(ing.default_backend);
  EXPECT_EQ(ing.default_backend->service->name, "alpaca");
  EXPECT_EQ(*ing.default_backend->service->port.number, 8080);
}

TEST(Decode, WrongTypeIsRejected) {
  auto r = decode(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: x}
spec:
  defaultBackend:
    service:
      name: alpaca
      port:
        number: "8080"
)");
  std::string e = first_error(r);
  EXPECT_NE(e.find("cannot unmarshal string into Go struct field spec.defaultBackend.service.port.number of type int32"),
            std::string::npos)
      << e;
  EXPECT_EQ(r.objects[0].errors[0].line, 9);
}

TEST(Decode, NumberForStringFieldIsRejected) {
  auto r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a, labels: {x: 1}}\n");
  EXPECT_NE(first_error(r).find("cannot unmarshal number into Go struct field metadata.labels.x of type string"),
            std::string::npos) << first_error(r);
}

TEST(Decode, UnknownApiVersion) {
  auto r = decode("apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: a}\n");
  EXPECT_EQ(first_error(r), "no kind \"Ingress\" is registered for version \"networking.k8s.io/v1beta1\"");
}

TEST(Decode, MissingKindAndApiVersion) {
  auto r = decode("metadata: {name: a}\n");
  EXPECT_EQ(first_error(r), "error validating data: [apiVersion not set, kind not set]");
}

TEST(Decode, DuplicateField) {
  auto r = decode("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n");
  EXPECT_NE(first_error(r).find("duplicate field \"metadata.name\""), std::string::npos) << first_error(r);
}

TEST(Validate, PathTypeRequired) {
  auto r = decode(ingress_with_path("      - path: /\n        backend: {service: {name: a, port: {number: 80}}}\n"));
  EXPECT_EQ(first_error(r),
            "Ingress.networking.k8s.io \"t\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType "
            "must be specified");
  EXPECT_EQ(r.objects[0].errors[0].line, 10);
}

TEST(Validate, PathTypeUnsupported) {
  auto r = decode(ingress_with_path("      - path: /\n        pathType: Regex\n        backend: {service: {name: a, port: {number: 80}}}\n"));
  EXPECT_NE(first_error(r).find("Unsupported value: \"Regex\""), std::string::npos) << first_error(r);
}

TEST(Validate, PathMustBeAbsolute) {
  auto r = decode(ingress_with_path("      - path: foo\n        pathType: Prefix\n        backend: {service: {name: a, port: {number: 80}}}\n"));
  EXPECT_NE(first_error(r).find("spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path"),
            std::string::npos) << first_error(r);
}

TEST(Validate, PathInvalidSequences) {
  for (std::string p : {"/a//b", "/a/./b", "/a/../b", "/a%2fb", "/a/..", "/a/."}) {
    auto r = decode(ingress_with_path("      - path: " + p + "\n        pathType: Exact\n        backend: {service: {name: a, port: {number: 80}}}\n"));
    EXPECT_FALSE(r.objects.at(0).object) << p;
  }
}

TEST(Validate, Hosts) {
  auto with_host = [](const std::string& h) {
    return decode("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t}\nspec:\n  rules:\n  - host: \"" + h +
                  "\"\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}\n");
  };
  EXPECT_TRUE(with_host("foo.bar.com").objects[0].object);
  EXPECT_TRUE(with_host("*.foo.com").objects[0].object);
  EXPECT_NE(first_error(with_host("1.2.3.4")).find("must be a DNS name, not an IP address"), std::string::npos);
  EXPECT_NE(first_error(with_host("::1")).find("must be a DNS name, not an IP address"), std::string::npos);
  EXPECT_FALSE(with_host("*").objects[0].object);
  EXPECT_FALSE(with_host("foo.*.com").objects[0].object);
  EXPECT_FALSE(with_host("*.*.foo.com").objects[0].object);
  EXPECT_FALSE(with_host("Foo.com").objects[0].object);
  EXPECT_FALSE(with_host("foo.com:80").objects[0].object);
  EXPECT_FALSE(with_host("foo.com.").objects[0].object);
}

TEST(Validate, BackendServiceXorResource) {
  auto r = decode(ingress_with_path(
      "      - path: /\n        pathType: Prefix\n        backend:\n          service: {name: a, port: {number: 80}}\n"
      "          resource: {kind: Bucket, name: b}\n"));
  EXPECT_NE(first_error(r).find("cannot set both resource and service backends"), std::string::npos) << first_error(r);
  r = decode(ingress_with_path("      - path: /\n        pathType: Prefix\n        backend: {}\n"));
  EXPECT_FALSE(r.objects[0].object);
}

TEST(Validate, PortNameXorNumber) {
  auto r = decode(ingress_with_path(
      "      - path: /\n        pathType: Prefix\n        backend: {service: {name: a, port: {number: 80, name: http}}}\n"));
  EXPECT_NE(first_error(r).find("cannot set both port name & port number"), std::string::npos) << first_error(r);
  r = decode(ingress_with_path("      - path: /\n        pathType: Prefix\n        backend: {service: {name: a, port: {}}}\n"));
  EXPECT_NE(first_error(r).find("port name or number is required"), std::string::npos) << first_error(r);
  r = decode(ingress_with_path("      - path: /\n        pathType: Prefix\n        backend: {service: {name: a, port: {number: 70000}}}\n"));
  EXPECT_FALSE(r.objects[0].object);
}

TEST(Validate, NoRulesNeedsDefaultBackend) {
  auto r = decode("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t}\nspec: {}\n");
  EXPECT_NE(first_error(r).find("either `defaultBackend` or `rules` must be specified"), std::string::npos);
}

TEST(Validate, ImplementationSpecificMayOmitPath) {
  auto r = decode(ingress_with_path("      - pathType: ImplementationSpecific\n        backend: {service: {name: a, port: {number: 80}}}\n"));
  EXPECT_TRUE(r.objects.at(0).object) << first_error(r);
}

TEST(Decode, OneBadDocumentDoesNotHideOthers) {
  std::string text = std::string(kSeedV2) + "---\n" + "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 80}]}\n" +
                     "---\n" + "key: [unclosed\n" + "---\n" + "apiVersion: v1\nkind: Service\nmetadata: {name: ok2}\n";
  auto r = decode(text);
  int good = 0;
  for (auto& o : r.objects) good += o.object.has_value();
  EXPECT_EQ(good, 2);
  ASSERT_EQ(r.file_errors.size(), 1u);
  // yaml-cpp notices the unclosed flow sequence where the document ends.
  EXPECT_GE(r.file_errors[0].line, 17);
  EXPECT_LE(r.file_errors[0].line, 18);
}

TEST(Decode, ListAndJson) {
  auto r = decode(R"({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns1"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c"}, "spec": {"controller": "ingressd.dev/ingress-controller"}}
  ]})", "list.json");
  ASSERT_EQ(r.objects.size(), 2u);
  ASSERT_TRUE(r.objects[0].object) << first_error(r);
  const auto& svc = std::get<Service>(*r.objects[0].object);
  EXPECT_EQ(svc.meta.namespace_, "ns1");
  ASSERT_TRUE(svc.ports[0].target_port);
  EXPECT_FALSE(svc.ports[0].target_port->is_int);
  EXPECT_EQ(svc.ports[0].target_port->s, "http");
  ASSERT_TRUE(r.objects[1].object);
  EXPECT_EQ(std::get<IngressClass>(*r.objects[1].object).meta.namespace_, "");
}

TEST(Decode, SecretDataAndStringData) {
  auto r = decode("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: aGVsbG8=\n"
                  "stringData:\n  tls.key: world\n");
  ASSERT_TRUE(r.objects.at(0).object) << first_error(r);
  const auto& s = std::get<Secret>(*r.objects[0].object);
  EXPECT_EQ(s.data.at("tls.crt"), "hello");
  EXPECT_EQ(s.data.at("tls.key"), "world");
  auto bad = decode("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: '!!!'}\n");
  EXPECT_FALSE(bad.objects.at(0).object);
}

TEST(Decode, EndpointSliceConditions) {
  auto r = decode(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{name: http, port: 9000}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
- addresses: [10.0.0.2]
  conditions: {ready: false, terminating: true}
)");
  ASSERT_TRUE(r.objects.at(0).object) << first_error(r);
  const auto& es = std::get<EndpointSlice>(*r.objects[0].object);
  EXPECT_EQ(es.service_name(), "svc");
  EXPECT_EQ(*es.endpoints[1].conditions.ready, false);
  auto bad = decode("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\naddressType: IPv4\n"
                    "endpoints: [{addresses: [not-an-ip]}]\n");
  EXPECT_FALSE(bad.objects.at(0).object);
}

TEST(Validate, IngressClassController) {
  auto r = decode("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\nspec: {controller: nodomain}\n");
  EXPECT_FALSE(r.objects.at(0).object);
  r = decode("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\nspec: {}\n");
  EXPECT_NE(first_error(r).find("spec.controller: Required value"), std::string::npos) << first_error(r);
}

TEST(Validate, ServicePorts) {
  auto r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}, {port: 81}]}\n");
  EXPECT_NE(first_error(r).find("spec.ports[0].name: Required value"), std::string::npos) << first_error(r);
  r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: My_Svc}\n");
  EXPECT_FALSE(r.objects.at(0).object);
}

// Inputs the fuzzer found: each must be a clean error (or object), never an exception.
TEST(Decode, FuzzFindingsAreCleanErrors) {
  auto r = decode("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec:\n  rules:\n  - http:\n"
                  "      paths:\n      - {path: /, pathType: Prefix}\n");
  EXPECT_NE(first_error(r).find("one of `service` or `resource` must be specified"), std::string::npos) << first_error(r);
  r = decode("apiVersion: v1\nkind: Service\n");
  EXPECT_NE(first_error(r).find("metadata.name: Required value"), std::string::npos) << first_error(r);
  r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [~, {port: 80}]}\n");
  EXPECT_NE(first_error(r).find("spec.ports[0]"), std::string::npos) << first_error(r);
  r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {\xdb: 1}\n");
  ASSERT_EQ(r.file_errors.size(), 1u);
  EXPECT_EQ(r.file_errors[0].line, 4);
  r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a, creationTimestamp: \"0001-01-01T00:00:00Z\"}\n");
  EXPECT_TRUE(r.objects.at(0).object) << first_error(r);
  r = decode("apiVersion: v1\nkind: Service\nmetadata: {name: a, creationTimestamp: yesterday}\n");
  EXPECT_NE(first_error(r).find("RFC 3339"), std::string::npos) << first_error(r);
}
