// Communicator over Open MPI. Only the main thread calls MPI (MPI_THREAD_FUNNELED): the compute
// thread pool never communicates.
#include "framework/dist/mpi_backend.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "framework/core/error.h"

namespace shrink::dist {
// Open MPI's launcher sets OMPI_COMM_WORLD_*, PMIx-based launchers PMIX_RANK, Hydra PMI_RANK.
bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_RANK") != nullptr;
}
}  // namespace shrink::dist

#ifdef SHRINK_HAVE_MPI
#include <mpi.h>

namespace shrink::dist {

namespace {

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Min: return MPI_MIN;
    case ReduceOp::Max: return MPI_MAX;
  }
  return MPI_SUM;
}

// MPI counts are int: larger buffers go in pieces of at most 2^30 elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;

template <typename T>
void allreduce_in_pieces(T* data, int64_t n, MPI_Datatype type, MPI_Op op) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - off));
    MPI_Allreduce(MPI_IN_PLACE, data + off, count, type, op, MPI_COMM_WORLD);
  }
}

class MpiPending final : public Pending {
 public:
  explicit MpiPending(std::vector<MPI_Request> requests) : requests_(std::move(requests)) {}
  ~MpiPending() override { wait(); }  // a collective must complete before its buffer goes away
  bool test() override {
    int done = 1;
    if (!requests_.empty()) MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) requests_.clear();
    return done != 0;
  }
  void wait() override {
    if (requests_.empty()) return;
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
  }

 private:
  std::vector<MPI_Request> requests_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void allreduce(float* d, int64_t n, ReduceOp op) override { allreduce_in_pieces(d, n, MPI_FLOAT, mpi_op(op)); }
  void allreduce(double* d, int64_t n, ReduceOp op) override { allreduce_in_pieces(d, n, MPI_DOUBLE, mpi_op(op)); }
  void allreduce(int64_t* d, int64_t n, ReduceOp op) override { allreduce_in_pieces(d, n, MPI_INT64_T, mpi_op(op)); }
  std::unique_ptr<Pending> start_allreduce_sum(float* data, int64_t n) override {
    std::vector<MPI_Request> requests;
    for (int64_t off = 0; off < n; off += kMaxCount) {
      requests.emplace_back();
      MPI_Iallreduce(MPI_IN_PLACE, data + off, static_cast<int>(std::min(kMaxCount, n - off)), MPI_FLOAT, MPI_SUM,
                     MPI_COMM_WORLD, &requests.back());
    }
    return std::make_unique<MpiPending>(std::move(requests));
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    SHRINK_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank (", size_, " ranks)");
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount)
      MPI_Bcast(p + off, static_cast<int>(std::min(kMaxCount, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void allgather(const void* send, int64_t bytes, void* recv) override {
    SHRINK_CHECK(bytes < kMaxCount, "allgather: ", bytes, " bytes per rank is more than one call moves");
    MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
  }
  void alltoall(const void* send, int64_t bytes, void* recv) override {
    SHRINK_CHECK(bytes < kMaxCount, "alltoall: ", bytes, " bytes per block is more than one call moves");
    MPI_Alltoall(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool mpi_available() { return true; }

std::shared_ptr<Communicator> make_mpi_world(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  SHRINK_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI: the library gives thread level ", provided,
               ", below MPI_THREAD_FUNNELED");
  return std::make_shared<MpiCommunicator>();
}

void finalize_mpi() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}

}  // namespace shrink::dist

#else  // no MPI in this build: one rank, always

namespace shrink::dist {
bool mpi_available() { return false; }
// Every rank would run the whole job as rank 0 and write the same files: refuse instead.
std::shared_ptr<Communicator> make_mpi_world(int*, char***) {
  fail("launched by mpirun, but this build has no MPI (install libopenmpi-dev and configure with SHRINK_MPI=AUTO "
       "or ON)");
}
void finalize_mpi() {}
}  // namespace shrink::dist

#endif
