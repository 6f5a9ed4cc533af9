// The worker thread (studio_worker.h): a queue of jobs run in order, each wrapped so that any exception
// becomes an Error event, and the scratch directory jobs write to. The commands of each channel are jobs over the
// models it owns, one file per channel as the panels are: worker_chat.cpp, worker_music.cpp, worker_image.cpp,
// worker_audio.cpp.
#include "studio_worker.h"

#include <unistd.h>

#include <filesystem>

#include "aviary/core/model.h"
#include "aviary/core/threads.h"
#include "backends.h"  // the owned backends' destructors
#include "chat_session.h"

namespace aviary::studio {

namespace fs = std::filesystem;

StudioWorker::StudioWorker(int threads)
    : threads_(threads),
      chat_(std::make_unique<ChatSession>()),
      vision_(make_vision_backend()),
      audio_(make_audio_backend()) {
    scratch_dir_ = (fs::temp_directory_path() / ("aviary-studio-" + std::to_string(::getpid()))).string();
    thread_ = std::thread([this] { loop(); });
}

StudioWorker::~StudioWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        quit_ = true;
        queue_.clear();
        stop_up_to_ = next_seq_;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::error_code ec;
    fs::remove_all(scratch_dir_, ec);
}

void StudioWorker::post(const std::string& name, Channel channel, std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back({name, channel, std::move(job), next_seq_++});
        ++pending_;
    }
    cv_.notify_one();
}

void StudioWorker::stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_up_to_ = next_seq_ - 1;
}

bool StudioWorker::busy() const {
    return pending_.load() > 0;
}

bool StudioWorker::should_stop() const {
    return current_seq_.load() <= stop_up_to_.load();
}

void StudioWorker::emit(EventKind kind, Channel channel, std::string text, double a, double b, int64_t n) {
    Event e;
    e.kind = kind, e.channel = channel, e.text = std::move(text), e.a = a, e.b = b, e.n = n;
    events_.push(std::move(e));
}

void StudioWorker::loop() {
    try {
        set_thread_count(threads_);
    } catch (...) {
    }
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
            if (quit_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        current_seq_ = job.seq;
        emit(EventKind::JobStarted, job.channel, job.name);
        try {
            job.run();
        } catch (const std::exception& e) {
            emit(EventKind::Error, job.channel, job.name + ": " + e.what());
        } catch (...) {
            emit(EventKind::Error, job.channel, job.name + ": unknown error");
        }
        // JobFinished comes before pending_ drops, so a UI that sees !busy() has every event of the job.
        emit(EventKind::JobFinished, job.channel, job.name);
        --pending_;
    }
}

std::string StudioWorker::scratch_file(const std::string& name) const {
    fs::create_directories(scratch_dir_);
    return (fs::path(scratch_dir_) / name).string();
}

}  // namespace aviary::studio
