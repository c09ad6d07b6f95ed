// Errors of the HTTP API: an HTTP status, a machine-readable type and, for bad parameters, the
// field the message is about, sent as {"error": {"message", "type", "field"}} so the web form
// can show the message next to that field. Not here: routing (routes.cpp).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace tpro {

class ApiError : public Error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string field = "")
      : Error(message), status_(status), type_(std::move(type)), field_(std::move(field)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& field() const { return field_; }
  nlohmann::json body() const;  // {"error": {"message", "type", "field"}}

 private:
  int status_;
  std::string type_, field_;
};

// 400 invalid_request_error about `field` ("" when it concerns the whole request).
[[noreturn]] void bad_request(const std::string& field, const std::string& message);
// 409 conflict: the request is valid but the job is in the wrong state for it.
[[noreturn]] void conflict(const std::string& message);
[[noreturn]] void not_found(const std::string& message);

// The training parameter a validation message is about: the parameter name that occurs
// earliest in the message as a whole word ("lora_name is required" -> "lora_name"), or "".
// Hints are advice, not the subject: names inside "(hint: ...)" do not count, so "batcher
// state was saved with rows = 9 ... (hint: resume with the same dataset ...)" names no field.
std::string field_in_message(const std::string& message);

}  // namespace tpro
