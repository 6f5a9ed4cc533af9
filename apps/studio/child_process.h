// Child processes for the studio: a training run (`aviary train text …`, stopped with SIGINT so the
// trainer writes a checkpoint), rsvg-convert and an audio player. posix_spawn, no shell; output goes to a
// log file. A missing program is an aviary::Error naming it.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace aviary::studio {

class ChildProcess {
public:
    ChildProcess() = default;
    ~ChildProcess();  // a still-running child gets SIGTERM and is reaped
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // argv[0] is a path or a name looked up on $PATH; stdout and stderr are appended to log_path ("" = /dev/null).
    void start(const std::vector<std::string>& argv, const std::string& log_path);
    bool running();                               // reaps the child when it has exited
    void interrupt();                             // SIGINT
    void terminate();                             // SIGTERM
    int exit_code() const { return exit_code_; }  // after it ended: the code, 128+signal, or -1
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int exit_code_ = -1;
};

// Runs a program to completion; returns its exit code (128+signal when killed); output appended to log_path.
int run_program(const std::vector<std::string>& argv, const std::string& log_path = "");
// Full path of an executable on $PATH, or "" (same rule as music::find_tool, for tools music does not wrap).
std::string find_program(const std::string& name);

}  // namespace aviary::studio
