// Errors of the HTTP API in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with an HTTP status.
// Request parsing and the handlers throw ApiError; the router turns it (and anything else) into that object.
#pragma once
#include <stdexcept>
#include <string>

namespace aviary::server {

class ApiError : public std::runtime_error {
public:
    ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
        : std::runtime_error(message),
          status_(status),
          type_(std::move(type)),
          param_(std::move(param)),
          code_(std::move(code)) {}
    int status() const { return status_; }
    const std::string& type() const { return type_; }
    const std::string& param() const { return param_; }  // the request field at fault ("" = none)
    const std::string& code() const { return code_; }

private:
    int status_;
    std::string type_, param_, code_;
};

// 400 invalid_request_error naming the field.
inline ApiError bad_field(const std::string& param, const std::string& message) {
    return ApiError(400, message, "invalid_request_error", param, "invalid_value");
}

// The JSON text of an error object ({"error": {...}}; param and code null when empty).
std::string error_json(int status, const std::string& message, const std::string& type, const std::string& param = "",
                       const std::string& code = "");
inline std::string error_json(const ApiError& e) {
    return error_json(e.status(), e.what(), e.type(), e.param(), e.code());
}

}  // namespace aviary::server
