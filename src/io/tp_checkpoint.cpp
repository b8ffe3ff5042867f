#include "io/tp_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <queue>
#include <set>
#include <tuple>

#include "autograd/grad_mode.h"
#include "dist/sharding.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace nsa {

namespace {

namespace fs = std::filesystem;
using Entries = std::vector<std::pair<std::string, Tensor>>;
using Slices = std::map<std::string, TensorSlice>;

// The parameter whose layout an entry follows: the name itself for /params, the part after "<kind>/" for
// /optimizer ("exp_avg/blocks.0.attn.wq.weight").
std::string param_of(const std::string& name, bool optimizer, const std::string& source) {
  if (!optimizer) return name;
  const size_t slash = name.find('/');
  if (slash == std::string::npos || slash + 1 == name.size()) {
    throw InputError(str(source, ": /optimizer/", name, ": expected '<kind>/<parameter>' (like exp_avg/",
                         "embed.weight) to know how it is sharded"));
  }
  return name.substr(slash + 1);
}

dist::TpShard shard_of(const std::string& name, bool optimizer, const Config& config, int tp,
                       const std::string& source) {
  const std::string param = param_of(name, optimizer, source);
  try {
    return dist::tp_shard(param, config, tp);
  } catch (const InputError& e) {
    throw InputError(str(source, ": /", optimizer ? "optimizer/" : "params/", name, ": ", e.what()));
  }
}

// ------------------------------------------------------------------------------------------------ split

void split_group(const Entries& whole, bool optimizer, const Config& config, int tp, const std::string& source,
                 std::vector<CheckpointState>& pieces) {
  NoGradGuard no_grad;
  for (const auto& [name, tensor] : whole) {
    const dist::TpShard shard = shard_of(name, optimizer, config, tp, source);
    for (int r = 0; r < tp; ++r) {
      Entries& out = optimizer ? pieces[r].optimizer : pieces[r].params;
      Slices& slices = optimizer ? pieces[r].tp->optimizer_slices : pieces[r].tp->param_slices;
      switch (shard.kind) {
        case dist::TpShard::Kind::replicated:
          out.emplace_back(name, tensor);
          break;
        case dist::TpShard::Kind::owned:
          if (shard.owner == r) out.emplace_back(name, tensor);
          break;
        case dist::TpShard::Kind::split: {
          if (shard.dim >= tensor.dim()) {
            throw InputError(str(source, ": /", optimizer ? "optimizer/" : "params/", name, ": shape ",
                                 tensor.shape().str(), " has no dimension ", shard.dim, " to split"));
          }
          const int64_t n = tensor.size(shard.dim);
          const int64_t begin = dist::shard_begin(n, r, tp);
          out.emplace_back(name, clone(narrow(tensor, shard.dim, begin, dist::shard_size(n, r, tp))));
          slices[name] = TensorSlice{shard.dim, begin, n};
          break;
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------ merge

// Names in an order consistent with every piece's order (pieces list the model's tensors in model order,
// each a subsequence): a topological order of "comes right before in some piece", ties going to the name
// seen first (lowest rank, then position).
std::vector<std::string> merged_order(const std::vector<const Entries*>& lists) {
  std::map<std::string, std::pair<size_t, size_t>> key;  // first (rank, position)
  std::map<std::string, std::set<std::string>> next;
  std::map<std::string, int> incoming;
  for (size_t r = 0; r < lists.size(); ++r) {
    for (size_t i = 0; i < lists[r]->size(); ++i) {
      const std::string& name = (*lists[r])[i].first;
      key.try_emplace(name, r, i);
      incoming.try_emplace(name, 0);
      if (i > 0) {
        const std::string& prev = (*lists[r])[i - 1].first;
        if (next[prev].insert(name).second) ++incoming[name];
      }
    }
  }
  using Item = std::tuple<size_t, size_t, std::string>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> ready;
  for (const auto& [name, count] : incoming) {
    if (count == 0) ready.emplace(key[name].first, key[name].second, name);
  }
  std::vector<std::string> order;
  while (!ready.empty()) {
    const std::string name = std::get<2>(ready.top());
    ready.pop();
    order.push_back(name);
    for (const std::string& n : next[name]) {
      if (--incoming[n] == 0) ready.emplace(key[n].first, key[n].second, n);
    }
  }
  if (order.size() < key.size()) {  // the pieces disagree on the order: keep first-seen order for the rest
    std::vector<std::tuple<size_t, size_t, std::string>> rest;
    const std::set<std::string> done(order.begin(), order.end());
    for (const auto& [name, k] : key) {
      if (!done.count(name)) rest.emplace_back(k.first, k.second, name);
    }
    std::sort(rest.begin(), rest.end());
    for (const auto& item : rest) order.push_back(std::get<2>(item));
  }
  return order;
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ha = contiguous(to(a, Device::cpu())), hb = contiguous(to(b, Device::cpu()));
  return std::memcmp(ha.data_ptr(), hb.data_ptr(), static_cast<size_t>(ha.numel()) * dtype_size(ha.dtype())) == 0;
}

std::string piece_name(const std::string& source, int rank, int size) {
  return str(source, " (rank ", rank, " of ", size, ")");
}

Entries merge_group(const std::vector<CheckpointState>& pieces, bool optimizer, const Config& config,
                    const std::string& source) {
  const int tp = static_cast<int>(pieces.size());
  const std::string group = optimizer ? "/optimizer/" : "/params/";
  // name -> per rank: the tensor (undefined when absent) and its slice (when sliced)
  struct Held {
    const Tensor* tensor = nullptr;
    const TensorSlice* slice = nullptr;
  };
  std::map<std::string, std::vector<Held>> held;
  std::vector<const Entries*> lists;
  for (int r = 0; r < tp; ++r) {
    const Entries& entries = optimizer ? pieces[r].optimizer : pieces[r].params;
    const Slices& slices = optimizer ? pieces[r].tp->optimizer_slices : pieces[r].tp->param_slices;
    lists.push_back(&entries);
    for (const auto& [name, tensor] : entries) {
      std::vector<Held>& h = held.try_emplace(name, static_cast<size_t>(tp)).first->second;
      if (h[r].tensor) throw InputError(str(piece_name(source, r, tp), ": ", group, name, ": appears twice"));
      h[r].tensor = &tensor;
      const auto s = slices.find(name);
      if (s != slices.end()) h[r].slice = &s->second;
    }
    for (const auto& [name, slice] : slices) {
      if (!held.count(name) || !held[name][r].tensor) {
        throw InputError(str(piece_name(source, r, tp), ": ", group, name, ": a slice without a tensor"));
      }
    }
  }

  Entries out;
  NoGradGuard no_grad;
  for (const std::string& name : merged_order(lists)) {
    const std::vector<Held>& h = held[name];
    const std::string what = group + name;
    const dist::TpShard shard = shard_of(name, optimizer, config, tp, source);
    int holders = 0;
    for (const Held& x : h) holders += x.tensor ? 1 : 0;
    auto missing_rank = [&]() {
      for (int r = 0; r < tp; ++r) {
        if (!h[r].tensor) return r;
      }
      return -1;
    };
    switch (shard.kind) {
      case dist::TpShard::Kind::replicated:
      case dist::TpShard::Kind::owned: {
        const bool owned = shard.kind == dist::TpShard::Kind::owned;
        for (int r = 0; r < tp; ++r) {
          if (h[r].slice) {
            throw InputError(str(piece_name(source, r, tp), ": ", what, ": stored as a slice, but the sharding ",
                                 "table keeps it whole (", owned ? "owned by one rank" : "replicated", ")"));
          }
        }
        if (owned) {
          if (holders != 1 || !h[shard.owner].tensor) {
            int first = 0;
            while (first < tp && (!h[first].tensor || first == shard.owner)) ++first;
            throw InputError(str(source, ": ", what, ": expected on rank ", shard.owner, " only (a routed expert ",
                                 "owned by that rank), found on ", holders, " rank", holders == 1 ? "" : "s",
                                 first < tp ? str(" including rank ", first) : std::string()));
          }
          out.emplace_back(name, *h[shard.owner].tensor);
        } else {
          if (holders != tp) {
            throw InputError(str(source, ": ", what, ": replicated on every rank, but missing from rank ",
                                 missing_rank()));
          }
          for (int r = 1; r < tp; ++r) {
            if (!same_values(*h[0].tensor, *h[r].tensor)) {
              throw InputError(str(source, ": ", what, ": replicated, but rank ", r, " holds ",
                                   h[r].tensor->desc(), " that differs from rank 0's ", h[0].tensor->desc()));
            }
          }
          out.emplace_back(name, *h[0].tensor);
        }
        break;
      }
      case dist::TpShard::Kind::split: {
        if (holders != tp) {
          throw InputError(str(source, ": ", what, ": split over every rank, but missing from rank ",
                               missing_rank()));
        }
        std::vector<Tensor> parts;
        int64_t end = 0, full = -1;
        for (int r = 0; r < tp; ++r) {
          const std::string at = str(piece_name(source, r, tp), ": ", what);
          if (!h[r].slice) {
            throw InputError(str(at, ": stored whole, but the sharding table splits it along dim ", shard.dim,
                                 " (no tp_dim attribute)"));
          }
          const TensorSlice& s = *h[r].slice;
          const Tensor& t = *h[r].tensor;
          if (s.dim != shard.dim) {
            throw InputError(str(at, ": sliced along dim ", s.dim, ", the sharding table splits dim ", shard.dim));
          }
          if (full < 0) full = s.full_size;
          if (s.full_size != full) {
            throw InputError(str(at, ": full size ", s.full_size, " along dim ", s.dim, ", rank 0 says ", full));
          }
          if (s.offset != end) {
            throw InputError(str(at, ": slice starts at ", s.offset, ", expected ", end,
                                 " (the slices must tile [0, ", full, ") in rank order)"));
          }
          const int64_t size = t.size(s.dim);
          if (s.offset != dist::shard_begin(full, r, tp) || size != dist::shard_size(full, r, tp)) {
            throw InputError(str(at, ": slice [", s.offset, ", ", s.offset + size, ") of ", full,
                                 " differs from the sharding table's [", dist::shard_begin(full, r, tp), ", ",
                                 dist::shard_begin(full, r + 1, tp), ")"));
          }
          for (int d = 0; d < t.dim(); ++d) {
            if (d != s.dim && (t.dim() != h[0].tensor->dim() || t.size(d) != h[0].tensor->size(d))) {
              throw InputError(str(at, ": shape ", t.shape().str(), " does not match rank 0's ",
                                   h[0].tensor->shape().str(), " outside dim ", s.dim));
            }
          }
          end += size;
          parts.push_back(t);
        }
        if (end != full) {
          throw InputError(str(source, ": ", what, ": the slices cover [0, ", end, ") of ", full));
        }
        out.emplace_back(name, tp == 1 ? parts[0] : cat(parts, shard.dim));
        break;
      }
    }
  }
  return out;
}

// "<stem>.tp<r>-of-<N>.h5" files beside `stem`: size -> ranks found.
std::map<int, std::set<int>> find_pieces(const std::string& stem) {
  std::map<int, std::set<int>> found;
  const fs::path dir = fs::path(stem).parent_path();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
    const std::optional<TpPiecePath> p = parse_tp_piece_path((dir / entry.path().filename()).string());
    if (p && p->stem == stem) found[p->size].insert(p->rank);
  }
  return found;
}

bool parse_decimal(const std::string& text, int* out) {
  if (text.empty() || text.size() > 7 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  *out = std::stoi(text);
  return true;
}

}  // namespace

std::string tp_piece_path(const std::string& stem, int rank, int size) {
  return str(stem, ".tp", rank, "-of-", size, ".h5");
}

std::optional<TpPiecePath> parse_tp_piece_path(const std::string& path) {
  const std::string suffix = ".h5";
  if (path.size() <= suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string base = path.substr(0, path.size() - suffix.size());
  const size_t of = base.rfind("-of-");
  const size_t tp = base.rfind(".tp", of);
  if (of == std::string::npos || tp == std::string::npos || tp == 0) return std::nullopt;
  TpPiecePath p;
  p.stem = base.substr(0, tp);
  if (!parse_decimal(base.substr(tp + 3, of - tp - 3), &p.rank) || !parse_decimal(base.substr(of + 4), &p.size) ||
      p.size < 1 || p.rank >= p.size) {
    return std::nullopt;
  }
  return p;
}

std::vector<CheckpointState> split_tp_checkpoint(const CheckpointState& whole, const Config& config, int tp) {
  NSA_CHECK(!whole.tp, "[split_tp_checkpoint] expected a whole checkpoint, got rank ", whole.tp->rank, " of ",
            whole.tp->size);
  dist::validate_tp(config, tp);
  const std::string source = config.source.empty() ? "checkpoint" : config.source;
  std::vector<CheckpointState> pieces(static_cast<size_t>(tp));
  for (int r = 0; r < tp; ++r) {
    pieces[r].step = whole.step;
    pieces[r].config_yaml = whole.config_yaml;
    pieces[r].counters = whole.counters;
    pieces[r].params_stored = whole.params_stored;
    pieces[r].tp = TpPiece{r, tp, {}, {}};
  }
  split_group(whole.params, false, config, tp, source, pieces);
  split_group(whole.optimizer, true, config, tp, source, pieces);
  return pieces;
}

CheckpointState merge_tp_checkpoint(const std::vector<CheckpointState>& pieces, const Config& config,
                                    const std::string& source) {
  if (pieces.empty()) throw InputError(str(source, ": no pieces to merge"));
  const int tp = static_cast<int>(pieces.size());
  for (int r = 0; r < tp; ++r) {
    const CheckpointState& p = pieces[r];
    if (!p.tp) throw InputError(str(source, ": piece ", r, " is a whole checkpoint, not rank ", r, " of ", tp));
    if (p.tp->rank != r || p.tp->size != tp) {
      throw InputError(str(source, ": piece ", r, " says it is rank ", p.tp->rank, " of ", p.tp->size,
                           ", expected rank ", r, " of ", tp));
    }
    if (r == 0) continue;
    const std::string at = piece_name(source, r, tp);
    if (p.step != pieces[0].step) {
      throw InputError(str(at, ": step ", p.step, ", rank 0 has step ", pieces[0].step));
    }
    if (p.config_yaml != pieces[0].config_yaml) throw InputError(str(at, ": its config differs from rank 0's"));
    if (p.counters != pieces[0].counters) {
      throw InputError(str(at, ": its counters (/state) differ from rank 0's"));
    }
  }
  dist::validate_tp(config, tp);
  CheckpointState whole;
  whole.step = pieces[0].step;
  whole.config_yaml = pieces[0].config_yaml;
  whole.counters = pieces[0].counters;
  for (const CheckpointState& p : pieces) {
    if (p.params_stored == DType::bf16) whole.params_stored = DType::bf16;
  }
  whole.params = merge_group(pieces, false, config, source);
  whole.optimizer = merge_group(pieces, true, config, source);
  return whole;
}

void save_tp_checkpoint(const std::string& stem, const std::vector<CheckpointState>& pieces, DType param_dtype) {
  for (size_t r = 0; r < pieces.size(); ++r) {
    const CheckpointState& p = pieces[r];
    NSA_CHECK(p.tp && p.tp->rank == static_cast<int>(r) && p.tp->size == static_cast<int>(pieces.size()),
              "[save_tp_checkpoint] ", stem, ": piece ", r, " is not rank ", r, " of ", pieces.size());
    save_checkpoint(tp_piece_path(stem, static_cast<int>(r), static_cast<int>(pieces.size())), p, param_dtype);
  }
}

std::vector<CheckpointState> load_tp_checkpoint(const std::string& stem, int size) {
  if (size < 1) throw InputError(str(stem, ": a tensor-parallel set has at least one piece, got size ", size));
  std::vector<CheckpointState> pieces;
  for (int r = 0; r < size; ++r) {
    const std::string path = tp_piece_path(stem, r, size);
    if (!fs::exists(path)) {
      throw InputError(str(path, ": no such file (rank ", r, " of the ", size, "-piece set ", stem, ")"));
    }
    CheckpointState piece = load_checkpoint(path);
    if (!piece.tp) {
      throw InputError(str(path, ": a whole checkpoint (format_version 1), but its name says rank ", r, " of ",
                           size));
    }
    if (piece.tp->rank != r || piece.tp->size != size) {
      throw InputError(str(path, ": /: tp_rank ", piece.tp->rank, " and tp_size ", piece.tp->size,
                           ", but the file name says rank ", r, " of ", size));
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

WholeCheckpoint load_whole_checkpoint(const std::string& path) {
  WholeCheckpoint out;
  std::string stem;
  int size = 0;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    CheckpointState state = load_checkpoint(path);
    if (!state.tp) {
      out.config = parse_config(state.config_yaml, path + " (stored config)");
      out.state = std::move(state);
      out.files = {path};
      return out;
    }
    const std::optional<TpPiecePath> p = parse_tp_piece_path(path);
    if (!p || p->rank != state.tp->rank || p->size != state.tp->size) {
      throw InputError(str(path, ": rank ", state.tp->rank, " of a ", state.tp->size,
                           "-piece tensor-parallel set, but not named <stem>.tp", state.tp->rank, "-of-",
                           state.tp->size, ".h5, so the other pieces cannot be found"));
    }
    stem = p->stem;
    size = p->size;
  } else {
    stem = path;
    if (stem.size() > 3 && stem.compare(stem.size() - 3, 3, ".h5") == 0) stem.resize(stem.size() - 3);
    const std::map<int, std::set<int>> found = find_pieces(stem);
    if (found.empty()) {
      throw InputError(str(path, ": no such file (nor tensor-parallel pieces ", stem, ".tp<r>-of-<N>.h5)"));
    }
    if (found.size() > 1) {
      std::string sizes;
      for (const auto& [n, ranks] : found) sizes += (sizes.empty() ? "" : ", ") + std::to_string(n);
      throw InputError(str(path, ": pieces of several tensor-parallel sets (sizes ", sizes,
                           ") share this stem; name one piece's file"));
    }
    size = found.begin()->first;
  }
  std::vector<CheckpointState> pieces = load_tp_checkpoint(stem, size);
  const std::string source = str(stem, ".tp*-of-", size, ".h5");
  const Config config = parse_config(pieces[0].config_yaml, tp_piece_path(stem, 0, size) + " (stored config)");
  out.state = merge_tp_checkpoint(pieces, config, source);
  out.config = config;
  out.source_tp = size;
  for (int r = 0; r < size; ++r) out.files.push_back(tp_piece_path(stem, r, size));
  return out;
}

}  // namespace nsa
