// aviary::music skeleton: the module is planned (see its issue) and not built yet.
#include "aviary/music/music.h"
namespace aviary::music {
const char* module_status() { return "music: not implemented yet"; }
}  // namespace aviary::music
