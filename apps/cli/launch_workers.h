// `--nproc N`: runs N local worker processes of this same executable with the torchrun-style environment
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT) and supervises them:
// when one fails, the others are stopped and an error names it.
#pragma once
#include <string>
#include <vector>

namespace aviary::cli {

// This process's command line (from /proc/self/cmdline) with every `--nproc N` / `--nproc=N` removed.
std::vector<std::string> command_line_without_nproc();

// fork + execve of /proc/self/exe with `args` (args[0] = program name) for ranks 0..nproc-1; waits for all.
// MASTER_PORT comes from the environment or is a free loopback port. Returns 0 when every worker exited with 0;
// otherwise stops the rest (SIGTERM, SIGKILL after 10 s) and throws aviary::Error naming the first failed rank.
// SIGINT/SIGTERM received by the launcher are passed on to the workers.
int launch_local_workers(int nproc, const std::vector<std::string>& args);

}  // namespace aviary::cli
