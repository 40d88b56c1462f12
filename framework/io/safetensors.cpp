// safetensors reader/writer. The reader treats the file as untrusted: every size and offset is
// checked against the bytes actually present before any tensor is allocated.
#include "framework/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "framework/io/atomic_file.h"

namespace shrink::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied without byte swapping");

namespace json = boost::json;

namespace {

struct FileDType {
  const char* name;
  DType stored;      // dtype of the loaded tensor
  size_t file_size;  // bytes per element in the file
  bool is_f16;
};

bool lookup_dtype(const std::string& s, FileDType& out) {
  static const FileDType table[] = {
      {"F32", DType::F32, 4, false}, {"F16", DType::F32, 2, true},
      {"I64", DType::I64, 8, false}, {"I32", DType::I32, 4, false},
      {"U8", DType::U8, 1, false},   {"I8", DType::I8, 1, false},
      {"BOOL", DType::U8, 1, false},
  };
  for (const FileDType& d : table) {
    if (s == d.name) {
      out = d;
      return true;
    }
  }
  return false;
}

const char* json_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a non-integer number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "?";
}

// Boost.JSON prints doubles as "1.5E0"; messages read better in the usual form.
std::string json_text(const json::value& v) {
  if (v.is_double()) {
    std::ostringstream os;
    os << v.get_double();
    return os.str();
  }
  if (!v.is_array()) return json::serialize(v);
  std::string s = "[";
  for (const json::value& e : v.get_array()) s += (s.size() > 1 ? ", " : "") + json_text(e);
  return s + "]";
}

// Non-negative integer that fits in int64 (so it also fits shapes and size arithmetic).
bool as_index(const json::value& v, uint64_t& out) {
  if (v.is_int64() && v.get_int64() >= 0) {
    out = static_cast<uint64_t>(v.get_int64());
    return true;
  }
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    out = v.get_uint64();
    return true;
  }
  return false;
}

// Boost.JSON's DOM silently keeps only the last of duplicate keys, which would hide a second
// tensor of the same name; this SAX pass over the header finds the duplicates first.
struct DuplicateKeyFinder {
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  std::vector<std::set<std::string>> open;  // keys seen so far in each open container
  std::string key;
  std::string duplicate;
  size_t duplicate_depth = 0;  // 1: a tensor name; 2+: a field inside an entry

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return open.emplace_back(), true; }
  bool on_array_end(std::size_t, json::error_code&) { return open.pop_back(), true; }
  bool on_object_begin(json::error_code&) { return open.emplace_back(), true; }
  bool on_object_end(std::size_t, json::error_code&) { return open.pop_back(), true; }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    key.append(s.data(), s.size());
    if (!open.back().insert(key).second && duplicate_depth == 0) {
      duplicate = key;
      duplicate_depth = open.size();
    }
    key.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

json::object parse_header(json::string_view header, const std::string& src) {
  json::basic_parser<DuplicateKeyFinder> sax{json::parse_options{}};
  json::error_code ec;
  size_t used = sax.write_some(false, header.data(), header.size(), ec);
  if (!ec && used != header.size()) ec = json::error::extra_data;
  SHRINK_CHECK(!ec, src, ": header is not valid JSON: ", ec.message());
  const DuplicateKeyFinder& dups = sax.handler();
  SHRINK_CHECK(dups.duplicate_depth != 1, src, ": duplicate tensor name '", dups.duplicate,
               "' in header");
  SHRINK_CHECK(dups.duplicate_depth == 0, src, ": duplicate key '", dups.duplicate,
               "' inside a header entry");

  json::value root = json::parse(header, ec);
  SHRINK_CHECK(!ec, src, ": header is not valid JSON: ", ec.message());
  SHRINK_CHECK(root.is_object(), src, ": header is not a JSON object (got ", json_kind(root),
               ")");
  return std::move(root.as_object());
}

std::map<std::string, std::string> parse_metadata(const json::value& v, const std::string& src) {
  SHRINK_CHECK(v.is_object(), src, ": __metadata__ must be an object of strings, got ",
               json_kind(v));
  std::map<std::string, std::string> out;
  for (const auto& kv : v.get_object()) {
    SHRINK_CHECK(kv.value().is_string(), src, ": __metadata__ must be an object of strings, but '",
                 std::string(kv.key()), "' is ", json_kind(kv.value()));
    out.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  return out;
}

struct Entry {
  std::string name;
  FileDType dt{};
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& name, const json::value& v, const std::string& src,
                  uint64_t header_end, uint64_t data_size) {
  Entry e;
  e.name = name;
  auto ctx = [&] { return src + ": tensor '" + name + "': "; };
  SHRINK_CHECK(v.is_object(), ctx(), "entry must be a JSON object, got ", json_kind(v));
  const json::object& o = v.get_object();
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    SHRINK_CHECK(o.contains(field), ctx(), "missing '", field, "'");
  }

  const json::value& dt = o.at("dtype");
  SHRINK_CHECK(dt.is_string(), ctx(), "'dtype' must be a string, got ", json_kind(dt));
  std::string dt_name(dt.get_string());
  SHRINK_CHECK(lookup_dtype(dt_name, e.dt), ctx(), "unsupported dtype '", dt_name,
               "' (supported: F32, F16, I64, I32, U8, I8, BOOL)");

  const json::value& sh = o.at("shape");
  SHRINK_CHECK(sh.is_array(), ctx(), "'shape' must be an array, got ", json_kind(sh));
  // Product of the non-zero dims, bounded so that shape_numel and byte counts cannot overflow
  // even when a zero dim makes the tensor empty.
  uint64_t product = 1;
  bool has_zero = false;
  for (const json::value& d : sh.get_array()) {
    uint64_t dim = 0;
    SHRINK_CHECK(!(d.is_int64() && d.get_int64() < 0), ctx(), "shape ", json_text(sh),
                 " has negative dimension ", d.get_int64());
    SHRINK_CHECK(as_index(d, dim), ctx(), "shape ", json_text(sh),
                 " has non-integer dimension ", json_text(d));
    e.shape.push_back(static_cast<int64_t>(dim));
    if (dim == 0) {
      has_zero = true;
      continue;
    }
    SHRINK_CHECK(!__builtin_mul_overflow(product, dim, &product) &&
                     product <= static_cast<uint64_t>(INT64_MAX) / 8,
                 ctx(), "shape ", json_text(sh), " is too large");
  }
  const uint64_t numel = has_zero ? 0 : product;

  const json::value& off = o.at("data_offsets");
  SHRINK_CHECK(off.is_array() && off.get_array().size() == 2, ctx(),
               "'data_offsets' must be an array of 2 integers, got ", json_text(off));
  SHRINK_CHECK(as_index(off.get_array()[0], e.begin) && as_index(off.get_array()[1], e.end),
               ctx(), "'data_offsets' must be non-negative integers, got ", json_text(off));
  SHRINK_CHECK(e.begin <= e.end, ctx(), "data_offsets [", e.begin, ", ", e.end,
               "] end before they begin");
  SHRINK_CHECK(e.end <= data_size, ctx(), "data_offsets [", e.begin, ", ", e.end,
               "] exceed data buffer of ", data_size, " bytes (header ends at byte ", header_end,
               ")");
  const uint64_t need = numel * e.dt.file_size;
  SHRINK_CHECK(e.end - e.begin == need, ctx(), "data_offsets [", e.begin, ", ", e.end, "] span ",
               e.end - e.begin, " bytes but ", dt_name, " shape ", e.shape, " needs ", need,
               " bytes");
  return e;
}

Tensor decode(const Entry& e, const char* data) {
  Tensor t = Tensor::empty(e.shape, e.dt.stored);
  const uint64_t nbytes = e.end - e.begin;
  if (nbytes == 0) return t;
  const char* src = data + e.begin;
  if (e.dt.is_f16) {
    float* out = t.data<float>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  } else {
    std::memcpy(t.raw_data(), src, nbytes);
  }
  return t;
}

const char* file_dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
  }
  return nullptr;
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, or NaN keeping its payload
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: every one is a normal float, so shift the leading 1 into the implicit
    // bit position and lower the exponent by the shift.
    int shift = 0;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      ++shift;
    }
    bits = sign | (static_cast<uint32_t>(127 - 15 + 1 - shift) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& src) {
  const uint64_t size = bytes.size();
  SHRINK_CHECK(size >= 8, src, ": file is ", size,
               " bytes, too short for the 8-byte header length prefix");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  SHRINK_CHECK(header_len <= size - 8, src, ": header length ", header_len, " exceeds the ",
               size - 8, " bytes after the length prefix (file is ", size, " bytes)");
  const uint64_t header_end = 8 + header_len;
  const uint64_t data_size = size - header_end;

  json::object root = parse_header(json::string_view(bytes.data() + 8, header_len), src);
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& kv : root) {
    std::string name(kv.key());
    if (name == "__metadata__") {
      file.metadata = parse_metadata(kv.value(), src);
    } else {
      entries.push_back(parse_entry(name, kv.value(), src, header_end, data_size));
    }
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  // Empty ranges hold no bytes and so cannot overlap anything.
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    SHRINK_CHECK(!prev || e.begin >= prev->end, src, ": tensors '", prev->name,
                 "' data_offsets [", prev->begin, ", ", prev->end, "] and '", e.name,
                 "' data_offsets [", e.begin, ", ", e.end, "] overlap");
    prev = &e;
  }

  const char* data = bytes.data() + header_end;
  file.tensors.reserve(entries.size());
  for (const Entry& e : entries) file.tensors.emplace_back(e.name, decode(e, data));
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

std::map<std::string, Tensor> load_tensors(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  std::map<std::string, Tensor> out;
  for (auto& kv : f.tensors) out.emplace(kv.first, std::move(kv.second));
  return out;
}

std::string serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, Tensor>*> order;
  order.reserve(tensors.size());
  for (const auto& kv : tensors) {
    SHRINK_CHECK(!kv.first.empty(), "save_safetensors: empty tensor name");
    SHRINK_CHECK(kv.first != "__metadata__",
                 "save_safetensors: '__metadata__' is reserved and cannot name a tensor");
    SHRINK_CHECK(kv.second.defined(), "save_safetensors: tensor '", kv.first, "' is undefined");
    order.push_back(&kv);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < order.size(); ++i) {
    SHRINK_CHECK(order[i]->first != order[i - 1]->first,
                 "save_safetensors: duplicate tensor name '", order[i]->first, "'");
  }

  // The Python library writes "__metadata__" first and omits it when empty; match that so files
  // are byte-identical.
  json::object header;
  if (!metadata.empty()) {
    json::object m;
    for (const auto& kv : metadata) m[kv.first] = kv.second;
    header["__metadata__"] = std::move(m);
  }
  std::vector<Tensor> cpu;
  cpu.reserve(order.size());
  uint64_t offset = 0;
  for (const auto* kv : order) {
    Tensor t = kv->second.device() == Device::CPU ? kv->second
                                                  : kv->second.detach().to(Device::CPU);
    const char* dt = file_dtype_name(t.dtype());
    SHRINK_CHECK(dt != nullptr, "save_safetensors: tensor '", kv->first, "' has dtype ",
                 dtype_name(t.dtype()), ", which cannot be written");
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    json::object e;
    e["dtype"] = dt;
    json::array shape;
    for (int64_t d : t.shape()) shape.push_back(d);
    e["shape"] = std::move(shape);
    e["data_offsets"] = json::array{offset, offset + nbytes};
    header[kv->first] = std::move(e);
    offset += nbytes;
    cpu.push_back(std::move(t));
  }

  std::string header_text = json::serialize(header);
  // Spaces (valid JSON whitespace) pad the header so the data buffer is 8-byte aligned for
  // readers that mmap the file and view tensors in place.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_len = header_text.size();

  std::string out;
  out.reserve(8 + header_len + offset);
  char len_bytes[8];
  std::memcpy(len_bytes, &header_len, 8);
  out.append(len_bytes, 8);
  out += header_text;
  for (const Tensor& t : cpu) {
    const size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    if (nbytes) out.append(static_cast<const char*>(t.raw_data()), nbytes);
  }
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> v(tensors.begin(), tensors.end());
  save_safetensors(path, v, metadata);
}

}  // namespace shrink::io
