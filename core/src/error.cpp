// aviary::Error is header-only; this unit anchors the library's error vocabulary (kept for future
// structured error codes shared by the CLI and the studio).
#include "aviary/core/error.h"
