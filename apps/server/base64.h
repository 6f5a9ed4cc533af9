// Base64 (RFC 4648, standard alphabet) for the server's JSON payloads: data: URLs of images, sounds in JSON.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aviary::server {

// The decoded bytes, or nullopt when `text` is not valid base64 (whitespace is skipped; padding optional).
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace aviary::server
