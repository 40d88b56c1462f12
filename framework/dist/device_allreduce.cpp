#include "framework/dist/device_allreduce.h"

#include <cstdlib>
#include <map>
#include <mutex>

namespace shrink::dist {

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<Device, DeviceAllReduceFactory>& registry() {
  static std::map<Device, DeviceAllReduceFactory> r;
  return r;
}
}  // namespace

void register_device_allreduce(Device device, DeviceAllReduceFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (factory) registry()[device] = std::move(factory);
  else registry().erase(device);
}

bool has_device_allreduce(Device device) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  return registry().count(device) > 0;
}

std::unique_ptr<DeviceAllReduce> make_device_allreduce(Communicator& comm, Device device) {
  DeviceAllReduceFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(device);
    if (it == registry().end()) return nullptr;
    factory = it->second;
  }
  return factory(comm);
}

int local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"})
    if (const char* s = std::getenv(var)) {
      const int r = std::atoi(s);
      if (r >= 0) return r;
    }
  return 0;
}

}  // namespace shrink::dist
