#include "core/torch_bin.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/dtype.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace mindllm {

size_t torch_dtype_size(TorchDType t) {
  switch (t) {
    case TorchDType::f64:
    case TorchDType::i64: return 8;
    case TorchDType::f32:
    case TorchDType::i32: return 4;
    case TorchDType::f16:
    case TorchDType::bf16:
    case TorchDType::i16: return 2;
    case TorchDType::i8:
    case TorchDType::u8:
    case TorchDType::boolean: return 1;
  }
  return 1;
}

const char* torch_dtype_name(TorchDType t) {
  switch (t) {
    case TorchDType::f32: return "float32";
    case TorchDType::f64: return "float64";
    case TorchDType::f16: return "float16";
    case TorchDType::bf16: return "bfloat16";
    case TorchDType::i64: return "int64";
    case TorchDType::i32: return "int32";
    case TorchDType::i16: return "int16";
    case TorchDType::i8: return "int8";
    case TorchDType::u8: return "uint8";
    case TorchDType::boolean: return "bool";
  }
  return "?";
}

int64_t TorchTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Zip (PKWARE APPNOTE 6.3): end of central directory (+ zip64 record), central directory, local
// headers. torch.save writes stored entries aligned to 64 bytes; zip64 for archives over 4 GB.

namespace {

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

constexpr uint64_t kMaxInflated = 1ull << 36;  // 64 GiB: no storage of a real model is larger

}  // namespace

ZipArchive::ZipArchive(std::span<const uint8_t> b, const std::string& where) : where_(where) {
  const uint64_t n = b.size();
  if (n < 22) bad_input(where + ": not a zip archive (too short)");
  // The end-of-central-directory record: the last 22 bytes, or earlier when a comment follows.
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(n) - 22; i >= 0 && i >= static_cast<int64_t>(n) - 22 - 65535; i--)
    if (le(&b[i], 4) == 0x06054b50 && static_cast<uint64_t>(i) + 22 + le(&b[i + 20], 2) == n) {
      eocd = i;
      break;
    }
  if (eocd < 0) bad_input(where + ": zip end-of-central-directory record not found (truncated file?)");
  uint64_t count = le(&b[eocd + 10], 2), cd_size = le(&b[eocd + 12], 4), cd_off = le(&b[eocd + 16], 4);
  if (count == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) {
    if (eocd < 20 || le(&b[eocd - 20], 4) != 0x07064b50) bad_input(where + ": zip64 locator missing");
    uint64_t z = le(&b[eocd - 20 + 8], 8);
    if (z > n || n - z < 56 || le(&b[z], 4) != 0x06064b50) bad_input(where + ": zip64 end record out of range");
    count = le(&b[z + 32], 8);
    cd_size = le(&b[z + 40], 8);
    cd_off = le(&b[z + 48], 8);
  }
  if (cd_off > n || cd_size > n - cd_off) bad_input(where + ": zip central directory out of range");
  if (count > cd_size / 46)
    bad_input(where + ": zip entry count " + std::to_string(count) + " does not fit the directory");
  uint64_t p = cd_off, end = cd_off + cd_size;
  uint64_t inflated_total = 0;
  for (uint64_t e = 0; e < count; e++) {
    if (end - p < 46 || le(&b[p], 4) != 0x02014b50)
      bad_input(where + ": zip central directory entry " + std::to_string(e) + " is corrupt");
    uint64_t flags = le(&b[p + 8], 2), method = le(&b[p + 10], 2);
    uint64_t csize = le(&b[p + 20], 4), usize = le(&b[p + 24], 4);
    uint64_t name_len = le(&b[p + 28], 2), extra_len = le(&b[p + 30], 2), comment_len = le(&b[p + 32], 2);
    uint64_t local = le(&b[p + 42], 4);
    if (end - p - 46 < name_len + extra_len + comment_len)
      bad_input(where + ": zip central directory entry runs past its end");
    std::string name(reinterpret_cast<const char*>(&b[p + 46]), name_len);
    // zip64 extra field: the 64-bit values of those fields that are 0xffffffff, in this order.
    for (uint64_t x = p + 46 + name_len, xe = x + extra_len; xe - x >= 4;) {
      uint64_t id = le(&b[x], 2), len = le(&b[x + 2], 2);
      if (len > xe - x - 4) bad_input(where + ": zip extra field of '" + name + "' runs past its end");
      if (id == 1) {
        uint64_t q = x + 4, qe = q + len;
        auto take = [&](uint64_t& v) {
          if (v != 0xffffffff) return;
          if (qe - q < 8) bad_input(where + ": zip64 extra field of '" + name + "' is short");
          v = le(&b[q], 8);
          q += 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (flags & 1) bad_input(where + ": zip entry '" + name + "' is encrypted");
    if (local > n || n - local < 30 || le(&b[local], 4) != 0x04034b50)
      bad_input(where + ": zip local header of '" + name + "' out of range or corrupt");
    uint64_t data = local + 30 + le(&b[local + 26], 2) + le(&b[local + 28], 2);
    if (data > n || csize > n - data)
      bad_input(where + ": zip entry '" + name + "' runs past the end of the file (truncated?)");
    if (entries_.count(name)) bad_input(where + ": zip entry '" + name + "' appears twice");
    if (method == 0) {
      if (usize != csize) bad_input(where + ": stored zip entry '" + name + "' has mismatched sizes");
      entries_[name] = Entry{b.subspan(data, csize), usize, false};
    } else if (method == 8) {
      // Deflate expands at most ~1032:1; anything claiming more is not a real archive.
      if (usize > csize * 1032 + 1024 || usize > kMaxInflated - inflated_total)
        bad_input(where + ": zip entry '" + name + "' claims an implausible uncompressed size");
      inflated_total += usize;
      entries_[name] = Entry{b.subspan(data, csize), usize, true};
    } else {
      bad_input(where + ": zip entry '" + name + "' uses compression method " + std::to_string(method) +
                " (only stored and deflate are read)");
    }
  }
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> v;
  for (auto& [name, e] : entries_) v.push_back(name);
  return v;
}

const ZipArchive::Entry& ZipArchive::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) bad_input(where_ + ": zip entry '" + name + "' is missing");
  return it->second;
}

std::span<const uint8_t> ZipArchive::get(const std::string& name) const {
  const Entry& e = entry(name);
  if (!e.deflated) return e.data;
  if (auto it = inflated_.find(name); it != inflated_.end()) return it->second;
  // The buffer grows as output arrives (doubling, from at most 1 MiB), so a header that lies
  // about the size costs the memory of the real data only.
  std::vector<uint8_t> out(std::min<uint64_t>(e.usize, 1u << 20));
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) internal_error("zlib inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(e.data.data());
  uint64_t in_left = e.data.size(), out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out_done == out.size()) {
      if (out.size() >= e.usize) break;  // full, stream not ended: more data than declared
      out.resize(std::min<uint64_t>(e.usize, out.size() * 2));
    }
    uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
    uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(out.size() - out_done, 1u << 30));
    zs.avail_in = in_chunk;
    zs.next_out = out.data() + out_done;
    zs.avail_out = out_chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= in_chunk - zs.avail_in;
    out_done += out_chunk - zs.avail_out;
    if (rc == Z_OK && zs.avail_in == in_chunk && zs.avail_out == out_chunk) rc = Z_BUF_ERROR;  // no progress
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_done != e.usize)
    bad_input(where_ + ": zip entry '" + name + "' does not inflate to its declared size " + std::to_string(e.usize));
  return inflated_[name] = std::move(out);
}

// ---------------------------------------------------------------------------------------------
// Pickle (protocols 2-5, the subset torch.save emits for a state dict). Objects live in an arena
// and are referenced by index, so shared and even cyclic references cost nothing and nothing is
// freed recursively. No callable is ever called: the three REDUCE targets allowed are interpreted.

namespace {

enum class K : uint8_t { none, boolean, integer, real, str, bytes, tuple, list, dict, global, storage, tensor };

struct Obj {
  K kind = K::none;
  int64_t i = 0;  // integer, boolean; storage/tensor: index into their tables
  double f = 0;
  std::string s;                // str, bytes, global ("module.name")
  std::vector<uint32_t> items;  // tuple, list; dict: key, value, key, value, ...
};

Obj obj(K kind, int64_t i = 0) {
  Obj o;
  o.kind = kind;
  o.i = i;
  return o;
}

struct StorageRef {
  TorchDType dtype;
  std::string key;
  int64_t numel;
};

const char* kind_name(K k) {
  switch (k) {
    case K::none: return "None";
    case K::boolean: return "bool";
    case K::integer: return "int";
    case K::real: return "float";
    case K::str: return "str";
    case K::bytes: return "bytes";
    case K::tuple: return "tuple";
    case K::list: return "list";
    case K::dict: return "dict";
    case K::global: return "global";
    case K::storage: return "storage";
    case K::tensor: return "tensor";
  }
  return "?";
}

bool storage_type(const std::string& g, TorchDType* t) {
  static const std::pair<const char*, TorchDType> kTypes[] = {{"torch.FloatStorage", TorchDType::f32},
                                                              {"torch.DoubleStorage", TorchDType::f64},
                                                              {"torch.HalfStorage", TorchDType::f16},
                                                              {"torch.BFloat16Storage", TorchDType::bf16},
                                                              {"torch.LongStorage", TorchDType::i64},
                                                              {"torch.IntStorage", TorchDType::i32},
                                                              {"torch.ShortStorage", TorchDType::i16},
                                                              {"torch.CharStorage", TorchDType::i8},
                                                              {"torch.ByteStorage", TorchDType::u8},
                                                              {"torch.BoolStorage", TorchDType::boolean},
                                                              {"torch.storage.UntypedStorage", TorchDType::u8},
                                                              {"torch.UntypedStorage", TorchDType::u8}};
  for (auto& [n, d] : kTypes)
    if (g == n) {
      *t = d;
      return true;
    }
  return false;
}

bool allowed_global(const std::string& g) {
  TorchDType t;
  return g == "collections.OrderedDict" || g == "torch._utils._rebuild_tensor_v2" ||
         g == "torch._utils._rebuild_parameter" || storage_type(g, &t);
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 0x82:
    case 0x83:
    case 0x84: return "EXT";
    case 'P': return "PERSID";
    case 'g': return "GET";
    case 'p': return "PUT";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
  }
}

constexpr size_t kMaxObjects = 1u << 24, kMaxStack = 1u << 20, kMaxDims = 16;

class Unpickler {
 public:
  Unpickler(std::span<const uint8_t> data, std::string where) : d_(data), where_(std::move(where)) {}

  std::vector<Obj> arena;
  std::vector<StorageRef> storages;
  std::vector<TorchTensor> tensors;

  uint32_t run() {
    for (;;) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                            // PROTO
        case 0x95: uint_n(8); break;                       // FRAME (a length hint)
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case '.': {                                        // STOP
          if (stack_.size() != 1) fail("pickle ends with " + std::to_string(stack_.size()) + " objects on the stack");
          return stack_.back();
        }
        case '0': pop(); break;            // POP
        case '1': pop_mark(); break;       // POP_MARK
        case '2': push_ref(top()); break;  // DUP
        case 'N': push(Obj{}); break;
        case 0x88:
        case 0x89: push(obj(K::boolean, op == 0x88)); break;         // NEWTRUE, NEWFALSE
        case 'K': push_int(static_cast<int64_t>(uint_n(1))); break;  // BININT1
        case 'M': push_int(static_cast<int64_t>(uint_n(2))); break;  // BININT2
        case 'J': push_int(static_cast<int32_t>(uint_n(4))); break;  // BININT
        case 0x8a: {                                                 // LONG1: little-endian two's complement
          uint64_t n = uint_n(1);
          if (n > 8) fail("pickle integer wider than 64 bits");
          auto b = bytes(n);
          uint64_t v = 0;
          for (size_t k = n; k-- > 0;) v = (v << 8) | b[k];
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~0ull << (8 * n);
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          auto b = bytes(8);
          uint64_t v = 0;
          for (int k = 0; k < 8; k++) v = (v << 8) | b[k];
          Obj o = obj(K::real);
          std::memcpy(&o.f, &v, 8);
          push(std::move(o));
          break;
        }
        case 'X': push_str(K::str, uint_n(4)); break;     // BINUNICODE
        case 0x8c: push_str(K::str, uint_n(1)); break;    // SHORT_BINUNICODE
        case 0x8d: push_str(K::str, uint_n(8)); break;    // BINUNICODE8
        case 'B': push_str(K::bytes, uint_n(4)); break;   // BINBYTES
        case 'C': push_str(K::bytes, uint_n(1)); break;   // SHORT_BINBYTES
        case 0x8e: push_str(K::bytes, uint_n(8)); break;  // BINBYTES8
        case 'T': push_str(K::bytes, uint_n(4)); break;   // BINSTRING
        case 'U': push_str(K::bytes, uint_n(1)); break;   // SHORT_BINSTRING
        case ')': push(obj(K::tuple)); break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          size_t n = op - 0x84u;
          if (stack_.size() < base() + n) fail("pickle stack underflow");
          Obj t = obj(K::tuple);
          t.items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(std::move(t));
          break;
        }
        case 't': {  // TUPLE
          Obj t = obj(K::tuple);
          t.items = pop_mark();
          push(std::move(t));
          break;
        }
        case ']': push(obj(K::list)); break;
        case 'l': {  // LIST
          Obj t = obj(K::list);
          t.items = pop_mark();
          push(std::move(t));
          break;
        }
        case '}': push(obj(K::dict)); break;
        case 'd': {  // DICT
          Obj t = obj(K::dict);
          t.items = pop_mark();
          if (t.items.size() % 2) fail("pickle DICT with an odd number of items");
          push(std::move(t));
          break;
        }
        case 'a': {  // APPEND
          uint32_t v = pop();
          obj_of(top(), K::list, "APPEND").items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto vs = pop_mark();
          auto& l = obj_of(top(), K::list, "APPENDS").items;
          l.insert(l.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {  // SETITEM
          uint32_t v = pop(), k = pop();
          auto& m = obj_of(top(), K::dict, "SETITEM").items;
          m.push_back(k), m.push_back(v);
          break;
        }
        case 'u': {  // SETITEMS
          auto kv = pop_mark();
          if (kv.size() % 2) fail("pickle SETITEMS with an odd number of items");
          auto& m = obj_of(top(), K::dict, "SETITEMS").items;
          m.insert(m.end(), kv.begin(), kv.end());
          break;
        }
        case 'b': {  // BUILD: only a dict's attributes (OrderedDict._metadata)
          uint32_t state = pop();
          obj_of(top(), K::dict, "BUILD");
          if (arena[state].kind != K::dict && arena[state].kind != K::none) fail("pickle BUILD with a non-dict state");
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string mod = line(), name = line();
          push_global(mod + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          uint32_t name = pop(), mod = pop();
          if (arena[name].kind != K::str || arena[mod].kind != K::str) fail("pickle STACK_GLOBAL needs two strings");
          push_global(arena[mod].s + "." + arena[name].s);
          break;
        }
        case 'q': memo_put(uint_n(1)); break;      // BINPUT
        case 'r': memo_put(uint_n(4)); break;      // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
        case 'h': memo_get(uint_n(1)); break;      // BINGET
        case 'j': memo_get(uint_n(4)); break;      // LONG_BINGET
        case 'Q': persistent_load(); break;        // BINPERSID
        case 'R': reduce(); break;                 // REDUCE
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(std::string("pickle opcode ") + buf + " (" + opcode_name(op) +
               ") is not allowed in a state dict; refusing to interpret it");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    bad_input(where_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }
  uint8_t u8() {
    if (pos_ >= d_.size()) fail("pickle ends before STOP (truncated)");
    return d_[pos_++];
  }
  std::span<const uint8_t> bytes(uint64_t n) {
    if (n > d_.size() - pos_) fail("pickle field of " + std::to_string(n) + " bytes runs past the end");
    auto s = d_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint_n(int n) { return le(bytes(n).data(), n); }
  std::string line() {
    std::string s;
    for (;;) {
      uint8_t c = u8();
      if (c == '\n') return s;
      if (s.size() > 256) fail("pickle GLOBAL name too long");
      s.push_back(static_cast<char>(c));
    }
  }
  uint32_t add(Obj o) {
    if (arena.size() >= kMaxObjects) fail("pickle has too many objects");
    arena.push_back(std::move(o));
    return static_cast<uint32_t>(arena.size() - 1);
  }
  void push_ref(uint32_t i) {
    if (stack_.size() >= kMaxStack) fail("pickle stack too deep");
    stack_.push_back(i);
  }
  void push(Obj o) { push_ref(add(std::move(o))); }
  void push_int(int64_t v) { push(obj(K::integer, v)); }
  void push_str(K kind, uint64_t n) {
    auto b = bytes(n);
    Obj o = obj(kind);
    o.s.assign(reinterpret_cast<const char*>(b.data()), b.size());
    push(std::move(o));
  }
  void push_global(const std::string& g) {
    if (!allowed_global(g))
      fail("pickle refers to '" + g +
           "', which is not allowed (only state-dict tensors are read; nothing is executed)");
    Obj o = obj(K::global);
    o.s = g;
    push(std::move(o));
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t top() const {
    if (stack_.size() <= base()) fail("pickle stack underflow");
    return stack_.back();
  }
  uint32_t pop() {
    uint32_t v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("pickle has no MARK to pop");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> v(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return v;
  }
  Obj& obj_of(uint32_t i, K kind, const char* op) {
    if (arena[i].kind != kind) fail(std::string("pickle ") + op + " on a " + kind_name(arena[i].kind));
    return arena[i];
  }
  void memo_put(uint64_t k) {
    if (memo_.size() >= kMaxObjects && !memo_.count(k)) fail("pickle memo too large");
    memo_[k] = top();
  }
  void memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("pickle memo key " + std::to_string(k) + " is not defined");
    push_ref(it->second);
  }
  const Obj& item(const Obj& t, size_t k) const { return arena[t.items[k]]; }
  int64_t as_int(const Obj& o, const char* what) const {
    if (o.kind != K::integer) fail(std::string(what) + " must be an int, got " + kind_name(o.kind));
    return o.i;
  }
  std::vector<int64_t> int_tuple(const Obj& o, const char* what) const {
    if (o.kind != K::tuple && o.kind != K::list) fail(std::string(what) + " must be a tuple");
    if (o.items.size() > kMaxDims) fail(std::string(what) + " has more than 16 dimensions");
    std::vector<int64_t> v;
    for (size_t k = 0; k < o.items.size(); k++) v.push_back(as_int(item(o, k), what));
    return v;
  }

  // BINPERSID: ('storage', <storage type>, key, location, numel)
  void persistent_load() {
    const Obj& pid = arena[pop()];
    if (pid.kind != K::tuple || pid.items.size() != 5 || item(pid, 0).kind != K::str || item(pid, 0).s != "storage")
      fail("pickle persistent id is not ('storage', type, key, location, numel)");
    const Obj& type = item(pid, 1);
    StorageRef s;
    if (type.kind != K::global || !storage_type(type.s, &s.dtype)) fail("pickle storage type is not a torch storage");
    if (item(pid, 2).kind != K::str) fail("pickle storage key is not a string");
    s.key = item(pid, 2).s;
    s.numel = as_int(item(pid, 4), "storage size");
    if (s.numel < 0) fail("negative storage size");
    storages.push_back(std::move(s));
    push(obj(K::storage, static_cast<int64_t>(storages.size() - 1)));
  }

  void reduce() {
    uint32_t args_i = pop(), fn_i = pop();
    const Obj& fn = arena[fn_i];
    const Obj args = arena[args_i];  // copy: pushing may reallocate the arena
    if (fn.kind != K::global) fail("pickle REDUCE on a " + std::string(kind_name(fn.kind)) + ", not a global");
    if (args.kind != K::tuple) fail("pickle REDUCE arguments are not a tuple");
    const std::string g = fn.s;
    if (g == "collections.OrderedDict") {
      if (!args.items.empty()) fail("OrderedDict with arguments is not read");
      push(obj(K::dict));
    } else if (g == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.items.size() < 6 || args.items.size() > 7) fail("_rebuild_tensor_v2 takes 6 or 7 arguments");
      const Obj& st = item(args, 0);
      if (st.kind != K::storage) fail("_rebuild_tensor_v2: first argument is not a storage");
      TorchTensor t;
      const StorageRef& s = storages[st.i];
      t.dtype = s.dtype;
      t.storage = s.key;
      t.offset = as_int(item(args, 1), "storage offset");
      t.shape = int_tuple(item(args, 2), "tensor size");
      t.stride = int_tuple(item(args, 3), "tensor stride");
      if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in length");
      // Every element must lie inside the storage: offset + sum((size-1)*stride) < numel.
      if (t.offset < 0) fail("negative storage offset");
      int64_t last = t.offset, count = 1;
      for (size_t k = 0; k < t.shape.size(); k++) {
        if (t.shape[k] < 0 || t.stride[k] < 0) fail("negative tensor size or stride");
        if (t.shape[k] > (int64_t{1} << 40) || t.stride[k] > (int64_t{1} << 40))
          fail("tensor size or stride too large");
        if (t.shape[k] == 0) count = 0;
        else {
          if (count > (int64_t{1} << 42) / t.shape[k]) fail("tensor too large");
          count *= t.shape[k];
          last += (t.shape[k] - 1) * t.stride[k];
          if (last > (int64_t{1} << 50)) fail("tensor extent too large");
        }
      }
      if (count > 0 && last >= s.numel)
        fail("tensor of size " + shape_str(t.shape) + " at offset " + std::to_string(t.offset) +
             " reaches past its storage of " + std::to_string(s.numel) + " elements");
      tensors.push_back(std::move(t));
      push(obj(K::tensor, static_cast<int64_t>(tensors.size() - 1)));
    } else if (g == "torch._utils._rebuild_parameter") {
      // (tensor, requires_grad, backward_hooks): the tensor itself
      if (args.items.size() != 3 || item(args, 0).kind != K::tensor)
        fail("_rebuild_parameter takes (tensor, bool, hooks)");
      push_ref(args.items[0]);
    } else {
      fail("pickle calls '" + g + "', which is not allowed");
    }
  }

  std::span<const uint8_t> d_;
  std::string where_;
  size_t pos_ = 0;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
};

}  // namespace

TorchBinFile::TorchBinFile(const std::string& path) : map_(path), where_(path) { parse(map_.bytes()); }

TorchBinFile::TorchBinFile(std::span<const uint8_t> bytes, const std::string& where) : where_(where) { parse(bytes); }

void TorchBinFile::parse(std::span<const uint8_t> bytes) {
  if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5)
    bad_input(where_ +
              ": legacy (non-zip) torch.save format of PyTorch < 1.6 is not supported; "
              "re-save it with a recent PyTorch, or convert it to safetensors");
  if (bytes.size() < 4 || le(bytes.data(), 4) != 0x04034b50)
    bad_input(where_ + ": not a PyTorch checkpoint (a zip archive written by torch.save)");
  zip_ = std::make_unique<ZipArchive>(bytes, where_);
  std::string prefix;
  int found = 0;
  for (auto& name : zip_->names()) {
    if (name == "data.pkl" ||
        (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0 && name.find('/') == name.size() - 9)) {
      prefix = name.substr(0, name.size() - 8);
      found++;
    }
  }
  if (found != 1) bad_input(where_ + ": expected one <name>/data.pkl in the archive, found " + std::to_string(found));
  if (zip_->has(prefix + "byteorder")) {
    auto bo = zip_->get(prefix + "byteorder");
    if (std::string(bo.begin(), bo.end()) != "little") bad_input(where_ + ": big-endian checkpoints are not supported");
  }
  Unpickler up(zip_->get(prefix + "data.pkl"), where_ + ": " + prefix + "data.pkl");
  uint32_t root = up.run();
  const Obj& top = up.arena[root];
  if (top.kind != K::dict)
    bad_input(where_ + ": the pickled object is a " + kind_name(top.kind) + ", not a state dict");
  for (size_t k = 0; k + 1 < top.items.size(); k += 2) {
    const Obj& key = up.arena[top.items[k]];
    const Obj& val = up.arena[top.items[k + 1]];
    if (key.kind != K::str) bad_input(where_ + ": state dict key is a " + kind_name(key.kind) + ", not a string");
    if (val.kind != K::tensor)
      bad_input(where_ + ": state dict entry '" + key.s + "' is a " + kind_name(val.kind) + ", not a tensor");
    tensors_[key.s] = up.tensors[val.i];
  }
  // Storages: each referenced key must be an entry of exactly numel * element size bytes.
  std::map<std::string, const StorageRef*> by_key;
  for (auto& s : up.storages) {
    auto [it, fresh] = by_key.emplace(s.key, &s);
    if (!fresh && (it->second->dtype != s.dtype || it->second->numel != s.numel))
      bad_input(where_ + ": storage '" + s.key + "' is declared twice with different types or sizes");
  }
  for (auto& [key, s] : by_key) {
    std::string entry = prefix + "data/" + key;
    if (!zip_->has(entry)) bad_input(where_ + ": storage '" + key + "' has no zip entry " + entry);
    // Sizes are compared before anything is inflated: the pickle's element count against the
    // entry's declared size, and (for deflated entries) that against its real output in get().
    if (static_cast<uint64_t>(s->numel) > kMaxInflated / 8)
      bad_input(where_ + ": storage '" + key + "' declares an implausible " + std::to_string(s->numel) + " elements");
    uint64_t want = static_cast<uint64_t>(s->numel) * torch_dtype_size(s->dtype);
    uint64_t have = zip_->declared_size(entry);
    if (have != want)
      bad_input(where_ + ": storage '" + key + "' holds " + std::to_string(have) + " bytes, its " +
                std::to_string(s->numel) + " " + torch_dtype_name(s->dtype) + " elements need " + std::to_string(want));
    storages_[key] = zip_->get(entry);
  }
}

const TorchTensor& TorchBinFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) bad_input(where_ + ": missing tensor '" + name + "'");
  return it->second;
}

void TorchBinFile::read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect) const {
  const TorchTensor& t = info(name);
  if (expect && *expect != t.shape)
    bad_input(where_ + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(*expect));
  if (t.dtype != TorchDType::f32 && t.dtype != TorchDType::f16 && t.dtype != TorchDType::bf16)
    bad_input(where_ + ": tensor '" + name + "' has dtype " + torch_dtype_name(t.dtype) +
              ", expected float32, float16 or bfloat16");
  const uint8_t* base = storages_.at(t.storage).data();
  const size_t es = torch_dtype_size(t.dtype);
  auto load = [&](int64_t idx) -> float {
    const uint8_t* p = base + idx * es;
    switch (t.dtype) {
      case TorchDType::f32: {
        float f;
        std::memcpy(&f, p, 4);
        return f;
      }
      case TorchDType::bf16: return bf16_to_float(static_cast<uint16_t>(p[0] | (p[1] << 8)));
      default: return half_to_float(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    }
  };
  const int64_t n = t.numel();
  if (n == 0) return;
  // Row-major walk over the shape with an odometer of indices (any strides).
  const size_t D = t.shape.size();
  bool contiguous = true;
  for (int64_t k = static_cast<int64_t>(D) - 1, want = 1; k >= 0; k--) {
    if (t.shape[k] != 1 && t.stride[k] != want) contiguous = false;
    want *= t.shape[k];
  }
  if (contiguous) {
    if (t.dtype == TorchDType::f32) std::memcpy(out, base + t.offset * 4, n * 4);
    else
      for (int64_t i = 0; i < n; i++) out[i] = load(t.offset + i);
    return;
  }
  std::vector<int64_t> idx(D, 0);
  int64_t pos = t.offset;
  for (int64_t i = 0; i < n; i++) {
    out[i] = load(pos);
    for (size_t k = D; k-- > 0;) {
      if (++idx[k] < t.shape[k]) {
        pos += t.stride[k];
        break;
      }
      pos -= (t.shape[k] - 1) * t.stride[k];
      idx[k] = 0;
    }
  }
}

}  // namespace mindllm
