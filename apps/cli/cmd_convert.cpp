// `aviary convert IN OUT [--dtype bf16|fp16|fp32|int8]`: official .pth or safetensors in, either format out, chosen
// by OUT's extension (.safetensors -> write_safetensors, .pth -> write_pth in torch.save format; both atomic);
// floating tensors converted to the chosen dtype, names and order kept. int8 (safetensors only) quantises the CPU
// engine's matrices per output row (cpu_engine_int8.h); `--dtype int8` on generate/chat/bench runs them as int8.
#include <cstdio>
#include <filesystem>

#include "aviary/core/checkpoint.h"
#include "aviary/core/cpu_engine_int8.h"
#include "aviary/core/error.h"
#include "cli_common.h"

namespace aviary::cli {

void register_convert(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("convert", "Convert a checkpoint between .pth (torch.save) and .safetensors");
    struct Args {
        std::string in, out, dtype;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("input", a->in, "Input checkpoint")->required();
    sub->add_option("output", a->out, "Output file; its extension picks the format: .safetensors or .pth")->required();
    sub->add_option("--dtype", a->dtype,
                    "Convert floating tensors to bf16, fp16 or fp32, or quantise the matrices to int8 "
                    "with per-row scales (.safetensors only) (default: keep)")
        ->check(CLI::IsMember({"bf16", "fp16", "fp32", "int8"}));
    sub->callback([&run, a] {
        run = [a] {
            namespace fs = std::filesystem;
            const std::string ext = fs::path(a->out).extension().string();
            if (ext != ".safetensors" && ext != ".pth")
                throw UsageError("output '" + a->out + "' must end in .safetensors or .pth");
            std::error_code ec;
            AVIARY_CHECK(!fs::exists(a->in) || !fs::exists(a->out) || !fs::equivalent(a->in, a->out, ec),
                         "input and output are the same file '", a->in, "'");
            if (a->dtype == "int8" && ext != ".safetensors")
                throw UsageError("--dtype int8 writes .safetensors only (the row scales are extra tensors), got '" +
                                 a->out + "'");
            Metadata meta;
            TensorList tensors = read_checkpoint(a->in, &meta);
            if (is_int8_checkpoint(tensors) && a->dtype != "int8") tensors = dequantize_checkpoint_int8(tensors);
            if (a->dtype == "int8") {
                tensors = quantize_checkpoint_int8(tensors);
                meta["aviary_dtype"] = "int8";
            } else if (!a->dtype.empty()) {
                tensors = convert_dtype(tensors, a->dtype);
            }
            if (ext == ".pth") {
                write_pth(a->out, tensors);  // a torch.save state dict has no place for string metadata
            } else {
                meta["converted_from"] = fs::path(a->in).filename().string();
                write_safetensors(a->out, tensors, meta);
            }
            std::fprintf(stderr, "wrote %zu tensors to %s\n", tensors.size(), a->out.c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
