#include "io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>

#include "autograd/grad_mode.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"
#include "ops/copy.h"

namespace nsa {

namespace {

namespace fs = std::filesystem;

constexpr const char* kParamsGroup = "params";
constexpr const char* kOptimizerGroup = "optimizer";
constexpr const char* kStateGroup = "state";
constexpr const char* kDtypeAttribute = "dtype";
// Tensor-parallel pieces (format_version 2): the rank on the root, the slice on each sliced dataset.
constexpr const char* kTpRankAttribute = "tp_rank";
constexpr const char* kTpSizeAttribute = "tp_size";
constexpr const char* kTpDimAttribute = "tp_dim";
constexpr const char* kTpOffsetAttribute = "tp_offset";
constexpr const char* kTpFullSizeAttribute = "tp_full_size";
// Deeper nesting than any name needs: a bound that stops a file whose links form a cycle.
constexpr int kMaxGroupDepth = 32;

// A serial HDF5 build is not thread-safe: one save or load at a time in this process.
std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::string errno_text() { return std::strerror(errno); }

// File access: no HDF5 file locking. Every file has a single writer (the temp name carries the pid), and
// the locks fail on some network file systems. `strict_close`: closing the file fails while any object in
// it is still open, so a forgotten handle is an error instead of a silently deferred close.
h5::PropertyList file_access(const std::string& file, bool strict_close) {
  h5::PropertyList access = h5::take<h5::PropertyList>(H5Pcreate(H5P_FILE_ACCESS), file, "", "cannot open");
#if H5_VERSION_GE(1, 10, 7)
  h5::check(H5Pset_file_locking(access.id(), false, true), file, "", "cannot open");
#endif
  if (strict_close) h5::check(H5Pset_fclose_degree(access.id(), H5F_CLOSE_SEMI), file, "", "cannot open");
  return access;
}

// ------------------------------------------------------------------------------------------------ save

// Splits "exp_avg/blocks.0.wq" into its components; refuses names HDF5 would read differently.
std::vector<std::string> split_name(const std::string& name, const std::string& file,
                                    const std::string& object) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = name.find('/', start);
    parts.push_back(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    NSA_CHECK(!parts.back().empty() && parts.back() != ".", "[save_checkpoint] ", file, ": ", object,
              ": invalid name (empty or '.' component)");
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

// A contiguous CPU copy of `t` in `dtype` (t itself when it already is one).
Tensor host_copy(const Tensor& t, DType dtype, const std::string& file, const std::string& object) {
  NSA_CHECK(t.defined(), "[save_checkpoint] ", file, ": ", object, ": undefined tensor");
  NSA_CHECK(is_floating(t.dtype()), "[save_checkpoint] ", file, ": ", object,
            ": expected a floating tensor, got ", t.desc());
  NoGradGuard no_grad;
  return contiguous(to(t, Device::cpu(), dtype));
}

class CheckpointWriter {
 public:
  // `shown` names the checkpoint in messages; the data goes to `temp_path`.
  CheckpointWriter(const std::string& shown, const std::string& temp_path) : shown_(shown) {
    h5::PropertyList access = file_access(shown_, /*strict_close=*/true);
    file_ = h5::take<h5::File>(H5Fcreate(temp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.id()), shown_,
                               "", "cannot create the temporary file " + temp_path);
    // Groups remember the order links and attributes were created in, so a load returns that order.
    ordered_ = h5::take<h5::PropertyList>(H5Pcreate(H5P_GROUP_CREATE), shown_, "", "cannot create groups");
    const unsigned order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
    h5::check(H5Pset_link_creation_order(ordered_.id(), order), shown_, "", "cannot create groups");
    h5::check(H5Pset_attr_creation_order(ordered_.id(), order), shown_, "", "cannot create groups");
  }

  void write(const CheckpointState& state, DType param_dtype) {
    const TpPiece* tp = state.tp ? &*state.tp : nullptr;
    {
      h5::Group root =
          h5::take<h5::Group>(H5Gopen2(file_.id(), "/", H5P_DEFAULT), shown_, "/", "cannot open");
      h5::write_string_attribute(root.id(), "format", kCheckpointFormat, h5::StringStorage::fixed, shown_,
                                 "/");
      h5::write_int_attribute(root.id(), "format_version",
                              tp ? kCheckpointTpFormatVersion : kCheckpointFormatVersion, H5T_STD_I32LE, shown_,
                              "/");
      h5::write_int_attribute(root.id(), "step", state.step, H5T_STD_I64LE, shown_, "/");
      h5::write_string_attribute(root.id(), "config", state.config_yaml, h5::StringStorage::variable, shown_,
                                 "/");
      if (tp) {
        NSA_CHECK(tp->size >= 1 && tp->rank >= 0 && tp->rank < tp->size, "[save_checkpoint] ", shown_,
                  ": tensor-parallel rank ", tp->rank, " of ", tp->size, " is not a valid rank");
        h5::write_int_attribute(root.id(), kTpRankAttribute, tp->rank, H5T_STD_I64LE, shown_, "/");
        h5::write_int_attribute(root.id(), kTpSizeAttribute, tp->size, H5T_STD_I64LE, shown_, "/");
      }
    }
    write_tensors(kParamsGroup, state.params, param_dtype, tp ? &tp->param_slices : nullptr);
    write_tensors(kOptimizerGroup, state.optimizer, DType::f32, tp ? &tp->optimizer_slices : nullptr);
    write_counters(state.counters);
  }

  // Flushes and closes the file; a failure here is an error (the data may not be complete).
  void finish() {
    h5::check(H5Fflush(file_.id(), H5F_SCOPE_GLOBAL), shown_, "", "cannot flush");
    if (!file_.close()) h5::fail(shown_, "", "cannot close");
  }

 private:
  h5::Group create_group(hid_t parent, const std::string& name, const std::string& object) {
    return h5::take<h5::Group>(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, ordered_.id(), H5P_DEFAULT),
                               shown_, object, "cannot create the group");
  }

  // The group that holds the last component of `parts`, creating the intermediate groups on the way.
  h5::Group parent_of(const h5::Group& top, const std::string& top_path,
                      const std::vector<std::string>& parts) {
    h5::Group current =
        h5::take<h5::Group>(H5Gopen2(top.id(), ".", H5P_DEFAULT), shown_, top_path, "cannot open the group");
    std::string path = top_path;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      path += "/" + parts[i];
      const bool exists = h5::check(H5Lexists(current.id(), parts[i].c_str(), H5P_DEFAULT), shown_, path,
                                    "cannot look up") > 0;
      current = exists ? h5::take<h5::Group>(H5Gopen2(current.id(), parts[i].c_str(), H5P_DEFAULT), shown_,
                                             path, "cannot open as a group")
                       : create_group(current.id(), parts[i], path);
    }
    return current;
  }

  // `slices` (pieces of a tensor-parallel set only): the slice of each sliced tensor, by name.
  void write_tensors(const std::string& group_name, const std::vector<std::pair<std::string, Tensor>>& entries,
                     DType stored, const std::map<std::string, TensorSlice>* slices) {
    const std::string group_path = "/" + group_name;
    h5::Group group = create_group(file_.id(), group_name, group_path);
    std::set<std::string> seen;
    for (const auto& [name, tensor] : entries) {
      const std::string object = group_path + "/" + name;
      const std::vector<std::string> parts = split_name(name, shown_, object);
      NSA_CHECK(seen.insert(name).second, "[save_checkpoint] ", shown_, ": ", object, ": duplicate name");
      const Tensor host = host_copy(tensor, stored, shown_, object);
      h5::Group parent = parent_of(group, group_path, parts);
      h5::Dataset dataset = write_dataset(parent.id(), parts.back(), object, host, stored);
      const auto slice = slices ? slices->find(name) : std::map<std::string, TensorSlice>::const_iterator{};
      if (slices && slice != slices->end()) write_slice(dataset.id(), object, host.shape(), slice->second);
    }
    if (slices) {
      for (const auto& [name, slice] : *slices) {
        NSA_CHECK(seen.count(name) > 0, "[save_checkpoint] ", shown_, ": ", group_path, ": a slice is given for '",
                  name, "', which is not in the group");
      }
    }
  }

  void write_slice(hid_t dataset, const std::string& object, const Dims& stored, const TensorSlice& slice) {
    NSA_CHECK(slice.dim >= 0 && slice.dim < stored.size() && slice.offset >= 0 &&
                  slice.offset + stored[slice.dim] <= slice.full_size,
              "[save_checkpoint] ", shown_, ": ", object, ": slice (dim ", slice.dim, ", offset ", slice.offset,
              ", full size ", slice.full_size, ") does not fit a stored shape ", stored.str());
    h5::write_int_attribute(dataset, kTpDimAttribute, slice.dim, H5T_STD_I64LE, shown_, object);
    h5::write_int_attribute(dataset, kTpOffsetAttribute, slice.offset, H5T_STD_I64LE, shown_, object);
    h5::write_int_attribute(dataset, kTpFullSizeAttribute, slice.full_size, H5T_STD_I64LE, shown_, object);
  }

  h5::Dataset write_dataset(hid_t parent, const std::string& leaf, const std::string& object,
                            const Tensor& host, DType stored) {
    const std::string what = "cannot write the dataset";
    h5::Dataspace space;
    if (host.dim() == 0) {
      space = h5::take<h5::Dataspace>(H5Screate(H5S_SCALAR), shown_, object, what);
    } else {
      std::vector<hsize_t> dims(host.shape().begin(), host.shape().end());
      space =
          h5::take<h5::Dataspace>(H5Screate_simple(host.dim(), dims.data(), nullptr), shown_, object, what);
    }
    // bf16 has no HDF5 type: its bits are stored as uint16 and the `dtype` attribute says how to read them.
    const bool bf16 = stored == DType::bf16;
    h5::Dataset dataset =
        h5::take<h5::Dataset>(H5Dcreate2(parent, leaf.c_str(), bf16 ? H5T_STD_U16LE : H5T_IEEE_F32LE,
                                         space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                              shown_, object, "cannot create the dataset");
    if (host.numel() > 0) {
      h5::check(H5Dwrite(dataset.id(), bf16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                         H5P_DEFAULT, host.data_ptr()),
                shown_, object, what);
    }
    h5::write_string_attribute(dataset.id(), kDtypeAttribute, dtype_name(stored), h5::StringStorage::fixed,
                               shown_, object);
    return dataset;
  }

  void write_counters(const std::vector<std::pair<std::string, int64_t>>& counters) {
    const std::string group_path = std::string("/") + kStateGroup;
    h5::Group group = create_group(file_.id(), kStateGroup, group_path);
    std::set<std::string> seen;
    for (const auto& [name, value] : counters) {
      NSA_CHECK(!name.empty(), "[save_checkpoint] ", shown_, ": ", group_path, ": empty counter name");
      NSA_CHECK(seen.insert(name).second, "[save_checkpoint] ", shown_, ": ", group_path,
                ": duplicate counter '", name, "'");
      h5::write_int_attribute(group.id(), name, value, H5T_STD_I64LE, shown_, group_path);
    }
  }

  const std::string& shown_;
  h5::File file_;
  h5::PropertyList ordered_;
};

// Makes the bytes of `path` durable (they are in the page cache after the close).
void sync_file(const std::string& path, const std::string& shown) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(shown + ": cannot open " + path + " to sync it: " + errno_text());
  const int status = ::fsync(fd);
  const std::string error = status != 0 ? errno_text() : "";
  ::close(fd);
  if (status != 0) throw InputError(shown + ": cannot sync " + path + " to disk: " + error);
}

// Makes a rename in `dir` durable. File systems that cannot sync a directory (EINVAL) are left as they are.
void sync_directory(const fs::path& dir, const std::string& shown) {
  const std::string name = dir.empty() ? "." : dir.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw InputError(shown + ": cannot open the directory " + name + " to sync it: " + errno_text());
  const int status = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (status != 0 && error != EINVAL) {
    throw InputError(shown + ": cannot sync the directory " + name + ": " + std::strerror(error));
  }
}

// ------------------------------------------------------------------------------------------------ load

class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path) : path_(path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path_, ec);
    if (!fs::exists(status)) throw InputError(path_ + ": no such file");
    if (!fs::is_regular_file(status)) throw InputError(path_ + ": not a regular file");
    file_size_ = fs::file_size(path_, ec);
    if (ec) throw InputError(path_ + ": cannot read: " + ec.message());

    if (h5::check(H5Fis_hdf5(path_.c_str()), path_, "", "cannot read") == 0) {
      throw InputError(path_ + ": not an HDF5 file");
    }
    h5::PropertyList access = file_access(path_, /*strict_close=*/false);
    file_ = h5::take<h5::File>(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, access.id()), path_, "",
                               "cannot open the HDF5 file, damaged or truncated?");
  }

  CheckpointState read() {
    CheckpointState state;
    {
      h5::Group root = h5::take<h5::Group>(H5Gopen2(file_.id(), "/", H5P_DEFAULT), path_, "/", "cannot open");
      read_header(root.id(), state);
    }
    TpPiece* tp = state.tp ? &*state.tp : nullptr;
    read_tensor_group(kParamsGroup, state.params, tp ? &tp->param_slices : nullptr);
    state.params_stored = saw_bf16_ ? DType::bf16 : DType::f32;
    read_tensor_group(kOptimizerGroup, state.optimizer, tp ? &tp->optimizer_slices : nullptr);
    read_counters(state.counters);
    return state;
  }

 private:
  void read_header(hid_t root, CheckpointState& state) {
    if (!h5::has_attribute(root, "format", path_, "/")) {
      throw InputError(path_ + ": not an nsa-train checkpoint (no 'format' attribute on /)");
    }
    const std::string format = h5::read_string_attribute(root, "format", path_, "/");
    if (format != kCheckpointFormat) {
      throw InputError(path_ + ": /: format is '" + format + "', expected '" + kCheckpointFormat + "'");
    }
    const int64_t version = h5::read_int_attribute(root, "format_version", path_, "/");
    if (version != kCheckpointFormatVersion && version != kCheckpointTpFormatVersion) {
      throw InputError(
          path_ + ": /: unsupported format_version " + std::to_string(version) + " (this build reads " +
          std::to_string(kCheckpointFormatVersion) + " and " + std::to_string(kCheckpointTpFormatVersion) +
          (version > kCheckpointTpFormatVersion ? "; the file comes from a newer nsa-train)" : ")"));
    }
    state.step = h5::read_int_attribute(root, "step", path_, "/");
    if (state.step < 0) throw InputError(path_ + ": /: negative step " + std::to_string(state.step));
    state.config_yaml = h5::read_string_attribute(root, "config", path_, "/");
    if (version == kCheckpointTpFormatVersion) {
      const int64_t rank = h5::read_int_attribute(root, kTpRankAttribute, path_, "/");
      const int64_t size = h5::read_int_attribute(root, kTpSizeAttribute, path_, "/");
      if (size < 1 || size > (1 << 20) || rank < 0 || rank >= size) {
        throw InputError(path_ + ": /: tp_rank " + std::to_string(rank) + " and tp_size " + std::to_string(size) +
                         " do not name a tensor-parallel rank (0 <= tp_rank < tp_size)");
      }
      state.tp = TpPiece{static_cast<int>(rank), static_cast<int>(size), {}, {}};
    }
  }

  h5::Group open_group(const std::string& name) {
    const std::string object = "/" + name;
    if (h5::check(H5Lexists(file_.id(), name.c_str(), H5P_DEFAULT), path_, object, "cannot look up") == 0) {
      throw InputError(path_ + ": missing group " + object);
    }
    return h5::take<h5::Group>(H5Gopen2(file_.id(), name.c_str(), H5P_DEFAULT), path_, object,
                               "cannot open as a group");
  }

  void read_tensor_group(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out,
                         std::map<std::string, TensorSlice>* slices) {
    h5::Group group = open_group(name);
    slices_ = slices;
    read_tree(group.id(), "/" + name, "", 0, out);
    slices_ = nullptr;
  }

  // Links of a group in creation order when it records it (files we write), else in name order.
  H5_index_t link_order(hid_t group, const std::string& object) {
    h5::PropertyList create =
        h5::take<h5::PropertyList>(H5Gget_create_plist(group), path_, object, "cannot read the group");
    unsigned flags = 0;
    h5::check(H5Pget_link_creation_order(create.id(), &flags), path_, object, "cannot read the group");
    return (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  }

  std::string link_name(hid_t group, H5_index_t order, hsize_t index, const std::string& object) {
    const ssize_t length = H5Lget_name_by_idx(group, ".", order, H5_ITER_INC, index, nullptr, 0, H5P_DEFAULT);
    if (length < 0) h5::fail(path_, object, "cannot list the group");
    std::vector<char> name(static_cast<size_t>(length) + 1, '\0');
    if (H5Lget_name_by_idx(group, ".", order, H5_ITER_INC, index, name.data(), name.size(), H5P_DEFAULT) <
        0) {
      h5::fail(path_, object, "cannot list the group");
    }
    return std::string(name.data(), static_cast<size_t>(length));
  }

  // Datasets under `group` (at `object`), depth first; a nested group adds "<its name>/" to the names.
  void read_tree(hid_t group, const std::string& object, const std::string& prefix, int depth,
                 std::vector<std::pair<std::string, Tensor>>& out) {
    if (depth > kMaxGroupDepth) throw InputError(path_ + ": " + object + ": groups nested too deeply");
    H5G_info_t info;
    h5::check(H5Gget_info(group, &info), path_, object, "cannot read the group");
    const H5_index_t order = link_order(group, object);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const std::string name = link_name(group, order, i, object);
      const std::string child = object + "/" + name;
      h5::Object item =
          h5::take<h5::Object>(H5Oopen(group, name.c_str(), H5P_DEFAULT), path_, child, "cannot open");
      switch (H5Iget_type(item.id())) {
        case H5I_GROUP:
          read_tree(item.id(), child, prefix + name + "/", depth + 1, out);
          break;
        case H5I_DATASET:
          out.emplace_back(prefix + name, read_dataset(item.id(), child));
          if (slices_) read_slice(item.id(), child, prefix + name, out.back().second.shape());
          break;
        default:
          throw InputError(path_ + ": " + child + ": expected a dataset or a group");
      }
    }
  }

  Dims read_shape(hid_t dataset, const std::string& object) {
    h5::Dataspace space =
        h5::take<h5::Dataspace>(H5Dget_space(dataset), path_, object, "cannot read the dataset's shape");
    switch (H5Sget_simple_extent_type(space.id())) {
      case H5S_SCALAR:
        return Dims{};
      case H5S_SIMPLE:
        break;
      default:
        throw InputError(path_ + ": " + object + ": the dataset has no shape (null dataspace)");
    }
    const int rank =
        h5::check(H5Sget_simple_extent_ndims(space.id()), path_, object, "cannot read the shape");
    if (rank > kMaxDims) {
      throw InputError(path_ + ": " + object + ": rank " + std::to_string(rank) + " exceeds the maximum of " +
                       std::to_string(kMaxDims));
    }
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    h5::check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), path_, object,
              "cannot read the shape");
    Dims shape;
    for (hsize_t d : dims) {
      if (d > static_cast<hsize_t>(std::numeric_limits<int64_t>::max())) {
        throw InputError(path_ + ": " + object + ": dimension " + std::to_string(d) + " too large");
      }
      shape.push_back(static_cast<int64_t>(d));
    }
    return shape;
  }

  // Refuses a shape whose bytes could not fit in the file (a damaged header must not become a huge
  // allocation). Checked exactly for contiguous data, which is how checkpoints are written.
  void check_extent(hid_t dataset, const Dims& shape, size_t element_size, const std::string& object) {
    uint64_t bytes = element_size;
    for (int64_t d : shape) {
      if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
        throw InputError(path_ + ": " + object + ": shape " + shape.str() + " too large");
      }
      bytes *= static_cast<uint64_t>(d);
    }
    if (shape.numel() == 0) return;
    const haddr_t offset = H5Dget_offset(dataset);
    H5Eclear2(H5E_DEFAULT);  // HADDR_UNDEF (chunked or unallocated data) leaves an error on the stack
    if (offset != HADDR_UNDEF && (offset > file_size_ || bytes > file_size_ - offset)) {
      throw InputError(path_ + ": " + object + ": shape " + shape.str() + " needs " + std::to_string(bytes) +
                       " bytes at offset " + std::to_string(offset) + ", beyond the end of the file (" +
                       std::to_string(file_size_) + " bytes)");
    }
  }

  Tensor read_dataset(hid_t dataset, const std::string& object) {
    const std::string dtype = h5::read_string_attribute(dataset, kDtypeAttribute, path_, object);
    DType stored;
    if (dtype == "f32") {
      stored = DType::f32;
    } else if (dtype == "bf16") {
      stored = DType::bf16;
    } else {
      throw InputError(path_ + ": " + object + ": unsupported dtype '" + dtype + "' (expected f32 or bf16)");
    }

    h5::Datatype type =
        h5::take<h5::Datatype>(H5Dget_type(dataset), path_, object, "cannot read the data type");
    const H5T_class_t type_class = H5Tget_class(type.id());
    const size_t type_size = H5Tget_size(type.id());
    const bool matches = stored == DType::f32 ? type_class == H5T_FLOAT && type_size == 4
                                              : type_class == H5T_INTEGER && type_size == 2 &&
                                                    H5Tget_sign(type.id()) == H5T_SGN_NONE;
    if (!matches) {
      throw InputError(path_ + ": " + object + ": dtype '" + dtype + "' but the data is stored as " +
                       (type_class == H5T_FLOAT     ? "float"
                        : type_class == H5T_INTEGER ? "integer"
                                                    : "another type") +
                       " of " + std::to_string(type_size) + " bytes (expected " +
                       (stored == DType::f32 ? "float of 4 bytes)" : "unsigned integer of 2 bytes)"));
    }

    const Dims shape = read_shape(dataset, object);
    check_extent(dataset, shape, dtype_size(stored), object);
    Tensor values = Tensor::empty(shape, stored, Device::cpu());
    if (values.numel() > 0) {
      h5::check(H5Dread(dataset, stored == DType::f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT16, H5S_ALL,
                        H5S_ALL, H5P_DEFAULT, values.data_ptr()),
                path_, object, "cannot read the data");
    }
    saw_bf16_ = saw_bf16_ || stored == DType::bf16;
    NoGradGuard no_grad;
    return to(values, DType::f32);  // bf16 -> f32 is exact
  }

  // The tp_* attributes of a dataset in a tensor-parallel piece (none: the tensor is stored whole).
  void read_slice(hid_t dataset, const std::string& object, const std::string& name, const Dims& stored) {
    if (!h5::has_attribute(dataset, kTpDimAttribute, path_, object)) return;
    const int64_t dim = h5::read_int_attribute(dataset, kTpDimAttribute, path_, object);
    const int64_t offset = h5::read_int_attribute(dataset, kTpOffsetAttribute, path_, object);
    const int64_t full = h5::read_int_attribute(dataset, kTpFullSizeAttribute, path_, object);
    if (dim < 0 || dim >= stored.size() || offset < 0 || full < 0 || offset > full ||
        stored[static_cast<int>(dim)] > full - offset) {
      throw InputError(path_ + ": " + object + ": tp_dim " + std::to_string(dim) + ", tp_offset " +
                       std::to_string(offset) + ", tp_full_size " + std::to_string(full) +
                       " do not fit the stored shape " + stored.str());
    }
    (*slices_)[name] = TensorSlice{static_cast<int>(dim), offset, full};
  }

  void read_counters(std::vector<std::pair<std::string, int64_t>>& out) {
    const std::string object = std::string("/") + kStateGroup;
    h5::Group group = open_group(kStateGroup);
    for (const std::string& name : h5::attribute_names(group.id(), path_, object)) {
      out.emplace_back(name, h5::read_int_attribute(group.id(), name, path_, object));
    }
  }

  const std::string& path_;
  uint64_t file_size_ = 0;
  h5::File file_;
  std::map<std::string, TensorSlice>* slices_ = nullptr;  // where read_tree records slices (pieces only)
  bool saw_bf16_ = false;
};

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointState& state, DType param_dtype) {
  NSA_CHECK(param_dtype == DType::f32 || param_dtype == DType::bf16, "[save_checkpoint] ", path,
            ": parameters are stored as f32 or bf16, got ", dtype_name(param_dtype));
  NSA_CHECK(state.step >= 0, "[save_checkpoint] ", path, ": negative step ", state.step);
  const std::lock_guard lock(hdf5_mutex());
  h5::silence_errors();

  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw InputError(path + ": cannot save: the directory " + dir.string() + " does not exist");
  }
  const std::string temp_path = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      CheckpointWriter writer(path, temp_path);
      writer.write(state, param_dtype);
      writer.finish();
    }
    sync_file(temp_path, path);
    if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
      throw InputError(path + ": cannot rename " + temp_path + " over it: " + errno_text());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp_path, ignored);
    throw;
  }
  sync_directory(dir, path);
}

CheckpointState load_checkpoint(const std::string& path) {
  const std::lock_guard lock(hdf5_mutex());
  h5::silence_errors();
  return CheckpointReader(path).read();
}

void copy_into(const Tensor& dst, const Tensor& src, const std::string& what) {
  NSA_CHECK(dst.defined(), "[copy_into] ", what, ": undefined destination");
  NSA_CHECK(src.defined(), "[copy_into] ", what, ": undefined source");
  if (!(dst.shape() == src.shape())) {
    throw InputError(what + ": expected shape " + dst.shape().str() + ", got " + src.shape().str());
  }
  NoGradGuard no_grad;
  copy_(dst, src);
}

}  // namespace nsa
