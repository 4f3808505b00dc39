#include "model/yaml_syntax.h"

#include <yaml.h>

namespace ingressd::model {

std::optional<YamlSyntaxError> yaml_syntax_error(std::string_view text) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return YamlSyntaxError{0, "out of memory"};
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  std::optional<YamlSyntaxError> err;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      std::string msg = parser.problem ? parser.problem : "invalid YAML";
      if (parser.context) msg = std::string(parser.context) + ": " + msg;
      err = YamlSyntaxError{static_cast<int>(parser.problem_mark.line) + 1, msg};
      break;
    }
    bool end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (end) break;
  }
  yaml_parser_delete(&parser);
  return err;
}

}  // namespace ingressd::model
