// AtomicFile (atomic_file.h): temporary beside the target (mkstemp), full writes with EINTR retry, fsync,
// rename, directory fsync.
#include "aviary/core/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "aviary/core/error.h"

namespace aviary {
namespace {

// The process's file-creation mask, read without changing it (umask(2) can only be read by setting it, a race with
// other threads creating files): /proc/self/status "Umask:" (Linux 4.7+), else the usual 022.
mode_t process_umask() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    unsigned mask = 022;
    if (f) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Umask: %o", &mask) == 1) break;
        std::fclose(f);
    }
    return static_cast<mode_t>(mask & 0777);
}

std::string parent_dir(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    AVIARY_CHECK(!path_.empty(), "empty output path");
    AVIARY_CHECK(!std::filesystem::is_directory(path_), "output '", path_, "' is a directory (expected a file path)");
    const size_t slash = path_.find_last_of('/');
    const std::string name = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    tmp_ = parent_dir(path_) + "/." + name + ".tmp-XXXXXX";
    fd_ = ::mkstemp(tmp_.data());
    AVIARY_CHECK(fd_ >= 0, path_, ": cannot create a temporary file in '", parent_dir(path_), "' (",
                 std::strerror(errno), "); does the directory exist and is it writable?");
    // mkstemp creates 0600; the output gets the mode a plain open(O_CREAT, 0666) would give it (0644 under umask 022).
    ::fchmod(fd_, 0666 & ~process_umask());
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));  // Linux caps one write near 2 GiB
        if (w < 0 && errno == EINTR) continue;
        AVIARY_CHECK(w > 0, path_, ": write failed (", std::strerror(errno), ")");
        p += w;
        n -= static_cast<size_t>(w);
    }
}

void AtomicFile::commit() {
    AVIARY_CHECK(fd_ >= 0 && !committed_, path_, ": file already committed");
    AVIARY_CHECK(::fsync(fd_) == 0, path_, ": fsync failed (", std::strerror(errno), ")");
    const int rc = ::close(fd_);
    fd_ = -1;
    AVIARY_CHECK(rc == 0, path_, ": close failed (", std::strerror(errno), ")");
    AVIARY_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, path_,
                 ": cannot replace the file with the finished temporary (", std::strerror(errno), ")");
    committed_ = true;
    fsync_directory(parent_dir(path_));
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
    AtomicFile file(path);
    file.write(bytes.data(), bytes.size());
    file.commit();
}

void fsync_directory(const std::string& dir) {
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path) == 0 || errno == ENOENT ? 0 : -1;  // files, links, and directories once emptied
}
}  // namespace

void remove_tree(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
        AVIARY_CHECK(errno == ENOENT, "cannot remove '", path, "': ", std::strerror(errno));
        return;
    }
    // Depth first (contents before their directory), never following symbolic links.
    if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        AVIARY_FAIL("cannot remove '", path, "': ", std::strerror(errno));
}

}  // namespace aviary
