// What this process has cost so far, for the `--stats` lines of the command line (`vqa`, `tag`) and the studio's
// panels: one place that reads the peak resident memory, so every front end reports the same number.
#pragma once

namespace aviary {

// Peak resident set of this process in MiB (2^20 bytes): VmHWM from /proc/self/status, else getrusage's ru_maxrss
// (KiB on Linux); 0 when neither can be read.
double peak_rss_mb();

}  // namespace aviary
