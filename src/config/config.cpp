// Reading a config: the YAML file is walked against the schema (unknown keys, types, sections), the --set
// overrides are applied in order, then the whole config is validated. Every problem is an InputError whose
// one-line message starts with where the value came from (the file, or "--set <text>"), then the key.
#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <variant>

#include "config/schema.h"
#include "config/validate.h"
#include "config/values.h"

namespace nsa {
namespace {

using namespace config_detail;

// Where a key's value came from: a line of the file, or an override.
struct Origin {
  std::string where;  // the file name, or "--set <text>"
  int line = 0;       // 1-based line in the file; 0: unknown
};

std::string message(const Origin& origin, std::string_view key, std::string_view what) {
  std::string out = str(origin.where, ": ", key, ": ", what);
  if (origin.line > 0) out += str(" (line ", origin.line, ")");
  return out;
}

std::string unknown_key_message(const Origin& origin, std::string_view name) {
  std::string out = str(origin.where, ": unknown key '", name, "' (did you mean '", nearest_key(name), "'?)");
  if (origin.line > 0) out += str(" (line ", origin.line, ")");
  return out;
}

// What a node holds, for "got ..." in messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return str("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

// A scalar written in quotes (or tagged !!str) is a string, even when it looks like a number.
bool is_quoted(const YAML::Node& node) { return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str"; }

std::string scalar_text(const KeySpec& spec, const YAML::Node& node, ValueType type) {
  if (!node.IsScalar()) throw ValueError{str("expected ", spec.expected(), ", got ", describe(node))};
  bool textual = type == ValueType::string || type == ValueType::enumeration;
  if (!textual && is_quoted(node))
    throw ValueError{str("expected ", spec.expected(), ", got the quoted string \"", node.Scalar(), "\"")};
  return node.Scalar();
}

// Sets the field of `spec` from `node` (throws ValueError). Bounds and allowed values are checked later, by
// validate(), so that an override can still correct a value of the file.
void assign(const KeySpec& spec, const YAML::Node& node, Config& config) {
  ValueType type = spec.type();
  FieldRef field = spec.field(config);
  if (auto* list = std::get_if<std::vector<std::string>*>(&field)) {
    std::vector<std::string> items;  // null (`no_decay:` or `no_decay=`) is the empty list
    if (node.IsScalar() || node.IsMap())
      throw ValueError{str("expected ", spec.expected(), ", got ", describe(node))};
    for (const YAML::Node& item : node) {
      if (!item.IsScalar())
        throw ValueError{str("expected ", spec.expected(), ", got an item that is ", describe(item))};
      items.push_back(item.Scalar());
    }
    **list = std::move(items);
    return;
  }
  if (auto* text = std::get_if<std::string*>(&field); text && node.IsNull()) {
    **text = "";  // `val:` with nothing after it: the empty string
    return;
  }
  std::string value = scalar_text(spec, node, type);
  std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, int64_t>) *target = parse_int(value);
        if constexpr (std::is_same_v<T, uint64_t>) *target = parse_uint(value);
        if constexpr (std::is_same_v<T, double>) *target = parse_number(value);
        if constexpr (std::is_same_v<T, bool>) *target = parse_bool(value);
        if constexpr (std::is_same_v<T, std::string>) *target = value;
      },
      field);
}

class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) { config_.source = source_; }

  void read_document(const std::string& yaml_text) {
    YAML::Node root;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
      throw InputError(str(source_, ": invalid YAML at line ", e.mark.line + 1, ", column ",
                           e.mark.column + 1, ": ", e.msg));
    }
    if (root.IsNull()) return;  // an empty file: every default
    if (!root.IsMap())
      throw InputError(str(source_,
                           ": expected a mapping of sections (model:, training:, ...) at the top level, got ",
                           describe(root)));
    read_section(root, "");
  }

  void apply_override(const std::string& text) {
    Origin origin{"--set " + text};
    size_t equals = text.find('=');
    std::string key = equals == std::string::npos ? "" : trim(text.substr(0, equals));
    if (key.empty())
      throw InputError(
          str(origin.where,
              ": expected key.path=value, e.g. model.d_model=256 or optimizer.no_decay=[norm,bias]"));
    const KeySpec* spec = find_key(key);
    if (!spec && is_section(key))
      throw InputError(
          message(origin, key, str("is a section; set one of its keys, e.g. ", first_key_in(key), "=...")));
    if (!spec) throw InputError(unknown_key_message(origin, key));
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(equals + 1));
    } catch (const YAML::Exception& e) {
      throw InputError(message(origin, key, str("the value is not valid YAML: ", e.msg)));
    }
    set(*spec, value, origin);
  }

  Config finish() {
    validate(config_, [this](std::string_view key, std::string_view what) {
      auto found = origins_.find(key);
      return message(found != origins_.end() ? found->second : Origin{source_}, key, what);
    });
    return config_;
  }

 private:
  static std::string trim(const std::string& text) {
    size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
  }

  void read_section(const YAML::Node& map, const std::string& prefix) {
    for (const auto& entry : map) {  // `entry` is a temporary pair of node handles, kept alive here
      const YAML::Node& name_node = entry.first;
      Origin origin{source_, name_node.Mark().line + 1};
      if (!name_node.IsScalar())
        throw InputError(message(origin, prefix.empty() ? "(top level)" : prefix,
                                 str("expected key names, got a key that is ", describe(name_node))));
      std::string name = prefix.empty() ? name_node.Scalar() : prefix + "." + name_node.Scalar();
      // yaml-cpp keeps both entries of a repeated key; a repeated key is almost always a mistake.
      if (auto [seen, first] = seen_lines_.emplace(name, origin.line); !first)
        throw InputError(message(Origin{source_}, name,
                                 str("given twice (lines ", seen->second, " and ", origin.line, ")")));

      const YAML::Node& value = entry.second;
      if (const KeySpec* spec = find_key(name)) {
        set(*spec, value, origin);
      } else if (is_section(name)) {
        if (value.IsMap()) {
          read_section(value, name);
        } else if (!value.IsNull()) {  // `moe:` with nothing under it is an empty section
          throw InputError(message(
              origin, name,
              str("expected a section (keys such as ", first_key_in(name), "), got ", describe(value))));
        }
      } else {
        throw InputError(unknown_key_message(origin, name));
      }
    }
  }

  void set(const KeySpec& spec, const YAML::Node& value, const Origin& origin) {
    try {
      assign(spec, value, config_);
    } catch (const ValueError& e) {
      throw InputError(message(origin, spec.key, e.what));
    }
    origins_.insert_or_assign(std::string(spec.key), origin);
  }

  std::string source_;
  Config config_;
  std::map<std::string, Origin, std::less<>> origins_;  // the keys that were set, and where
  std::map<std::string, int> seen_lines_;               // file keys and sections read so far, with their line
};

void append_value(std::string& out, const KeySpec& spec, Config& config) {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>)
          out += std::to_string(*field);
        if constexpr (std::is_same_v<T, double>) out += format_number(*field);
        if constexpr (std::is_same_v<T, bool>) out += *field ? "true" : "false";
        // Enum values are plain identifiers; free text is quoted so that "123" or "yes" stay strings.
        if constexpr (std::is_same_v<T, std::string>)
          out += spec.allowed.empty() ? quote_string(*field) : *field;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          out += "[";
          for (size_t i = 0; i < field->size(); ++i)
            out += (i ? ", " : "") + (spec.allowed.empty() ? quote_string((*field)[i]) : (*field)[i]);
          out += "]";
        }
      },
      spec.field(config));
}

std::string value_text(const KeySpec& spec, const Config& config) {
  Config copy = config;  // the schema's accessors take a mutable Config
  std::string out;
  append_value(out, spec, copy);
  return out;
}

std::vector<std::string_view> split_key(std::string_view key) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  Loader loader(source);
  loader.read_document(yaml_text);
  for (const std::string& text : overrides) loader.apply_override(text);
  return loader.finish();
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    bool exists = std::filesystem::exists(path, error);
    throw InputError(
        str(path, exists ? ": cannot read the config: not a regular file" : ": config file not found"));
  }
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  if (!file) throw InputError(str(path, ": cannot read the config file"));
  return parse_config(text.str(), path, overrides);
}

std::string to_yaml(const Config& config) {
  Config copy = config;
  std::string out;
  std::vector<std::string_view> open;  // the sections of the previous key
  for (const KeySpec& spec : schema()) {
    std::vector<std::string_view> parts = split_key(spec.key);
    // Sections are contiguous in the schema: open the ones this key enters that the previous key was not in.
    size_t shared = 0;
    while (shared < open.size() && shared + 1 < parts.size() && open[shared] == parts[shared]) ++shared;
    for (size_t depth = shared; depth + 1 < parts.size(); ++depth)
      out += str(std::string(2 * depth, ' '), parts[depth], ":\n");
    out += str(std::string(2 * (parts.size() - 1), ' '), parts.back(), ": ");
    append_value(out, spec, copy);
    out += "\n";
    open.assign(parts.begin(), parts.end() - 1);
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const KeySpec& spec : schema()) keys.emplace_back(spec.key);
  return keys;
}

std::vector<ConfigKeyInfo> config_key_info() {
  const Config defaults;
  std::vector<ConfigKeyInfo> rows;
  for (const KeySpec& spec : schema()) {
    static constexpr const char* type_names[] = {"int", "int", "float", "bool", "string", "enum", "list"};
    std::string allowed;
    for (std::string_view value : spec.allowed) allowed += (allowed.empty() ? "" : ", ") + std::string(value);
    rows.push_back({std::string(spec.key), type_names[static_cast<int>(spec.type())], allowed,
                    std::string(bound_text(spec.bound, spec.type())), value_text(spec, defaults),
                    std::string(spec.doc)});
  }
  return rows;
}

}  // namespace nsa
