// `aviary`: the command line of the toolkit. Subcommands register themselves (cmd_*.cpp); errors from the
// libraries arrive as aviary::Error and are printed once as "error: …" (exit 1), bad usage exits 2.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "aviary/core/blas_core.h"
#include "aviary/core/error.h"
#include "cli_common.h"

int main(int argc, char** argv) {
    // before any GEMM: OpenBLAS's kernels for this CPU, and for fp32 training idle workers that sleep (blas_core.h)
    aviary::ensure_start_up_env(argv, aviary::cli::runs_fp32_training(argc, argv));
#if defined(__GLIBC__)
    // LibTorch allocates and frees activation and gradient buffers of many MB at every training step; by default
    // glibc serves each from a fresh mmap, so the kernel zero-fills its pages again every time (measured: half
    // the wall time of a small `train vision` step, 12 s → 6 s for 6 steps). Keep blocks below 256 MB in the
    // heap and return freed memory to the system only above 256 MB of slack.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
    CLI::App app{"aviary: RWKV-5 Eagle / RWKV-6 Finch toolkit (text, vision, audio, music)", "aviary"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("aviary 0.1.0"));
    aviary::cli::Runner run;
    aviary::cli::register_info(app, run);
    aviary::cli::register_forward(app, run);
    aviary::cli::register_tokenize(app, run);
    aviary::cli::register_generate(app, run);
    aviary::cli::register_chat(app, run);
    aviary::cli::register_convert(app, run);
    aviary::cli::register_bench(app, run);
    aviary::cli::register_train(app, run);
    aviary::cli::register_data(app, run);
    aviary::cli::register_eval(app, run);
#ifdef AVIARY_HAVE_MUSIC
    aviary::cli::register_music(app, run);
#endif
#ifdef AVIARY_HAVE_AUDIO
    aviary::cli::register_audio(app, run);  // `tag`, `train audio`, `eval audioset`
#endif
#ifdef AVIARY_HAVE_VISION
    aviary::cli::register_vision(app, run);  // `vqa`, `train vision`, `eval vqa`
#endif
#ifdef AVIARY_HAVE_RESEARCH
    aviary::cli::register_research(app, run);  // `research …`
#endif
#ifdef AVIARY_HAVE_SERVER
    aviary::cli::register_serve(app, run);  // `serve` (apps/server)
#endif
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        for (char& c : msg)
            if (c == '\n') c = ' ';
        std::fprintf(stderr, "error: %s (see aviary --help)\n", msg.c_str());
        return 2;
    }
    try {
        return run ? run() : 0;
    } catch (const aviary::UsageError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        // aviary::Error and anything unexpected from LibTorch: first line only, never a signal.
        std::string msg = e.what();
        msg = msg.substr(0, msg.find('\n'));
        std::fprintf(stderr, "error: %s\n", msg.c_str());
        return 1;
    }
}
