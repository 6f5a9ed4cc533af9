// Training a byte-level ABC model from a JSON config (`aviary train music --data … --config …`): the corpus is
// read as tunes (.abc files/directories split at X:, IrishMAN JSON, or JSONL {"text": …}), split by tune into
// training and validation sets, framed as the official music models are trained ([2] + bytes + [3], then the
// shared data path's document separator 0), and handed to the shared token-LM trainer (core/trainer.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "aviary/music/abc.h"

namespace aviary::music {

// Every key of the JSON config; defaults are the CPU recipe assets/configs/music-eagle-L4-D256.json (the shipped
// model, assets/models/music-eagle-L6-D256.recipe.json, was trained on a GPU with music-eagle-L6-D256.json).
struct MusicTrainConfig {
    int version = 5;  // 5 (Eagle, x052) or 6 (Finch, x060)
    int64_t n_layer = 4;
    int64_t n_embd = 256;  // head size 64
    int64_t ctx_len = 512;
    int64_t batch = 4;
    int64_t grad_accum = 1;
    int64_t steps = 500;
    double lr = 2e-3;
    double lr_final = 1e-4;
    int64_t warmup = 20;
    double weight_decay = 0.0;
    double grad_clip = 1.0;
    uint64_t seed = 1;        // init and data order
    int64_t save_every = 50;  // steps between checkpoints (0: at the end / on stop only)
    int keep_last = 2;
    double validation_fraction = 0.05;  // by tune
    uint64_t split_seed = 42;
    int64_t max_tune_bytes = 3000;      // longer tunes are dropped (counted)
    int64_t eval_max_tokens = 1 << 20;  // validation tokens scored after training
};

// Parses a config file. Unknown keys, wrong types and out-of-range values are errors naming the key.
MusicTrainConfig read_music_train_config(const std::string& path);
MusicTrainConfig parse_music_train_config(const std::string& json_text, const std::string& source = "config");
std::string music_train_config_json(const MusicTrainConfig& config);  // every key, for the run folder

// The tunes of a corpus as plain ABC (framing bytes 2/3 removed when present), in file order: a .abc file or a
// directory of them, an IrishMAN .json, or a .jsonl of {"text": …}. A corpus without tunes is an error.
std::vector<Tune> read_music_corpus(const std::string& path);
// The same for one corpus file already in memory (read_music_corpus reads the file and calls this): the format follows
// the suffix of `source` (.jsonl, .json, otherwise ABC) as read_music_corpus's follows the path's; errors name
// `source`.
std::vector<Tune> parse_music_corpus(std::string_view text, const std::string& source);

// Tokens of tunes in the training framing: for each tune [2] + ASCII bytes + [3] + [0]. Tunes with non-ASCII
// bytes are an error naming the tune (the byte models are 7-bit).
std::vector<int32_t> frame_tunes_as_tokens(const std::vector<Tune>& tunes);

}  // namespace aviary::music
