// The batch scheduler (batch_scheduler.h). Rows of the running sequences live in one Decoder of their batch size;
// when a sequence joins or leaves, the continuing rows are copied out (State::row) and stacked with the new ones
// (State::stack) into the decoder of the new size. Prefill runs on the text model's CPU engine (as core prefill()),
// one chunk of kPrefillChunk tokens per loop so that a long prompt does not stall the running sequences for long.
#include "batch_scheduler.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <exception>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/decoder.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"

namespace aviary::server {
namespace {

constexpr int64_t kPrefillChunk = 256;  // as generate() (PIPELINE_ARGS.chunk_len)

std::vector<float> to_vector(const at::Tensor& logits_row) {
    at::Tensor t = logits_row.reshape({-1}).to(at::kCPU, at::kFloat).contiguous();
    return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

}  // namespace

std::string GenerationJob::wait_text(std::chrono::milliseconds timeout, bool& finished) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, timeout, [&] { return done || !text.empty(); });
    std::string out;
    out.swap(text);
    finished = done;
    return out;
}

void GenerationJob::wait_done() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return done; });
}

struct BatchScheduler::Sequence {
    std::shared_ptr<GenerationJob> job;
    std::unique_ptr<SequenceGenerator> gen;
    std::vector<int32_t> key;  // every token the state covers (for the cache): the prompt, then each fed token
    bool cacheable = true;     // false after load_state: the key does not hold the named state's history
    int64_t base_tokens = 0;   // tokens of the named state started from
    State state;               // batch 1, while prefilling
    size_t offset = 0;         // prompt tokens fed so far
    int64_t prefilled = 0;
    std::vector<float> logits;  // after the last fed token (prefill phase)
    int32_t pending = -1;       // the token to feed at the next step
    int64_t row = -1;           // row in current_ (-1: not in it)
};

BatchScheduler::BatchScheduler(Model& model, const Tokenizer& tokenizer, int max_batch, size_t cache_bytes,
                               size_t max_named)
    : model_(model), tokenizer_(tokenizer), max_batch_(max_batch), cache_(cache_bytes), named_(max_named) {
    AVIARY_CHECK(max_batch >= 1 && max_batch <= 256, "--max-batch must be between 1 and 256, got ", max_batch);
    model_.train(false);
    // Each model keeps its CPU engine (shared_cpu_engine, in the model's derived cache); holding it here and building
    // every batch size's Decoder now keeps them for the server's life, so the first request pays no build.
    if (model_.options().device == "cpu") engine_ = shared_cpu_engine(model_);
    for (int b = 1; b <= max_batch_; ++b) decoders_.push_back(std::make_unique<Decoder>(model_, b));
    sampling_pool_ = std::make_unique<cpu::ThreadPool>(std::max(1, thread_count()));
    thread_ = std::thread([this] { loop(); });
}

BatchScheduler::~BatchScheduler() {
    shutdown();
}

void BatchScheduler::submit(const std::shared_ptr<GenerationJob>& job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
        queue_.push_back(job);
    }
    cv_.notify_all();
}

void BatchScheduler::hold(bool on) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        held_ = on;
    }
    cv_.notify_all();
}

void BatchScheduler::shutdown() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        held_ = false;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

ServerStats BatchScheduler::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    ServerStats s = stats_;
    s.queued = static_cast<int64_t>(queue_.size());
    s.cache_entries = static_cast<int64_t>(cache_.size());
    s.cache_bytes = static_cast<int64_t>(cache_.bytes());
    return s;
}

void BatchScheduler::loop() {
    at::NoGradGuard no_grad;
    while (true) {
        std::vector<std::shared_ptr<GenerationJob>> admitted;
        bool stopping = false;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] {
                return stopping_ || !prefilling_.empty() || !running_.empty() || (!held_ && !queue_.empty());
            });
            stopping = stopping_;
            while (!held_ && !queue_.empty() &&
                   static_cast<int>(prefilling_.size() + running_.size() + admitted.size()) < max_batch_) {
                admitted.push_back(queue_.front());
                queue_.pop_front();
            }
            if (stopping) {  // everything still queued is cancelled below
                for (auto& j : queue_) admitted.push_back(j);
                queue_.clear();
            }
        }
        for (auto& job : admitted) {
            if (stopping) job->cancelled = true;
            admit(job);
        }
        if (stopping) {
            for (auto& s : prefilling_) s->job->cancelled = true;
            for (auto& s : running_) s->job->cancelled = true;
        }
        drop_stopped();
        if (stopping && prefilling_.empty() && running_.empty()) return;
        try {
            if (!prefilling_.empty()) prefill_chunk(*prefilling_.front());
            if (!running_.empty()) decode_step();
        } catch (const std::exception& e) {
            // A failure of the model itself (not of one request): every sequence in flight ends with the error.
            const std::string msg = std::string("generation failed: ") + e.what();
            for (auto* list : {&prefilling_, &running_}) {
                for (auto& s : *list) {
                    s->job->error = ApiError(500, msg, "server_error", "", "internal_error");
                    complete(*s, nullptr, nullptr);
                }
                list->clear();
            }
            rows_dirty_ = true;
        }
    }
}

void BatchScheduler::admit(const std::shared_ptr<GenerationJob>& job) {
    auto s = std::make_unique<Sequence>();
    s->job = job;
    s->key = job->prompt;
    job->prompt_tokens = static_cast<int64_t>(job->prompt.size());
    if (!job->load_state.empty()) {
        auto named = named_.load(job->load_state);
        if (!named) {
            job->error = ApiError(404, "no state is saved under '" + job->load_state + "'", "invalid_request_error",
                                  "load_state", "state_not_found");
            complete(*s, nullptr, nullptr);
            return;
        }
        AVIARY_CHECK(named->state.n_layer() == model_.config().n_layer, "internal: named state of another model");
        s->state = std::move(named->state);
        s->logits = std::move(named->logits);
        s->base_tokens = named->tokens.empty() ? 0 : named->tokens.front();
        s->cacheable = false;
    } else if (auto hit = cache_.lookup(job->prompt)) {
        s->state = std::move(hit->state);
        s->logits = std::move(hit->logits);
        s->offset = hit->tokens.size();
        job->cached_tokens = static_cast<int64_t>(s->offset);
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.cached_tokens += job->cached_tokens;
    } else {
        s->state = model_.new_state(1);
    }
    prefilling_.push_back(std::move(s));
}

void BatchScheduler::prefill_chunk(Sequence& s) {
    const size_t total = s.job->prompt.size();
    const int64_t n = std::min<int64_t>(kPrefillChunk, static_cast<int64_t>(total - s.offset));
    if (n > 0) {
        at::Tensor tokens = at::empty({1, n}, at::kLong);  // (1, T)
        std::copy(s.job->prompt.begin() + s.offset, s.job->prompt.begin() + s.offset + n, tokens.data_ptr<int64_t>());
        const at::Tensor logits = engine_ ? engine_->prefill(tokens, s.state)  // as core prefill() on the CPU
                                          : prefill(model_, tokens.to(at::Device(model_.options().device)), s.state);
        s.logits = to_vector(logits);
        s.offset += static_cast<size_t>(n);
        s.prefilled += n;
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.prefill_tokens += n;
    }
    if (s.offset < total) return;
    // The prompt is in: cache its state (unless it all came from the cache) and start sampling.
    auto it = std::find_if(prefilling_.begin(), prefilling_.end(), [&](const auto& p) { return p.get() == &s; });
    std::unique_ptr<Sequence> owned = std::move(*it);
    prefilling_.erase(it);
    if (owned->cacheable && owned->prefilled > 0) cache_.insert(owned->key, owned->state, owned->logits);
    start_decoding(std::move(owned));
}

void BatchScheduler::start_decoding(std::unique_ptr<Sequence> s) {
    GenerationJob* job = s->job.get();
    GenerateCallbacks cb;
    // Streams take each piece as it comes; a non-streaming request waits for the result alone (no wake-up per token).
    if (job->stream)
        cb.on_text = [job](const std::string& piece) {
            {
                std::lock_guard<std::mutex> lock(job->mutex);
                job->text += piece;
            }
            job->cv.notify_all();
        };
    s->gen = std::make_unique<SequenceGenerator>(tokenizer_, job->options, std::move(cb));
    AVIARY_CHECK(static_cast<int64_t>(s->logits.size()) == model_.config().vocab_size,
                 "internal: no logits to start sampling from");
    const int32_t t = s->gen->next(s->logits.data(), static_cast<int64_t>(s->logits.size()));
    if (t < 0) {  // ended before any token (end of text first)
        complete(*s, &s->state, s->logits.data());
        return;
    }
    s->pending = t;  // fed at the next step, also when it was the last one wanted (the state then covers it)
    running_.push_back(std::move(s));
    rows_dirty_ = true;
}

void BatchScheduler::decode_step() {
    const int64_t B = static_cast<int64_t>(running_.size());
    Decoder& decoder = *decoders_[static_cast<size_t>(B - 1)];
    if (rows_dirty_) {
        // Continuing rows come out of the decoder that holds them, new ones bring their prefill state.
        std::vector<State> rows(static_cast<size_t>(B));
        std::vector<const State*> ptrs;
        for (int64_t b = 0; b < B; ++b) {
            Sequence& s = *running_[static_cast<size_t>(b)];
            rows[static_cast<size_t>(b)] = s.row >= 0 ? current_->state().row(s.row) : std::move(s.state);
            ptrs.push_back(&rows[static_cast<size_t>(b)]);
        }
        decoder.load_state(State::stack(ptrs));
        for (int64_t b = 0; b < B; ++b) {
            running_[static_cast<size_t>(b)]->row = b;
            running_[static_cast<size_t>(b)]->state = State{};
        }
        current_ = &decoder;
        rows_dirty_ = false;
    }
    at::Tensor tokens = at::empty({B}, at::kLong);  // (B)
    for (int64_t b = 0; b < B; ++b) tokens.data_ptr<int64_t>()[b] = running_[static_cast<size_t>(b)]->pending;
    const at::Tensor logits = decoder.step(tokens).to(at::kCPU, at::kFloat).contiguous();  // (B, V)
    const int64_t V = logits.size(1);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.decode_steps += 1;
        stats_.decoded_tokens += B;
        stats_.max_batch_seen = std::max(stats_.max_batch_seen, B);
    }
    // Sampling, row by row (each row has its own SequenceGenerator: independent), split over the CPU threads while the
    // engine waits: with a 65k vocabulary a flat distribution costs a few ms per row (top-p sorts many entries).
    std::vector<int32_t> next(static_cast<size_t>(B));
    std::vector<std::exception_ptr> failed(static_cast<size_t>(B));
    auto sample_rows = [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            try {
                Sequence& s = *running_[static_cast<size_t>(b)];
                const float* row = logits.data_ptr<float>() + b * V;
                next[static_cast<size_t>(b)] = s.gen->finished() ? -1 : s.gen->next(row, V);
            } catch (...) {
                failed[static_cast<size_t>(b)] = std::current_exception();
            }
        }
    };
    // (Small vocabularies sample in microseconds: waking the pool would cost more than it saves.)
    const int64_t groups = V < 16384 ? 1 : std::min<int64_t>(B, sampling_pool_->size());
    if (groups == 1) {
        sample_rows(0, B);
    } else {
        sampling_pool_->run(static_cast<int>(groups),
                            [&](int g) { sample_rows(g * B / groups, (g + 1) * B / groups); });
    }
    for (const auto& e : failed)
        if (e) std::rethrow_exception(e);  // (the loop ends every sequence in flight with the error)
    std::vector<int64_t> ended;
    for (int64_t b = 0; b < B; ++b) {
        Sequence& s = *running_[static_cast<size_t>(b)];
        s.key.push_back(s.pending);
        if (next[static_cast<size_t>(b)] < 0) {
            ended.push_back(b);
        } else {
            s.pending = next[static_cast<size_t>(b)];
        }
    }
    for (auto it = ended.rbegin(); it != ended.rend(); ++it) {
        const int64_t b = *it;
        const State row = decoder.state().row(b);
        complete(*running_[static_cast<size_t>(b)], &row, logits.data_ptr<float>() + b * V);
        running_.erase(running_.begin() + b);
        rows_dirty_ = true;
    }
}

void BatchScheduler::drop_stopped() {
    const auto now = std::chrono::steady_clock::now();
    auto stopped = [&](Sequence& s) {
        if (s.job->cancelled) return std::string("cancelled");
        if (now > s.job->deadline) return std::string("time_limit");
        return std::string();
    };
    for (auto* list : {&prefilling_, &running_}) {
        for (size_t i = 0; i < list->size();) {
            Sequence& s = *(*list)[i];
            const std::string why = stopped(s);
            if (why.empty()) {
                ++i;
                continue;
            }
            if (s.gen) s.gen->stop(why);
            s.job->result.stop_reason = why;
            complete(s, nullptr, nullptr);  // its state is not kept: it may lack the last sampled token
            list->erase(list->begin() + static_cast<std::ptrdiff_t>(i));
            if (list == &running_) rows_dirty_ = true;
        }
    }
}

void BatchScheduler::complete(Sequence& s, const State* state, const float* logits) {
    GenerationJob& job = *s.job;
    GenerateResult result;
    if (s.gen) {
        result = s.gen->finish();  // flushes held text through on_text
    } else {
        result.stop_reason = job.result.stop_reason.empty() ? "cancelled" : job.result.stop_reason;
    }
    if (state && logits && !job.error) {
        const int64_t V = model_.config().vocab_size;
        const std::vector<float> last(logits, logits + V);
        if (s.cacheable) cache_.insert(s.key, *state, last);
        if (!job.save_state.empty())
            named_.save(job.save_state, *state, last, s.base_tokens + static_cast<int64_t>(s.key.size()));
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.requests += 1;
    }
    {
        std::lock_guard<std::mutex> lock(job.mutex);
        job.result = std::move(result);
        job.done = true;
    }
    job.cv.notify_all();
}

}  // namespace aviary::server
