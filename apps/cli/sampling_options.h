// Command-line sampling options shared by `generate` and `chat` (official knobs, spec §6).
#pragma once
#include <CLI/CLI.hpp>

#include "aviary/core/sampler.h"

namespace aviary::cli {

inline void add_sampling_options(CLI::App* sub, SamplerOptions& s) {
    sub->add_option("--temperature", s.temperature,
                    "Temperature, applied to probabilities after top-p/top-k (0 = greedy)")
        ->check(CLI::Range(0.0, 100.0));
    sub->add_option("--top-p", s.top_p, "Nucleus cutoff: keep tokens until the cumulative probability reaches P")
        ->check(CLI::Range(0.0, 1.0));
    sub->add_option("--top-k", s.top_k, "Keep only the K most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
    sub->add_option("--presence-penalty", s.presence_penalty, "Subtracted from the logit of every token seen")
        ->check(CLI::Range(-10.0, 10.0));
    sub->add_option("--frequency-penalty", s.frequency_penalty, "Subtracted per (decayed) occurrence")
        ->check(CLI::Range(-10.0, 10.0));
    sub->add_option("--penalty-decay", s.penalty_decay, "Occurrence counts are multiplied by this every token")
        ->check(CLI::Range(0.0, 1.0));
    sub->add_option("--seed", s.seed, "Random seed (runs with the same seed repeat)");
}

}  // namespace aviary::cli
