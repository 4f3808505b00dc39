// Responses ingressd generates itself (errors), with a short plain-text body.
#pragma once
#include <string>
#include <string_view>

#include "proxy/buffer.h"

namespace ingressd {

const char* status_reason(int status);
// Appends a complete response. `detail` must not carry request data.
// `extra`: complete header lines ("Name: value\r\n") to add.
void append_error_response(Buffer& out, int status, std::string_view detail, bool close, bool head_only,
                           const std::string& date_line, std::string_view extra = {});

}  // namespace ingressd
