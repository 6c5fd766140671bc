// GGUF reader: maps the file, then validates and decodes the whole header
// (metadata and tensor infos) before anyone touches it. Every read goes through
// Cursor, which checks the remaining length first, so a corrupt or hostile file
// can only ever produce an error message, never an out-of-bounds read or an
// absurd allocation.
#include "engine/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace rocmforge::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian uint32
constexpr int kMaxDims = 4;
// Arrays of arrays are legal GGUF, but deep nesting only ever comes from a
// corrupt or hostile file and would recurse without bound.
constexpr int kMaxArrayDepth = 4;
// Total metadata array elements across the file. Real models stay far below
// this (a 150k vocabulary plus its merges is < 1M); it bounds memory, since one
// decoded Value is much larger than its bytes in the file.
constexpr uint64_t kMaxTotalArrayElements = uint64_t{1} << 24;

// Smallest number of bytes one encoded value of `t` can occupy; used to reject
// counts that could not possibly fit in the rest of the file before allocating.
uint64_t MinEncodedSize(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;       // length prefix
    case ValueType::ARRAY: return 4 + 8;    // element type + count
  }
  return 1;
}

bool IsKnownValueType(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::FLOAT64); }

// A key or tensor name as it may appear in a one-line message: control bytes
// escaped, long names cut (names come from the file and may be anything).
std::string Printable(const std::string& s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t k = 0; k < s.size() && k < kMax; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

// Bounds-checked little-endian reader over [begin, begin + size).
class Cursor {
 public:
  Cursor(const uint8_t* begin, size_t size) : begin_(begin), pos_(0), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool Read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, begin_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool ReadBytes(uint64_t n, std::string* out) {
    if (n > remaining()) return false;
    out->assign(reinterpret_cast<const char*>(begin_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  const uint8_t* begin_;
  size_t pos_;
  size_t size_;
};

// GGUF is little-endian IEEE; values are copied straight into host types.
static_assert(std::endian::native == std::endian::little, "big-endian hosts would need byte swaps");
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559);

// Decodes the header; Error() prefixes every message with the file label.
class Parser {
 public:
  Parser(const uint8_t* data, size_t size, std::string label)
      : cur_(data, size), size_(size), label_(std::move(label)) {}

  absl::Status Error(const std::string& what) const { return absl::InvalidArgumentError(absl::StrCat(label_, ": ", what)); }

  absl::Status ReadString(std::string* out, const std::string& what) {
    uint64_t len = 0;
    if (!cur_.Read(&len)) return Error(absl::StrCat("truncated while reading the length of ", what));
    if (len > cur_.remaining()) {
      return Error(absl::StrCat("string length ", len, " of ", what, " runs past the end of the file (",
                                cur_.remaining(), " bytes left)"));
    }
    cur_.ReadBytes(len, out);
    return absl::OkStatus();
  }

  // Reads one scalar stored as T into the Value member `field`.
  template <typename T, typename Field>
  absl::Status ReadInto(Field* field, const std::string& what) {
    T x;
    if (!cur_.Read(&x)) return Error(absl::StrCat("truncated while reading ", what));
    *field = static_cast<Field>(x);
    return absl::OkStatus();
  }

  // Reads one value of type `type` into `v`; `what` names it for messages.
  absl::Status ReadValue(ValueType type, Value* v, const std::string& what, int depth) {
    v->type = type;
    switch (type) {
      case ValueType::UINT8: return ReadInto<uint8_t>(&v->u, what);
      case ValueType::INT8: return ReadInto<int8_t>(&v->i, what);
      case ValueType::UINT16: return ReadInto<uint16_t>(&v->u, what);
      case ValueType::INT16: return ReadInto<int16_t>(&v->i, what);
      case ValueType::UINT32: return ReadInto<uint32_t>(&v->u, what);
      case ValueType::INT32: return ReadInto<int32_t>(&v->i, what);
      case ValueType::UINT64: return ReadInto<uint64_t>(&v->u, what);
      case ValueType::INT64: return ReadInto<int64_t>(&v->i, what);
      case ValueType::FLOAT32: return ReadInto<float>(&v->f, what);
      case ValueType::FLOAT64: return ReadInto<double>(&v->f, what);
      case ValueType::BOOL: {
        uint8_t x;
        if (!cur_.Read(&x)) return Error(absl::StrCat("truncated while reading ", what));
        if (x > 1) return Error(absl::StrCat("bool value ", x, " of ", what, " is neither 0 nor 1"));
        v->u = x;
        return absl::OkStatus();
      }
      case ValueType::STRING: return ReadString(&v->str, what);
      case ValueType::ARRAY: return ReadArray(v, what, depth);
    }
    return Error(absl::StrCat("unknown value type in ", what));
  }

  absl::Status ReadArray(Value* v, const std::string& what, int depth) {
    if (depth >= kMaxArrayDepth) {
      return Error(absl::StrCat("nested arrays deeper than ", kMaxArrayDepth, " levels in ", what));
    }
    uint32_t raw_type = 0;
    uint64_t count = 0;
    if (!cur_.Read(&raw_type)) return Error(absl::StrCat("truncated while reading the element type of ", what));
    if (!IsKnownValueType(raw_type)) {
      return Error(absl::StrCat("unknown array element type ", raw_type, " in ", what));
    }
    if (!cur_.Read(&count)) return Error(absl::StrCat("truncated while reading the element count of ", what));
    const ValueType elem = static_cast<ValueType>(raw_type);
    // Guard the allocation: every element needs at least MinEncodedSize bytes.
    if (count > cur_.remaining() / MinEncodedSize(elem)) {
      return Error(absl::StrCat("array count ", count, " of ", what, " exceeds what the remaining ",
                                cur_.remaining(), " bytes of the file can hold"));
    }
    total_elements_ += count;
    if (total_elements_ > kMaxTotalArrayElements) {
      return Error(absl::StrCat("metadata arrays hold more than ", kMaxTotalArrayElements,
                                " elements in total (at ", what, ")"));
    }
    v->elem_type = elem;
    v->arr.resize(static_cast<size_t>(count));
    for (uint64_t k = 0; k < count; ++k) {
      Value& e = v->arr[static_cast<size_t>(k)];
      if (elem == ValueType::STRING) {
        // Inline so that the message is only built on failure (vocabularies
        // hold 100k+ strings).
        e.type = elem;
        uint64_t len = 0;
        if (!cur_.Read(&len) || len > cur_.remaining()) {
          return Error(absl::StrCat("string element ", k, " of ", what, " is truncated or runs past the end of the file"));
        }
        cur_.ReadBytes(len, &e.str);
      } else if (elem == ValueType::ARRAY) {
        RF_RETURN_IF_ERROR(ReadValue(elem, &e, absl::StrCat("element ", k, " of ", what), depth + 1));
      } else {
        // Scalars: avoid building a message per element on the hot path
        // (tokenizer arrays have 100k+ entries).
        RF_RETURN_IF_ERROR(ReadValue(elem, &e, what, depth + 1));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseHeader(uint32_t* version, uint64_t* n_tensors, uint64_t* n_kv) {
    uint32_t magic = 0;
    if (!cur_.Read(&magic)) return Error(absl::StrCat("file is ", size_, " bytes, too short to be a GGUF file"));
    if (magic != kMagic) {
      return Error("bad magic: not a GGUF file (it does not start with the bytes 'GGUF')");
    }
    if (!cur_.Read(version)) return Error("truncated while reading the GGUF version");
    if (*version == 1) {
      return Error("GGUF version 1 is not supported (obsolete since 2023); convert the model again "
                   "with a current llama.cpp to get version 3");
    }
    if (*version != 2 && *version != 3) {
      return Error(absl::StrCat("unsupported GGUF version ", *version, " (supported: 2 and 3)"));
    }
    if (!cur_.Read(n_tensors)) return Error("truncated while reading the tensor count");
    if (!cur_.Read(n_kv)) return Error("truncated while reading the metadata key count");
    // Every key and every tensor info takes more than one byte, so a count
    // above the bytes left is corruption. (Smaller counts that still cannot
    // fit are reported precisely, as truncation at the entry where it shows.)
    if (*n_kv > cur_.remaining()) {
      return Error(absl::StrCat("metadata key count ", *n_kv, " is absurd for a file of ", size_, " bytes"));
    }
    if (*n_tensors > cur_.remaining()) {
      return Error(absl::StrCat("tensor count ", *n_tensors, " is absurd for a file of ", size_, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status ParseMetadata(uint64_t n_kv, std::vector<KeyValue>* kv) {
    std::unordered_set<std::string> seen;
    // Reserve only what the remaining bytes could hold (>= 13 bytes a key).
    kv->reserve(static_cast<size_t>(std::min<uint64_t>(n_kv, cur_.remaining() / 13)));
    for (uint64_t k = 0; k < n_kv; ++k) {
      const std::string pos = absl::StrCat("metadata key ", k + 1, " of ", n_kv);
      KeyValue entry;
      RF_RETURN_IF_ERROR(ReadString(&entry.key, pos));
      const std::string what = absl::StrCat(pos, " ('", Printable(entry.key), "')");
      if (!seen.insert(entry.key).second) return Error(absl::StrCat("duplicate metadata key in ", what));
      uint32_t raw_type = 0;
      if (!cur_.Read(&raw_type)) return Error(absl::StrCat("truncated while reading the value type of ", what));
      if (!IsKnownValueType(raw_type)) return Error(absl::StrCat("unknown value type ", raw_type, " of ", what));
      RF_RETURN_IF_ERROR(ReadValue(static_cast<ValueType>(raw_type), &entry.value, what, 0));
      kv->push_back(std::move(entry));
    }
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfos(uint64_t n_tensors, std::vector<TensorInfo>* tensors) {
    std::unordered_set<std::string> seen;
    // Reserve only what the remaining bytes could hold (>= 24 bytes an entry).
    tensors->reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, cur_.remaining() / 24)));
    for (uint64_t k = 0; k < n_tensors; ++k) {
      const std::string pos = absl::StrCat("tensor info ", k + 1, " of ", n_tensors);
      TensorInfo t;
      RF_RETURN_IF_ERROR(ReadString(&t.name, absl::StrCat("the name of ", pos)));
      const std::string what = absl::StrCat(pos, " ('", Printable(t.name), "')");
      if (!seen.insert(t.name).second) return Error(absl::StrCat("duplicate tensor name in ", what));
      uint32_t n_dims = 0;
      if (!cur_.Read(&n_dims)) return Error(absl::StrCat("truncated while reading the dimension count of ", what));
      if (n_dims > kMaxDims) {
        return Error(absl::StrCat(what, " has ", n_dims, " dimensions (at most ", kMaxDims, " allowed)"));
      }
      int64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        int64_t dim = 0;
        if (!cur_.Read(&dim)) return Error(absl::StrCat("truncated while reading the dimensions of ", what));
        if (dim <= 0) return Error(absl::StrCat(what, " has dimension ", d, " = ", dim, " (must be > 0)"));
        if (n_elements > std::numeric_limits<int64_t>::max() / dim) {
          return Error(absl::StrCat("element count of ", what, " overflows 64 bits"));
        }
        n_elements *= dim;
        t.dims.push_back(dim);
      }
      uint32_t raw_type = 0;
      if (!cur_.Read(&raw_type)) return Error(absl::StrCat("truncated while reading the type of ", what));
      const GgmlTypeInfo* info = GetTypeInfo(raw_type);
      if (info == nullptr) return Error(absl::StrCat(what, " has unknown tensor type ", raw_type));
      if (!info->supported) {
        return Error(absl::StrCat(what, " has tensor type ", std::string(info->name),
                                  ", which rocmforge does not support (use F32, F16, BF16, Q4_0, Q4_1, "
                                  "Q5_0, Q5_1, Q8_0 or Q2_K..Q6_K)"));
      }
      t.type = static_cast<GgmlType>(raw_type);
      if (!cur_.Read(&t.offset)) return Error(absl::StrCat("truncated while reading the data offset of ", what));
      if (t.cols() % info->block_size != 0) {
        return Error(absl::StrCat(what, " has ", t.cols(), " columns, not a multiple of the ", std::string(info->name),
                                  " block size ", info->block_size));
      }
      const uint64_t blocks = static_cast<uint64_t>(n_elements / info->block_size);
      if (blocks > std::numeric_limits<uint64_t>::max() / info->type_size ||
          blocks * info->type_size > std::numeric_limits<size_t>::max()) {
        return Error(absl::StrCat("byte size of ", what, " overflows 64 bits"));
      }
      t.n_elements = n_elements;
      t.nbytes = static_cast<size_t>(blocks * info->type_size);
      tensors->push_back(std::move(t));
    }
    return absl::OkStatus();
  }

  Cursor& cursor() { return cur_; }

 private:
  Cursor cur_;
  size_t size_;
  std::string label_;
  uint64_t total_elements_ = 0;
};

const char* kValueTypeNames[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                 "bool", "string", "array", "uint64", "int64", "float64"};

std::string Describe(const Value& v) {
  if (v.type == ValueType::ARRAY) return absl::StrCat("array of ", std::string(ValueTypeName(v.elem_type)));
  return std::string(ValueTypeName(v.type));
}

}  // namespace

std::string_view ValueTypeName(ValueType t) {
  const auto raw = static_cast<uint32_t>(t);
  return raw < std::size(kValueTypeNames) ? kValueTypeNames[raw] : "unknown";
}

bool Value::IsInteger() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

bool Value::IsFloat() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

int64_t Value::AsInt() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
    case ValueType::BOOL:
      return static_cast<int64_t>(u);
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      return i;
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      // Saturate instead of the undefined behaviour of an out-of-range cast.
      if (!(f == f)) return 0;
      if (f >= 9.2e18) return std::numeric_limits<int64_t>::max();
      if (f <= -9.2e18) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(f);
    default:
      return 0;
  }
}

double Value::AsDouble() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
    case ValueType::BOOL:
      return static_cast<double>(u);
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      return static_cast<double>(i);
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      return f;
    default:
      return 0;
  }
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": file is empty, not a GGUF file"));
  }
  void* m = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(err)));
  file->mapping_ = m;
  file->base_ = static_cast<const uint8_t*>(m);
  RF_RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::string_view bytes, std::string_view label) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = std::string(label);
  file->owned_ = std::string(bytes);
  file->base_ = reinterpret_cast<const uint8_t*>(file->owned_.data());
  file->size_ = file->owned_.size();
  RF_RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::Status GgufFile::Parse() {
  Parser p(base_, size_, path_);
  uint64_t n_tensors = 0, n_kv = 0;
  RF_RETURN_IF_ERROR(p.ParseHeader(&version_, &n_tensors, &n_kv));
  RF_RETURN_IF_ERROR(p.ParseMetadata(n_kv, &kv_));

  alignment_ = 32;
  if (const Value* a = Find("general.alignment")) {
    if (!a->IsInteger()) {
      return p.Error(absl::StrCat("general.alignment must be an integer, found ", Describe(*a)));
    }
    const int64_t v = a->AsInt();
    if (v <= 0 || (v & (v - 1)) != 0 || v > (int64_t{1} << 30)) {
      return p.Error(absl::StrCat("general.alignment ", v, " is not a power of two (between 1 and 2^30)"));
    }
    alignment_ = static_cast<uint64_t>(v);
  }

  RF_RETURN_IF_ERROR(p.ParseTensorInfos(n_tensors, &tensors_));

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = p.cursor().pos();
  const uint64_t data_start = (header_end + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t data_size = data_start <= size_ ? size_ - data_start : 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorInfo& t = tensors_[k];
    const std::string what = absl::StrCat("tensor '", Printable(t.name), "'");
    if (t.offset % alignment_ != 0) {
      return p.Error(absl::StrCat(what, " data offset ", t.offset, " is not a multiple of the alignment ",
                                  alignment_));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return p.Error(absl::StrCat(what, " data (offset ", t.offset, ", ", t.nbytes,
                                  " bytes) runs past the end of the file: truncated or corrupt (data section has ",
                                  data_size, " bytes)"));
    }
    t.data = base_ + data_start + t.offset;
  }
  return absl::OkStatus();
}

const Value* GgufFile::Find(std::string_view key) const {
  for (const KeyValue& kv : kv_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

absl::Status Missing(const std::string& path, std::string_view key) {
  return absl::NotFoundError(absl::StrCat(path, ": metadata key ", std::string(key), " is missing"));
}
absl::Status WrongType(const std::string& path, std::string_view key, std::string_view expected, const Value& v) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": key ", std::string(key), ": expected ", std::string(expected), ", found ", Describe(v)));
}

bool IntegerFits(const Value& v) {
  return !(v.type == ValueType::UINT64 && v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

}  // namespace

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->IsInteger()) return WrongType(path_, key, "an integer", *v);
  if (!IntegerFits(*v)) return absl::InvalidArgumentError(absl::StrCat(path_, ": key ", std::string(key), ": value ", v->u, " does not fit in int64"));
  return v->AsInt();
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->IsFloat() && !v->IsInteger()) return WrongType(path_, key, "a number", *v);
  return v->AsDouble();
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != ValueType::BOOL) return WrongType(path_, key, "a bool", *v);
  return v->u != 0;
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != ValueType::STRING) return WrongType(path_, key, "a string", *v);
  return v->str;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) {
    return WrongType(path_, key, "an array of string", *v);
  }
  std::vector<std::string> out;
  out.reserve(v->arr.size());
  for (const Value& e : v->arr) out.push_back(e.str);
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  Value probe;
  probe.type = v->elem_type;
  if (v->type != ValueType::ARRAY || !(probe.IsFloat() || probe.IsInteger())) {
    return WrongType(path_, key, "an array of numbers", *v);
  }
  std::vector<float> out;
  out.reserve(v->arr.size());
  for (const Value& e : v->arr) out.push_back(static_cast<float>(e.AsDouble()));
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return Missing(path_, key);
  Value probe;
  probe.type = v->elem_type;
  if (v->type != ValueType::ARRAY || !probe.IsInteger()) return WrongType(path_, key, "an array of integers", *v);
  std::vector<int64_t> out;
  out.reserve(v->arr.size());
  for (const Value& e : v->arr) {
    if (!IntegerFits(e)) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": key ", std::string(key), ": element ", e.u, " does not fit in int64"));
    }
    out.push_back(e.AsInt());
  }
  return out;
}

absl::StatusOr<int64_t> GgufFile::GetIntOr(std::string_view key, int64_t dflt) const {
  if (!Find(key)) return dflt;
  return GetInt(key);
}
absl::StatusOr<double> GgufFile::GetFloatOr(std::string_view key, double dflt) const {
  if (!Find(key)) return dflt;
  return GetFloat(key);
}
absl::StatusOr<bool> GgufFile::GetBoolOr(std::string_view key, bool dflt) const {
  if (!Find(key)) return dflt;
  return GetBool(key);
}
absl::StatusOr<std::string> GgufFile::GetStringOr(std::string_view key, std::string dflt) const {
  if (!Find(key)) return dflt;
  return GetString(key);
}

}  // namespace rocmforge::gguf
