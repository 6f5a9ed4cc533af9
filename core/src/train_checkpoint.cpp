// Training checkpoints (trainer.h): one directory per checkpoint holding
// model.safetensors (official names), optimizer.safetensors (AdamW
// exp_avg/exp_avg_sq/step per parameter name, the CPU RNG state) and
// trainer.json (step, data position, loss). Crash safety: everything goes into
// checkpoints/.tmp-*, each file fsynced, then the directory is renamed into
// place and the parent fsynced; readers only take step-* directories with
// trainer.json. A checkpoint is removed (rotation, the same step saved again)
// by renaming it to .tmp-* first, so a kill mid-removal never leaves a step-*
// directory with some of its files. Also the training run's shared pieces of
// crash safety: clearing what killed writes left, the seeded global RNG and the
// train log cut back to the resumed step.
#include <fcntl.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aviary/core/atomic_file.h"
#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "aviary/core/trainer.h"
#include "checkpoint_readers.h"

namespace aviary {
namespace fs = std::filesystem;
namespace {

int g_fail_after_files = -1;
int g_fail_after_removals = -1;

void fsync_path(const fs::path& p, bool directory) {
    int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

void write_text_synced(const fs::path& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    AVIARY_CHECK(fd >= 0, "cannot create '", path.string(), "': ", std::strerror(errno));
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            AVIARY_FAIL("cannot write '", path.string(), "': ", std::strerror(err));
        }
        done += size_t(n);
    }
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    AVIARY_CHECK(ok, "cannot write '", path.string(), "': ", std::strerror(errno));
}

// Test hook: counts files written by the current save and fails after the
// configured number.
void file_written(int& count) {
    ++count;
    if (g_fail_after_files >= 0 && count > g_fail_after_files) {
        g_fail_after_files = -1;
        AVIARY_FAIL("simulated failure while writing a checkpoint (test hook)");
    }
}

struct Entry {
    fs::path path;
    int64_t step;
    double loss;
};

// trainer.json of a checkpoint: the fields the loader and the rotation use, each checked for its type (a file that is
// not JSON, or has a field of another type, is not a checkpoint: fuzzing found nlohmann type errors escaping here).
struct TrainerJson {
    int64_t step = 0, data_position = 0;
    double loss = 0, elapsed_s = 0;
};
// Throws aviary::Error naming the file (`source`) and the field.
TrainerJson parse_trainer_json(std::string_view text, const std::string& source) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    AVIARY_CHECK(!j.is_discarded() && j.is_object() && j.value("format", nlohmann::json()) == "aviary-train-checkpoint",
                 "'", source, "' is not an Aviary training checkpoint");
    auto integer = [&](const char* key) {
        AVIARY_CHECK(j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() >= 0, "'", source, "': '",
                     key, "' should be a non-negative integer");
        return j[key].get<int64_t>();
    };
    auto number = [&](const char* key) {
        if (!j.contains(key)) return 0.0;
        AVIARY_CHECK(j[key].is_number(), "'", source, "': '", key, "' should be a number");
        return j[key].get<double>();
    };
    TrainerJson t;
    t.step = integer("step");
    t.data_position = integer("data_position");
    t.loss = number("loss");
    t.elapsed_s = number("elapsed_s");
    return t;
}

std::string read_small_file(const fs::path& path) {  // empty when unreadable (then not JSON: not a checkpoint)
    std::string text;
    read_whole_file(path.string(), text);
    return text;
}

TrainerJson read_trainer_json(const fs::path& meta) {
    return parse_trainer_json(read_small_file(meta), meta.string());
}

// Complete checkpoints (step-* with a valid trainer.json), oldest first.
std::vector<Entry> list_checkpoints(const fs::path& root) {
    std::vector<Entry> out;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return out;
    for (const auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (!e.is_directory() || name.rfind("step-", 0) != 0) continue;
        const fs::path meta = e.path() / "trainer.json";
        if (!fs::is_regular_file(meta)) continue;
        try {
            const TrainerJson t = read_trainer_json(meta);
            out.push_back({e.path(), t.step, t.loss});
        } catch (const Error&) {  // not a complete checkpoint: never used
        }
    }
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.step < b.step; });
    return out;
}

// Removes a checkpoint directory so that no reader ever sees part of it: renamed to .tmp-removing-* (which readers
// skip and the next save clears) and the rename made durable, then deleted file by file.
void remove_checkpoint_dir(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return;
    const fs::path doomed =
        dir.parent_path() / (".tmp-removing-" + dir.filename().string() + "-" + std::to_string(::getpid()));
    remove_tree(doomed.string());
    fs::rename(dir, doomed);
    fsync_path(dir.parent_path(), true);
    int removed = 0;
    for (const auto& e : fs::directory_iterator(doomed)) {
        if (g_fail_after_removals >= 0 && removed >= g_fail_after_removals) {
            g_fail_after_removals = -1;
            AVIARY_FAIL("simulated failure while removing a checkpoint (test hook)");
        }
        remove_tree(e.path().string());
        ++removed;
    }
    remove_tree(doomed.string());
}

std::string step_name(int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
    return buf;
}

}  // namespace

void set_checkpoint_failure_for_testing(int files) {
    g_fail_after_files = files;
}

void set_checkpoint_removal_failure_for_testing(int files) {
    g_fail_after_removals = files;
}

void clear_interrupted_writes(const std::string& out_dir) {
    std::error_code ec;
    if (!fs::is_directory(out_dir, ec)) return;
    // AtomicFile temporaries: ".NAME.tmp-XXXXXX" (mkstemp's six characters) beside their target.
    for (const auto& e : fs::directory_iterator(out_dir)) {
        const std::string name = e.path().filename().string();
        const size_t at = name.rfind(".tmp-");
        if (name.size() > 1 && name[0] == '.' && at != std::string::npos && at > 0 && name.size() == at + 5 + 6 &&
            e.is_regular_file())
            remove_tree(e.path().string());
    }
    const fs::path root = fs::path(out_dir) / "checkpoints";
    if (fs::is_directory(root, ec))
        for (const auto& e : fs::directory_iterator(root))
            if (e.path().filename().string().rfind(".tmp-", 0) == 0) remove_tree(e.path().string());
}

void seed_training_rng(uint64_t seed) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
}

void restart_train_log(const std::string& path, int64_t last_step) {
    std::string kept;
    std::ifstream in(path, std::ios::binary);
    if (last_step > 0 && in.good()) {
        std::string line;
        while (std::getline(in, line)) {
            // A line cut by a kill is not JSON (or lacks its newline at the end of the file): dropped.
            if (in.eof()) break;
            const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
                j["step"].get<int64_t>() <= last_step)
                kept += line + "\n";
        }
    }
    in.close();
    write_file_atomic(path, kept);
}

void save_train_checkpoint(const std::string& out_dir, const Model& model, const Trainer& trainer,
                           const CheckpointInfo& info, int keep_last) {
    save_train_checkpoint(out_dir, model.state_dict(), model.config().to_json(), trainer, info, keep_last);
}

void save_train_checkpoint(const std::string& out_dir, const TensorList& weights, const std::string& model_json,
                           const Trainer& trainer, const CheckpointInfo& info, int keep_last,
                           const Metadata& weights_metadata) {
    const fs::path root = fs::path(out_dir) / "checkpoints";
    fs::create_directories(root);
    // Leftovers of an interrupted save are never read; clear them.
    for (const auto& e : fs::directory_iterator(root))
        if (e.path().filename().string().rfind(".tmp-", 0) == 0) remove_tree(e.path().string());
    const fs::path final_dir = root / step_name(info.step);
    const fs::path tmp = root / (".tmp-" + step_name(info.step) + "-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    int files = 0;
    try {
        write_safetensors((tmp / "model.safetensors").string(), weights, weights_metadata);
        file_written(files);
        TensorList opt = trainer.optimizer_state();
        opt.push_back({"rng/torch_cpu", at::detail::getDefaultCPUGenerator().get_state()});
        write_safetensors((tmp / "optimizer.safetensors").string(), opt);
        file_written(files);
        nlohmann::json j;
        j["format"] = "aviary-train-checkpoint";
        j["format_version"] = 1;
        j["step"] = info.step;
        j["data_position"] = info.data_position;
        j["loss"] = info.loss;
        j["elapsed_s"] = info.elapsed_s;
        j["precision"] = train_precision_name(trainer.options().precision);  // of the forward (trainer.h)
        j["model"] = nlohmann::json::parse(model_json);
        write_text_synced(tmp / "trainer.json", j.dump(2) + "\n");
        file_written(files);
        fsync_path(tmp, true);
        remove_checkpoint_dir(final_dir);  // same step saved again (e.g. stop at the end)
        fs::rename(tmp, final_dir);
        fsync_path(root, true);
    } catch (...) {
        try {
            remove_tree(tmp.string());
        } catch (const std::exception&) {  // the original error matters more
        }
        throw;
    }
    // Rotation: the newest keep_last plus the lowest-loss one.
    auto all = list_checkpoints(root);
    if (keep_last < 1) keep_last = 1;
    if (all.size() <= size_t(keep_last)) return;
    size_t best = 0;
    for (size_t i = 1; i < all.size(); ++i)
        if (all[i].loss < all[best].loss) best = i;
    for (size_t i = 0; i + size_t(keep_last) < all.size(); ++i)
        if (i != best) remove_checkpoint_dir(all[i].path);
    fsync_path(root, true);
}

std::string latest_train_checkpoint(const std::string& out_dir) {
    auto all = list_checkpoints(fs::path(out_dir) / "checkpoints");
    return all.empty() ? std::string() : all.back().path.string();
}

CheckpointInfo load_train_checkpoint(const std::string& dir, Model& model, Trainer& trainer) {
    return load_train_checkpoint(dir, model.state_dict(), trainer);
}

namespace {

// load_train_checkpoint on the checkpoint's files (mapped, or bytes in memory), trainer.json already parsed; errors
// name `dir` and each file's path().
CheckpointInfo load_checkpoint_files(const TrainerJson& j, const detail::MappedFile& model_file,
                                     const detail::MappedFile& optimizer_file, const std::string& dir,
                                     const TensorList& weights, Trainer& trainer) {
    // Weights: same names and shapes as the model, or a clear error.
    TensorList saved = detail::read_safetensors(model_file, nullptr);
    const TensorList& params = weights;
    AVIARY_CHECK(saved.size() == params.size(), "checkpoint '", dir, "' is from another model: it has ", saved.size(),
                 " tensors, this model has ", params.size(), " (n_layer/n_embd/version/vocab differ?)");
    {
        at::NoGradGuard no_grad;
        for (const auto& p : params) {
            const at::Tensor* t = find_tensor(saved, p.name);
            AVIARY_CHECK(t != nullptr, "checkpoint '", dir, "' is from another model: it lacks '", p.name, "'");
            AVIARY_CHECK(t->sizes() == p.tensor.sizes(), "checkpoint '", dir, "' is from another model: '", p.name,
                         "' has shape ", t->sizes(), ", this model has ", p.tensor.sizes());
            p.tensor.copy_(*t);
        }
    }
    const std::string& opt_path = optimizer_file.path();
    TensorList opt = detail::read_safetensors(optimizer_file, nullptr);
    CheckpointInfo info;
    info.path = dir;
    info.step = j.step;
    info.data_position = j.data_position;
    info.loss = j.loss;
    info.elapsed_s = j.elapsed_s;
    trainer.load_optimizer_state(opt, info.step);
    if (const at::Tensor* rng = find_tensor(opt, "rng/torch_cpu")) {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        // LibTorch checks the state's size and contents and throws c10::Error (found by fuzzing); say which file.
        try {
            gen.set_state(*rng);
        } catch (const c10::Error& e) {
            AVIARY_FAIL("'", opt_path, "': 'rng/torch_cpu' is not a CPU generator state (", e.what_without_backtrace(),
                        ")");
        }
    }
    return info;
}

}  // namespace

CheckpointInfo load_train_checkpoint(const std::string& dir, const TensorList& weights, Trainer& trainer) {
    const fs::path d(dir);
    const fs::path meta = d / "trainer.json";
    AVIARY_CHECK(fs::is_regular_file(meta), "'", dir, "' is not a complete training checkpoint (no trainer.json)");
    const TrainerJson j = read_trainer_json(meta);
    const detail::MappedFile model_file((d / "model.safetensors").string());
    const detail::MappedFile optimizer_file((d / "optimizer.safetensors").string());
    return load_checkpoint_files(j, model_file, optimizer_file, dir, weights, trainer);
}

CheckpointInfo load_train_checkpoint_bytes(const TrainCheckpointBytes& files, const std::string& dir,
                                           const TensorList& weights, Trainer& trainer) {
    const fs::path d(dir);
    const TrainerJson j = parse_trainer_json(files.trainer_json, (d / "trainer.json").string());
    auto view = [](std::string_view bytes, const fs::path& name) {
        return detail::MappedFile(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name.string());
    };
    const detail::MappedFile model_file = view(files.model, d / "model.safetensors");
    const detail::MappedFile optimizer_file = view(files.optimizer, d / "optimizer.safetensors");
    return load_checkpoint_files(j, model_file, optimizer_file, dir, weights, trainer);
}

}  // namespace aviary
