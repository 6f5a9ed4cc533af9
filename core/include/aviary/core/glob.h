// Shell-style wildcard matching of parameter names ('*' any run, '?' one character, everything else literal), for
// the trainer's freeze / train-only lists and the LoRA targets (model.h).
#pragma once
#include <string>

namespace aviary {

// True when `pattern` matches the whole of `name`: glob_match("blocks.*.att.*", "blocks.11.att.key.weight").
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace aviary
