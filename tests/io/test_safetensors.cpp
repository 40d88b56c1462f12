// safetensors round trips, exact byte layout, F16 decoding, rejection of corrupt files with
// useful messages, atomic-write failure behaviour, and a fixture written from PyTorch.
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "framework/core/tensor.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"

using namespace shrink;
using namespace shrink::io;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("shrink_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

bool has_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string make_file(const std::string& header, const std::string& data) {
  return u64le(header.size()) + header + data;
}

// A file whose header object holds `body`.
std::string file_with(const std::string& body, const std::string& data) {
  return make_file("{" + body + "}", data);
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  int begin, int end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::string tensor_bytes(const Tensor& t) {
  size_t n = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
  return n ? std::string(static_cast<const char*>(t.raw_data()), n) : std::string();
}

// Fills every byte with a position-dependent pattern so misplaced data shows up.
Tensor patterned(const Shape& shape, DType dtype, int seed) {
  Tensor t = Tensor::empty(shape, dtype);
  size_t n = static_cast<size_t>(t.numel()) * dtype_size(dtype);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(i * 37 + seed * 11 + 5);
  return t;
}

void expect_error(const std::string& bytes, const std::string& phrase) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    BOOST_ERROR("no error; expected one containing '" << phrase << "'");
  } catch (const shrink::Error& e) {
    std::string msg = e.what();
    BOOST_CHECK_MESSAGE(msg.find(phrase) != std::string::npos,
                        "message '" << msg << "' lacks '" << phrase << "'");
    BOOST_CHECK_MESSAGE(msg.rfind("bad.safetensors: ", 0) == 0,
                        "message '" << msg << "' does not start with the file name");
  } catch (const std::exception& e) {
    BOOST_ERROR("expected shrink::Error for '" << phrase << "', got: " << e.what());
  }
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(round_trip_every_writable_dtype) {
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> in = {
      {"w.f32", patterned({2, 3}, DType::F32, 1)},   {"i64", patterned({4}, DType::I64, 2)},
      {"i32", patterned({2, 2}, DType::I32, 3)},     {"u8", patterned({3}, DType::U8, 4)},
      {"i8", patterned({5}, DType::I8, 5)},          {"scalar", Tensor::scalar(-0.0f)},
      {"empty", Tensor::empty({0, 5}, DType::F32)},  {"empty_i8", Tensor::empty({3, 0}, DType::I8)},
  };
  std::string path = dir.file("rt.safetensors");
  save_safetensors(path, in);
  BOOST_TEST(!has_temp_files(dir.path));
  uint64_t header_len = 0;
  std::memcpy(&header_len, read_file(path).data(), 8);
  BOOST_TEST((8 + header_len) % 8 == 0u);  // data buffer aligned

  SafetensorsFile f = load_safetensors(path);
  BOOST_TEST(f.metadata.empty());
  std::vector<std::string> names;
  for (const auto& kv : f.tensors) names.push_back(kv.first);
  // File order: the writer sorts by name, so data offsets ascend in name order; the two empty
  // tensors sit at offsets equal to the bytes before them.
  std::vector<std::string> expected_names = {"empty", "empty_i8", "i32", "i64",
                                             "i8",    "scalar",   "u8",  "w.f32"};
  BOOST_TEST(names == expected_names, boost::test_tools::per_element());

  std::map<std::string, Tensor> loaded = load_tensors(path);
  BOOST_TEST(loaded.size() == in.size());
  for (const auto& kv : in) {
    BOOST_TEST_CONTEXT("tensor " << kv.first) {
      const Tensor& got = loaded.at(kv.first);
      BOOST_TEST(got.dtype() == kv.second.dtype());
      BOOST_TEST(got.shape() == kv.second.shape(), boost::test_tools::per_element());
      BOOST_TEST(tensor_bytes(got) == tensor_bytes(kv.second));
    }
  }
  BOOST_TEST(loaded.at("scalar").dim() == 0);
  BOOST_TEST(std::signbit(loaded.at("scalar").item()));
}

BOOST_AUTO_TEST_CASE(metadata_round_trip_and_overwrite) {
  TempDir dir;
  std::string path = dir.file("meta.safetensors");
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quotes \" backslash \\ newline \n unicode \xc3\xbc"}, {"", ""}};
  std::map<std::string, Tensor> tensors = {{"b", Tensor::from_vector({1, 2}, {2})},
                                           {"a", Tensor::from_vector_i64({7}, {1})}};
  save_safetensors(path, tensors, meta);
  // Overwriting an existing file goes through the same temp + rename path.
  save_safetensors(path, tensors, meta);
  BOOST_TEST(!has_temp_files(dir.path));
  SafetensorsFile f = load_safetensors(path);
  BOOST_TEST(f.metadata == meta);
  BOOST_REQUIRE(f.tensors.size() == 2u);
  BOOST_TEST(f.tensors[0].first == "a");
  BOOST_TEST(f.tensors[0].second.to_vector_i64() == std::vector<int64_t>{7},
             boost::test_tools::per_element());
  BOOST_TEST(f.tensors[1].second.to_vector() == (std::vector<float>{1, 2}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(byte_exact_layout) {
  Tensor a = Tensor::scalar(-1.f).to(DType::I32);
  Tensor b = Tensor::from_vector({1, 2, 3}, {3}).to(DType::U8);
  // 130 bytes of JSON, padded with 6 spaces to 136 = 0x88 so data starts at byte 144.
  const std::string json =
      "{\"__metadata__\":{\"k\":\"v\"},"
      "\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[4,7]}}";
  BOOST_REQUIRE(json.size() == 130u);
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + json + std::string(6, ' ') +
                               std::string("\xff\xff\xff\xff\x01\x02\x03", 7);
  BOOST_TEST(serialize_safetensors({{"b", b}, {"a", a}}, {{"k", "v"}}) == expected);

  TempDir dir;
  std::string path = dir.file("exact.safetensors");
  save_safetensors(path, {{"b", b}, {"a", a}}, {{"k", "v"}});
  BOOST_TEST(read_file(path) == expected);
}

BOOST_AUTO_TEST_CASE(f16_known_values) {
  BOOST_TEST(half_to_float(0x3c00) == 1.0f);
  BOOST_TEST(half_to_float(0xc000) == -2.0f);
  BOOST_TEST(half_to_float(0x7bff) == 65504.0f);
  BOOST_TEST(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  BOOST_TEST(half_to_float(0x03ff) == std::ldexp(1023.0f, -24));  // largest subnormal
  BOOST_TEST(half_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  BOOST_TEST(half_to_float(0x3555) == 0.333251953125f);
  BOOST_TEST(bits_of(half_to_float(0x8000)) == 0x80000000u);  // -0
  BOOST_TEST(half_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  BOOST_TEST(half_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
  BOOST_TEST(std::isnan(half_to_float(0x7e00)));
  BOOST_TEST(std::isnan(half_to_float(0x7c01)));  // signalling-NaN pattern must not become inf

  // Every half value against the defining formula (-1)^s * 2^(e-15) * (1 + m/1024).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) continue;
    double mag = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(1024 + m), int(e) - 25);
    float want = static_cast<float>((h & 0x8000) ? -mag : mag);
    if (bits_of(half_to_float(static_cast<uint16_t>(h))) != bits_of(want)) {
      BOOST_ERROR("half 0x" << std::hex << h << " decoded wrong");
      break;
    }
  }

  // Through a file: F16 loads as f32.
  const uint16_t halves[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00};
  std::string data(reinterpret_cast<const char*>(halves), 12);
  Tensor t = parse_safetensors(file_with(entry("h", "F16", "[2,3]", 0, 12), data), "f16")
                 .tensors.at(0)
                 .second;
  BOOST_TEST(t.dtype() == DType::F32);
  BOOST_TEST(t.shape() == (Shape{2, 3}), boost::test_tools::per_element());
  for (int i = 0; i < 6; ++i) {
    BOOST_TEST(bits_of(t.data<float>()[i]) == bits_of(half_to_float(halves[i])));
  }
}

BOOST_AUTO_TEST_CASE(lenient_but_valid_files_load) {
  // Header padded with spaces, keys not in offset order, an unused gap, BOOL as u8, and two
  // empty tensors sharing an offset.
  std::string header = "{" + entry("z", "BOOL", "[2]", 0, 2) + "," +
                       entry("a", "I8", "[1]", 4, 5) + "," + entry("e1", "F32", "[0]", 2, 2) +
                       "," + entry("e0", "I64", "[2,0]", 2, 2) + "}   ";
  SafetensorsFile f = parse_safetensors(make_file(header, std::string("\x01\x00\xaa\xaa\xfe", 5)),
                                        "ok.safetensors");
  std::vector<std::string> names;
  for (const auto& kv : f.tensors) names.push_back(kv.first);
  BOOST_TEST(names == (std::vector<std::string>{"z", "e0", "e1", "a"}),
             boost::test_tools::per_element());
  BOOST_TEST(f.tensors[0].second.dtype() == DType::U8);
  BOOST_TEST(int(f.tensors[0].second.data<uint8_t>()[0]) == 1);
  BOOST_TEST(int(f.tensors[3].second.data<int8_t>()[0]) == -2);
  BOOST_TEST(parse_safetensors(file_with("", ""), "none").tensors.empty());
}

BOOST_AUTO_TEST_CASE(corrupt_framing_and_json) {
  expect_error("", "too short");
  expect_error("abc", "too short");
  expect_error(u64le(1000) + "{}", "header length 1000 exceeds");
  expect_error(u64le(UINT64_MAX) + "{}", "exceeds");
  expect_error(make_file("", ""), "not valid JSON");
  expect_error(make_file("{\"a\":", ""), "not valid JSON");
  expect_error(make_file("{} x", ""), "not valid JSON");
  expect_error(make_file("[1,2]", ""), "not a JSON object");
  expect_error(make_file("{\"__metadata__\":{\"k\":1}}", ""), "__metadata__ must be an object");
  expect_error(make_file("{\"__metadata__\":[]}", ""), "__metadata__ must be an object");
}

BOOST_AUTO_TEST_CASE(corrupt_entries) {
  // Each body becomes the whole header object, followed by 8 data bytes.
  auto bad = [](const std::string& body) { return file_with(body, std::string(8, '\0')); };
  const std::string offs = ",\"data_offsets\":[0,8]";
  expect_error(bad("\"a\":3"), "tensor 'a': entry must be a JSON object");
  expect_error(bad("\"a\":{\"shape\":[2]" + offs + "}"), "tensor 'a': missing 'dtype'");
  expect_error(bad("\"a\":{\"dtype\":\"F32\"" + offs + "}"), "tensor 'a': missing 'shape'");
  expect_error(bad("\"a\":{\"dtype\":\"F32\",\"shape\":[2]}"),
               "tensor 'a': missing 'data_offsets'");
  expect_error(bad("\"a\":{\"dtype\":5,\"shape\":[2]" + offs + "}"), "'dtype' must be a string");
  expect_error(bad(entry("a", "F32", "\"2\"", 0, 8)), "'shape' must be an array");
  expect_error(bad("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}"),
               "'data_offsets' must be an array of 2");
  expect_error(bad("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}"),
               "'data_offsets' must be non-negative integers");
  expect_error(bad(entry("a", "F32", "[2]", -4, 8)),
               "'data_offsets' must be non-negative integers");
  expect_error(bad(entry("a", "F32", "[-1]", 0, 8)), "shape [-1] has negative dimension -1");
  expect_error(bad(entry("a", "F32", "[1.5]", 0, 8)), "shape [1.5] has non-integer dimension 1.5");
  expect_error(bad(entry("a", "F32", "[\"2\"]", 0, 8)), "non-integer dimension");
  expect_error(bad(entry("a", "F32", "[4294967296,4294967296]", 0, 8)), "too large");
  expect_error(bad(entry("w", "BF16", "[4]", 0, 8)), "tensor 'w': unsupported dtype 'BF16'");
  expect_error(bad(entry("a", "F64", "[1]", 0, 8)), "unsupported dtype 'F64'");
}

BOOST_AUTO_TEST_CASE(corrupt_offsets_sizes_and_names) {
  // The example message from the spec, reproduced exactly: 120 header bytes end at byte 128.
  std::string header = "{" + entry("fc1.weight", "F32", "[100]", 0, 400) + "}";
  header.append(120 - header.size(), ' ');
  try {
    parse_safetensors(make_file(header, std::string(256, '\0')), "model.safetensors");
    BOOST_ERROR("out-of-range offsets accepted");
  } catch (const shrink::Error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "model.safetensors: tensor 'fc1.weight': data_offsets [0, 400] exceed data "
               "buffer of 256 bytes (header ends at byte 128)");
  }

  const std::string d12(12, '\0');
  expect_error(file_with(entry("a", "F32", "[1]", 8, 4), d12),
               "tensor 'a': data_offsets [8, 4] end before they begin");
  expect_error(file_with(entry("a", "F32", "[4]", 0, 8), d12),
               "tensor 'a': data_offsets [0, 8] span 8 bytes but F32 shape [4] needs 16 bytes");
  expect_error(file_with(entry("a", "F16", "[4]", 0, 4), d12), "needs 8 bytes");
  expect_error(
      file_with(entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12), d12),
      "tensors 'a' data_offsets [0, 8] and 'b' data_offsets [4, 12] overlap");
  expect_error(
      file_with(entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8), d12),
      "duplicate tensor name 'a'");
  const std::string twice = "\"dtype\":\"F32\",\"dtype\":\"I8\"";
  expect_error(file_with("\"a\":{" + twice + ",\"shape\":[1],\"data_offsets\":[0,4]}", d12),
               "duplicate key 'dtype'");
}

BOOST_AUTO_TEST_CASE(writer_rejects_bad_names) {
  Tensor t = Tensor::scalar(1.f);
  BOOST_CHECK_THROW(serialize_safetensors({{"a", t}, {"a", t}}), Error);
  BOOST_CHECK_THROW(serialize_safetensors({{"__metadata__", t}}), Error);
  BOOST_CHECK_THROW(serialize_safetensors({{"", t}}), Error);
  BOOST_CHECK_THROW(serialize_safetensors({{"u", Tensor()}}), Error);
}

BOOST_AUTO_TEST_CASE(atomic_write_success_and_read_errors) {
  TempDir dir;
  std::string path = dir.file("f.bin");
  write_file_atomic(path, std::string("hello\0world", 11));
  BOOST_TEST(read_file(path) == std::string("hello\0world", 11));
  write_file_atomic(path, "");
  BOOST_TEST(read_file(path).empty());
  BOOST_TEST(!has_temp_files(dir.path));

  std::string missing = dir.file("missing.safetensors");
  try {
    load_safetensors(missing);
    BOOST_ERROR("missing file accepted");
  } catch (const shrink::Error& e) {
    std::string msg = e.what();
    BOOST_TEST(msg.find("cannot open '" + missing + "'") != std::string::npos, msg);
    BOOST_TEST(msg.find("No such file or directory") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(atomic_write_failure_leaves_target_and_no_temp) {
  TempDir dir;
  // Target is a directory: the rename fails and the directory and its contents survive.
  fs::create_directories(dir.path / "target");
  std::ofstream(dir.path / "target" / "keep.txt") << "keep";
  std::string target = dir.file("target");
  try {
    save_safetensors(target, {{"a", Tensor::scalar(1.f)}});
    BOOST_ERROR("writing over a directory succeeded");
  } catch (const shrink::Error& e) {
    BOOST_TEST(std::string(e.what()).find("'" + target + "'") != std::string::npos, e.what());
  }
  BOOST_TEST(fs::is_directory(target));
  BOOST_TEST(read_file(dir.file("target/keep.txt")) == "keep");
  BOOST_TEST(!has_temp_files(dir.path));

  // Parent directory missing: the temp file cannot even be created.
  BOOST_CHECK_THROW(write_file_atomic(dir.file("nope/f.bin"), "x"), Error);

  // Write error part-way (file size limit): the existing file keeps its old contents.
  std::string path = dir.file("existing.bin");
  write_file_atomic(path, "original contents");
  std::string message;
  bool limited = false;
  {
    // Ignoring SIGXFSZ turns the size-limit kill into an EFBIG write error.
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old_limit{};
    ::getrlimit(RLIMIT_FSIZE, &old_limit);
    rlimit small = old_limit;
    small.rlim_cur = 16;
    if (::setrlimit(RLIMIT_FSIZE, &small) == 0) {
      try {
        write_file_atomic(path, std::string(4096, 'x'));
      } catch (const shrink::Error& e) {
        message = e.what();
      }
      ::setrlimit(RLIMIT_FSIZE, &old_limit);
      limited = true;
    }
    std::signal(SIGXFSZ, old_handler);
  }
  if (limited) {
    BOOST_TEST(message.find("'" + path + "'") != std::string::npos, message);
    BOOST_TEST(message.find(std::strerror(EFBIG)) != std::string::npos, message);
  } else {
    BOOST_TEST_MESSAGE("setrlimit(RLIMIT_FSIZE) refused; partial-write failure not exercised");
  }
  BOOST_TEST(read_file(path) == "original contents");
  BOOST_TEST(!has_temp_files(dir.path));

  // A read-only directory only stops non-root users.
  if (::geteuid() != 0) {
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::remove);
    BOOST_CHECK_THROW(write_file_atomic(path, "new"), Error);
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
    BOOST_TEST(read_file(path) == "original contents");
    BOOST_TEST(!has_temp_files(dir.path));
  }
}

BOOST_AUTO_TEST_CASE(pytorch_fixture_loads_exactly) {
  const std::string dir = SHRINK_TEST_DATA_DIR;
  SafetensorsFile f = load_safetensors(dir + "/torch_fixture.safetensors");
  BOOST_TEST(f.metadata.at("format") == "pt");

  const std::map<std::string, DType> stored = {{"F32", DType::F32}, {"F16", DType::F32},
                                               {"I64", DType::I64}, {"U8", DType::U8},
                                               {"BOOL", DType::U8}};
  std::ifstream expected(dir + "/torch_fixture_expected.txt");
  BOOST_REQUIRE(expected.good());
  std::string line;
  size_t index = 0;
  while (std::getline(expected, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string name, dtype;
    int ndim = 0;
    in >> name >> dtype >> ndim;
    Shape shape(ndim);
    for (auto& d : shape) in >> d;
    std::vector<double> values;
    for (std::string tok; in >> tok;) values.push_back(std::strtod(tok.c_str(), nullptr));

    BOOST_TEST_CONTEXT("tensor " << name) {
      BOOST_REQUIRE(index < f.tensors.size());
      const auto& [got_name, t] = f.tensors[index++];
      BOOST_TEST(got_name == name);  // both in sorted order
      BOOST_TEST(t.shape() == shape, boost::test_tools::per_element());
      BOOST_TEST(t.dtype() == stored.at(dtype));
      // Every fixture value is exact in f32 (small integers, f32 and f16 values).
      std::vector<float> got = t.to(DType::F32).to_vector();
      BOOST_REQUIRE(got.size() == values.size());
      for (size_t i = 0; i < got.size(); ++i) {
        BOOST_TEST(got[i] == static_cast<float>(values[i]), "element " << i);
      }
    }
  }
  BOOST_TEST(index == f.tensors.size());
  BOOST_TEST(index == 5u);
}

BOOST_AUTO_TEST_SUITE_END()
