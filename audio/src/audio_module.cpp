// aviary::audio skeleton: the module is planned (see its issue) and not built yet.
#include "aviary/audio/audio.h"
namespace aviary::audio {
const char* module_status() { return "audio: not implemented yet"; }
}  // namespace aviary::audio
