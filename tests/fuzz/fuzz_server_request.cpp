// Fuzz target: the HTTP server's request parsing without sockets (apps/server, aviary_server_requests): the body
// through parse_json_body, then parse_completion_request and parse_chat_request as the /v1/completions and
// /v1/chat/completions handlers call them, and for chat the prompt rendering and the image question. A clean refusal
// is an ApiError (the handler's 400).
#include "../../apps/server/api_error.h"
#include "../../apps/server/chat_prompt.h"
#include "fuzz_common.h"
#include "../../apps/server/request_parse.h"

namespace {
template <class F>
void expect_api_error_only(F&& f) {
    try {
        f();
    } catch (const aviary::server::ApiError&) {
    }
}
}  // namespace

AVIARY_FUZZ_TARGET(server_request) {
    using namespace aviary::server;
    RequestLimits limits;
    expect_api_error_only([&] {
        const nlohmann::json body = parse_json_body(std::string(aviary::fuzz::as_text(data, size)));
        expect_api_error_only([&] { (void)parse_completion_request(body, limits); });
        expect_api_error_only([&] {
            const GenerationRequest r = parse_chat_request(body, limits);
            expect_api_error_only([&] { (void)render_chat_prompt(r.messages); });
            if (r.has_images()) expect_api_error_only([&] { (void)image_question(r.messages); });
        });
    });
}
