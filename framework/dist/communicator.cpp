// The one-rank communicator, the ordered sum every backend shares, and the process's world.
#include "framework/dist/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "framework/core/error.h"
#include "framework/dist/mpi_backend.h"

namespace shrink::dist {

namespace {
class DonePending final : public Pending {
 public:
  bool test() override { return true; }
  void wait() override {}
};

std::shared_ptr<Communicator>& world_slot() {
  static std::shared_ptr<Communicator> w;
  return w;
}
}  // namespace

std::unique_ptr<Pending> SelfCommunicator::start_allreduce_sum(float*, int64_t) {
  return std::make_unique<DonePending>();
}
void SelfCommunicator::broadcast(void*, int64_t, int root) {
  SHRINK_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a one-rank communicator");
}
void SelfCommunicator::allgather(const void* send, int64_t bytes, void* recv) {
  if (bytes > 0 && send != recv) std::memmove(recv, send, static_cast<size_t>(bytes));
}
void SelfCommunicator::alltoall(const void* send, int64_t bytes, void* recv) { allgather(send, bytes, recv); }
void SelfCommunicator::abort(int code) { std::_Exit(code); }

void Communicator::allreduce_sum_ordered(float* data, int64_t n) {
  const int ranks = size();
  if (ranks == 1 || n == 0) return;
  const int64_t chunk = (n + ranks - 1) / ranks;  // padded: alltoall moves equal blocks
  const size_t total = static_cast<size_t>(chunk * ranks);
  std::vector<float>& send = ordered_send_;
  std::vector<float>& recv = ordered_recv_;
  std::vector<float>& mine = ordered_mine_;
  if (send.size() < total) send.resize(total), recv.resize(total);
  if (mine.size() < static_cast<size_t>(chunk)) mine.resize(static_cast<size_t>(chunk));
  std::memcpy(send.data(), data, static_cast<size_t>(n) * sizeof(float));
  std::fill(send.begin() + n, send.begin() + static_cast<int64_t>(total), 0.0f);
  alltoall(send.data(), chunk * static_cast<int64_t>(sizeof(float)), recv.data());
  // recv holds every rank's copy of this rank's chunk, rank by rank: sum them in that order.
  for (int64_t i = 0; i < chunk; ++i) {
    float s = recv[static_cast<size_t>(i)];
    for (int r = 1; r < ranks; ++r) s += recv[static_cast<size_t>(r * chunk + i)];
    mine[static_cast<size_t>(i)] = s;
  }
  allgather(mine.data(), chunk * static_cast<int64_t>(sizeof(float)), send.data());
  std::memcpy(data, send.data(), static_cast<size_t>(n) * sizeof(float));
}

uint64_t hash_bytes(const void* data, int64_t bytes, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (int64_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

void check_identical(Communicator& comm, const std::string& what, const void* data, int64_t bytes) {
  if (comm.size() == 1) return;
  const uint64_t mine = hash_bytes(data, bytes);
  std::vector<uint64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather(&mine, sizeof mine, all.data());
  for (int r = 1; r < comm.size(); ++r)
    SHRINK_CHECK(all[static_cast<size_t>(r)] == all[0], what, " differs between data-parallel ranks: rank ", r,
                 " holds other values than rank 0 (every rank must decide the same; this is a bug in whatever "
                 "computed it without reducing across ranks)");
}

void init(int* argc, char*** argv) {
  static std::once_flag once;
  std::call_once(once, [&] {
    world_slot() = launched_by_mpirun() ? make_mpi_world(argc, argv) : std::make_shared<SelfCommunicator>();
  });
}

void finalize() {
  if (world_slot() && world_slot()->backend() == "mpi") finalize_mpi();
}

std::shared_ptr<Communicator> world() {
  init(nullptr, nullptr);
  return world_slot();
}

int local_size() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* s = std::getenv(var)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return 1;
}

}  // namespace shrink::dist
