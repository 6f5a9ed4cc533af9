// Shared command-line helpers (cli_common.h).
#include "cli_common.h"

#include "aviary/core/cpu_engine.h"
#include "aviary/core/cpu_engine_int8.h"
#include "aviary/core/cpu_info.h"
#include "aviary/core/error.h"
#include "aviary/core/threads.h"

namespace aviary::cli {

void add_model_options(CLI::App* sub, ModelArgs& args, bool required) {
    auto* opt = sub->add_option("--model,-m", args.model, "Checkpoint: official RWKV-5.2/6 .pth or .safetensors");
    if (required) opt->required();
    sub->add_option("--device", args.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
    sub->add_option("--dtype", args.dtype,
                    "Weight dtype of the matrices: fp32, bf16 or int8 (int8: CPU decoding on int8 weights with "
                    "per-row scales; sequence mode in fp32)")
        ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
    sub->add_option("--threads", args.threads, "CPU threads (default: $AVIARY_THREADS or all cores)")
        ->check(CLI::NonNegativeNumber);
}

bool runs_fp32_training(int argc, char** argv) {
    if (argc < 2 || (std::string(argv[1]) != "train" && std::string(argv[1]) != "research")) return false;
    std::string precision, device = "cpu";
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        for (auto [name, value] :
             {std::pair<const char*, std::string*>{"--precision", &precision}, {"--device", &device}}) {
            const std::string eq = std::string(name) + "=";
            if (a == name && i + 1 < argc)
                *value = argv[i + 1];
            else if (a.rfind(eq, 0) == 0)
                *value = a.substr(eq.size());
        }
    }
    if (device != "cpu") return false;
    if (!precision.empty()) return precision == "fp32";
    return !cpu_info().native_bf16();
}

void add_precision_option(CLI::App* sub, TrainPrecision& precision) {
    sub->add_option_function<std::string>(
           "--precision", [&precision](const std::string& name) { precision = parse_train_precision(name); },
           "Forward arithmetic: bf16 (autocast on the CPU's bf16 units; fp32 master weights, WKV, norms and loss) or "
           "fp32 (default: bf16 where the CPU's bf16 products are faster: AMX-BF16, or AVX512-BF16 measured faster "
           "at start; else fp32)")
        ->check(CLI::IsMember({"bf16", "fp32"}));
}

Model load_model(const ModelArgs& args) {
    set_thread_count(args.threads);
    AVIARY_CHECK(args.dtype != "int8" || args.device == "cpu",
                 "--dtype int8 runs on the CPU decode engine only; "
                 "use --device cpu (or --dtype bf16 on cuda)");
    TensorList tensors = read_checkpoint(args.model);
    // "auto" (bench's default): the checkpoint's own precision — an int8 file (`aviary convert --dtype int8`) int8,
    // otherwise what Model::from_tensors finds (bf16 matrices bf16, anything else fp32)
    std::string dtype = args.dtype;
    if (dtype == "auto" && args.device == "cpu" && is_int8_checkpoint(tensors)) dtype = "int8";
    ModelOptions opt;
    // The model's CPU decode engine (Decoder on the CPU: generate, chat, music, bench) runs in this format and threads.
    opt.cpu_engine.dtype = dtype == "int8" ? "int8" : "auto";
    opt.cpu_engine.threads = args.threads;
    opt.device = args.device;
    opt.dtype = dtype == "int8" ? "fp32" : dtype;
    // `aviary convert --dtype int8` files: dequantised for the model; an int8 engine re-derives the same codes.
    if (is_int8_checkpoint(tensors)) tensors = dequantize_checkpoint_int8(tensors);
    return Model::from_tensors(tensors, opt, args.model);
}

void add_vocab_option(CLI::App* sub, std::string& vocab) {
    sub->add_option("--vocab", vocab, "World vocabulary file (default: the installed rwkv_vocab_v20230424.txt)");
}

WorldTokenizer load_tokenizer(const std::string& vocab) {
    return WorldTokenizer::load(vocab.empty() ? WorldTokenizer::default_vocab_path() : vocab);
}

void add_tokenizer_option(CLI::App* sub, std::string& kind) {
    sub->add_option("--tokenizer", kind, "world | byte (default: byte for models of <= 256 ids, else world)")
        ->check(CLI::IsMember({"world", "byte"}));
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const Model& model, const std::string& model_path,
                                              const std::string& kind, const std::string& vocab) {
    try {
        return make_tokenizer(kind.empty() ? "auto" : kind, model.config().vocab_size, vocab);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {  // make_tokenizer names the sizes; add the file
        throw Error("model '" + model_path + "': " + e.what());
    }
}

std::vector<int64_t> parse_token_list(const std::string& text) {
    std::vector<int64_t> ids;
    if (text.empty()) throw UsageError("--tokens is empty (expected comma-separated token ids, e.g. 1,5,77)");
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        std::string piece = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        const bool digits =
            !piece.empty() && piece.size() <= 10 && piece.find_first_not_of("0123456789") == std::string::npos;
        if (!digits)
            throw UsageError("--tokens: '" + piece +
                             "' is not a token id (expected comma-separated non-negative "
                             "integers, e.g. 1,5,77)");
        ids.push_back(std::stoll(piece));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return ids;
}

}  // namespace aviary::cli
