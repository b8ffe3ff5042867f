#include "io/hdf5_attributes.h"

#include <memory>

#include "core/error.h"
#include "io/hdf5_handle.h"

namespace nsa::h5 {

namespace {

std::string label(const std::string& name) { return "attribute '" + name + "'"; }

// Opens an attribute that must exist; a missing one is a content error, not an HDF5 failure.
Attribute open_attribute(hid_t object_id, const std::string& name, const std::string& file,
                         const std::string& object) {
  if (!has_attribute(object_id, name, file, object)) {
    throw InputError(where(file, object) + "missing " + label(name));
  }
  return take<Attribute>(H5Aopen(object_id, name.c_str(), H5P_DEFAULT), file, object,
                         "cannot open " + label(name));
}

void require_single_value(const Attribute& attr, const std::string& name, const std::string& file,
                          const std::string& object) {
  Dataspace space = take<Dataspace>(H5Aget_space(attr.id()), file, object, "cannot read " + label(name));
  const hssize_t count = H5Sget_simple_extent_npoints(space.id());
  if (count != 1) {
    throw InputError(where(file, object) + label(name) + ": expected a single value, found " +
                     std::to_string(count));
  }
}

// (Re)creates a scalar attribute of `file_type`.
Attribute create_scalar_attribute(hid_t object_id, const std::string& name, hid_t file_type,
                                  const std::string& file, const std::string& object) {
  if (has_attribute(object_id, name, file, object)) {
    check(H5Adelete(object_id, name.c_str()), file, object, "cannot replace " + label(name));
  }
  Dataspace scalar = take<Dataspace>(H5Screate(H5S_SCALAR), file, object, "cannot create " + label(name));
  return take<Attribute>(
      H5Acreate2(object_id, name.c_str(), file_type, scalar.id(), H5P_DEFAULT, H5P_DEFAULT), file, object,
      "cannot create " + label(name));
}

struct FreeHdf5Memory {
  void operator()(char* p) const { H5free_memory(p); }
};

herr_t collect_name(hid_t /*location*/, const char* name, const H5A_info_t* /*info*/, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

bool has_attribute(hid_t object_id, const std::string& name, const std::string& file,
                   const std::string& object) {
  return check(H5Aexists(object_id, name.c_str()), file, object, "cannot look up " + label(name)) > 0;
}

void write_string_attribute(hid_t object_id, const std::string& name, const std::string& value,
                            StringStorage storage, const std::string& file, const std::string& object) {
  const std::string what = "cannot write " + label(name);
  Datatype type = take<Datatype>(H5Tcopy(H5T_C_S1), file, object, what);
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), file, object, what);
  if (storage == StringStorage::variable) {
    check(H5Tset_size(type.id(), H5T_VARIABLE), file, object, what);
    Attribute attr = create_scalar_attribute(object_id, name, type.id(), file, object);
    const char* text = value.c_str();
    check(H5Awrite(attr.id(), type.id(), &text), file, object, what);
  } else {
    check(H5Tset_size(type.id(), value.size() + 1), file, object, what);  // + the terminating NUL
    check(H5Tset_strpad(type.id(), H5T_STR_NULLTERM), file, object, what);
    Attribute attr = create_scalar_attribute(object_id, name, type.id(), file, object);
    check(H5Awrite(attr.id(), type.id(), value.c_str()), file, object, what);
  }
}

void write_int_attribute(hid_t object_id, const std::string& name, int64_t value, hid_t file_type,
                         const std::string& file, const std::string& object) {
  Attribute attr = create_scalar_attribute(object_id, name, file_type, file, object);
  check(H5Awrite(attr.id(), H5T_NATIVE_INT64, &value), file, object, "cannot write " + label(name));
}

std::string read_string_attribute(hid_t object_id, const std::string& name, const std::string& file,
                                  const std::string& object) {
  const std::string what = "cannot read " + label(name);
  Attribute attr = open_attribute(object_id, name, file, object);
  Datatype stored = take<Datatype>(H5Aget_type(attr.id()), file, object, what);
  if (H5Tget_class(stored.id()) != H5T_STRING) {
    throw InputError(where(file, object) + label(name) + ": expected a string");
  }
  require_single_value(attr, name, file, object);

  // The memory type mirrors the stored one (character set, padding), so HDF5 converts nothing.
  Datatype memory = take<Datatype>(H5Tcopy(H5T_C_S1), file, object, what);
  check(H5Tset_cset(memory.id(), H5Tget_cset(stored.id())), file, object, what);
  if (check(H5Tis_variable_str(stored.id()), file, object, what) > 0) {
    check(H5Tset_size(memory.id(), H5T_VARIABLE), file, object, what);
    char* raw = nullptr;
    check(H5Aread(attr.id(), memory.id(), &raw), file, object, what);
    const std::unique_ptr<char, FreeHdf5Memory> owned(raw);
    return raw != nullptr ? std::string(raw) : std::string();
  }
  const size_t size = H5Tget_size(stored.id());
  if (size == 0) fail(file, object, what);
  check(H5Tset_size(memory.id(), size), file, object, what);
  check(H5Tset_strpad(memory.id(), H5Tget_strpad(stored.id())), file, object, what);
  std::string text(size, '\0');
  check(H5Aread(attr.id(), memory.id(), text.data()), file, object, what);
  text.resize(text.find('\0') == std::string::npos ? size : text.find('\0'));
  if (H5Tget_strpad(stored.id()) == H5T_STR_SPACEPAD) {
    text.erase(text.find_last_not_of(' ') + 1);  // npos + 1 == 0: an all-blank value becomes ""
  }
  return text;
}

int64_t read_int_attribute(hid_t object_id, const std::string& name, const std::string& file,
                           const std::string& object) {
  const std::string what = "cannot read " + label(name);
  Attribute attr = open_attribute(object_id, name, file, object);
  Datatype stored = take<Datatype>(H5Aget_type(attr.id()), file, object, what);
  if (H5Tget_class(stored.id()) != H5T_INTEGER) {
    throw InputError(where(file, object) + label(name) + ": expected an integer");
  }
  require_single_value(attr, name, file, object);
  int64_t value = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_INT64, &value), file, object, what);
  return value;
}

std::vector<std::string> attribute_names(hid_t object_id, const std::string& file,
                                         const std::string& object) {
  const std::string what = "cannot list the attributes";
  PropertyList create;
  switch (H5Iget_type(object_id)) {
    case H5I_GROUP:
      create = take<PropertyList>(H5Gget_create_plist(object_id), file, object, what);
      break;
    case H5I_DATASET:
      create = take<PropertyList>(H5Dget_create_plist(object_id), file, object, what);
      break;
    default:
      break;
  }
  unsigned order_flags = 0;
  if (create.valid()) check(H5Pget_attr_creation_order(create.id(), &order_flags), file, object, what);
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;

  std::vector<std::string> names;
  hsize_t position = 0;
  check(H5Aiterate2(object_id, index, H5_ITER_INC, &position, collect_name, &names), file, object, what);
  return names;
}

}  // namespace nsa::h5
