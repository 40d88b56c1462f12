// Fuzzes the config-list reader: JSON text -> validated, canonical target spaces for a zoo model
// (the first byte picks the model and the compressor kind), then the explain table and JSON.
#include <memory>
#include <vector>

#include "compression/config/config_list.h"
#include "compression/config/explain.h"
#include "framework/core/random.h"
#include "fuzz_common.h"
#include "models/zoo.h"

using namespace shrink;
using compression::config::CompressorKind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::shared_ptr<nn::Module>> models = [] {
    manual_seed(0);
    return std::vector<std::shared_ptr<nn::Module>>{models::make_model("lenet5"), models::make_model("resnet20"),
                                                    models::make_model("tiny_transformer")};
  }();
  if (size < 1) return 0;
  const nn::Module& model = *models[data[0] % models.size()];
  const CompressorKind kinds[] = {CompressorKind::Pruning, CompressorKind::Quantization, CompressorKind::Distillation};
  const CompressorKind kind = kinds[(data[0] / models.size()) % 3];
  const std::string text = fuzz::bytes_of(data + 1, size - 1);
  fuzz::expect_clean([&] {
    std::vector<std::string> warnings;
    auto targets = compression::config::parse_config_list_json(model, text, kind, &warnings);
    compression::config::explain_table(targets, warnings);
    compression::config::explain_json_text(targets, warnings);
  });
  return 0;
}
