// aviary::vision skeleton: the module is planned (see its issue) and not built yet.
#include "aviary/vision/vision.h"
namespace aviary::vision {
const char* module_status() { return "vision: not implemented yet"; }
}  // namespace aviary::vision
