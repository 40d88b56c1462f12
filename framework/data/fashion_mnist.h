// Fashion-MNIST from the gzip'd IDX files that Debian's dataset-fashion-mnist package installs,
// plus the lower-level gzip and IDX readers (exposed so tests can feed them corrupt input).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "framework/core/tensor.h"
#include "framework/data/dataset.h"

namespace shrink::data {

// Per-pixel mean and standard deviation of the Fashion-MNIST training images after scaling to
// [0, 1] (the values torchvision examples use), so normalised inputs have roughly zero mean
// and unit variance: x_norm = (x / 255 - mean) / std.
constexpr float kFashionMnistMean = 0.2860f;
constexpr float kFashionMnistStd = 0.3530f;

// An IDX array of unsigned bytes (the only element type the MNIST-family files use).
struct IdxArray {
  uint32_t magic = 0;  // 0x000008NN with NN the number of dims
  Shape dims;
  Tensor values;  // u8, shape dims
};

// Parses an IDX file's bytes; `name` (usually the path) appears in every error. With
// expected_magic != 0 the magic must equal it (e.g. 0x00000803 for images, 0x00000801 for
// labels); otherwise any unsigned-byte IDX with 1 to 4 dims is accepted. Errors say "magic"
// for a wrong magic and "truncated" (with expected and actual byte counts) for short input.
IdxArray parse_idx(const std::string& bytes, const std::string& name,
                   uint32_t expected_magic = 0);

// Reads and fully decompresses a gzip file (all members). Throws naming the path when the file
// is missing, is not gzip, or its stream is corrupt or ends early.
std::string read_gzip_file(const std::string& path);
// The same from the file's bytes; `name` appears in every error.
std::string gunzip(const std::string& bytes, const std::string& name);

// $SHRINK_FASHION_MNIST_DIR when set and non-empty, else /usr/share/datasets/fashion-mnist.
std::string default_fashion_mnist_dir();

// The training (60000) or test (10000) split from `dir`, holding
// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (an uncompressed file without .gz is used
// when the .gz is absent). Inputs are f32 [N, 1, 28, 28] normalised with kFashionMnistMean/Std,
// labels i64 in [0, 9]. limit >= 0 keeps only the first `limit` examples.
std::shared_ptr<TensorDataset> load_fashion_mnist(const std::string& dir, bool train,
                                                  int64_t limit = -1);

}  // namespace shrink::data
