// `aviary forward --model M --tokens 1,5,77 --out logits.npy [--mode seq|rnn]`: float32 logits after every
// token, shape [T, V] (DESIGN.md CLI contract). The output appears only when complete (atomic write).
#include <ATen/ATen.h>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "cli_common.h"
#include "npy_writer.h"

namespace aviary::cli {

void register_forward(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("forward", "Write the logits after every token as a float32 .npy [T, V]");
    struct Args {
        ModelArgs model;
        std::string tokens, out, mode = "seq";
    };
    auto a = std::make_shared<Args>();
    add_model_options(sub, a->model);
    sub->add_option("--tokens", a->tokens, "Comma-separated token ids, e.g. 1,5,77")->required();
    sub->add_option("--out,-o", a->out, "Output .npy file")->required();
    sub->add_option("--mode", a->mode, "seq (parallel over time) or rnn (one token at a time)")
        ->check(CLI::IsMember({"seq", "rnn"}));
    sub->callback([&run, a] {
        run = [a] {
            const std::vector<int64_t> ids = parse_token_list(a->tokens);
            Model model = load_model(a->model);
            const int64_t V = model.config().vocab_size, T = static_cast<int64_t>(ids.size());
            for (int64_t id : ids)
                AVIARY_CHECK(id < V, "token id ", id, " is out of range (the model's vocabulary has ", V, " ids)");
            at::Tensor tokens = at::tensor(ids, at::kLong);  // (T)
            State state = model.new_state(1);
            at::Tensor logits;  // (T, V)
            if (a->mode == "seq") {
                logits = model.forward(tokens.unsqueeze(0), state, /*all_logits=*/true).squeeze(0);
            } else {
                std::vector<at::Tensor> rows;
                for (int64_t t = 0; t < T; ++t) rows.push_back(model.step(tokens.narrow(0, t, 1), state).squeeze(0));
                logits = at::stack(rows);
            }
            logits = logits.to(at::kCPU, at::kFloat).contiguous();
            write_file_atomic(a->out, npy_bytes(logits.data_ptr<float>(), {T, V}));
            return 0;
        };
    });
}

}  // namespace aviary::cli
