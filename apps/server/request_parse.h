// Parsing and validation of the JSON bodies of /v1/completions and /v1/chat/completions (OpenAI's fields plus
// Aviary's extensions top_k, penalty_decay, load_state, save_state). Every problem is an ApiError 400 that names the
// field; nothing here touches a model.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "aviary/core/generator.h"

namespace aviary::server {

struct ChatMessage {
    std::string role;                 // "system", "user" or "assistant"
    std::string text;                 // text parts joined
    std::vector<std::string> images;  // decoded bytes of image_url parts (data: URLs)
};

struct RequestLimits {
    int max_tokens = 4096;
};

struct GenerationRequest {
    bool chat = false;
    std::string model;  // "" when not given
    // Completions: the prompt as text, or as token ids when the client sent ids.
    std::string prompt;
    std::optional<std::vector<int32_t>> prompt_ids;
    std::vector<ChatMessage> messages;  // chat
    // Sampling and stopping as given (the handler fills in the defaults of the endpoint).
    std::optional<float> temperature, top_p, presence_penalty, frequency_penalty, penalty_decay;
    std::optional<int> top_k, max_tokens;
    std::optional<uint64_t> seed;
    std::vector<std::string> stop;
    bool stream = false, include_usage = false;
    bool ignore_eos = false;  // extension (as vLLM's): end-of-text ids are sampled like any other (benchmarks)
    std::string load_state, save_state;  // named states (extension)
    bool has_images() const;
};

// The body as JSON: a 400 naming the parse error when it is not JSON or not an object.
nlohmann::json parse_json_body(const std::string& body);
GenerationRequest parse_completion_request(const nlohmann::json& body, const RequestLimits& limits);
GenerationRequest parse_chat_request(const nlohmann::json& body, const RequestLimits& limits);

// A state id: 1..64 characters of [A-Za-z0-9_.-] (else 400 naming `param`).
void check_state_id(const std::string& id, const std::string& param);

}  // namespace aviary::server
