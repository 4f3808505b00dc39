// A second opinion on YAML syntax from libyaml, the reference parser that
// go-yaml (and so kubectl) descends from: yaml-cpp accepts some broken
// documents (an unterminated quoted scalar running to the end of the file).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ingressd::model {

struct YamlSyntaxError {
  int line = 0;  // 1-based, within `text`
  std::string message;  // libyaml's problem, e.g. "found unexpected end of stream"
};

std::optional<YamlSyntaxError> yaml_syntax_error(std::string_view text);

}  // namespace ingressd::model
