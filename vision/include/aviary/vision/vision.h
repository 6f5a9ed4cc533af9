// aviary::vision public API (placeholder until its issue lands): reports what this build contains.
#pragma once
namespace aviary::vision {
// Name and state of the module, e.g. for `aviary info --build`.
const char* module_status();
}  // namespace aviary::vision
