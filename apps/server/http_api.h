// The HTTP surface of `aviary serve` (docs/SERVER.md): routes, authentication, request limits, the JSON and
// server-sent-event shapes of OpenAI's API, and the error objects. Handlers run on cpp-httplib's pool; text
// generation is handed to the BatchScheduler, images and sounds to the media adapter.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "aviary/core/tokenizer.h"
#include "aviary/server/server.h"

namespace httplib {
class Server;
}

namespace aviary::server {

class BatchScheduler;
class VisionAdapter;
class AudioAdapter;

struct ApiContext {
    const ServerOptions& options;
    const Tokenizer& tokenizer;
    int64_t vocab_size = 0;
    BatchScheduler& scheduler;
    VisionAdapter* vision = nullptr;           // null: no --vision-model
    AudioAdapter* audio = nullptr;             // null: no --audio-model
    std::string text_id, vision_id, audio_id;  // model ids (file names without extension)
    int64_t created = 0;                       // unix time the server started
    std::atomic<int> in_flight{0};             // responses not yet fully written
};

// Registers every route, the authentication check and the error handlers on `http`.
void install_routes(httplib::Server& http, ApiContext& ctx);

}  // namespace aviary::server
