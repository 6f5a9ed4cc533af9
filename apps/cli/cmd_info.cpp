// `aviary info --model M`: the model's config as one JSON object (DESIGN.md CLI contract).
#include <cstdio>

#include "aviary/core/checkpoint.h"
#include "aviary/core/config.h"
#include "cli_common.h"

namespace aviary::cli {

void register_info(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("info", "Print a checkpoint's model config as JSON");
    auto model = std::make_shared<std::string>();
    sub->add_option("--model,-m", *model, "Checkpoint (.pth or .safetensors)")->required();
    sub->callback([&run, model] {
        run = [model] {
            const ModelConfig c = infer_config(read_checkpoint(*model));
            std::printf("%s\n", c.to_json().c_str());
            return 0;
        };
    });
}

}  // namespace aviary::cli
