#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "autograd/grad_mode.h"
#include "io/json.h"
#include "ops/copy.h"

namespace nsa {

namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace fs = std::filesystem;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit
constexpr const char* kMetadataKey = "__metadata__";

std::string errno_text() { return std::strerror(errno); }

// Bytes per element of the dtypes the spec names (sub-byte types are not supported; 0: unknown).
uint64_t dtype_bytes(const std::string& dtype) {
  static const std::pair<const char*, uint64_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},     {"C64", 8}};
  for (const auto& [name, size] : kSizes) {
    if (dtype == name) return size;
  }
  return 0;
}

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void write_all(int fd, const void* data, size_t bytes, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw InputError(str(path, ": cannot write: ", errno_text()));
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void read_at(int fd, void* data, size_t bytes, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw InputError(str(path, ": cannot read: ", errno_text()));
    if (n == 0) throw InputError(str(path, ": unexpected end of file at byte ", offset));
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

std::string header_json(const std::vector<std::pair<std::string, Tensor>>& tensors, const char* dtype_text,
                        uint64_t element_bytes, const Metadata& metadata) {
  json::Writer w;
  w.begin_object();
  if (!metadata.empty()) {
    w.key(kMetadataKey).begin_object();
    for (const auto& [k, v] : metadata) w.key(k).value(v);
    w.end_object();
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * element_bytes;
    w.key(name).begin_object().key("dtype").value(dtype_text).key("shape").begin_array();
    for (int d = 0; d < t.dim(); ++d) w.value(static_cast<int64_t>(t.size(d)));
    w.end_array().key("data_offsets").begin_array().value(offset).value(offset + bytes).end_array().end_object();
    offset += bytes;
  }
  w.end_object();
  return w.str();
}

// ------------------------------------------------------------------------------------------------ read

struct OpenedFile {
  Fd fd;
  uint64_t size;
};

OpenedFile open_for_reading(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw InputError(path + ": no such file");
  if (!fs::is_regular_file(status)) throw InputError(path + ": not a regular file");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw InputError(str(path, ": cannot open: ", errno_text()));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw InputError(str(path, ": cannot read: ", errno_text()));
  return {Fd(fd.release()), static_cast<uint64_t>(st.st_size)};
}

SafetensorsHeader parse_header(int fd, uint64_t file_size, const std::string& path) {
  if (file_size < 8) {
    throw InputError(str(path, ": not a safetensors file (", file_size, " bytes, shorter than the 8-byte header length)"));
  }
  uint64_t n = 0;
  read_at(fd, &n, 8, 0, path);
  if (n > kMaxHeaderBytes || n > file_size - 8) {
    throw InputError(str(path, ": not a safetensors file (header length ", n, " exceeds ",
                         n > kMaxHeaderBytes ? "the 100 MB limit" : str("the file's ", file_size - 8, " bytes after it"),
                         ")"));
  }
  std::string text(static_cast<size_t>(n), '\0');
  read_at(fd, text.data(), text.size(), 8, path);
  if (text.empty() || text[0] != '{') throw InputError(path + ": not a safetensors file (the header is not a JSON object)");
  const json::Value root = json::parse(text, path + ": header");
  if (!root.is(json::Value::Kind::object)) throw InputError(path + ": header: expected a JSON object");

  SafetensorsHeader h;
  h.header_bytes = n;
  h.data_bytes = file_size - 8 - n;
  for (const auto& [name, v] : root.members()) {
    const std::string at = str(path, ": header: ", json::quote(name));
    if (name == kMetadataKey) {
      if (!v.is(json::Value::Kind::object)) {
        throw InputError(str(at, ": expected an object of strings, got ", json::Value::kind_name(v.kind())));
      }
      for (const auto& [k, s] : v.members()) {
        if (!s.is(json::Value::Kind::string)) {
          throw InputError(str(at, ": ", json::quote(k), ": metadata values must be strings, got ",
                               json::Value::kind_name(s.kind())));
        }
        h.metadata.emplace_back(k, s.text());
      }
      continue;
    }
    if (name.empty()) throw InputError(path + ": header: empty tensor name");
    if (!v.is(json::Value::Kind::object)) {
      throw InputError(str(at, ": expected an object {dtype, shape, data_offsets}, got ", json::Value::kind_name(v.kind())));
    }
    SafetensorsEntry e;
    e.name = name;
    for (const auto& [k, field] : v.members()) {
      if (k != "dtype" && k != "shape" && k != "data_offsets") {
        throw InputError(str(at, ": unexpected field ", json::quote(k), " (expected dtype, shape, data_offsets)"));
      }
    }
    const json::Value* dtype = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offsets = v.find("data_offsets");
    if (!dtype || !shape || !offsets) {
      throw InputError(str(at, ": missing field '", !dtype ? "dtype" : !shape ? "shape" : "data_offsets", "'"));
    }
    if (!dtype->is(json::Value::Kind::string)) throw InputError(str(at, ": dtype: expected a string"));
    e.dtype = dtype->text();
    const uint64_t element = dtype_bytes(e.dtype);
    if (element == 0) throw InputError(str(at, ": unknown dtype ", json::quote(e.dtype)));
    if (!shape->is(json::Value::Kind::array)) throw InputError(str(at, ": shape: expected an array of integers"));
    if (shape->items().size() > static_cast<size_t>(kMaxDims)) {
      throw InputError(str(at, ": shape: rank ", shape->items().size(), " exceeds the maximum of ", kMaxDims));
    }
    uint64_t bytes = element;
    bool overflow = false;
    for (const json::Value& d : shape->items()) {
      uint64_t extent = 0;
      if (!d.to_uint64(&extent) || extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw InputError(str(at, ": shape: expected non-negative integers, got ", d.is(json::Value::Kind::number) ? d.text() : json::Value::kind_name(d.kind())));
      }
      e.shape.push_back(static_cast<int64_t>(extent));
      if (extent != 0 && bytes > std::numeric_limits<uint64_t>::max() / extent) overflow = true;
      bytes *= extent;
    }
    if (!offsets->is(json::Value::Kind::array) || offsets->items().size() != 2 ||
        !offsets->items()[0].to_uint64(&e.begin) || !offsets->items()[1].to_uint64(&e.end) || e.begin > e.end) {
      throw InputError(str(at, ": data_offsets: expected [begin, end] with 0 <= begin <= end"));
    }
    if (overflow || e.end - e.begin != bytes) {
      throw InputError(str(at, ": data_offsets [", e.begin, ", ", e.end, ") hold ", e.end - e.begin, " bytes, but ",
                           e.dtype, e.shape.str(), " needs ", overflow ? std::string("more than 2^64") : std::to_string(bytes)));
    }
    h.tensors.push_back(std::move(e));
  }
  // The tensors must tile the data buffer: sorted by offset, each starting where the previous ended.
  std::vector<const SafetensorsEntry*> sorted;
  for (const SafetensorsEntry& e : h.tensors) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const SafetensorsEntry* e : sorted) {
    if (e->begin != expected) {
      throw InputError(str(path, ": header: ", json::quote(e->name), ": data starts at byte ", e->begin, ", expected ",
                           expected, e->begin < expected ? " (overlaps the previous tensor)" : " (a hole in the data)"));
    }
    expected = e->end;
  }
  if (expected != h.data_bytes) {
    throw InputError(str(path, ": the tensors cover ", expected, " bytes of data, the file holds ", h.data_bytes,
                         expected > h.data_bytes ? " (truncated?)" : " (trailing bytes no tensor uses)"));
  }
  return h;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000 | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
  }
  return std::bit_cast<float>(bits);
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      DType dtype, const Metadata& metadata) {
  NSA_CHECK(dtype == DType::f32 || dtype == DType::bf16, "[save_safetensors] ", path,
            ": tensors are stored as f32 or bf16, got ", dtype_name(dtype));
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    NSA_CHECK(!name.empty() && name != kMetadataKey, "[save_safetensors] ", path, ": invalid tensor name '", name, "'");
    NSA_CHECK(names.insert(name).second, "[save_safetensors] ", path, ": duplicate tensor name '", name, "'");
    NSA_CHECK(t.defined() && is_floating(t.dtype()), "[save_safetensors] ", path, ": ", name,
              ": expected a floating tensor");
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : metadata) {
    NSA_CHECK(keys.insert(k).second, "[save_safetensors] ", path, ": duplicate metadata key '", k, "'");
  }
  std::string header = header_json(tensors, dtype == DType::f32 ? "F32" : "BF16", dtype_size(dtype), metadata);
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t n = header.size();

  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw InputError(path + ": cannot save: the directory " + dir.string() + " does not exist");
  }
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (fd.get() < 0) throw InputError(str(path, ": cannot create ", temp, ": ", errno_text()));
      write_all(fd.get(), &n, 8, path);
      write_all(fd.get(), header.data(), header.size(), path);
      NoGradGuard no_grad;
      for (const auto& [name, t] : tensors) {
        const Tensor host = contiguous(to(t, Device::cpu(), dtype));
        if (host.numel() > 0) write_all(fd.get(), host.data_ptr(), host.nbytes(), path);
      }
      if (::fsync(fd.get()) != 0) throw InputError(str(path, ": cannot sync ", temp, ": ", errno_text()));
      const int raw = fd.release();
      if (::close(raw) != 0) throw InputError(str(path, ": cannot close ", temp, ": ", errno_text()));
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
      throw InputError(str(path, ": cannot rename ", temp, " over it: ", errno_text()));
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: the rename survives a power loss where the file system allows it
    ::close(dfd);
  }
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  OpenedFile f = open_for_reading(path);
  return parse_header(f.fd.get(), f.size, path);
}

SafetensorsContents load_safetensors(const std::string& path) {
  OpenedFile f = open_for_reading(path);
  SafetensorsContents out;
  out.header = parse_header(f.fd.get(), f.size, path);
  const uint64_t data_start = 8 + out.header.header_bytes;
  NoGradGuard no_grad;
  for (const SafetensorsEntry& e : out.header.tensors) {
    DType stored;
    if (e.dtype == "F32") {
      stored = DType::f32;
    } else if (e.dtype == "BF16" || e.dtype == "F16") {
      stored = DType::bf16;  // F16 is read into a 2-byte buffer and converted below
    } else if (e.dtype == "F64") {
      stored = DType::f64;
    } else {
      throw InputError(str(path, ": ", e.name, ": unsupported dtype ", e.dtype, " (expected F32, BF16, F16 or F64)"));
    }
    Tensor raw = Tensor::empty(e.shape, stored, Device::cpu());
    if (raw.numel() > 0) read_at(f.fd.get(), raw.data_ptr(), raw.nbytes(), data_start + e.begin, path);
    if (e.dtype == "F16") {
      Tensor values = Tensor::empty(e.shape, DType::f32, Device::cpu());
      const auto* in = static_cast<const uint16_t*>(raw.data_ptr());
      auto* o = static_cast<float*>(values.data_ptr());
      for (int64_t i = 0; i < raw.numel(); ++i) o[i] = half_to_float(in[i]);
      out.tensors.emplace_back(e.name, values);
    } else {
      out.tensors.emplace_back(e.name, to(raw, DType::f32));
    }
  }
  return out;
}

}  // namespace nsa
