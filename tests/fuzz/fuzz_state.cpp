// Fuzz target: chat state files (safetensors "state.{l}.att_shift|wkv|ffn_shift" + metadata with the model's
// fingerprint) through State::load_for_bytes (State::load_for, as `aviary chat` /load and --state-in read them, maps
// the file and reads it the same way), against a small v6 model.
#include "aviary/core/model.h"
#include "aviary/core/model_init.h"
#include "aviary/core/state.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(state) {
    static const aviary::Model model = [] {
        aviary::Model m = aviary::Model::from_tensors(aviary::init_weights(aviary::init_config(2, 64, 6, 256), 1));
        const std::string seed = aviary::fuzz::scratch_dir() + "/seed.state";
        m.new_state(1).save_for(m, seed);
        aviary::fuzz::write_seed(aviary::fuzz::read_whole_file(seed));
        return m;
    }();
    aviary::fuzz::expect_clean([&] { (void)aviary::State::load_for_bytes(model, data, size, "chat.state"); });
}
