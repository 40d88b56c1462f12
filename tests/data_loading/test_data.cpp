// Tests for framework/data: dataset classes, DataLoader ordering and batching, the IDX/gzip
// readers on hand-built and corrupt input, and Fashion-MNIST itself when it is installed.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "framework/core/random.h"
#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/data/fashion_mnist.h"

using namespace shrink;
using namespace shrink::data;
namespace fs = std::filesystem;

namespace {

// Checks that `f` throws a shrink::Error whose message holds every piece; the message goes into
// the failure report, which a bare find() check would not show.
void check_error(const std::function<void()>& f, std::initializer_list<std::string> pieces,
                 int line) {
  std::string msg = "<no error thrown>";
  try {
    f();
  } catch (const shrink::Error& e) {
    msg = e.what();
  }
  for (const std::string& piece : pieces)
    BOOST_CHECK_MESSAGE(msg.find(piece) != std::string::npos,
                        "line " << line << ": expected \"" << piece << "\" in error: " << msg);
}
#define CHECK_ERROR(stmt, ...) check_error([&] { stmt; }, {__VA_ARGS__}, __LINE__)
using boost::test_tools::per_element;
using I64s = std::vector<int64_t>;

// Example i has input [i, i] and label i, so a batch shows which indices it holds.
std::shared_ptr<TensorDataset> index_dataset(int64_t n) {
  std::vector<float> x(static_cast<size_t>(2 * n));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[2 * i] = x[2 * i + 1] = static_cast<float>(y[i] = i);
  return std::make_shared<TensorDataset>(Tensor::from_vector(x, {n, 2}),
                                         Tensor::from_vector_i64(y, {n}));
}

// Runs the loader's current epoch to its end, returning the labels seen and the batch sizes.
std::vector<int64_t> drain(DataLoader& loader, std::vector<int64_t>* sizes = nullptr) {
  std::vector<int64_t> seen;
  Batch b;
  while (loader.next(b)) {
    const int64_t* y = b.labels.data<int64_t>();
    const float* x = b.inputs.data<float>();
    for (int64_t k = 0; k < b.size(); ++k) {
      BOOST_TEST(x[2 * k] == static_cast<float>(y[k]));
      seen.push_back(y[k]);
    }
    if (sizes) sizes->push_back(b.size());
  }
  return seen;
}

std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n = 50) {
  DataLoader loader(index_dataset(n), 7, true, seed);
  loader.start_epoch(epoch);
  return drain(loader);
}

// A dataset without a get_batch override, to exercise the default stacking path.
class PlainDataset : public Dataset {
 public:
  int64_t size() const override { return 6; }
  Example get(int64_t i) const override {
    return {Tensor::full({2, 3}, static_cast<float>(i)), 10 + i};
  }
  Shape example_shape() const override { return {2, 3}; }
};

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("shrink_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

std::string make_idx(uint32_t magic, const std::vector<uint32_t>& dims,
                     const std::string& payload) {
  std::string s = be32(magic);
  for (uint32_t d : dims) s += be32(d);
  return s + payload;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE(out.good());
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  BOOST_REQUIRE(f != nullptr);
  BOOST_REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
                static_cast<int>(bytes.size()));
  BOOST_REQUIRE(gzclose(f) == Z_OK);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

float normalised(int pixel) {
  return (static_cast<float>(pixel) / 255.0f - kFashionMnistMean) / kFashionMnistStd;
}

// Writes a small train split: `n` 28x28 images whose pixel p of image i is (i * 7 + p) % 256.
void write_fake_split(const TempDir& dir, uint32_t n, const std::vector<uint8_t>& labels) {
  std::string px(static_cast<size_t>(n) * 28 * 28, '\0');
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<char>((i / 784 * 7 + i % 784) % 256);
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), make_idx(0x803, {n, 28, 28}, px));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"),
             make_idx(0x801, {static_cast<uint32_t>(labels.size())},
                      std::string(labels.begin(), labels.end())));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(data_loading)

// ---- DataLoader ----

BOOST_AUTO_TEST_CASE(loader_covers_every_index_once_per_epoch) {
  I64s all(103);
  std::iota(all.begin(), all.end(), 0);
  for (bool shuffle : {false, true}) {
    DataLoader loader(index_dataset(103), 10, shuffle, 1);
    BOOST_TEST(loader.num_batches() == 11);
    for (int epoch = 0; epoch < 3; ++epoch) {
      loader.start_epoch();
      I64s sizes, seen = drain(loader, &sizes);
      BOOST_TEST(static_cast<int64_t>(sizes.size()) == loader.num_batches());
      BOOST_TEST(sizes.back() == 3);
      if (!shuffle) BOOST_TEST(seen == all, per_element());  // identity order
      std::sort(seen.begin(), seen.end());
      BOOST_TEST(seen == all, per_element());
    }
  }
}

// Every batch says which samples it holds (what a teacher-output cache keys on).
BOOST_AUTO_TEST_CASE(batch_indices_name_the_samples) {
  DataLoader loader(index_dataset(23), 5, true, 4);
  loader.start_epoch();
  Batch b;
  while (loader.next(b)) BOOST_TEST(b.indices.to_vector_i64() == b.labels.to_vector_i64(), per_element());
}

BOOST_AUTO_TEST_CASE(loader_drop_last_and_num_batches) {
  BOOST_TEST(DataLoader(index_dataset(103), 10, true, 3, false).num_batches() == 11);
  DataLoader drop(index_dataset(103), 10, true, 3, true);
  BOOST_TEST(drop.num_batches() == 10);
  drop.start_epoch();
  I64s sizes, seen = drain(drop, &sizes);
  BOOST_TEST(sizes == I64s(10, 10), per_element());
  std::sort(seen.begin(), seen.end());
  BOOST_TEST((std::adjacent_find(seen.begin(), seen.end()) == seen.end()));  // no repeats

  // Divisible sizes lose nothing; a dataset smaller than a batch gives nothing with drop_last.
  BOOST_TEST(DataLoader(index_dataset(100), 10, false, 0, true).num_batches() == 10);
  BOOST_TEST(DataLoader(index_dataset(100), 10, false, 0, false).num_batches() == 10);
  BOOST_TEST(DataLoader(index_dataset(0), 4, true, 0).num_batches() == 0);
  DataLoader tiny_drop(index_dataset(5), 10, false, 0, true);
  DataLoader tiny_keep(index_dataset(5), 10, false, 0, false);
  BOOST_TEST(tiny_drop.num_batches() == 0);
  BOOST_TEST(tiny_keep.num_batches() == 1);
  Batch b;
  BOOST_TEST(!tiny_drop.next(b));
  BOOST_TEST(tiny_keep.next(b));
  BOOST_TEST(b.size() == 5);
  BOOST_TEST(!tiny_keep.next(b));
}

BOOST_AUTO_TEST_CASE(loader_order_is_reproducible_per_seed_and_epoch) {
  BOOST_TEST(epoch_order(42, 0) == epoch_order(42, 0), per_element());
  BOOST_TEST((epoch_order(42, 0) != epoch_order(43, 0)));
  BOOST_TEST((epoch_order(42, 0) != epoch_order(42, 1)));
  BOOST_TEST((epoch_order(42, 1) != epoch_order(42, 2)));

  // Epoch 3's order must not depend on whether epochs 0-2 were read, skipped or jumped over.
  DataLoader iterated(index_dataset(50), 7, true, 5);
  for (int e = 0; e < 3; ++e) {
    iterated.start_epoch();
    drain(iterated);
  }
  iterated.start_epoch();
  DataLoader skipped(index_dataset(50), 7, true, 5);
  for (int e = 0; e < 4; ++e) skipped.start_epoch();
  DataLoader jumped(index_dataset(50), 7, true, 5);
  jumped.start_epoch(3);
  BOOST_TEST(iterated.epoch() == 3);
  BOOST_TEST(skipped.epoch() == 3);
  I64s a = drain(iterated);
  BOOST_TEST(a == drain(skipped), per_element());
  BOOST_TEST(a == drain(jumped), per_element());
}

BOOST_AUTO_TEST_CASE(loader_next_on_fresh_loader_starts_epoch_zero) {
  DataLoader fresh(index_dataset(30), 4, true, 11);
  I64s a = drain(fresh);
  BOOST_TEST(fresh.epoch() == 0);
  DataLoader explicit_start(index_dataset(30), 4, true, 11);
  explicit_start.start_epoch();
  BOOST_TEST(a == drain(explicit_start), per_element());
  Batch b;
  BOOST_TEST(!fresh.next(b));  // stays exhausted until the next start_epoch
}

BOOST_AUTO_TEST_CASE(loader_range_for_runs_one_epoch_per_loop) {
  DataLoader loader(index_dataset(23), 5, true, 8);
  std::vector<I64s> epochs(2);
  for (I64s& seen : epochs) {
    int64_t batches = 0;
    for (Batch& b : loader) {
      ++batches;
      for (int64_t k = 0; k < b.size(); ++k) seen.push_back(b.labels.data<int64_t>()[k]);
    }
    BOOST_TEST(batches == loader.num_batches());
    BOOST_TEST(seen.size() == 23u);
  }
  BOOST_TEST(loader.epoch() == 1);
  BOOST_TEST((epochs[0] != epochs[1]));
}

BOOST_AUTO_TEST_CASE(loader_rejects_bad_arguments) {
  CHECK_ERROR(DataLoader(index_dataset(4), 0, true, 0), "batch_size");
  CHECK_ERROR(DataLoader(index_dataset(4), -3, true, 0), "batch_size", "-3");
  CHECK_ERROR(DataLoader(nullptr, 2, true, 0), "null");
}

// ---- datasets ----

BOOST_AUTO_TEST_CASE(tensor_dataset_checks_inputs) {
  CHECK_ERROR(TensorDataset(Tensor::zeros({4, 3}), Tensor::zeros({5}, DType::I64)), "[4, 3]",
              "[5]");
  CHECK_ERROR(TensorDataset(Tensor::zeros({4, 3}), Tensor::zeros({4})), "i64");
  CHECK_ERROR(TensorDataset(Tensor::zeros({4, 3}, DType::I64), Tensor::zeros({4}, DType::I64)),
              "f32");
}

BOOST_AUTO_TEST_CASE(tensor_dataset_get_and_batches) {
  auto ds = index_dataset(10);
  BOOST_TEST(ds->size() == 10);
  BOOST_TEST(ds->example_shape() == Shape({2}), per_element());
  Example ex = ds->get(7);
  BOOST_TEST(ex.label == 7);
  BOOST_TEST(ex.input.data<float>()[1] == 7.f);
  ex.input.data<float>()[0] = -1.f;  // a copy: the dataset must be unaffected
  BOOST_TEST(ds->get(7).input.data<float>()[0] == 7.f);
  BOOST_TEST(ds->get_batch({3, 0, 9}).labels.to_vector_i64() == I64s({3, 0, 9}), per_element());
  CHECK_ERROR(ds->get(10), "index 10");
  CHECK_ERROR(ds->get_batch({1, -1}), "index -1");
}

BOOST_AUTO_TEST_CASE(default_get_batch_stacks_examples) {
  PlainDataset ds;
  Batch b = ds.get_batch({4, 1});
  BOOST_TEST(b.inputs.shape() == Shape({2, 2, 3}), per_element());
  BOOST_TEST(b.inputs.to_vector() == std::vector<float>({4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1}),
             per_element());
  BOOST_TEST(b.labels.to_vector_i64() == I64s({14, 11}), per_element());
}

BOOST_AUTO_TEST_CASE(subset_takes_first_k) {
  auto base = index_dataset(20);
  Subset s = Subset::first(base, 5);
  BOOST_TEST(s.size() == 5);
  BOOST_TEST(s.get(4).label == 4);
  BOOST_TEST(s.get_batch({4, 2}).labels.to_vector_i64() == I64s({4, 2}), per_element());
  CHECK_ERROR(s.get(5), "out of range");
  BOOST_TEST(Subset::first(base, 100).size() == 20);
  BOOST_TEST(Subset(base, {19, 3}).get(0).label == 19);
  CHECK_ERROR(Subset(base, {20}), "index 20");

  DataLoader loader(std::make_shared<Subset>(Subset::first(base, 5)), 2, true, 0);
  I64s seen = drain(loader);
  std::sort(seen.begin(), seen.end());
  BOOST_TEST(seen == I64s({0, 1, 2, 3, 4}), per_element());
}

BOOST_AUTO_TEST_CASE(synthetic_data_is_deterministic_and_learnable) {
  TensorDataset a = make_synthetic_classification(400, {4, 4}, 4, 77);
  TensorDataset b = make_synthetic_classification(400, {4, 4}, 4, 77);
  TensorDataset c = make_synthetic_classification(400, {4, 4}, 4, 78);
  BOOST_TEST(a.inputs().shape() == Shape({400, 4, 4}), per_element());
  BOOST_TEST(a.inputs().to_vector() == b.inputs().to_vector(), per_element());
  BOOST_TEST(a.labels().to_vector_i64() == b.labels().to_vector_i64(), per_element());
  BOOST_TEST((a.inputs().to_vector() != c.inputs().to_vector()));

  // Nearest class mean should classify almost everything when the data is learnable.
  const int64_t d = 16, k = 4;
  std::vector<double> means(k * d, 0.0), counts(k, 0.0);
  const float* x = a.inputs().data<float>();
  const int64_t* y = a.labels().data<int64_t>();
  for (int64_t i = 0; i < 400; ++i) {
    BOOST_REQUIRE((y[i] >= 0 && y[i] < k));
    counts[y[i]] += 1;
    for (int64_t j = 0; j < d; ++j) means[y[i] * d + j] += x[i * d + j];
  }
  for (int64_t c = 0; c < k; ++c)
    for (int64_t j = 0; j < d; ++j) means[c * d + j] /= std::max(counts[c], 1.0);
  int64_t correct = 0;
  for (int64_t i = 0; i < 400; ++i) {
    std::vector<double> dist(k, 0.0);
    for (int64_t c = 0; c < k; ++c)
      for (int64_t j = 0; j < d; ++j) dist[c] += std::pow(x[i * d + j] - means[c * d + j], 2);
    correct += std::min_element(dist.begin(), dist.end()) - dist.begin() == y[i];
  }
  BOOST_TEST(correct >= 380);
}

// ---- IDX parsing ----

BOOST_AUTO_TEST_CASE(parse_idx_valid_buffers) {
  IdxArray labels = parse_idx(make_idx(0x801, {3}, std::string("\x01\x02\x09", 3)), "lab");
  BOOST_TEST(labels.magic == 0x801u);
  BOOST_TEST(labels.dims == Shape({3}), per_element());
  BOOST_TEST(labels.values.dtype() == DType::U8);
  BOOST_TEST(labels.values.data<uint8_t>()[2] == 9);

  std::string px;
  for (int i = 0; i < 12; ++i) px += static_cast<char>(250 + i);  // wraps past 255
  IdxArray images = parse_idx(make_idx(0x803, {2, 2, 3}, px), "img", 0x803);
  BOOST_TEST(images.values.shape() == Shape({2, 2, 3}), per_element());
  BOOST_TEST(images.values.data<uint8_t>()[0] == 250);
  BOOST_TEST(images.values.data<uint8_t>()[11] == 5);
  BOOST_TEST(parse_idx(make_idx(0x801, {0}, ""), "empty").values.numel() == 0);
}

BOOST_AUTO_TEST_CASE(parse_idx_truncated_buffers) {
  CHECK_ERROR(parse_idx(std::string("\0\0", 2), "short.idx"), "short.idx", "truncated");
  // The header announces 3 dims but holds only two.
  CHECK_ERROR(parse_idx(be32(0x803) + be32(2) + be32(2), "hdr.idx"), "hdr.idx", "truncated",
              "16 bytes", "got 12");
  // 2x2x3 needs 16 + 12 = 28 bytes; give 27.
  CHECK_ERROR(parse_idx(make_idx(0x803, {2, 2, 3}, std::string(11, 'x')), "px.idx"), "px.idx",
              "truncated", "28 bytes", "got 27");
  CHECK_ERROR(parse_idx(make_idx(0x801, {2}, "abc"), "long.idx"), "long.idx", "trailing");
}

BOOST_AUTO_TEST_CASE(parse_idx_bad_magic) {
  CHECK_ERROR(parse_idx(make_idx(0x903, {1, 1, 1}, "x"), "odd.idx"), "odd.idx", "magic",
              "0x00000903");
  // A well-formed label file where images were expected.
  CHECK_ERROR(parse_idx(make_idx(0x801, {1}, "x"), "labels.idx", 0x803), "labels.idx", "magic",
              "0x00000801", "0x00000803");
  CHECK_ERROR(parse_idx(std::string("\x1f\x8b\x08\x00 rest", 9), "gz.idx"), "magic", "gzip");
}

// ---- gzip and Fashion-MNIST files ----

BOOST_AUTO_TEST_CASE(load_fake_fashion_mnist_from_temp_dir) {
  TempDir dir;
  write_fake_split(dir, 3, {9, 0, 4});
  auto ds = load_fashion_mnist(dir.path.string(), true);
  BOOST_TEST(ds->inputs().shape() == Shape({3, 1, 28, 28}), per_element());
  BOOST_TEST(ds->labels().to_vector_i64() == I64s({9, 0, 4}), per_element());
  const float* x = ds->inputs().data<float>();
  BOOST_TEST(std::abs(x[0] - normalised(0)) < 1e-6f);
  BOOST_TEST(std::abs(x[255] - normalised(255)) < 1e-6f);
  BOOST_TEST(std::abs(x[784 + 10] - normalised(17)) < 1e-6f);  // image 1, pixel 10: 7 + 10
  BOOST_TEST(std::abs(normalised(0) - (-0.2860f / 0.3530f)) < 1e-6f);
  BOOST_TEST(load_fashion_mnist(dir.path.string(), true, 2)->size() == 2);
  BOOST_TEST(load_fashion_mnist(dir.path.string(), true, 0)->size() == 0);
  // The test split is absent from this directory.
  CHECK_ERROR(load_fashion_mnist(dir.path.string(), false), dir.file("t10k-images-idx3-ubyte.gz"),
              "apt-get install dataset-fashion-mnist");
}

BOOST_AUTO_TEST_CASE(fashion_mnist_count_mismatch_and_bad_label) {
  TempDir mismatch, bad_label;
  write_fake_split(mismatch, 3, {1, 2});
  CHECK_ERROR(load_fashion_mnist(mismatch.path.string(), true),
              mismatch.file("train-images-idx3-ubyte.gz"),
              mismatch.file("train-labels-idx1-ubyte.gz"), "3 images", "2 labels");
  write_fake_split(bad_label, 3, {1, 10, 2});
  CHECK_ERROR(load_fashion_mnist(bad_label.path.string(), true),
              bad_label.file("train-labels-idx1-ubyte.gz"), "label 10", "index 1");
}

BOOST_AUTO_TEST_CASE(missing_file_names_the_path) {
  TempDir dir;
  const std::string nowhere = dir.file("nowhere");
  CHECK_ERROR(load_fashion_mnist(nowhere, true), nowhere + "/train-images-idx3-ubyte.gz",
              "does not exist", "apt-get install dataset-fashion-mnist");
  CHECK_ERROR(read_gzip_file(dir.file("absent.gz")), dir.file("absent.gz"));
}

BOOST_AUTO_TEST_CASE(truncated_and_non_gzip_files_give_clear_errors) {
  TempDir dir;
  // Pseudo-random pixels do not compress, so cutting the file in half lands mid-stream.
  Generator gen(3);
  std::string px(5 * 784, '\0');
  for (char& c : px) c = static_cast<char>(gen.randint(256));
  const std::string full = dir.file("full.gz"), images = dir.file("train-images-idx3-ubyte.gz");
  write_gzip(full, make_idx(0x803, {5, 28, 28}, px));
  BOOST_TEST(read_gzip_file(full).size() == 16 + px.size());
  const std::string bytes = read_bytes(full);

  write_file(images, bytes.substr(0, bytes.size() / 2));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), make_idx(0x801, {5}, std::string(5, 1)));
  CHECK_ERROR(read_gzip_file(images), images, "truncated");
  CHECK_ERROR(load_fashion_mnist(dir.path.string(), true), images, "truncated");

  // Cut inside the 8-byte trailer: all the data inflates but the CRC and size are missing.
  write_file(dir.file("tail.gz"), bytes.substr(0, bytes.size() - 3));
  CHECK_ERROR(read_gzip_file(dir.file("tail.gz")), "truncated");

  write_file(dir.file("plain.gz"), make_idx(0x801, {1}, "x"));
  CHECK_ERROR(read_gzip_file(dir.file("plain.gz")), dir.file("plain.gz"), "not a gzip file");

  std::string corrupt = bytes;
  corrupt[corrupt.size() - 6] ^= 0x55;  // inside the CRC32
  write_file(dir.file("crc.gz"), corrupt);
  CHECK_ERROR(read_gzip_file(dir.file("crc.gz")), dir.file("crc.gz"), "corrupt");
}

BOOST_AUTO_TEST_CASE(default_dir_honours_environment) {
  const char* old = std::getenv("SHRINK_FASHION_MNIST_DIR");
  const std::string saved = old ? old : "";
  ::setenv("SHRINK_FASHION_MNIST_DIR", "/tmp/somewhere", 1);
  BOOST_TEST(default_fashion_mnist_dir() == "/tmp/somewhere");
  ::unsetenv("SHRINK_FASHION_MNIST_DIR");
  BOOST_TEST(default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
  if (old) ::setenv("SHRINK_FASHION_MNIST_DIR", saved.c_str(), 1);
}

BOOST_AUTO_TEST_CASE(real_fashion_mnist_if_installed) {
  const std::string dir = default_fashion_mnist_dir();
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz")) {
    BOOST_TEST_MESSAGE("SKIPPED real Fashion-MNIST checks: no data in "
                       << dir << " (apt-get install dataset-fashion-mnist)");
    return;
  }
  auto train = load_fashion_mnist(dir, true);
  BOOST_TEST(train->inputs().shape() == Shape({60000, 1, 28, 28}), per_element());
  I64s first = train->labels().to_vector_i64();
  BOOST_TEST(I64s(first.begin(), first.begin() + 5) == I64s({9, 0, 0, 3, 0}), per_element());
  // Raw bytes of training image 0 (an ankle boot): (0, 0) = 0, (4, 15) = 136, (14, 25) = 255.
  const float* x = train->inputs().data<float>();
  BOOST_TEST(std::abs(x[0] - normalised(0)) < 1e-6f);
  BOOST_TEST(std::abs(x[4 * 28 + 15] - normalised(136)) < 1e-6f);
  BOOST_TEST(std::abs(x[14 * 28 + 25] - normalised(255)) < 1e-6f);

  auto test = load_fashion_mnist(dir, false);
  BOOST_TEST(test->size() == 10000);
  I64s first_test = test->labels().to_vector_i64();
  BOOST_TEST(I64s(first_test.begin(), first_test.begin() + 5) == I64s({9, 2, 1, 1, 6}),
             per_element());
  BOOST_TEST(load_fashion_mnist(dir, true, 100)->size() == 100);
}

// Shards of a loader (data parallelism) see, batch by batch and together in shard order, exactly
// the batches of one loader with the same seed; a final batch smaller than the number of shards
// is dropped (a shard would be empty), one at least as large is split.
BOOST_AUTO_TEST_CASE(shards_split_every_global_batch_in_order) {
  for (int64_t n : {10, 9, 64}) {
    auto ds = std::make_shared<TensorDataset>(make_synthetic_classification(n, {2}, 3, 1));
    DataLoader whole(ds, 4, true, 7);
    std::vector<DataLoader> shards;
    for (int s = 0; s < 3; ++s) {
      shards.emplace_back(ds, 4, true, 7);
      shards.back().set_shard(s, 3);
    }
    for (int epoch = 0; epoch < 2; ++epoch) {
      whole.start_epoch();
      for (auto& sh : shards) sh.start_epoch();
      Batch b;
      int64_t batches = 0;
      while (shards[0].next(b)) {
        std::vector<int64_t> joined = b.indices.to_vector_i64();
        BOOST_TEST(b.size() >= 1);
        const int64_t global = b.global_size;
        for (int s = 1; s < 3; ++s) {
          Batch part;
          BOOST_REQUIRE(shards[static_cast<size_t>(s)].next(part));
          BOOST_TEST(part.size() >= 1);
          BOOST_TEST(part.global_size == global);
          for (int64_t i : part.indices.to_vector_i64()) joined.push_back(i);
        }
        Batch full;
        BOOST_REQUIRE(whole.next(full));
        BOOST_TEST(full.global_size == full.size());
        BOOST_TEST(joined == full.indices.to_vector_i64(), boost::test_tools::per_element());
        ++batches;
      }
      // n = 10: 4, 4, 2 -> the 2 is dropped for 3 shards; n = 9: 4, 4, 1 -> dropped.
      BOOST_TEST(batches == shards[0].num_batches());
      BOOST_TEST(batches == n / 4, "n " << n);
    }
  }
  DataLoader loader(std::make_shared<TensorDataset>(make_synthetic_classification(8, {2}, 3, 1)), 2, false, 0);
  check_error([&] { loader.set_shard(0, 3); }, {"a batch of 2 cannot be split into 3"}, __LINE__);
  check_error([&] { loader.set_shard(3, 3); }, {"shard 3 of 3"}, __LINE__);
}

BOOST_AUTO_TEST_SUITE_END()
