// Child processes (child_process.h): posix_spawn with file actions for the log, waitpid to reap.
#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "aviary/core/error.h"

extern char** environ;

namespace aviary::studio {

std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= p.size()) {
        const size_t colon = std::min(p.find(':', start), p.size());
        const std::string dir = p.substr(start, colon - start);
        if (!dir.empty()) {
            const std::string cand = dir + "/" + name;
            if (::access(cand.c_str(), X_OK) == 0 && !std::filesystem::is_directory(cand)) return cand;
        }
        start = colon + 1;
    }
    return "";
}

namespace {
int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}
}  // namespace

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && running()) {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

namespace {
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log_path) {
    AVIARY_CHECK(!argv.empty(), "no program to start");
    const std::string exe = find_program(argv[0]);
    AVIARY_CHECK(!exe.empty(), "program '", argv[0], "' not found (not executable or not on $PATH)");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = log_path.empty() ? "/dev/null" : log_path;
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    AVIARY_CHECK(rc == 0, "cannot start '", exe, "': ", std::strerror(rc));
    return pid;
}
}  // namespace

void ChildProcess::start(const std::vector<std::string>& argv, const std::string& log_path) {
    AVIARY_CHECK(pid_ <= 0 || !running(), "a process is already running (pid ", pid_, ")");
    pid_ = spawn_logged(argv, log_path);
    exit_code_ = -1;
}

bool ChildProcess::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    exit_code_ = r == pid_ ? decode_status(status) : -1;
    pid_ = -1;
    return false;
}

void ChildProcess::interrupt() {
    if (pid_ > 0) ::kill(pid_, SIGINT);
}
void ChildProcess::terminate() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
}

int run_program(const std::vector<std::string>& argv, const std::string& log_path) {
    const pid_t pid = spawn_logged(argv, log_path);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return decode_status(status);
}

}  // namespace aviary::studio
