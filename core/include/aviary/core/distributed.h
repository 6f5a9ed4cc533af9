// Data-parallel training across processes through LibTorch's own c10d (ProcessGroupGloo on the CPU,
// ProcessGroupNCCL when LibTorch has CUDA and NCCL): rendezvous from the usual environment (MASTER_ADDR,
// MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK as torchrun sets them; Slurm's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID
// when RANK is absent), a TCPStore on rank 0, and the few collectives the trainer needs. No network code here.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace aviary {

struct DistributedEnv {
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    // torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True):
    // every rank then joins as a client under the prefix "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>".
    bool agent_store = false;
    int restart_count = 0;
    bool active() const { return world_size > 1; }
};

// Reads the environment; world_size 1 (single process) when neither WORLD_SIZE nor SLURM_NTASKS is set.
// Malformed or inconsistent values (RANK >= WORLD_SIZE, a bad port) are errors naming the variable.
DistributedEnv distributed_env_from_environment();

// Whether this build can run a backend: "gloo" (needs the gloo headers at build time) or "nccl".
bool distributed_backend_available(const std::string& backend);

class Communicator {
public:
    // Joins the group (blocks until all world_size ranks have arrived or timeout_s passes). backend: "gloo",
    // "nccl" or "auto" (nccl for device "cuda" when available, else gloo).
    static std::shared_ptr<Communicator> connect(const DistributedEnv& env, const std::string& backend = "auto",
                                                 const std::string& device = "cpu", double timeout_s = 1800);
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const;
    int world_size() const;
    const std::string& backend() const;

    // In place: every tensor becomes the sum over ranks (fp32 tensors; one flattened transfer).
    void all_reduce_sum(const std::vector<at::Tensor>& tensors);
    // In place: every tensor gets root's values.
    void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
    // True when `flag` is true on any rank (used to stop every rank at the same step).
    bool any(bool flag);
    void barrier();

private:
    Communicator();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace aviary
