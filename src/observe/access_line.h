// One access-log line, formatted from the facts of a finished request. The
// data plane fills an AccessRecord (views into the exchange and the pinned
// route table) and this writes the line: JSON, or text with request-derived
// fields escaped as \xHH. Sans-I/O and allocation-free: the line goes
// straight into the worker's log buffer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "observe/access_log.h"

namespace ingressd {

struct AccessRecord {
  const char* iso_second = "";  // "YYYY-MM-DDTHH:MM:SS" (UTC)
  int millis = 0;               // 0..999
  std::string_view client, method, host, target, protocol;
  int status = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  int64_t duration_us = 0;
  std::string_view upstream;
  int64_t upstream_us = -1;  // -1: no upstream answered
  std::string_view ingress, rule_host, rule_path;
  bool has_service = false;
  std::string_view service_namespace, service_name, service_port;
  std::string_view request_id;
};

// Appends one complete line (with its newline) to `buf`.
void append_access_line(std::string& buf, const AccessRecord& r, AccessLogFormat format);

}  // namespace ingressd
