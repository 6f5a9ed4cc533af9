// `aviary serve --model M [--vision-model V] [--audio-model A] [--host 127.0.0.1] [--port 8080] [--max-batch 8]
// [--api-key KEY] [--state-cache-mb N]`: the OpenAI-compatible HTTP server (apps/server, docs/SERVER.md). Binds
// loopback unless told otherwise; SIGINT/SIGTERM stop it cleanly (running generations end, streams close).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>

#include "aviary/core/cpu_engine.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"
#include "aviary/server/server.h"
#include "cli_common.h"

namespace aviary::cli {
namespace {

int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
    const unsigned char b = static_cast<unsigned char>(sig);
    (void)!write(g_signal_pipe[1], &b, 1);
}

}  // namespace

void register_serve(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server (completions, chat, SSE streaming)");
    struct Args {
        server::ServerOptions o;
        int threads = 0;
        double max_body_mb = 32;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--model", a->o.model_path, "Text model (.pth or .safetensors)")->required();
    sub->add_option("--vision-model", a->o.vision_model_path, "VisualRWKV model: answers chat messages with images");
    sub->add_option("--audio-model", a->o.audio_model_path, "AudioRWKV model: POST /v1/audio/tags");
    sub->add_option("--host", a->o.host, "Address to listen on (default 127.0.0.1: this machine only)");
    sub->add_option("--port", a->o.port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
    sub->add_option("--max-batch", a->o.max_batch, "Sequences decoded together")->check(CLI::Range(1, 256));
    sub->add_option("--api-key", a->o.api_key, "Require 'Authorization: Bearer KEY' on every request")
        ->envname("AVIARY_API_KEY");
    sub->add_option("--state-cache-mb", a->o.state_cache_mb, "Memory for cached prompt states (0: no cache)")
        ->check(CLI::Range(0, 1 << 20));
    sub->add_option("--tokenizer", a->o.tokenizer, "world | byte | auto (by vocabulary size)")
        ->check(CLI::IsMember({"world", "byte", "auto"}));
    sub->add_option("--vocab", a->o.vocab_path, "World vocabulary file (default: the installed one)");
    sub->add_option("--dtype", a->o.dtype, "Weights in memory: auto (the file's precision) | fp32 | bf16")
        ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
    sub->add_option("--threads", a->threads, "CPU threads (default: $AVIARY_THREADS or all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--max-tokens-limit", a->o.max_tokens, "Largest max_tokens a request may ask for")
        ->check(CLI::Range(1, 1 << 20));
    sub->add_option("--max-body-mb", a->max_body_mb, "Largest request body (MB)")->check(CLI::Range(0.001, 4096.0));
    sub->add_option("--request-timeout", a->o.request_timeout_s, "Seconds a generation may run")
        ->check(CLI::Range(1.0, 1e6));
    sub->callback([&run, a] {
        run = [a] {
            a->o.max_body_bytes = static_cast<size_t>(a->max_body_mb * 1024 * 1024);
            set_thread_count(a->threads);
            a->o.threads = a->threads;
            // SIGINT/SIGTERM: the handler only writes the signal number to a pipe (async-signal-safe, whichever thread
            // the kernel picks: LibTorch's and OpenBLAS's threads exist already); a watcher thread reads it and stops
            // the server from a normal context. A 0 byte from the main thread ends the watcher.
            AVIARY_CHECK(pipe(g_signal_pipe) == 0, "cannot create the signal pipe");
            server::Server srv(a->o);
            std::thread watcher([&srv] {
                unsigned char sig = 0;
                while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
                }
                if (sig == 0) return;
                std::fprintf(stderr, "aviary serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
                srv.stop();
            });
            struct sigaction sa {};
            sa.sa_handler = on_stop_signal;
            sa.sa_flags = SA_RESTART;  // system calls of other threads resume; the watcher does the stopping
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, nullptr);
            sigaction(SIGTERM, &sa, nullptr);
            std::fprintf(stderr, "aviary serve: listening on http://%s:%d (OpenAI API under /v1)\n", a->o.host.c_str(),
                         srv.port());
            srv.run();
            const unsigned char done = 0;
            (void)!write(g_signal_pipe[1], &done, 1);
            watcher.join();
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            return 0;
        };
    });
}

}  // namespace aviary::cli
