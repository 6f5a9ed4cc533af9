// aviary-make-visualrwkv-shape OUT.safetensors [SHAPE]: a VisualRWKV-6 file of an official shape with random weights,
// every tensor bf16, for timing image QA (`aviary vqa --stats`, docs/BENCHMARKS.md): CLIP-L/14-336 (24 layers,
// width 1024, 16 heads) + RWKV-6 of SHAPE (default 1.6b: L24 D2048, World vocabulary) + the projector. Seeded: the
// same file every time. Random weights answer nonsense, at the speed of real ones.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "aviary/core/checkpoint.h"
#include "aviary/core/model_shapes.h"
#include "aviary/vision/clip_vit.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "error: usage: aviary-make-visualrwkv-shape OUT.safetensors [0.1b|0.4b|1.6b|3b]\n");
        return 2;
    }
    try {
        using namespace aviary;
        const std::string shape = argc > 2 ? argv[2] : "1.6b";
        torch::manual_seed(1);
        TensorList out;
        const ModelConfig rc = named_shape(shape, 6);
        for (auto& t : random_weights(rc, 1)) out.push_back({"rwkv." + t.name, t.tensor.to(at::kBFloat16)});
        const vision::ClipVisionConfig c;  // defaults: ViT-L/14 at 336 px
        auto vit = vision::ClipVision::create(c, 2);
        for (auto& t : vit.state_dict()) out.push_back({"vit." + t.name, t.tensor.to(at::kBFloat16)});
        out.push_back({"proj.weight", (torch::randn({rc.n_embd, c.hidden}) * 0.03).to(at::kBFloat16)});
        write_safetensors(argv[1], out, {{"clip_heads", std::to_string(c.heads)}, {"tokenizer", "world"}});
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
