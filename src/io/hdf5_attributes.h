// Scalar attributes on HDF5 objects: strings (fixed or variable length) and integers, with checked reads
// whose failures name the file, the object and the attribute. `file` and `object` only label messages.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nsa::h5 {

enum class StringStorage {
  fixed,    // a fixed-length, NUL-terminated string sized to the value (short identifiers)
  variable  // a variable-length string (any size: a whole YAML config)
};

bool has_attribute(hid_t object_id, const std::string& name, const std::string& file,
                   const std::string& object);

// Writes a scalar attribute, replacing an existing one of that name. Strings are tagged UTF-8.
void write_string_attribute(hid_t object_id, const std::string& name, const std::string& value,
                            StringStorage storage, const std::string& file, const std::string& object);
// `file_type` is the stored integer type, e.g. H5T_STD_I32LE or H5T_STD_I64LE.
void write_int_attribute(hid_t object_id, const std::string& name, int64_t value, hid_t file_type,
                         const std::string& file, const std::string& object);

// Reads a single-valued string attribute (fixed or variable length). Throws InputError when it is missing,
// not a string or not a single value.
std::string read_string_attribute(hid_t object_id, const std::string& name, const std::string& file,
                                  const std::string& object);
// Reads a single-valued integer attribute of any integer type (converted to int64).
int64_t read_int_attribute(hid_t object_id, const std::string& name, const std::string& file,
                           const std::string& object);

// The names of the attributes of a group or dataset: in creation order when the object indexes it,
// otherwise in name order.
std::vector<std::string> attribute_names(hid_t object_id, const std::string& file, const std::string& object);

}  // namespace nsa::h5
