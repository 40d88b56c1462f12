// `shrink explain`: the rendered table and JSON (in-process), then the built CLI itself — exit
// status 2 with the error on stderr and nothing on stdout for invalid configs, and exactly one
// JSON object of the documented shape with --json.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "compression/config/explain.h"
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;
namespace config = shrink::compression::config;

namespace {

struct CliResult {
  int status = -1;
  std::string out, err;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `shrink <args>` with the config text in a temporary file passed as {config}.
CliResult run_cli(const std::string& args, const std::string& config_text = "") {
  namespace fs = std::filesystem;
  static int counter = 0;
  fs::path dir = fs::temp_directory_path() / ("shrink_explain_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config_text;
  std::string expanded = args;
  for (size_t at; (at = expanded.find("{config}")) != std::string::npos;)
    expanded.replace(at, 8, (dir / "config.json").string());
  std::string command = std::string("'") + SHRINK_CLI_PATH + "' " + expanded + " >'" + (dir / "out").string() + "' 2>'" +
                        (dir / "err").string() + "'";
  int raw = std::system(command.c_str());
  CliResult r{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(dir / "out"), read_file(dir / "err")};
  fs::remove_all(dir);
  return r;
}

const std::string kLenetConfig = R"([{"op_types": ["Linear"], "exclude_op_names": ["fc3"], "sparse_ratio": 1.0},
                                     {"op_names": ["fc1", "conv9"], "granularity": "out_channel"},
                                     {"op_names": ["conv2"], "target_names": ["weight"], "sparse_ratio": 0.5}])";

}  // namespace

BOOST_AUTO_TEST_SUITE(explain)

BOOST_AUTO_TEST_CASE(json_report_is_sorted_and_keeps_floats) {
  auto lenet = models::make_model("lenet5");
  std::vector<std::string> warnings;
  auto targets = parse(*lenet, kLenetConfig, kPruning, &warnings);
  json::value report = json::parse(config::explain_json_text(targets, warnings));
  const json::array& rows = report.at("targets").as_array();
  BOOST_TEST(report.as_object().size() == 2u);
  std::vector<std::string> order;
  for (const auto& row : rows) {
    BOOST_TEST(row.as_object().size() == 5u);
    order.push_back(std::string(row.at("module").as_string()) + "." + std::string(row.at("target").as_string()));
  }
  BOOST_TEST(order == (std::vector<std::string>{"conv2.weight", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"}));
  const json::object& fc1_weight = rows[2].as_object();
  BOOST_TEST(fc1_weight.at("type") == "Linear");
  BOOST_TEST(fc1_weight.at("config_index") == 0);
  BOOST_TEST(fc1_weight.at("settings").at("sparse_ratio").is_double());  // 1.0 stays a float
  BOOST_TEST(fc1_weight.at("settings") == with(pruning_weight_defaults(), "sparse_ratio", 1.0));
  // conv9 is missing; fc1's weight and bias were already configured by config[0].
  BOOST_TEST(report.at("warnings").as_array().size() == 3u);
  BOOST_TEST(config::explain_json_text(targets, warnings).find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(table_has_one_row_per_target_and_the_warnings) {
  auto lenet = models::make_model("lenet5");
  std::vector<std::string> warnings;
  auto targets = parse(*lenet, kLenetConfig, kPruning, &warnings);
  std::string table = config::explain_table(targets, warnings);
  std::istringstream lines(table);
  std::string header;
  std::getline(lines, header);
  for (const char* column : {"module", "type", "target", "kind", "config", "settings"})
    BOOST_TEST(header.find(column) != std::string::npos);
  BOOST_TEST(table.find("\"sparse_ratio\": 0.5") != std::string::npos);
  BOOST_TEST(table.find("5 targets\nwarnings:\n  config[1].op_names") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(fusion_shows_in_the_table_and_keeps_the_json_rows_to_five_keys) {
  auto vgg = models::make_model("vgg_small");
  auto targets = parse(*vgg, R"([{"op_names": ["features.conv1"], "target_names": ["weight", "_output_"],
                                  "fuse_names": [["features.conv1", "features.bn1", "features.relu1"]]}])", kQuantization);
  BOOST_TEST(config::explain_table(targets, {}).find("fused with [\"features.bn1\", \"features.relu1\"]") != std::string::npos);
  const json::object report = config::explain_json(targets, {});
  for (const auto& row : report.at("targets").as_array()) BOOST_TEST(row.as_object().size() == 5u);
}

BOOST_AUTO_TEST_CASE(cli_json_output_has_the_documented_shape) {
  CliResult r = run_cli("explain --model lenet5 --config {config} --compressor pruning --json", kLenetConfig);
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(r.err.empty());
  json::value report = json::parse(r.out);  // exactly one JSON value: parse() rejects trailing text
  BOOST_TEST(r.out.back() == '\n');
  BOOST_TEST(report.as_object().size() == 2u);
  const json::array& rows = report.at("targets").as_array();
  BOOST_TEST_REQUIRE(rows.size() == 5u);
  for (const auto& row : rows)
    for (const char* key : {"module", "type", "target", "config_index", "settings"}) BOOST_TEST(row.as_object().contains(key));
  BOOST_TEST(rows[0].at("module") == "conv2");
  BOOST_TEST(rows[0].at("config_index") == 2);
  BOOST_TEST(report.at("warnings").as_array()[0].as_string().find("conv9") != json::string::npos);

  // Quantization and distillation of the same model.
  CliResult q = run_cli("explain --model lenet5 --config {config} --compressor quantization --json",
                        R"([{"op_types": ["ReLU"]}])");
  BOOST_TEST(q.status == 0, q.err);
  BOOST_TEST(json::parse(q.out).at("targets").as_array().size() == 8u);
  CliResult d = run_cli("explain --model mlp --config {config} --compressor distillation --json", R"([{"op_names": ["fc3"]}])");
  BOOST_TEST(json::parse(d.out).at("targets").as_array()[0].at("settings") ==
             obj(R"({"lambda": 1.0, "link": ["fc3"], "apply_method": "mse"})"));
}

BOOST_AUTO_TEST_CASE(cli_table_output) {
  CliResult r = run_cli("explain --model resnet20 --config {config} --compressor pruning",
                        R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5}, {"op_names": ["conv1", "nope"]}])");
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(r.out.find("layer2.0.downsample.0") != std::string::npos);
  BOOST_TEST(r.out.find("21 targets") != std::string::npos);
  BOOST_TEST(r.out.find("warnings:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cli_invalid_configs_exit_2_with_the_error_on_stderr) {
  struct Case {
    std::string args, config, error;
  };
  const std::string pruning = "explain --model lenet5 --config {config} --compressor pruning --json";
  const Case cases[] = {
      {pruning, R"([{"op_types": ["Linear"], "sparse_ratio": 1}])", "config[0].sparse_ratio: "},
      {pruning, R"([{"op_types": ["Linear"]}, {"op_types": ["Linear"], "target_settings": {"weight": {"granularity": "rows"}}}])",
       "config[1].target_settings.weight.granularity: "},
      {pruning, R"([{"op_types": ["Linear"], "sparsity": 0.5, "target_names": ["weight"]}])", "config[0].target_names: "},
      {pruning, R"([{"op_types": ["LayerNorm"]}, {"op_types": ["ReLU"]}])", "config[1]: "},
      {pruning, R"([{"op_types": ["Linear"], "sparse_ratio": 0.5)", "config.json': invalid JSON at line 1"},
      {pruning, R"({"op_types": ["Linear"]})", "config: expected a list"},
      {"explain --model lenet5 --config /nonexistent/config.json --compressor pruning", "", "cannot open"},
      {"explain --model alexnet --config {config} --compressor pruning", "[]", "unknown model"},
      {"explain --model lenet5 --config {config} --compressor sparsify", "[]", "--compressor"},
      {"explain --config {config} --compressor pruning", "[]", "model"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.args << " with " << c.config) {
      CliResult r = run_cli(c.args, c.config);
      BOOST_TEST(r.status == 2);
      BOOST_TEST(r.out.empty(), r.out);
      BOOST_TEST(r.err.find(c.error) != std::string::npos, r.err);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
