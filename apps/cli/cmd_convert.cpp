// `aviary convert IN OUT [--dtype bf16|fp16|fp32]`: official .pth or safetensors in, safetensors out
// (written atomically); floating tensors converted to the chosen dtype, names and order kept.
#include <cstdio>
#include <filesystem>

#include "aviary/core/checkpoint.h"
#include "aviary/core/error.h"
#include "cli_common.h"

namespace aviary::cli {

void register_convert(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("convert", "Convert a checkpoint (.pth or .safetensors) to .safetensors");
    struct Args {
        std::string in, out, dtype;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("input", a->in, "Input checkpoint")->required();
    sub->add_option("output", a->out, "Output .safetensors file")->required();
    sub->add_option("--dtype", a->dtype, "Convert floating tensors to bf16, fp16 or fp32 (default: keep)")
        ->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
    sub->callback([&run, a] {
        run = [a] {
            namespace fs = std::filesystem;
            const std::string ext = fs::path(a->out).extension().string();
            if (ext != ".safetensors")
                throw UsageError("output '" + a->out + "' must end in .safetensors (Aviary writes safetensors)");
            std::error_code ec;
            AVIARY_CHECK(!fs::exists(a->in) || !fs::exists(a->out) || !fs::equivalent(a->in, a->out, ec),
                         "input and output are the same file '", a->in, "'");
            Metadata meta;
            TensorList tensors = read_checkpoint(a->in, &meta);
            if (!a->dtype.empty()) tensors = convert_dtype(tensors, a->dtype);
            meta["converted_from"] = fs::path(a->in).filename().string();
            write_safetensors(a->out, tensors, meta);
            std::fprintf(stderr, "wrote %zu tensors to %s\n", tensors.size(), a->out.c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
