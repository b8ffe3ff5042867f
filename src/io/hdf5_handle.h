// RAII ownership of HDF5 identifiers (file, group, dataset, dataspace, datatype, attribute, property list,
// any object) and the conversion of HDF5 failures into one-line nsa::InputError messages.
//
// HDF5's automatic error-stack printing is switched off (silence_errors): our message replaces it, naming
// the file as the user gave it, the object inside it and what failed, followed by the innermost reason
// HDF5 left on its error stack ("... (unable to open file: ... No such file or directory)").
//
// The HDF5 library of a serial build is not thread-safe: callers serialise their use (io/checkpoint.cpp
// holds one mutex around every save and load).
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>

namespace nsa::h5 {

inline constexpr hid_t kInvalidId = -1;

// Turns off HDF5's automatic error printing (once per process; later calls do nothing).
void silence_errors();

// The innermost description on HDF5's error stack, collapsed to one line ("" when the stack is empty).
// Clears the stack.
std::string take_error_reason();

// "<file>: <object>: " (or "<file>: " without an object): the start of every message about a file.
std::string where(const std::string& file, const std::string& object);

// Throws InputError "<file>: <object>: <what> (<HDF5 reason>)" for a failed HDF5 call. The reason is
// appended only when HDF5 left one on its stack. Checks of the file's contents that HDF5 did not fail
// throw InputError(where(file, object) + what) themselves.
[[noreturn]] void fail(const std::string& file, const std::string& object, const std::string& what);

// Owns one identifier; `Close` is the matching H5?close. Move-only; the destructor closes and ignores a
// failure (use close() where a failure must be seen, e.g. the file of a checkpoint being written).
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, kInvalidId)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      close();
      id_ = std::exchange(other.id_, kInvalidId);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { close(); }

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }

  // Closes now (idempotent). Returns false when HDF5 reports a failure.
  bool close() {
    if (id_ < 0) return true;
    const herr_t status = Close(std::exchange(id_, kInvalidId));
    return status >= 0;
  }

 private:
  hid_t id_ = kInvalidId;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropertyList = Handle<H5Pclose>;
using Object = Handle<H5Oclose>;  // a group, dataset or named datatype opened with H5Oopen

// Takes ownership of an identifier an HDF5 call returned; a negative one throws fail(file, object, what).
template <class H>
H take(hid_t id, const std::string& file, const std::string& object, const std::string& what) {
  if (id < 0) fail(file, object, what);
  return H(id);
}

// Throws fail(file, object, what) when an herr_t / htri_t status is negative; returns it otherwise.
inline int check(int status, const std::string& file, const std::string& object, const std::string& what) {
  if (status < 0) fail(file, object, what);
  return status;
}

}  // namespace nsa::h5
