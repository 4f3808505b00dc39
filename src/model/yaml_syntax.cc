#include "model/yaml_syntax.h"

#include <yaml.h>

#include <algorithm>

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
      int line = static_cast<int>(parser.problem_mark.line) + 1;
      if (parser.error == YAML_READER_ERROR) {
        // Encoding errors carry a byte offset, not a mark.
        size_t off = std::min(parser.problem_offset, text.size());
        line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(off), '\n'));
      }
      err = YamlSyntaxError{line, msg};
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
