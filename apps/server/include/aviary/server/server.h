// `aviary serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one text model, with optional VisualRWKV and
// AudioRWKV models. Connections run on the HTTP thread pool; one scheduler thread owns the text model and decodes
// every running request together (batch_scheduler.h); RNN states of served prefixes are cached (state_cache.h).
// The protocol and the extensions are documented in docs/SERVER.md. No LibTorch types in this header.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace aviary::server {

struct ServerOptions {
    std::string model_path;          // the text model (required)
    std::string vision_model_path;   // VisualRWKV: image content parts of chat messages ("" = none)
    std::string audio_model_path;    // AudioRWKV: POST /v1/audio/tags ("" = none)
    std::string tokenizer = "auto";  // world | byte | auto (by the model's vocabulary size)
    std::string vocab_path;          // World vocabulary ("" = the installed one)
    std::string dtype = "auto";      // weights in memory: auto (the file's) | fp32 | bf16
    int threads = 0;                 // CPU engine threads of every model (<= 0: chosen by measurement)
    std::string host = "127.0.0.1";
    int port = 8080;               // 0: an ephemeral port (Server::port() tells which)
    int max_batch = 8;             // sequences decoded together
    std::string api_key;           // non-empty: every request needs "Authorization: Bearer <key>"
    int64_t state_cache_mb = 256;  // RNN states of served prefixes kept (LRU); 0 = no cache
    int http_threads = 16;         // connections served at once
    // Limits on what a client may ask for.
    size_t max_body_bytes = 32u << 20;      // request body (base64 images and sounds included)
    int64_t max_image_pixels = 16LL << 20;  // width × height of an image content part
    double max_audio_seconds = 120;         // length of a sound for /v1/audio/tags
    int max_tokens = 4096;                  // largest max_tokens a request may ask for
    int64_t max_prompt_tokens = 65536;      // longest prompt (after tokenization)
    double request_timeout_s = 600;         // a generation running longer ends with finish_reason "time_limit"
    int max_named_states = 64;              // states saved under an id (save_state)
};

// Counters of the scheduler since start (GET /health shows them; the tests assert on them).
struct ServerStats {
    int64_t requests = 0;        // generations completed
    int64_t prefill_tokens = 0;  // prompt tokens run through the model
    int64_t cached_tokens = 0;   // prompt tokens taken from the state cache instead
    int64_t decode_steps = 0;    // batched decode steps
    int64_t decoded_tokens = 0;  // sequence-steps (sum of the batch sizes of the steps)
    int64_t max_batch_seen = 0;  // largest batch one step decoded
    int64_t queued = 0;          // requests waiting to start (now)
    int64_t cache_entries = 0;
    int64_t cache_bytes = 0;
};

class Server {
public:
    // Loads the models (aviary::Error naming the file when one cannot be used) and binds host:port (an error naming
    // the address when it cannot). Nothing is served until run() or start().
    explicit Server(ServerOptions options);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int port() const;  // the bound port
    // Serves until stop() (blocking).
    void run();
    // Serves on a background thread; returns when requests are accepted.
    void start();
    // Running generations end (finish_reason "cancelled"), streams are closed after their last chunk, the listener
    // shuts; idempotent and safe from another thread (not from a signal handler: post it from a normal thread).
    void stop();

    // For tests and benchmarks: while held, requests queue without starting; releasing admits them together.
    void hold_scheduling(bool hold);
    ServerStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary::server
