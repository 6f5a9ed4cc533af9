// Communicator (distributed.h) over LibTorch's c10d: TCPStore rendezvous (rank 0 serves, or torchrun's agent
// store), ProcessGroupGloo (built when the gloo headers were found: AVIARY_HAVE_GLOO defines USE_C10D_GLOO) and
// ProcessGroupNCCL (USE_C10D_NCCL, only for CUDA LibTorch with nccl.h). Environment names follow
// torch.distributed's env:// rendezvous (torch/distributed/rendezvous.py in 1.13).
#include "aviary/core/distributed.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "aviary/core/error.h"

#if defined(AVIARY_HAVE_GLOO) || defined(USE_C10D_NCCL)
#define AVIARY_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef AVIARY_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#ifdef AVIARY_HAVE_C10D
#include <torch/version.h>
#endif

namespace aviary {
namespace {

#ifdef AVIARY_HAVE_C10D
// ProcessGroupGloo/NCCL are ProcessGroups in LibTorch 1.x and Backends (behind a ProcessGroup) in 2.x; both
// offer allreduce, broadcast and barrier with the same signatures.
#if TORCH_VERSION_MAJOR >= 2
using GroupPtr = c10::intrusive_ptr<c10d::Backend>;
#else
using GroupPtr = c10::intrusive_ptr<c10d::ProcessGroup>;
#endif
#endif

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return (v && *v) ? v : nullptr;
}

// An integer environment variable within [lo, hi]; `fallback` when unset.
int env_int(const char* name, int fallback, int lo, int hi) {
    const char* v = env(name);
    if (!v) return fallback;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    AVIARY_CHECK(end && *end == '\0' && x >= lo && x <= hi, "environment variable ", name, "='", v,
                 "' is not an integer in [", lo, ", ", hi, "]");
    return int(x);
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
    DistributedEnv e;
    const bool torch_style = env("WORLD_SIZE") != nullptr;
    const bool slurm = !torch_style && env("SLURM_NTASKS") != nullptr;
    if (torch_style) {
        e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
        e.rank = env_int("RANK", 0, 0, 1 << 20);
        e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 20);
    } else if (slurm) {
        e.world_size = env_int("SLURM_NTASKS", 1, 1, 1 << 20);
        e.rank = env_int("SLURM_PROCID", 0, 0, 1 << 20);
        e.local_rank = env_int("SLURM_LOCALID", 0, 0, 1 << 20);
    }
    AVIARY_CHECK(e.rank < e.world_size, "RANK ", e.rank, " is not below WORLD_SIZE ", e.world_size);
    if (!e.active()) return e;
    AVIARY_CHECK(env("MASTER_ADDR") || slurm, "WORLD_SIZE=", e.world_size,
                 " asks for distributed training, but MASTER_ADDR is not set (the address of rank 0's host)");
    if (const char* addr = env("MASTER_ADDR")) e.master_addr = addr;
    e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
    if (const char* agent = env("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = std::string(agent) == "True";
    e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
    return e;
}

bool distributed_backend_available(const std::string& backend) {
#ifdef AVIARY_HAVE_GLOO
    if (backend == "gloo") return true;
#endif
#ifdef USE_C10D_NCCL
    if (backend == "nccl") return true;
#endif
    return false;
}

struct Communicator::Impl {
    int rank = 0, world_size = 1;
    std::string backend;
    std::string device = "cpu";
#ifdef AVIARY_HAVE_C10D
    GroupPtr group;
#endif
};

Communicator::Communicator() : impl_(std::make_unique<Impl>()) {}
Communicator::~Communicator() = default;

int Communicator::rank() const {
    return impl_->rank;
}
int Communicator::world_size() const {
    return impl_->world_size;
}
const std::string& Communicator::backend() const {
    return impl_->backend;
}

std::shared_ptr<Communicator> Communicator::connect(const DistributedEnv& e, const std::string& backend_in,
                                                    const std::string& device, double timeout_s) {
    std::string backend = backend_in;
    if (backend == "auto") backend = (device == "cuda" && distributed_backend_available("nccl")) ? "nccl" : "gloo";
    AVIARY_CHECK(backend == "gloo" || backend == "nccl", "unknown distributed backend '", backend,
                 "' (expected gloo, nccl or auto)");
    AVIARY_CHECK(distributed_backend_available(backend), "this build of Aviary has no c10d ", backend,
                 " backend (gloo: install libgloo-dev and rebuild; nccl: a CUDA LibTorch with NCCL)");
    std::shared_ptr<Communicator> c(new Communicator());
    c->impl_->rank = e.rank;
    c->impl_->world_size = e.world_size;
    c->impl_->backend = backend;
    c->impl_->device = device;
    if (!e.active()) return c;  // one process: every collective is the identity, no rendezvous
#ifdef AVIARY_HAVE_C10D
    const auto timeout = std::chrono::milliseconds(int64_t(timeout_s * 1000));
    c10d::TCPStoreOptions so;
    so.port = uint16_t(e.master_port);
    so.isServer = !e.agent_store && e.rank == 0;
    so.numWorkers = e.agent_store ? c10::nullopt : c10::optional<std::size_t>(e.world_size);
    so.waitWorkers = !e.agent_store;
    so.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store;
    try {
        store = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
    } catch (const std::exception& ex) {
        AVIARY_FAIL("rendezvous at ", e.master_addr, ":", e.master_port, " failed for rank ", e.rank, " of ",
                    e.world_size, ": ", ex.what(), " (check MASTER_ADDR/MASTER_PORT; is the port free on rank 0?)");
    }
    if (e.agent_store)
        store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(e.restart_count), store);
    if (backend == "gloo") {
#ifdef AVIARY_HAVE_GLOO
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        // GLOO_SOCKET_IFNAME as torch.distributed reads it; loopback for a local group; else the host's address.
        const std::string addr = e.master_addr;
        if (const char* ifname = env("GLOO_SOCKET_IFNAME"))
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (addr == "localhost" || addr.rfind("127.", 0) == 0)
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        c->impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, e.rank, e.world_size, opts);
#endif
    } else {
#ifdef USE_C10D_NCCL
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout;
        c->impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, e.rank, e.world_size, opts);
#endif
    }
    // Every rank has joined once this returns: a failed peer shows up here rather than in the first step.
    c->barrier();
#endif
    return c;
}

void Communicator::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
    if (impl_->world_size == 1 || tensors.empty()) return;
#ifdef AVIARY_HAVE_C10D
    std::vector<at::Tensor> flat_parts;
    flat_parts.reserve(tensors.size());
    for (const auto& t : tensors) flat_parts.push_back(t.detach().reshape({-1}).to(at::kFloat));
    std::vector<at::Tensor> buf{at::cat(flat_parts)};  // one transfer for all tensors
    impl_->group->allreduce(buf)->wait();
    int64_t offset = 0;
    for (const auto& t : tensors) {
        const int64_t n = t.numel();
        t.detach().copy_(buf[0].narrow(0, offset, n).view(t.sizes()));
        offset += n;
    }
#endif
}

void Communicator::broadcast(const std::vector<at::Tensor>& tensors, int root) {
    if (impl_->world_size == 1 || tensors.empty()) return;
#ifdef AVIARY_HAVE_C10D
    for (const auto& t : tensors) {
        // Contiguous fp32/bf16 parameters are sent as they are; anything else through a contiguous copy.
        std::vector<at::Tensor> one{t.detach().contiguous()};
        c10d::BroadcastOptions o;
        o.rootRank = root;
        impl_->group->broadcast(one, o)->wait();
        if (one[0].data_ptr() != t.data_ptr()) t.detach().copy_(one[0]);
    }
#endif
}

bool Communicator::any(bool flag) {
    if (impl_->world_size == 1) return flag;
    at::Tensor t = at::full({1}, flag ? 1.0f : 0.0f, at::TensorOptions().dtype(at::kFloat).device(impl_->device));
    all_reduce_sum({t});
    return t.item<float>() > 0.5f;
}

void Communicator::barrier() {
    if (impl_->world_size == 1) return;
#ifdef AVIARY_HAVE_C10D
    impl_->group->barrier()->wait();
#endif
}

}  // namespace aviary
