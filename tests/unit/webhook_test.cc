// The admission webhook's verdicts: what `kubectl apply` is told before an
// Ingress is stored.
#include <gtest/gtest.h>

#include "app/webhook.h"
#include "test_util.h"

namespace ingressd {
namespace {

using nlohmann::json;

const char* kLive = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: old, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: a.example
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}
)";

json ingress(const std::string& name, const std::string& host, const std::string& path,
             json annotations = json::object(), const std::string& service = "web") {
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "Ingress"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"annotations", annotations}}},
          {"spec",
           {{"rules",
             {{{"host", host},
               {"http",
                {{"paths",
                  {{{"path", path},
                    {"pathType", "Prefix"},
                    {"backend", {{"service", {{"name", service}, {"port", {{"number", 8080}}}}}}}}}}}}}}}}}};
}

json request(const json& obj, const std::string& op = "CREATE") {
  return {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
          {"kind", {{"group", "networking.k8s.io"}, {"version", "v1"}, {"kind", "Ingress"}}},
          {"resource", {{"group", "networking.k8s.io"}, {"version", "v1"}, {"resource", "ingresses"}}},
          {"operation", op},
          {"name", obj["metadata"]["name"]},
          {"namespace", "default"},
          {"object", obj}};
}

class Webhook : public ::testing::Test {
 protected:
  std::unique_ptr<testing::Compiled> live = testing::compile_text(std::string(kLive) + testing::service("web"));
  AdmissionVerdict review(const json& req) { return review_admission(req, *live->store.snapshot(), {}); }
};

TEST_F(Webhook, AllowsAnIngressThatFits) {
  AdmissionVerdict v = review(request(ingress("new", "b.example", "/")));
  EXPECT_TRUE(v.allowed) << v.message;
  EXPECT_TRUE(v.warnings.empty());
}

TEST_F(Webhook, DeniesAPathAnotherIngressHas) {
  AdmissionVerdict v = review(request(ingress("new", "a.example", "/api")));
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.message.find("warning: Ingress default/new: spec.rules[0].http.paths[0]: host a.example path /api "
                           "(Prefix) is already claimed by Ingress default/old"),
            std::string::npos)
      << v.message;
}

TEST_F(Webhook, DeniesTakingAPathFromAnotherIngressByItsTrailingSlash) {
  // "/api/" matches what "/api" matches and, longer, would win: the older
  // Ingress would lose its route.
  AdmissionVerdict v = review(request(ingress("new", "a.example", "/api/")));
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.message.find("takes precedence over /api (Prefix) of Ingress default/old"), std::string::npos)
      << v.message;
}

TEST_F(Webhook, DeniesARefusedAnnotationWithCheckMessage) {
  AdmissionVerdict v = review(request(
      ingress("new", "b.example", "/", {{"nginx.ingress.kubernetes.io/configuration-snippet", "deny all;"}})));
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.message.find("error: Ingress default/new: "), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("configuration-snippet"), std::string::npos) << v.message;
}

TEST_F(Webhook, DeniesAnInvalidObjectAsTheDecoderWords) {
  json obj = ingress("new", "b.example", "/");
  obj["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Regex";
  AdmissionVerdict v = review(request(obj));
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.message.find("pathType"), std::string::npos) << v.message;
}

TEST_F(Webhook, WarnsButAllowsAMissingService) {
  AdmissionVerdict v = review(request(ingress("new", "b.example", "/", json::object(), "not-yet")));
  EXPECT_TRUE(v.allowed) << v.message;
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_NE(v.warnings[0].find("service \"default/not-yet\" not found"), std::string::npos) << v.warnings[0];
}

TEST_F(Webhook, UpdateOfTheSameIngressIsNotAConflictWithItself) {
  json obj = ingress("old", "a.example", "/api");
  obj["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z";
  obj["metadata"]["labels"] = {{"team", "a"}};
  AdmissionVerdict v = review(request(obj, "UPDATE"));
  EXPECT_TRUE(v.allowed) << v.message;
}

TEST_F(Webhook, IngressesOfAnotherClassAreNotOurs) {
  json obj = ingress("new", "a.example", "/api");
  obj["spec"]["ingressClassName"] = "other";
  EXPECT_TRUE(review(request(obj)).allowed);
}

TEST_F(Webhook, DeleteIsAlwaysAllowed) {
  json r = request(ingress("old", "a.example", "/api"), "DELETE");
  EXPECT_TRUE(review(r).allowed);
}

TEST_F(Webhook, AnswersTheAdmissionReviewWithItsUidAndABadRequestStatus) {
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request", request(ingress("new", "a.example", "/api"))}};
  std::string err;
  auto a = answer_admission_review(review, *live->store.snapshot(), {}, err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ((*a)["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ((*a)["kind"], "AdmissionReview");
  EXPECT_EQ((*a)["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ((*a)["response"]["allowed"], false);
  EXPECT_EQ((*a)["response"]["status"]["code"], 400);
  EXPECT_EQ((*a)["response"]["status"]["reason"], "BadRequest");
  EXPECT_FALSE(answer_admission_review(json{{"kind", "Pod"}}, *live->store.snapshot(), {}, err));
}

}  // namespace
}  // namespace ingressd
