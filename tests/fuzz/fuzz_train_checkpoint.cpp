// Fuzz target: training checkpoints (DIR/checkpoints/step-N/{trainer.json, optimizer.safetensors, model.safetensors})
// through load_train_checkpoint_bytes (load_train_checkpoint, as `aviary train … --resume` loads the checkpoint that
// latest_train_checkpoint finds, maps the three files and reads them the same way; both parse trainer.json with one
// parser), against a small parameter list and its Trainer. Input: trainer.json [SEP optimizer.safetensors
// [SEP model.safetensors]]; parts the input lacks come from a valid checkpoint the harness saves once.
#include <ATen/ATen.h>

#include "aviary/core/trainer.h"
#include "fuzz_common.h"

namespace {

struct Setup {
    aviary::TensorList weights;
    std::unique_ptr<aviary::Trainer> trainer;
    std::string files[3];  // trainer.json, optimizer.safetensors, model.safetensors of a valid checkpoint
};

Setup& setup() {
    static Setup s = [] {
        Setup s;
        s.weights = {{"emb.weight", at::randn({8, 4}).set_requires_grad(true)},
                     {"blocks.0.ln1.weight", at::ones({4}).set_requires_grad(true)}};
        aviary::TrainOptions options;
        options.precision = aviary::TrainPrecision::Fp32;
        s.trainer = std::make_unique<aviary::Trainer>(s.weights, options);
        aviary::CheckpointInfo info;
        info.step = 3;
        info.data_position = 12;
        info.loss = 1.5;
        const std::string dir = aviary::fuzz::scratch_dir() + "/template";
        aviary::save_train_checkpoint(dir, s.weights, "{\"n_layer\": 1}", *s.trainer, info, 1);
        const std::string step = aviary::latest_train_checkpoint(dir);
        const char* names[3] = {"/trainer.json", "/optimizer.safetensors", "/model.safetensors"};
        std::string seed;
        for (int i = 0; i < 3; ++i) {
            s.files[i] = aviary::fuzz::read_whole_file(step + names[i]);
            if (i) seed += aviary::fuzz::kPartSeparator;
            seed += s.files[i];
        }
        aviary::fuzz::write_seed(seed);
        return s;
    }();
    return s;
}

}  // namespace

AVIARY_FUZZ_TARGET(train_checkpoint) {
    Setup& s = setup();
    const auto parts = aviary::fuzz::split_parts(data, size, 3);
    auto part = [&](size_t i) { return i < parts.size() ? parts[i] : std::string_view(s.files[i]); };
    aviary::TrainCheckpointBytes files;
    files.trainer_json = part(0);
    files.optimizer = part(1);
    files.model = part(2);
    aviary::fuzz::expect_clean([&] {
        (void)aviary::load_train_checkpoint_bytes(files, "run/checkpoints/step-00000003", s.weights, *s.trainer);
    });
}
