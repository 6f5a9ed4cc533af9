// The batch scheduler: one thread owns the text model and runs every generation. Each loop it admits queued jobs
// (up to max_batch running), prefills one chunk of one new prompt (from the state cache's longest cached prefix) and
// decodes one token for every running sequence together through Decoder (the CPU engine reads each weight once for
// up to eight sequences). Every sequence keeps its own state row and SequenceGenerator (sampler, seed, stops), so a
// request's tokens are the same whether it ran alone or beside others. HTTP threads talk to a job through its queue
// of text and its result.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api_error.h"
#include "aviary/core/cpu_engine_pool.h"
#include "aviary/core/generator.h"
#include "aviary/server/server.h"
#include "state_cache.h"

namespace aviary {
class Decoder;
class CpuEngine;
}  // namespace aviary

namespace aviary::server {

struct GenerationJob {
    // Set before submit().
    std::vector<int32_t> prompt;  // tokens to feed (after the named state when load_state is set)
    GenerateOptions options;
    std::string load_state, save_state;
    bool stream = false;  // text is handed over piece by piece (else only the result at the end)
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

    // Written by the scheduler, read by the HTTP thread (under mutex).
    std::mutex mutex;
    std::condition_variable cv;
    std::string text;  // streamed text not yet taken
    bool done = false;
    GenerateResult result;
    int64_t prompt_tokens = 0, cached_tokens = 0;
    std::optional<ApiError> error;  // the job failed (e.g. an unknown load_state)

    std::atomic<bool> cancelled{false};  // set by the HTTP side when the client went away

    // Waits up to `timeout` for text or the end; returns the text taken (may be empty) and sets `finished`.
    std::string wait_text(std::chrono::milliseconds timeout, bool& finished);
    void wait_done();
};

class BatchScheduler {
public:
    BatchScheduler(Model& model, const Tokenizer& tokenizer, int max_batch, size_t cache_bytes, size_t max_named);
    ~BatchScheduler();  // shutdown()
    BatchScheduler(const BatchScheduler&) = delete;
    BatchScheduler& operator=(const BatchScheduler&) = delete;

    // Queues a job (ApiError 503 once shutting down).
    void submit(const std::shared_ptr<GenerationJob>& job);
    // Cancels what runs or waits (finish_reason "cancelled"), then stops the thread. Idempotent.
    void shutdown();
    void hold(bool on);
    ServerStats stats() const;
    NamedStates& named_states() { return named_; }

private:
    struct Sequence;
    void loop();
    void admit(const std::shared_ptr<GenerationJob>& job);
    void prefill_chunk(Sequence& s);
    void start_decoding(std::unique_ptr<Sequence> s);
    void decode_step();
    void complete(Sequence& s, const State* state, const float* logits);
    void drop_stopped();

    Model& model_;
    const Tokenizer& tokenizer_;
    const int max_batch_;
    std::shared_ptr<CpuEngine> engine_;               // the text model's CPU engine (held: see the .cpp)
    std::vector<std::unique_ptr<Decoder>> decoders_;  // [B - 1]: batch B
    Decoder* current_ = nullptr;                      // holds the rows of running_
    bool rows_dirty_ = true;
    StateCache cache_;
    NamedStates named_;
    std::unique_ptr<cpu::ThreadPool> sampling_pool_;  // samples the rows of a step in parallel

    mutable std::mutex mutex_;  // queue_, held_, stopping_, stats_
    std::condition_variable cv_;
    std::deque<std::shared_ptr<GenerationJob>> queue_;
    bool held_ = false, stopping_ = false;
    ServerStats stats_;

    std::vector<std::unique_ptr<Sequence>> prefilling_;  // admitted, prompt not yet fed
    std::vector<std::unique_ptr<Sequence>> running_;     // in decoder row order
    std::thread thread_;
};

}  // namespace aviary::server
