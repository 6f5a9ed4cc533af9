// Fuzz target: LLaVA training data (a JSON list or JSONL of {"id", "image", "conversations": [{"from", "value"}]})
// through vision::parse_llava, which read_llava (as `aviary train vision` reads it) calls with the file's text, and
// the VQA evaluation reader's parse_vqa (read_vqa, as `aviary eval vqa` reads its JSONL) on the same bytes.
#include "aviary/vision/llava_data.h"
#include "aviary/vision/vqa_eval.h"
#include "fuzz_common.h"

AVIARY_FUZZ_TARGET(llava) {
    const std::string text(aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] { (void)aviary::vision::parse_llava(text, "llava.json"); });
    aviary::fuzz::expect_clean([&] { (void)aviary::vision::parse_vqa(text, "vqa.jsonl"); });
}
