// Fuzz target: LLaVA training data (a JSON list or JSONL of {"id", "image", "conversations": [{"from", "value"}]})
// through vision::read_llava, as `aviary train vision` reads it, and the VQA evaluation reader (read_vqa) on the same
// bytes, as `aviary eval vqa` reads its JSONL.
#include "aviary/vision/vision_train.h"
#include "aviary/vision/vqa_eval.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(llava) {
    const std::string path = aviary::fuzz::write_file("llava.json", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] { (void)aviary::vision::read_llava(path); });
    const std::string jsonl = aviary::fuzz::write_file("vqa.jsonl", aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] { (void)aviary::vision::read_vqa(jsonl); });
}
