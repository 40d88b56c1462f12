// `shrink distill` end to end (needs Fashion-MNIST, installed by ./run; skipped without it): the
// JSON on stdout, the saved student, and bad input exit codes.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "compression/cli_run.h"
#include "framework/data/fashion_mnist.h"
#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace fs = std::filesystem;
using namespace shrink;

namespace {
testing::CliResult run(const std::string& args) { return testing::run_cli("distill", args); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_distill)

BOOST_AUTO_TEST_CASE(json_save_and_errors) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  fs::path dir = fs::temp_directory_path() / ("shrink_distill_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(11);
  io::save_safetensors((dir / "teacher.safetensors").string(), models::make_model("mlp")->state_dict());
  std::ofstream(dir / "cfg.json") << R"([{"op_names": ["fc3"], "link": "fc3", "apply_method": "kl", "lambda": 2}])";
  const std::string base = "--model lenet5 --teacher-model mlp --teacher-weights " + (dir / "teacher.safetensors").string() +
                           " --limit 256 --epochs 1 --threads 1 ";
  auto mlp = models::make_model("mlp");
  const bool mlp_has_fc3 = mlp->find("fc3") != nullptr;
  BOOST_REQUIRE_MESSAGE(mlp_has_fc3, "the test links lenet5's fc3 to mlp's fc3");
  testing::CliResult r = run(base + "--config " + (dir / "cfg.json").string() + " --save " +
                             (dir / "student.safetensors").string() + " --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  boost::json::value v = boost::json::parse(r.out);
  for (const char* key : {"test_acc", "teacher_test_acc", "train_samples_per_s"})
    BOOST_TEST(v.as_object().contains(key), key);
  const double acc = v.at("test_acc").to_number<double>();
  BOOST_TEST((acc > 0.0 && acc <= 1.0));
  auto saved = io::load_tensors((dir / "student.safetensors").string());
  BOOST_TEST(saved.count("fc3.weight") == 1u);  // the student's own names: no wrapper leftovers

  BOOST_TEST(run(base + "--config " + (dir / "cfg.json").string() + " --distiller nope").status == 2);
  std::ofstream(dir / "bad.json") << R"([{"op_names": ["fc3"], "link": "no_such_layer"}])";
  BOOST_TEST(run(base + "--config " + (dir / "bad.json").string()).status == 2);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
