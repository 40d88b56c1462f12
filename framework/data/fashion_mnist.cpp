// Fashion-MNIST loading: whole-file gzip decompression with zlib's inflate (so truncation and
// corruption are reported precisely), IDX parsing and normalisation into a TensorDataset.
#include "framework/data/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

namespace shrink::data {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // u8, 3 dims: N, rows, cols
constexpr uint32_t kLabelsMagic = 0x00000801;  // u8, 1 dim: N
constexpr int64_t kSide = 28;
constexpr int64_t kClasses = 10;
constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SHRINK_CHECK(fs::exists(st), "cannot open ", path, ": no such file");
  SHRINK_CHECK(fs::is_regular_file(st), "cannot read ", path, ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, "cannot open ", path, ": ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  SHRINK_CHECK(in && size >= 0, "cannot determine the size of ", path);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), size);
  SHRINK_CHECK(in.gcount() == size, "read error on ", path, ": got ", in.gcount(), " of ", size,
               " bytes");
  return bytes;
}

// Frees the zlib stream on every exit path, including the throwing ones.
struct InflateGuard {
  z_stream* zs;
  ~InflateGuard() { inflateEnd(zs); }
};

}  // namespace

std::string gunzip(const std::string& in, const std::string& path) {
  const auto* src = reinterpret_cast<const uint8_t*>(in.data());
  if (in.size() < 2 || src[0] != 0x1f || src[1] != 0x8b) {
    char start[16] = "";
    if (in.size() >= 2) std::snprintf(start, sizeof start, ", starts %02x %02x", src[0], src[1]);
    fail(path, ": not a gzip file (expected the gzip magic bytes 1f 8b at the start; file is ",
         in.size(), " bytes", start, ")");
  }
  z_stream zs{};
  // 16 + MAX_WBITS: accept the gzip wrapper (header and CRC-checked trailer), not raw zlib.
  int rc = inflateInit2(&zs, 16 + MAX_WBITS);
  SHRINK_CHECK(rc == Z_OK, path, ": zlib inflateInit2 failed (", zError(rc), ")");
  InflateGuard guard{&zs};

  std::string out;
  // The trailer's ISIZE is the uncompressed size mod 2^32; only a hint, so cap what we
  // pre-reserve in case the file is corrupt.
  if (in.size() >= 18) {
    const uint8_t* t = src + in.size() - 4;
    const size_t hint = uint32_t(t[0]) | (uint32_t(t[1]) << 8) | (uint32_t(t[2]) << 16) |
                        (uint32_t(t[3]) << 24);
    if (hint <= 64 * in.size() + (1u << 20)) out.reserve(hint);
  }

  // Input is fed in chunks because avail_in is a 32-bit uInt.
  constexpr size_t kMaxChunk = size_t(1) << 30;
  size_t fed = 0;
  char buf[1 << 16];
  for (;;) {
    if (zs.avail_in == 0 && fed < in.size()) {
      const size_t chunk = std::min(kMaxChunk, in.size() - fed);
      zs.next_in = const_cast<Bytef*>(src + fed);
      zs.avail_in = static_cast<uInt>(chunk);
      fed += chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 && fed == in.size()) break;
      // Concatenated gzip members form one valid file (what `cat a.gz b.gz` produces).
      SHRINK_CHECK(inflateReset(&zs) == Z_OK, path, ": zlib inflateReset failed");
      continue;
    }
    if (rc == Z_OK) continue;
    const size_t consumed = fed - zs.avail_in;
    // Z_BUF_ERROR with every input byte consumed: the deflate stream or its trailer is
    // incomplete, i.e. the file was cut short (interrupted download or copy).
    SHRINK_CHECK(!(rc == Z_BUF_ERROR && zs.avail_in == 0 && fed == in.size()), path,
                 ": truncated gzip file: all ", in.size(),
                 " compressed bytes were read but the gzip stream had not ended (",
                 out.size(), " bytes decompressed so far); re-download or reinstall it");
    fail(path, ": corrupt gzip data at compressed byte ", consumed, " of ", in.size(), " (",
         zs.msg ? zs.msg : zError(rc), ")");
  }
  return out;
}

namespace {

std::string read_maybe_gzip(const std::string& path) {
  const bool gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  return gz ? read_gzip_file(path) : read_file(path);
}

// The .gz file, or the same name uncompressed (some mirrors ship it unpacked).
std::string resolve(const std::string& dir, const std::string& base) {
  const std::string gz = (fs::path(dir) / (base + ".gz")).string();
  const std::string raw = (fs::path(dir) / base).string();
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz;
  if (fs::exists(raw, ec)) return raw;
  const bool dir_exists = fs::is_directory(dir, ec);
  fail("Fashion-MNIST: missing file ", gz, " (directory ", dir,
       dir_exists ? " exists but lacks it" : " does not exist",
       "). The files come from the Debian package dataset-fashion-mnist: "
       "`apt-get install dataset-fashion-mnist`; or set SHRINK_FASHION_MNIST_DIR to a directory "
       "holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz");
}

}  // namespace

IdxArray parse_idx(const std::string& bytes, const std::string& name, uint32_t expected_magic) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint64_t n = bytes.size();
  SHRINK_CHECK(n >= 4, name, ": truncated IDX file: expected at least 4 bytes (the magic), got ",
               n);
  const uint32_t magic = be32(p);
  auto is_u8_magic = [](uint32_t m) {
    return (m & 0xFFFFFF00u) == 0x00000800u && (m & 0xFFu) >= 1 && (m & 0xFFu) <= 4;
  };
  SHRINK_CHECK(expected_magic == 0 || is_u8_magic(expected_magic),
               "parse_idx: expected_magic ", hex32(expected_magic),
               " is not an unsigned-byte IDX magic with 1 to 4 dims");
  const bool ok = expected_magic ? magic == expected_magic : is_u8_magic(magic);
  SHRINK_CHECK(ok, name, ": bad IDX magic ", hex32(magic), ", expected ",
               expected_magic ? hex32(expected_magic)
                              : std::string("0x000008NN (unsigned bytes, NN = 1 to 4 dims)"),
               p[0] == 0x1f && p[1] == 0x8b ? " (the data is still gzip-compressed)" : "");

  const uint32_t nd = magic & 0xFFu;
  const uint64_t header = 4 + 4 * uint64_t(nd);
  SHRINK_CHECK(n >= header, name, ": truncated IDX header: expected ", header, " bytes for ", nd,
               " dims, got ", n);
  IdxArray out;
  out.magic = magic;
  uint64_t count = 1;
  bool overflow = false;
  for (uint32_t d = 0; d < nd; ++d) {
    const uint32_t v = be32(p + 4 + 4 * d);
    out.dims.push_back(v);
    // Bound by int64 range so the element count stays representable as a Shape numel.
    if (v != 0 && count > uint64_t(std::numeric_limits<int64_t>::max()) / v) overflow = true;
    count *= v;
  }
  SHRINK_CHECK(!overflow, name, ": IDX dims ", out.dims, " describe more data than can exist");
  const uint64_t total = header + count;
  SHRINK_CHECK(n >= total, name, ": truncated IDX data: dims ", out.dims, " need ", total,
               " bytes (", header, " header + ", count, " values), got ", n);
  SHRINK_CHECK(n == total, name, ": ", n - total, " unexpected trailing bytes: dims ", out.dims,
               " need ", total, " bytes, got ", n);
  out.values = Tensor::empty(out.dims, DType::U8);
  if (count > 0) std::memcpy(out.values.data<uint8_t>(), p + header, count);
  return out;
}

std::string read_gzip_file(const std::string& path) { return gunzip(read_file(path), path); }

std::string default_fashion_mnist_dir() {
  const char* env = std::getenv("SHRINK_FASHION_MNIST_DIR");
  return env && *env ? std::string(env) : std::string(kDebianDir);
}

std::shared_ptr<TensorDataset> load_fashion_mnist(const std::string& dir, bool train,
                                                  int64_t limit) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string img_path = resolve(dir, prefix + "-images-idx3-ubyte");
  const std::string lab_path = resolve(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray images = parse_idx(read_maybe_gzip(img_path), img_path, kImagesMagic);
  const IdxArray labels = parse_idx(read_maybe_gzip(lab_path), lab_path, kLabelsMagic);

  SHRINK_CHECK(images.dims[1] == kSide && images.dims[2] == kSide, img_path,
               ": expected 28x28 Fashion-MNIST images, got dims ", images.dims);
  const int64_t total = images.dims[0];
  SHRINK_CHECK(labels.dims[0] == total, "Fashion-MNIST: ", img_path, " has ", total,
               " images but ", lab_path, " has ", labels.dims[0], " labels");
  // Every label is checked, not just the kept ones: a bad one means the file is corrupt.
  const uint8_t* lab = labels.values.data<uint8_t>();
  for (int64_t i = 0; i < total; ++i)
    SHRINK_CHECK(lab[i] < kClasses, lab_path, ": label ", int(lab[i]), " at index ", i,
                 " is out of range (Fashion-MNIST labels are 0 to 9)");

  const int64_t n = limit < 0 ? total : std::min(limit, total);
  // A 256-entry table gives each byte exactly the same float every time and avoids a
  // divide per pixel.
  float table[256];
  for (int v = 0; v < 256; ++v)
    table[v] = (static_cast<float>(v) / 255.0f - kFashionMnistMean) / kFashionMnistStd;

  Tensor inputs = Tensor::empty({n, 1, kSide, kSide}, DType::F32);
  Tensor targets = Tensor::empty({n}, DType::I64);
  const uint8_t* px = images.values.data<uint8_t>();
  float* x = inputs.data<float>();
  int64_t* y = targets.data<int64_t>();
  const int64_t npx = n * kSide * kSide;
  for (int64_t i = 0; i < npx; ++i) x[i] = table[px[i]];
  for (int64_t i = 0; i < n; ++i) y[i] = lab[i];
  return std::make_shared<TensorDataset>(std::move(inputs), std::move(targets));
}

}  // namespace shrink::data
