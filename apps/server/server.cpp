// Server (server.h): loads the models, builds the scheduler and the HTTP routes, binds, serves, and stops in order:
// the scheduler ends every generation first (streams get their last chunks), then the listener closes once the
// responses in flight are written (a few seconds at most).
#include "aviary/server/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "aviary/core/error.h"
#include "aviary/core/model.h"
#include "aviary/core/threads.h"
#include "batch_scheduler.h"
#include "http_api.h"
#include "media_adapter.h"

namespace aviary::server {
namespace {

std::string model_id(const std::string& path) {
    return std::filesystem::path(path).stem().string();
}

// Debian's compiled cpp-httplib listens with a backlog of 5: a burst of new connections overflows it and the kernel
// drops their SYNs (the clients retry after 1 s). Listening again on the bound socket raises the backlog.
class HttpServer : public httplib::Server {
public:
    void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

}  // namespace

struct Server::Impl {
    ServerOptions options;
    Model model;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<VisionAdapter> vision;
    std::unique_ptr<AudioAdapter> audio;
    std::unique_ptr<BatchScheduler> scheduler;
    std::unique_ptr<ApiContext> ctx;
    HttpServer http;
    int port = 0;
    std::thread thread;  // start()
    std::mutex stop_mutex;
    bool stopped = false;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.options = std::move(options);
    const ServerOptions& o = m.options;
    AVIARY_CHECK(!o.model_path.empty(), "serve: --model is required");
    AVIARY_CHECK(std::filesystem::exists(o.model_path), "model file '", o.model_path, "' does not exist");
    AVIARY_CHECK(o.max_batch >= 1 && o.max_batch <= 256, "--max-batch must be between 1 and 256, got ", o.max_batch);
    AVIARY_CHECK(o.state_cache_mb >= 0, "--state-cache-mb must be >= 0, got ", o.state_cache_mb);
    AVIARY_CHECK(o.port >= 0 && o.port <= 65535, "--port must be between 0 and 65535, got ", o.port);
    ModelOptions mo;
    mo.dtype = o.dtype;
    mo.cpu_engine.threads = o.threads;
    m.model = Model::load(o.model_path, mo);
    m.model.train(false);
    m.tokenizer = make_tokenizer(o.tokenizer, m.model.config().vocab_size, o.vocab_path);
    if (!o.vision_model_path.empty()) m.vision = std::make_unique<VisionAdapter>(o.vision_model_path, o.threads);
    if (!o.audio_model_path.empty()) m.audio = std::make_unique<AudioAdapter>(o.audio_model_path);
    m.scheduler = std::make_unique<BatchScheduler>(m.model, *m.tokenizer, o.max_batch, size_t(o.state_cache_mb) << 20,
                                                   size_t(std::max(1, o.max_named_states)));
    m.ctx = std::unique_ptr<ApiContext>(
        new ApiContext{o, *m.tokenizer, m.model.config().vocab_size, *m.scheduler, nullptr, nullptr, {}, {}, {}});
    m.ctx->vision = m.vision.get();
    m.ctx->audio = m.audio.get();
    m.ctx->text_id = model_id(o.model_path);
    if (m.vision) m.ctx->vision_id = model_id(o.vision_model_path);
    if (m.audio) m.ctx->audio_id = model_id(o.audio_model_path);
    m.ctx->created = static_cast<int64_t>(std::time(nullptr));
    const int threads = std::max(2, o.http_threads);
    m.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    m.http.set_read_timeout(30);
    m.http.set_write_timeout(30);
    install_routes(m.http, *m.ctx);
    if (o.port == 0) {
        m.port = m.http.bind_to_any_port(o.host);
        AVIARY_CHECK(m.port > 0, "cannot listen on ", o.host, " (any port)");
    } else {
        AVIARY_CHECK(m.http.bind_to_port(o.host, o.port), "cannot listen on ", o.host, ":", o.port,
                     " (in use, or not an address of this machine?)");
        m.port = o.port;
    }
    m.http.widen_backlog();
}

Server::~Server() {
    stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const {
    return impl_->port;
}

void Server::run() {
    impl_->http.listen_after_bind();
}

void Server::start() {
    impl_->thread = std::thread([this] { run(); });
    for (int i = 0; i < 500 && !impl_->http.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Server::stop() {
    std::lock_guard<std::mutex> lock(impl_->stop_mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->scheduler->shutdown();  // every generation ends; streams write their last chunks
    for (int i = 0; i < 300 && impl_->ctx->in_flight.load() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    impl_->http.stop();
}

void Server::hold_scheduling(bool hold) {
    impl_->scheduler->hold(hold);
}

ServerStats Server::stats() const {
    return impl_->scheduler->stats();
}

}  // namespace aviary::server
