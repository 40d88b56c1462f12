// Runs every CUDA kernel under the CPU emulation of the CUDA execution model and compares it
// with the CPU reference kernel (cases in kernel_cases.inc), then checks that every kernel
// declared in cuda/kernels/ was launched by some case.
#define SHRINK_CUDA_EMULATION 1
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "kernel_harness.h"

namespace shrink::kt {
// Under emulation a "device" buffer is host memory.
template <typename T>
class Buf {
 public:
  explicit Buf(const std::vector<T>& host) : data_(host) {}
  explicit Buf(size_t n, T fill = T()) : data_(n, fill) {}
  T* ptr() { return data_.empty() ? nullptr : data_.data(); }
  std::vector<T> host() const { return data_; }

 private:
  std::vector<T> data_;
};
inline void device_sync() {}
inline bool device_available() { return true; }
constexpr const char* kMode = "emulated";
}  // namespace shrink::kt

#include "kernel_cases.inc"
#include "kernel_cases_more.inc"
#include "kernel_cases_quant.inc"
#include "kernel_cases_distill.inc"

BOOST_AUTO_TEST_SUITE(cuda_kernel_coverage)

// Every SHRINK_GLOBAL kernel in cuda/kernels/ must have been launched by the cases above.
BOOST_AUTO_TEST_CASE(every_kernel_is_tested,
                     *boost::unit_test::depends_on("cuda_kernels")) {
  std::set<std::string> launched = shrink::emu::launched_kernels();
  std::set<std::string> launched_base;
  for (const auto& n : launched) {
    std::string b = n;
    b.erase(0, b.find_first_not_of("( "));
    b = b.substr(0, b.find_first_of("<( )"));
    launched_base.insert(b);
  }
  int declared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SHRINK_SOURCE_DIR "/cuda/kernels")) {
    if (entry.path().extension() != ".cuh") continue;
    const std::string file = entry.path().filename().string();
    std::ifstream in(entry.path());
    BOOST_REQUIRE_MESSAGE(in.good(), "cannot read " << entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    std::regex decl(R"(SHRINK_GLOBAL\s+void\s+(\w+)\s*\()");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator(); ++it) {
      ++declared;
      std::string name = (*it)[1];
      BOOST_CHECK_MESSAGE(launched_base.count(name) == 1,
                          "kernel " << name << " (" << file << ") has no emulated test");
    }
  }
  BOOST_TEST(declared > 0);
}

BOOST_AUTO_TEST_SUITE_END()
