#include "data/shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "core/error.h"

namespace nsa {

static_assert(std::endian::native == std::endian::little,
              "shards are little-endian; so is every host we run on");

namespace {

std::string errno_text() { return std::strerror(errno); }

// The token stream as its stored type; the header is 1024 bytes after a page-aligned map, so the cast is
// aligned for both widths.
const uint16_t* as_u16(const unsigned char* p) { return reinterpret_cast<const uint16_t*>(p); }
const uint32_t* as_u32(const unsigned char* p) { return reinterpret_cast<const uint32_t*>(p); }

// First index in t[0, n) with t[i] >= bound, or -1. Scans blocks by their maximum first (a loop the
// compiler vectorises) and looks for the position only in a block that has one.
template <class T>
int64_t first_at_least(const T* t, int64_t n, uint64_t bound) {
  constexpr int64_t kBlock = 1 << 16;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = std::min(n, begin + kBlock);
    T block_max = 0;
    for (int64_t i = begin; i < end; ++i) block_max = std::max(block_max, t[i]);
    if (block_max < bound) continue;
    for (int64_t i = begin; i < end; ++i) {
      if (t[i] >= bound) return i;
    }
  }
  return -1;
}

template <class T>
std::pair<uint32_t, uint32_t> min_max_of(const T* t, int64_t n) {
  if (n == 0) return {0, 0};
  T lo = t[0], hi = t[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, t[i]);
    hi = std::max(hi, t[i]);
  }
  return {lo, hi};
}

}  // namespace

Shard Shard::open(const std::string& path) {
  Shard shard;
  shard.path_ = path;
  shard.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (shard.fd_ < 0) throw InputError(str(path, ": cannot open shard: ", errno_text()));

  struct stat st {};
  if (::fstat(shard.fd_, &st) != 0) throw InputError(str(path, ": cannot stat shard: ", errno_text()));
  if (!S_ISREG(st.st_mode)) throw InputError(str(path, ": not a regular file"));
  const int64_t file_bytes = st.st_size;
  if (file_bytes == 0) {
    throw InputError(
        str(path, ": empty file, expected a shard (a ", kShardHeaderBytes, "-byte header and tokens)"));
  }
  if (file_bytes < kShardHeaderBytes) {
    throw InputError(str(path, ": not a shard: file has ", file_bytes, " bytes, smaller than the ",
                         kShardHeaderBytes, "-byte header"));
  }

  shard.map_bytes_ = static_cast<size_t>(file_bytes);
  void* map = ::mmap(nullptr, shard.map_bytes_, PROT_READ, MAP_SHARED, shard.fd_, 0);
  if (map == MAP_FAILED) throw InputError(str(path, ": cannot map shard: ", errno_text()));
  shard.map_ = map;

  int32_t header[3];
  std::memcpy(header, map, sizeof(header));
  if (header[0] != kShardMagic) {
    throw InputError(
        str(path, ": not a shard: magic number ", header[0], ", expected ", kShardMagic, " (llm.c format)"));
  }
  if (header[1] != 1 && header[1] != 2) {
    throw InputError(
        str(path, ": unsupported shard version ", header[1], " (1: uint16 tokens, 2: uint32 tokens)"));
  }
  shard.version_ = header[1];
  if (header[2] < 0) throw InputError(str(path, ": bad shard header: token count ", header[2]));
  shard.count_ = header[2];

  const int64_t expected = shard.count_ * shard.bytes_per_token();
  const int64_t actual = file_bytes - kShardHeaderBytes;
  if (actual != expected) {
    throw InputError(str(path, actual < expected ? ": truncated shard" : ": trailing bytes in shard",
                         ": header says ", shard.count_, " tokens (", expected, " bytes), file has ", actual,
                         " bytes of tokens"));
  }
  shard.tokens_ = static_cast<const unsigned char*>(map) + kShardHeaderBytes;
  return shard;
}

Shard::Shard(Shard&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      version_(std::exchange(other.version_, 0)),
      count_(std::exchange(other.count_, 0)) {}

Shard& Shard::operator=(Shard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    version_ = std::exchange(other.version_, 0);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

Shard::~Shard() { release(); }

void Shard::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
  tokens_ = nullptr;
}

uint32_t Shard::token(int64_t index) const {
  NSA_CHECK(index >= 0 && index < count_, "[shard] token index ", index, " out of range for ", path_, " (",
            count_, " tokens)");
  return version_ == 1 ? as_u16(tokens_)[index] : as_u32(tokens_)[index];
}

void Shard::read(int64_t begin, std::span<int32_t> out) const {
  const int64_t n = static_cast<int64_t>(out.size());
  NSA_CHECK(begin >= 0 && n >= 0 && begin + n <= count_, "[shard] read of tokens [", begin, ", ", begin + n,
            ") out of range for ", path_, " (", count_, " tokens)");
  if (version_ == 1) {
    std::copy_n(as_u16(tokens_) + begin, n, out.begin());
  } else {
    const uint32_t* t = as_u32(tokens_) + begin;
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(t[i]);
  }
}

std::optional<int64_t> Shard::find_token_at_least(uint64_t vocab_size) const {
  const int64_t at = version_ == 1 ? first_at_least(as_u16(tokens_), count_, vocab_size)
                                   : first_at_least(as_u32(tokens_), count_, vocab_size);
  if (at < 0) return std::nullopt;
  return at;
}

void Shard::check_vocab(int64_t vocab_size) const {
  NSA_CHECK(vocab_size > 0, "[shard] vocab_size must be positive, got ", vocab_size);
  if (const auto at = find_token_at_least(static_cast<uint64_t>(vocab_size))) {
    throw InputError(str(path_, ": token ", token(*at), " at position ", *at, " is outside the vocabulary (",
                         "vocab_size ", vocab_size, ")"));
  }
}

std::pair<uint32_t, uint32_t> Shard::min_max() const {
  return version_ == 1 ? min_max_of(as_u16(tokens_), count_) : min_max_of(as_u32(tokens_), count_);
}

void write_shard(const std::string& path, std::span<const uint32_t> tokens, int version) {
  if (version != 1 && version != 2) {
    throw InputError(str(path, ": shard version must be 1 (uint16) or 2 (uint32), got ", version));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > INT32_MAX) {
    throw InputError(str(path, ": ", n, " tokens do not fit one shard (the header's count is an int32)"));
  }
  if (version == 1) {
    for (int64_t i = 0; i < n; ++i) {
      if (tokens[i] > UINT16_MAX) {
        throw InputError(str(path, ": token ", tokens[i], " at position ", i,
                             " does not fit a version-1 shard (uint16 tokens); write version 2"));
      }
    }
  }

  const std::string tmp = str(path, ".tmp.", ::getpid());
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!file) throw InputError(str(path, ": cannot write shard: ", errno_text()));
  auto fail = [&](const std::string& what) {
    const std::string reason = errno_text();
    file.reset();
    std::remove(tmp.c_str());
    throw InputError(str(path, ": cannot write shard: ", what, ": ", reason));
  };

  int32_t header[kShardHeaderInts] = {};
  header[0] = kShardMagic;
  header[1] = version;
  header[2] = static_cast<int32_t>(n);
  if (std::fwrite(header, sizeof(header), 1, file.get()) != 1) fail("header");

  if (version == 2) {
    if (n > 0 && std::fwrite(tokens.data(), 4, tokens.size(), file.get()) != tokens.size()) fail("tokens");
  } else {
    std::vector<uint16_t> chunk;
    constexpr int64_t kChunk = 1 << 20;
    for (int64_t begin = 0; begin < n; begin += kChunk) {
      const int64_t end = std::min(n, begin + kChunk);
      chunk.assign(tokens.begin() + begin, tokens.begin() + end);
      if (std::fwrite(chunk.data(), 2, chunk.size(), file.get()) != chunk.size()) fail("tokens");
    }
  }
  if (std::fflush(file.get()) != 0) fail("flush");
  if (std::fclose(file.release()) != 0) {
    const std::string reason = errno_text();
    std::remove(tmp.c_str());
    throw InputError(str(path, ": cannot write shard: close: ", reason));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    std::remove(tmp.c_str());
    throw InputError(str(path, ": cannot write shard: rename: ", reason));
  }
}

}  // namespace nsa
