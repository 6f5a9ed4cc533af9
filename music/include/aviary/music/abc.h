// ABC notation for the RWKV music models (multimodal_spec.md part C): the byte framing (BOS 2 … EOS 3),
// prompts with header fields and control codes, corpus readers (.abc collections split at `X:`, the
// IrishMAN JSON layout), a seeded train/validation split by tune, and a structural checker.
// No LibTorch here: this header is cheap to include.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aviary/core/tokenizer.h"

namespace aviary::music {

// ChatRWKV music/run.py: training sequence [2] + ord(chars) + [3] (the byte tokenizer's framing ids)
constexpr int32_t kBos = ByteTokenizer::kBos;
constexpr int32_t kEos = ByteTokenizer::kEos;

// ---- prompt ----
struct PromptOptions {
    std::string control_codes;  // e.g. "S:2\nB:9\n" (IrishMAN/TunesFormer codes), written after X:
    std::string title;          // T: (optional)
    std::string meter;          // M: e.g. "6/8" (empty: left to the model)
    std::string length;         // L: e.g. "1/8"
    std::string key;            // K: e.g. "D" (K: closes the header)
    std::string bars;           // optional opening bars after the header
    bool with_x = true;         // start with "X:1" (abc2midi needs it; the official models omit it)
};
// chr(2) + "X:1\n" + control codes + T:/M:/L: + K: + bars. Header fields are written in the order ABC
// requires (K: last); a field left empty is left to the model (then K: is not written either, since
// the model must still produce the fields that precede it). Throws aviary::Error on non-ASCII bytes or
// newlines inside a field.
std::string build_prompt(const PromptOptions& options);
// Byte ids of an ABC text: core ByteTokenizer::encode (id = byte; ByteTokenizer::decode reverses it, dropping the
// framing ids <= 3), after checking the alphabet. Throws aviary::Error naming the position of the first byte that is
// not 7-bit ASCII (the model's alphabet) or that is a control byte other than \n, \t, \r and the BOS/EOS framing.
std::vector<int32_t> encode_abc(std::string_view text);

// ---- corpora ----
struct Tune {
    std::string abc;     // the tune text, starting at its X: line (or control codes for IrishMAN)
    std::string source;  // file name and index, for messages
};
// Splits an ABC collection into tunes at lines starting with "X:"; text before the first X: (file
// headers, comments) is dropped; trailing blank lines are trimmed.
std::vector<Tune> split_abc_collection(std::string_view text, const std::string& source = "");
// Reads one .abc file, or every .abc file under a directory (sorted), split into tunes.
std::vector<Tune> read_abc_path(const std::string& path);
// IrishMAN (sander-wood/irishman) JSON: an array of {"control code": …, "abc notation": …}. Builds the
// TunesFormer training text: the control code, then the ABC with its first (X:) line removed.
std::vector<Tune> read_irishman_json(const std::string& path);
// The same for the file's text already in memory (read_irishman_json reads the file and calls this); errors name
// `source`.
std::vector<Tune> parse_irishman_json(std::string_view text, const std::string& source);
// The text of a tune in the official framing: chr(2) + abc + chr(3).
std::string frame_tune(std::string_view abc);
// Seeded shuffle, then the first round(fraction * n) tunes (at least 1 when n > 1) go to validation.
void split_train_validation(const std::vector<Tune>& tunes, double validation_fraction, uint64_t seed,
                            std::vector<Tune>& train, std::vector<Tune>& validation);

// ---- checker ----
struct AbcCheck {
    bool ok = false;                  // no errors (warnings allowed)
    std::vector<std::string> errors;  // e.g. "missing K: header"
    std::vector<std::string> warnings;
    int bars = 0;  // bar lines in the body
};
// Structural checks: X: first, then M:, L: (warning only: ABC defaults it) and K: before the body (T:
// optional), a non-empty body with at least one bar line, balanced repeats and brackets/quotes per line,
// only 7-bit ASCII.
AbcCheck check_abc(std::string_view abc);
// Removes the framing bytes (BOS/EOS and other ids <= 3) and makes sure the text starts with an X: line
// (adds "X:1\n" when missing), for the external ABC tools.
std::string to_abc_file_text(std::string_view generated);

}  // namespace aviary::music
