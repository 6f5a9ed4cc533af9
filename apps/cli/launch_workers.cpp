// Local multi-process launcher for `aviary train … --nproc N` (launch_workers.h): the role torchrun's
// `--standalone --nproc_per_node N` plays for PyTorch, reduced to fork/execve/waitpid. The workers rendezvous
// through c10d themselves (distributed.h); this file moves no data.
#include "launch_workers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"

extern char** environ;

namespace aviary::cli {
namespace {

volatile std::sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) {
    g_forward_signal = sig;
}

// A port that is free on loopback right now (bind to port 0, read it back, close).
int free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    AVIARY_CHECK(fd >= 0, "cannot create a socket to pick MASTER_PORT: ", std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    AVIARY_CHECK(ok, "cannot find a free port for MASTER_PORT: ", std::strerror(errno), " (set MASTER_PORT)");
    return ntohs(addr.sin_port);
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
}

}  // namespace

std::vector<std::string> command_line_without_nproc() {
    std::string raw;
    read_whole_file("/proc/self/cmdline", raw);  // empty (no arguments to pass on) if it cannot be read
    std::vector<std::string> all;
    for (size_t start = 0; start < raw.size();) {
        const size_t end = raw.find('\0', start);
        all.push_back(raw.substr(start, end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < all.size(); ++i) {
        if (all[i] == "--nproc") {
            ++i;  // and its value
            continue;
        }
        if (all[i].rfind("--nproc=", 0) == 0) continue;
        out.push_back(all[i]);
    }
    return out;
}

int launch_local_workers(int nproc, const std::vector<std::string>& args) {
    AVIARY_CHECK(nproc >= 1, "--nproc must be >= 1, got ", nproc);
    AVIARY_CHECK(!args.empty(), "internal: empty worker command line");
    const char* port_env = std::getenv("MASTER_PORT");
    const std::string port = port_env && *port_env ? port_env : std::to_string(free_loopback_port());

    // Everything execve needs is built before fork (the child only calls async-signal-safe functions).
    std::vector<std::string> base_env;
    for (char** e = environ; *e; ++e) {
        const std::string kv = *e;
        const std::string key = kv.substr(0, kv.find('='));
        if (key == "RANK" || key == "WORLD_SIZE" || key == "LOCAL_RANK" || key == "LOCAL_WORLD_SIZE" ||
            key == "MASTER_ADDR" || key == "MASTER_PORT")
            continue;
        base_env.push_back(kv);
    }
    std::vector<std::vector<std::string>> envs(size_t(nproc), base_env);
    for (int r = 0; r < nproc; ++r) {
        auto& e = envs[size_t(r)];
        e.push_back("RANK=" + std::to_string(r));
        e.push_back("LOCAL_RANK=" + std::to_string(r));
        e.push_back("WORLD_SIZE=" + std::to_string(nproc));
        e.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
        e.push_back("MASTER_ADDR=127.0.0.1");
        e.push_back("MASTER_PORT=" + port);
    }
    auto pointers = [](std::vector<std::string>& v) {
        std::vector<char*> p;
        for (auto& s : v) p.push_back(s.data());
        p.push_back(nullptr);
        return p;
    };
    std::vector<std::string> argv_copy = args;
    std::vector<char*> argv = pointers(argv_copy);
    std::vector<std::vector<char*>> envp;
    for (auto& e : envs) envp.push_back(pointers(e));

    // SIGINT (Ctrl-C reaches the workers too: same process group) and SIGTERM are remembered and passed on
    // while the launcher waits; handlers (not SIG_IGN) so that the workers start with the default disposition.
    struct sigaction sa {};
    sa.sa_handler = remember_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int {
    }, old_term{};
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);

    std::fflush(stdout);
    std::fflush(stderr);
    std::vector<pid_t> pids(size_t(nproc), -1);
    for (int r = 0; r < nproc; ++r) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::execve("/proc/self/exe", argv.data(), envp[size_t(r)].data());
            const char msg[] = "error: cannot start a worker process (execve /proc/self/exe failed)\n";
            (void)!::write(2, msg, sizeof msg - 1);
            ::_exit(127);
        }
        if (pid < 0) {
            for (int q = 0; q < r; ++q) ::kill(pids[size_t(q)], SIGKILL);
            for (int q = 0; q < r; ++q) ::waitpid(pids[size_t(q)], nullptr, 0);
            AVIARY_FAIL("cannot fork worker ", r, " of ", nproc, ": ", std::strerror(errno));
        }
        pids[size_t(r)] = pid;
    }

    int alive = nproc, failed_rank = -1, failed_status = 0;
    std::chrono::steady_clock::time_point kill_deadline{};
    bool killed = false;
    while (alive > 0) {
        if (g_forward_signal) {
            const int sig = g_forward_signal;
            g_forward_signal = 0;
            // Ctrl-C already reached the workers through the terminal; an explicit signal to the launcher did not.
            if (sig != SIGINT)
                for (pid_t p : pids)
                    if (p > 0) ::kill(p, sig);
        }
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int r = 0; r < nproc; ++r) {
                if (pids[size_t(r)] != pid) continue;
                pids[size_t(r)] = -1;
                --alive;
                const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                if (!ok && failed_rank < 0) {
                    failed_rank = r;
                    failed_status = status;
                    for (pid_t p : pids)
                        if (p > 0) ::kill(p, SIGTERM);
                    kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                }
            }
            continue;
        }
        if (pid < 0 && errno != EINTR) break;  // no children left
        if (failed_rank >= 0 && !killed && std::chrono::steady_clock::now() > kill_deadline) {
            for (pid_t p : pids)
                if (p > 0) ::kill(p, SIGKILL);
            killed = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    AVIARY_CHECK(failed_rank < 0, "worker rank ", failed_rank, " of ", nproc, " ", describe_status(failed_status),
                 "; the other workers were stopped (see its error above)");
    return 0;
}

}  // namespace aviary::cli
