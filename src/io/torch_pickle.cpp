// The restricted unpickler and torch.save archive reader; see torch_pickle.h. The pickle
// machine (Python's Lib/pickle.py, protocols 2-5) keeps its objects in one pool addressed by
// index, so memo references and cycles cost nothing and nothing is destroyed recursively.
// Objects are plain data (None, bool, int, str, tuple, dict, an allowlisted global, a storage
// reference, a tensor); REDUCE applies only the allowlisted constructors, to validated args.
#include "io/torch_pickle.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "io/zip_stored.h"

namespace tpro {

namespace {

// Every opcode grows the machine's state by O(1) (TUPLE and SETITEMS move objects, not copy
// them), so bounding the opcodes bounds memory. An adapter's pickle runs about 25 per tensor.
constexpr size_t kMaxOps = size_t(1) << 23;
constexpr size_t kMaxObjects = size_t(1) << 21;
constexpr int64_t kMaxNumel = int64_t(1) << 40;  // per storage and per tensor
constexpr size_t kMaxDims = 16;

enum class Kind { None, Bool, Int, Str, Tuple, Dict, Global, Storage, Tensor };
// What a GLOBAL resolved to: the only callables and classes a pickle may name.
enum class Callable { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType };

struct Obj {
  Kind kind = Kind::None;
  int64_t i = 0;            // Bool, Int
  std::string s;            // Str; Global: "module.name"; Storage: key
  std::vector<size_t> items;  // Tuple; Dict: key, value, key, value ...
  Callable fn = Callable::OrderedDict;  // Global
  DType dtype = DType::F32;             // Global (StorageType), Storage, Tensor
  int64_t numel = 0;                    // Storage
  PickledTensor tensor;                 // Tensor (its storage fields filled)
};

Obj obj(Kind k, int64_t i = 0) {
  Obj o;
  o.kind = k;
  o.i = i;
  return o;
}
Obj str_obj(Kind k, std::string s) {
  Obj o = obj(k);
  o.s = std::move(s);
  return o;
}
Obj tuple_obj(std::vector<size_t> items) {
  Obj o = obj(Kind::Tuple);
  o.items = std::move(items);
  return o;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an int";
    case Kind::Str: return "a string";
    case Kind::Tuple: return "a tuple";
    case Kind::Dict: return "a dict";
    case Kind::Global: return "a class or function";
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
  }
  return "?";
}

// The storage classes torch.save names (torch/storage.py's legacy typed storages).
bool storage_dtype(const std::string& name, DType* dt) {
  if (name == "torch.FloatStorage") return *dt = DType::F32, true;
  if (name == "torch.HalfStorage") return *dt = DType::F16, true;
  if (name == "torch.BFloat16Storage") return *dt = DType::BF16, true;
  return false;
}

class Unpickler {
 public:
  Unpickler(std::string_view pkl, const std::string& origin) : p_(pkl), origin_(origin) {}

  std::vector<PickledTensor> run() {
    while (true) {
      if (pos_ >= p_.size()) fail(origin_, ": pickle ends at byte ", pos_, " without STOP (hint: the file is truncated)");
      op_at_ = pos_;
      if (++ops_ > kMaxOps) bad(cat("more than ", kMaxOps, " opcodes (hint: not an adapter's state dict)"));
      const uint8_t op = byte();
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail(origin_, ": pickle stops with ", stack_.size(), " objects on its stack, expected one dict");
    return tensors_of(stack_[0]);
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(origin_, ": pickle opcode at byte ", op_at_, ": ", what);
  }

  uint8_t byte() { return uint8_t(bytes(1)[0]); }
  const char* bytes(size_t n) {
    if (n > p_.size() - pos_) fail(origin_, ": pickle truncated at byte ", pos_, " (", n, " more bytes needed)");
    const char* at = p_.data() + pos_;
    pos_ += n;
    return at;
  }
  uint64_t le(size_t n) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes(n));
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | b[k];
    return v;
  }
  std::string line() {
    const size_t nl = p_.find('\n', pos_);
    if (nl == std::string_view::npos || nl - pos_ > 256) bad("GLOBAL's name is not a short line");
    std::string s(p_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }

  size_t make(Obj o) {
    if (pool_.size() >= kMaxObjects) bad(cat("more than ", kMaxObjects, " objects (hint: not a dict of tensors)"));
    pool_.push_back(std::move(o));
    return pool_.size() - 1;
  }
  void push(Obj o) { stack_.push_back(make(std::move(o))); }
  size_t pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) bad("pops an empty stack");
    const size_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  size_t top() const {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) bad("needs an object on the stack");
    return stack_.back();
  }
  std::vector<size_t> pop_mark() {
    if (marks_.empty()) bad("has no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<size_t> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Obj& at(size_t v) { return pool_[v]; }
  size_t memo_get(uint64_t k) {
    const auto it = memo_.find(k);
    if (it == memo_.end()) bad(cat("memo key ", k, " was never stored"));
    return it->second;
  }

  void step(uint8_t op);
  void global(const std::string& module, const std::string& name);
  void reduce();
  size_t rebuild_tensor(const std::vector<size_t>& args);
  void set_items(size_t dict, const std::vector<size_t>& kv);
  int64_t int_of(size_t v, const char* what) {
    if (at(v).kind != Kind::Int && at(v).kind != Kind::Bool) bad(cat(what, " is ", kind_name(at(v).kind), ", not an int"));
    return at(v).i;
  }
  std::vector<int64_t> ints_of(size_t v, const char* what);
  std::vector<PickledTensor> tensors_of(size_t dict);

  std::string_view p_;
  const std::string& origin_;
  size_t pos_ = 0, op_at_ = 0, ops_ = 0;
  std::vector<Obj> pool_;
  std::vector<size_t> stack_, marks_;
  std::unordered_map<uint64_t, size_t> memo_;
};

void Unpickler::step(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      const uint8_t v = byte();
      if (v < 2 || v > 5) bad(cat("pickle protocol ", int(v), " (torch.save writes 2; 2 to 5 are read)"));
      return;
    }
    case 0x95: bytes(8); return;  // FRAME: a size hint only
    case '(': marks_.push_back(stack_.size()); return;  // MARK
    case 'N': push(obj(Kind::None)); return;
    case 0x88: case 0x89: push(obj(Kind::Bool, op == 0x88)); return;  // NEWTRUE, NEWFALSE
    case 'K': push(obj(Kind::Int, int64_t(le(1)))); return;              // BININT1
    case 'M': push(obj(Kind::Int, int64_t(le(2)))); return;              // BININT2
    case 'J': push(obj(Kind::Int, int64_t(int32_t(uint32_t(le(4)))))); return;  // BININT
    case 0x8a: {  // LONG1: n-byte little-endian two's complement
      const uint8_t n = byte();
      if (n > 8) bad(cat("LONG1 of ", int(n), " bytes (more than 64 bits)"));
      uint64_t v = n ? le(n) : 0;
      if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
      push(obj(Kind::Int, int64_t(v)));
      return;
    }
    case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
      const uint64_t n = le(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
      if (n > p_.size() - pos_) fail(origin_, ": pickle truncated at byte ", pos_, " (a string of ", n, " bytes)");
      push(str_obj(Kind::Str, std::string(bytes(size_t(n)), size_t(n))));
      return;
    }
    case ')': push(obj(Kind::Tuple)); return;  // EMPTY_TUPLE
    case 't': push(tuple_obj(pop_mark())); return;  // TUPLE
    case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
      std::vector<size_t> items(size_t(op - 0x84));
      for (size_t k = items.size(); k-- > 0;) items[k] = pop();
      push(tuple_obj(std::move(items)));
      return;
    }
    case '}': push(obj(Kind::Dict)); return;  // EMPTY_DICT
    case 's': {  // SETITEM
      const size_t v = pop(), k = pop();
      set_items(top(), {k, v});
      return;
    }
    case 'u': {  // SETITEMS
      const std::vector<size_t> kv = pop_mark();
      set_items(top(), kv);
      return;
    }
    case 'q': memo_[le(1)] = top(); return;      // BINPUT
    case 'r': memo_[le(4)] = top(); return;      // LONG_BINPUT
    case 0x94: memo_[memo_.size()] = top(); return;  // MEMOIZE
    case 'h': stack_.push_back(memo_get(le(1))); return;  // BINGET
    case 'j': stack_.push_back(memo_get(le(4))); return;  // LONG_BINGET
    case 'c': {  // GLOBAL "module\nname\n"
      const std::string module = line();
      global(module, line());
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      const size_t name = pop(), module = pop();
      if (at(name).kind != Kind::Str || at(module).kind != Kind::Str) bad("STACK_GLOBAL of non-strings");
      global(at(module).s, at(name).s);
      return;
    }
    case 'R': reduce(); return;
    case 'Q': {  // BINPERSID: ('storage', storage type, key, location, numel)
      const Obj& pid = at(pop());
      if (pid.kind != Kind::Tuple || pid.items.size() != 5 || at(pid.items[0]).kind != Kind::Str ||
          at(pid.items[0]).s != "storage")
        bad("persistent id is not ('storage', type, key, location, numel)");
      const Obj& type = at(pid.items[1]);
      if (type.kind != Kind::Global || type.fn != Callable::StorageType) bad("persistent id's storage type is not a storage class");
      if (at(pid.items[2]).kind != Kind::Str || at(pid.items[3]).kind != Kind::Str) bad("persistent id's key or location is not a string");
      const int64_t numel = int_of(pid.items[4], "the storage's size");
      if (numel < 0 || numel > kMaxNumel) bad(cat("storage size ", numel, " is out of range"));
      Obj st = str_obj(Kind::Storage, at(pid.items[2]).s);
      st.dtype = type.dtype;
      st.numel = numel;
      push(std::move(st));
      return;
    }
    case 'b': {  // BUILD: only an OrderedDict's state (state_dict()'s _metadata attribute), ignored
      const size_t state = pop();
      if (at(top()).kind != Kind::Dict) bad(cat("BUILD on ", kind_name(at(top()).kind), " (only a dict's state is accepted)"));
      const Kind sk = at(state).kind;
      if (sk != Kind::Dict && sk != Kind::None && sk != Kind::Tuple) bad(cat("BUILD with ", kind_name(sk), " as state"));
      return;
    }
    default: break;
  }
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  bad(cat("opcode ", hex, (op >= 0x20 && op < 0x7f) ? cat(" ('", char(op), "')") : std::string(),
          " is not one torch.save writes for a dict of tensors (hint: only such files are read; the file is corrupt ",
          "or holds other objects)"));
}

void Unpickler::global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  Obj g = str_obj(Kind::Global, full);
  if (full == "collections.OrderedDict") {
    g.fn = Callable::OrderedDict;
  } else if (full == "torch._utils._rebuild_tensor_v2") {
    g.fn = Callable::RebuildTensorV2;
  } else if (full == "torch._utils._rebuild_parameter") {
    g.fn = Callable::RebuildParameter;
  } else if (storage_dtype(full, &g.dtype)) {
    g.fn = Callable::StorageType;
  } else if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0) {
    bad(cat("storage type ", full, " is not supported (hint: tpro reads float32, float16 and bfloat16 tensors)"));
  } else {
    bad(cat("global ", full, " is not allowed (hint: tpro reads only tensors from a pickle and never runs code ",
            "in it; allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, ",
            "torch._utils._rebuild_parameter, torch.FloatStorage, torch.HalfStorage, torch.BFloat16Storage)"));
  }
  push(std::move(g));
}

void Unpickler::reduce() {
  const size_t args_v = pop(), fn_v = pop();
  if (at(fn_v).kind != Kind::Global) bad(cat("REDUCE calls ", kind_name(at(fn_v).kind)));
  if (at(args_v).kind != Kind::Tuple) bad(cat("REDUCE's arguments are ", kind_name(at(args_v).kind), ", not a tuple"));
  const std::vector<size_t> args = at(args_v).items;
  switch (at(fn_v).fn) {
    case Callable::OrderedDict:
      if (!args.empty()) bad("OrderedDict called with arguments");
      push(obj(Kind::Dict));
      return;
    case Callable::RebuildTensorV2: stack_.push_back(rebuild_tensor(args)); return;
    case Callable::RebuildParameter:  // (tensor, requires_grad, backward_hooks)
      if (args.size() != 3 || at(args[0]).kind != Kind::Tensor) bad("_rebuild_parameter's arguments are not (tensor, bool, hooks)");
      stack_.push_back(args[0]);
      return;
    case Callable::StorageType: bad(cat("REDUCE calls the storage class ", at(fn_v).s));
  }
}

std::vector<int64_t> Unpickler::ints_of(size_t v, const char* what) {
  if (at(v).kind != Kind::Tuple) bad(cat(what, " is ", kind_name(at(v).kind), ", not a tuple"));
  if (at(v).items.size() > kMaxDims) bad(cat(what, " has ", at(v).items.size(), " dimensions"));
  std::vector<int64_t> out;
  for (size_t e : at(v).items) out.push_back(int_of(e, what));
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
size_t Unpickler::rebuild_tensor(const std::vector<size_t>& args) {
  if (args.size() != 6 && args.size() != 7) bad(cat("_rebuild_tensor_v2 with ", args.size(), " arguments (expected 6 or 7)"));
  const Obj& storage = at(args[0]);
  if (storage.kind != Kind::Storage) bad(cat("_rebuild_tensor_v2's storage is ", kind_name(storage.kind)));
  const int64_t offset = int_of(args[1], "the storage offset");
  const std::vector<int64_t> shape = ints_of(args[2], "the size"), stride = ints_of(args[3], "the stride");
  if (shape.size() != stride.size())
    bad(cat("tensor size ", shape_str(shape), " and stride ", shape_str(stride), " differ in length"));
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMaxNumel || (d && numel > kMaxNumel / d)) bad(cat("tensor size ", shape_str(shape), " is out of range"));
    numel *= d;
  }
  // Contiguous (row-major): a dimension of extent 1 may carry any stride, as in torch.
  int64_t want = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    if (shape[k] != 1 && stride[k] != want && numel)
      bad(cat("tensor of size ", shape_str(shape), " has stride ", shape_str(stride),
              ", not contiguous (hint: save .contiguous() tensors, e.g. via PEFT's save_pretrained)"));
    want *= shape[k];
  }
  if (offset < 0 || offset > storage.numel || numel > storage.numel - offset)
    bad(cat("tensor of ", numel, " elements at offset ", offset, " runs past its storage of ", storage.numel, " elements"));
  Obj t = obj(Kind::Tensor);
  t.tensor.dtype = storage.dtype;
  t.tensor.shape = shape;
  t.tensor.storage = storage.s;
  t.tensor.storage_numel = storage.numel;
  t.tensor.offset = offset;
  return make(std::move(t));
}

void Unpickler::set_items(size_t dict, const std::vector<size_t>& kv) {
  if (at(dict).kind != Kind::Dict) bad(cat("SETITEM(S) on ", kind_name(at(dict).kind)));
  if (kv.size() % 2) bad("SETITEMS with an odd number of objects");
  for (size_t v : kv) at(dict).items.push_back(v);
}

std::vector<PickledTensor> Unpickler::tensors_of(size_t dict) {
  const Obj& d = at(dict);
  if (d.kind != Kind::Dict) fail(origin_, ": pickle holds ", kind_name(d.kind), ", not a dict of tensors");
  std::vector<PickledTensor> out;
  std::set<std::string> seen;
  for (size_t k = 0; k + 1 < d.items.size(); k += 2) {
    const Obj &key = at(d.items[k]), &value = at(d.items[k + 1]);
    if (key.kind != Kind::Str) fail(origin_, ": pickle's dict has a key that is ", kind_name(key.kind), ", not a name");
    if (value.kind != Kind::Tensor)
      fail(origin_, ": entry ", key.s, " is ", kind_name(value.kind), ", not a tensor (hint: only a state dict is read)");
    if (!seen.insert(key.s).second) fail(origin_, ": entry ", key.s, " appears twice");
    out.push_back(value.tensor);
    out.back().name = key.s;
  }
  return out;
}

}  // namespace

std::vector<PickledTensor> parse_torch_pickle(std::string_view pkl, const std::string& origin) {
  return Unpickler(pkl, origin).run();
}

// ---- the archive ---------------------------------------------------------------------------

TorchFile::TorchFile(const fs::path& path) : file_(path), origin_(path.string()) { parse(); }

TorchFile TorchFile::from_bytes(std::string bytes, const std::string& origin) {
  TorchFile f;
  f.bytes_ = std::make_unique<std::string>(std::move(bytes));
  f.origin_ = origin;
  f.parse();
  return f;
}

const uint8_t* TorchFile::data() const {
  return bytes_ ? reinterpret_cast<const uint8_t*>(bytes_->data()) : file_.data();
}
size_t TorchFile::size() const { return bytes_ ? bytes_->size() : file_.size(); }

void TorchFile::parse() {
  const uint8_t* d = data();
  const size_t n = size();
  if (n < 4 || std::memcmp(d, "PK\x03\x04", 4) != 0) {
    if (n >= 2 && d[0] == 0x80)
      fail(origin_, ": a legacy (pre-PyTorch 1.6) torch.save file, which is not supported (hint: re-save it with ",
           "torch >= 1.6: torch.save(torch.load(f), f), or convert it to safetensors)");
    fail(origin_, ": not a torch.save file (it is not a zip archive)");
  }
  const std::vector<ZipEntry> entries = read_zip_directory(d, n, origin_);
  // <archive>/data.pkl names the archive folder (the saved file's stem, or "archive").
  const ZipEntry* pkl = nullptr;
  for (const auto& e : entries) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.substr(slash) == "/data.pkl") {
      if (pkl) fail(origin_, ": holds two pickles, ", pkl->name, " and ", e.name);
      pkl = &e;
    }
  }
  if (!pkl) fail(origin_, ": zip archive without <archive>/data.pkl (hint: not a torch.save file)");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<archive>/"
  std::map<std::string, const ZipEntry*> by_name;
  for (const auto& e : entries) by_name[e.name] = &e;
  if (const auto bo = by_name.find(prefix + "byteorder"); bo != by_name.end()) {
    const std::string_view order = zip_entry_data(d, *bo->second, origin_);
    if (order != "little") fail(origin_, ": byteorder is '", order, "'; only little-endian files are read");
  }
  tensors_ = parse_torch_pickle(zip_entry_data(d, *pkl, origin_), origin_ + ": " + pkl->name);
  std::set<std::string> crc_checked;  // a storage several tensors share is checked once
  for (const auto& t : tensors_) {
    const std::string entry = prefix + "data/" + t.storage;
    const auto it = by_name.find(entry);
    if (it == by_name.end()) fail(origin_, ": tensor ", t.name, ": its storage ", entry, " is not in the archive");
    const ZipEntry& e = *it->second;
    const size_t esize = dtype_size(t.dtype);
    if (crc_checked.insert(t.storage).second) zip_entry_data(d, e, origin_);
    if (uint64_t(e.size) != uint64_t(t.storage_numel) * esize)
      fail(origin_, ": tensor ", t.name, ": storage ", entry, " has ", e.size, " bytes, expected ", t.storage_numel,
           " elements of ", esize, " bytes");
    if (e.offset % esize)
      fail(origin_, ": tensor ", t.name, ": storage ", entry, " starts at byte ", e.offset, ", not aligned to ", esize,
           " bytes (hint: torch.save aligns storages to 64 bytes)");
    begin_.push_back(e.offset + size_t(t.offset) * esize);
  }
  for (size_t k = 0; k < tensors_.size(); ++k) index_[tensors_[k].name] = k;
}

std::vector<std::string> TorchFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

TensorView TorchFile::view(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail(origin_, ": no tensor named ", name);
  const PickledTensor& t = tensors_[it->second];
  return TensorView(const_cast<uint8_t*>(data()) + begin_[it->second], t.dtype, t.shape);
}

}  // namespace tpro
