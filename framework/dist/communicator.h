// Communicator: the collectives data-parallel training needs, behind one interface (DESIGN.md,
// "Data parallelism"). A process launched by `mpirun` talks through Open MPI; any other process
// (and every build without MPI) gets a communicator of one rank, on which every collective is the
// identity, so code written for N ranks runs unchanged on one.
//
// Every collective must be called by every rank of the communicator, in the same order, with the
// same sizes: that is MPI's contract, and breaking it hangs or corrupts the run.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shrink::dist {

enum class ReduceOp { Sum, Min, Max };

// A collective in flight (see Communicator::start_allreduce_sum).
class Pending {
 public:
  virtual ~Pending() = default;
  // Lets the transfer progress; true once complete.
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "self" or "mpi", for logs and errors.
  virtual std::string backend() const = 0;

  virtual void allreduce(float* data, int64_t n, ReduceOp op) = 0;
  virtual void allreduce(double* data, int64_t n, ReduceOp op) = 0;
  virtual void allreduce(int64_t* data, int64_t n, ReduceOp op) = 0;
  // Starts a sum in place; `data` must stay alive and untouched until the Pending completes.
  virtual std::unique_ptr<Pending> start_allreduce_sum(float* data, int64_t n) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's `bytes` bytes, rank by rank, into `recv` (size() * bytes).
  virtual void allgather(const void* send, int64_t bytes, void* recv) = 0;
  // Rank r's block j of `send` (blocks of `bytes`) lands in rank j's `recv` as block r.
  virtual void alltoall(const void* send, int64_t bytes, void* recv) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (a rank that fails must not leave the others waiting
  // in a collective).
  [[noreturn]] virtual void abort(int code) = 0;

  // A sum whose every element adds the ranks' values in rank order (0 + 1 + ... + N-1), on every
  // rank: bitwise the same result on every rank and in every repetition, whatever the transport
  // does. A reduce-scatter by alltoall, each rank summing its chunk in rank order, then an
  // allgather: the same bytes on the wire as a ring all-reduce, in two blocking steps.
  void allreduce_sum_ordered(float* data, int64_t n);

  bool is_writer() const { return rank() == 0; }

  // This rank's share of the current step's global batch (its samples / all samples), set by
  // GradReducer::begin_step; 1/size() until a step sets it. Ops that sum across ranks inside
  // the model (SyncBatchNorm's statistics) weight their gradients with it, as the reducer
  // weights the parameters'.
  void set_batch_share(double share) { batch_share_ = share; }
  double batch_share() const { return batch_share_ > 0 ? batch_share_ : 1.0 / size(); }

  // Deterministic mode (--deterministic): the float sums made through dist::allreduce (the
  // gradient reducer's, SyncBatchNorm's, the compressors' statistics) go through
  // allreduce_sum_ordered. Minima, maxima and whole-number counts are exact in any order.
  void set_deterministic(bool on) { deterministic_ = on; }
  bool deterministic() const { return deterministic_; }

 private:
  double batch_share_ = 0;
  bool deterministic_ = false;
  // allreduce_sum_ordered's buffers, kept: fresh ones cost page faults and the transport's
  // registration of new memory on every call (tens of times the transfer).
  std::vector<float> ordered_send_, ordered_recv_, ordered_mine_;
};

// The one-rank communicator.
class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void allreduce(float*, int64_t, ReduceOp) override {}
  void allreduce(double*, int64_t, ReduceOp) override {}
  void allreduce(int64_t*, int64_t, ReduceOp) override {}
  std::unique_ptr<Pending> start_allreduce_sum(float* data, int64_t n) override;
  void broadcast(void*, int64_t, int root) override;
  void allgather(const void* send, int64_t bytes, void* recv) override;
  void alltoall(const void* send, int64_t bytes, void* recv) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

// Starts MPI when this process was launched by mpirun (and the build has MPI); otherwise the
// world is one rank. Call once, first thing in main; later calls do nothing.
void init(int* argc, char*** argv);
// Ends MPI after a run that succeeded (every rank must get here).
void finalize();
// The process's communicator: every rank of the job, or one rank.
std::shared_ptr<Communicator> world();
// Whether this build can talk MPI at all.
bool mpi_available();
// Ranks of the job on this machine (for dividing its cores between them); 1 outside mpirun.
int local_size();

// Stops the run with an Error unless every rank holds the same bytes under `what`: compares a
// 64-bit hash of `data` across ranks, and names `what` and the first rank that differs. Cheap
// enough to call after every mask or scale update.
void check_identical(Communicator& comm, const std::string& what, const void* data, int64_t bytes);

// FNV-1a over bytes (the hash check_identical compares).
uint64_t hash_bytes(const void* data, int64_t bytes, uint64_t seed = 1469598103934665603ULL);

}  // namespace shrink::dist
