// Atomic file writing: the bytes go to a temporary file beside the target, which is fsynced and renamed over
// the target (then the directory is fsynced), so a reader sees the old file or the complete new one and a
// crash or a full disk never leaves a partial file behind (DESIGN.md "never a partial output file").
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace aviary {

class AtomicFile {
public:
    // Creates the temporary; throws aviary::Error naming the directory when it cannot.
    explicit AtomicFile(std::string path);
    ~AtomicFile();  // without commit(): closes and removes the temporary
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t n);  // all of it, or throws
    void commit();                           // fsync, close, rename over the target, fsync the directory
    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return tmp_; }

private:
    std::string path_, tmp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes `bytes` to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view bytes);

// fsyncs a directory so that a rename inside it is durable (best effort: some filesystems refuse).
void fsync_directory(const std::string& dir);

// Removes a file or a directory tree (symbolic links are removed, not followed); a missing path is not an error.
// Throws aviary::Error naming the path that could not be removed. POSIX nftw rather than
// std::filesystem::remove_all: PyTorch 2.x wheels export their own statically linked copies of libstdc++'s
// std::filesystem internals (pytorch/pytorch#133437), and remove_all crashed (SIGSEGV at address 0) in a build
// against such a LibTorch.
void remove_tree(const std::string& path);

}  // namespace aviary
