// Random mutations of valid manifests never crash decoding or compile(), and
// never leave the store without the last good objects.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "routing/dump.h"
#include "test_util.h"

using namespace ingressd;
using namespace ingressd::testing;

namespace {
std::string read(const std::string& rel) {
  std::ifstream in(std::string(INGRESSD_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string mutate(std::string s, std::mt19937& rng) {
  static const std::vector<std::string> tokens = {":", "-", " ", "\n", "  ", "[", "]", "{", "}", "\"", "'", "*",
                                                  "/", "0", "-1", "99999999999", "null", "true", "Exact", "Prefix",
                                                  "ImplementationSpecific", "*.x.com", "---\n", "\t", "%2F", "#",
                                                  "&a", "*a", "!!str ", "~", "name:", "kind: List\n", "items:"};
  int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n && !s.empty(); ++i) {
    size_t pos = rng() % s.size();
    switch (rng() % 4) {
      case 0: s.erase(pos, 1 + rng() % 8); break;
      case 1: s.insert(pos, tokens[rng() % tokens.size()]); break;
      case 2: s[pos] = static_cast<char>(32 + rng() % 95); break;
      case 3: {
        size_t len = std::min<size_t>(1 + rng() % 40, s.size() - pos);
        s.insert(rng() % s.size(), s.substr(pos, len));
        break;
      }
    }
  }
  return s;
}
}  // namespace

TEST(Property, MutatedManifestsNeverCrashAndKeepLastGood) {
  const std::vector<std::pair<std::string, std::string>> good = {
      {"host-ingress.yaml", read("examples/host-ingress.yaml")},
      {"path-ingress.yaml", read("examples/path-ingress.yaml")},
      {"simple-ingress.yaml", read("examples/simple-ingress.yaml")},
      {"demo-services.yaml", read("examples/demo-services.yaml")},
  };
  ObjectStore base_store;
  base_store.replace_from_files(files_from(good));
  const size_t good_objects = base_store.snapshot()->objects.size();
  ASSERT_EQ(good_objects, 9u);
  std::mt19937 rng(20261127);
  for (int iter = 0; iter < 1500; ++iter) {
    ObjectStore store;
    store.replace_from_files(files_from(good));
    auto files = good;
    size_t which = rng() % files.size();
    files[which].second = mutate(files[which].second, rng);
    store.replace_from_files(files_from(files));
    auto snap = store.snapshot();
    auto r = routing::compile(*snap, {});
    ASSERT_NE(r.table, nullptr);
    (void)routing::dump_text(*r.table);
    (void)r.table->match("bandicoot.example.com", "/a/x");
    // Objects of the untouched files are all there. Of the mutated file: when
    // any error could not be pinned to one object, all its old objects stay;
    // an object whose new version failed keeps its old version.
    auto decoded = model::decode_manifests(files[which].second, files[which].first);
    bool degraded = !decoded.file_errors.empty();
    std::set<model::ObjectKey> failed;
    for (auto& d : decoded.objects) {
      if (d.object) continue;
      if (d.key) failed.insert(*d.key);
      else degraded = true;
    }
    for (auto& [key, so] : base_store.snapshot()->objects) {
      bool must_stay = so.pos.file != files[which].first || degraded || failed.count(key);
      if (must_stay) {
        EXPECT_TRUE(snap->objects.count(key)) << key.str() << " lost in iteration " << iter;
      }
    }
  }
}
