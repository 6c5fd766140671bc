// GGUF v3 writer. Layout: header, metadata, tensor infos, padding to the
// alignment, then each tensor's data at an aligned offset. Data is produced by
// each tensor's FillFn at write time, one tensor in memory at a time.
#include "engine/gguf/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace rocmforge::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Buffered binary output that remembers the first error.
class Out {
 public:
  explicit Out(std::FILE* f) : f_(f) {}
  template <typename T>
  void Put(T v) { Bytes(&v, sizeof(v)); }
  void Bytes(const void* p, size_t n) {
    if (ok_ && n > 0 && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    pos_ += n;
  }
  void String(const std::string& s) {
    Put<uint64_t>(s.size());
    Bytes(s.data(), s.size());
  }
  void Pad(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    uint64_t n = AlignUp(pos_, alignment) - pos_;
    while (n > 0) {
      const size_t chunk = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
      Bytes(kZeros, chunk);
      n -= chunk;
    }
  }
  bool ok() const { return ok_; }
  uint64_t pos() const { return pos_; }

 private:
  std::FILE* f_;
  bool ok_ = true;
  uint64_t pos_ = 0;
};

// Encodes `v` as a value of type `type` (array elements use the array's
// element type, whatever their own `type` field says).
void PutValue(Out& out, ValueType type, const Value& v) {
  switch (type) {
    case ValueType::UINT8: out.Put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case ValueType::INT8: out.Put<int8_t>(static_cast<int8_t>(v.i)); break;
    case ValueType::UINT16: out.Put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case ValueType::INT16: out.Put<int16_t>(static_cast<int16_t>(v.i)); break;
    case ValueType::UINT32: out.Put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case ValueType::INT32: out.Put<int32_t>(static_cast<int32_t>(v.i)); break;
    case ValueType::UINT64: out.Put<uint64_t>(v.u); break;
    case ValueType::INT64: out.Put<int64_t>(v.i); break;
    case ValueType::FLOAT32: out.Put<float>(static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: out.Put<double>(v.f); break;
    case ValueType::BOOL: out.Put<uint8_t>(v.u != 0 ? 1 : 0); break;
    case ValueType::STRING: out.String(v.str); break;
    case ValueType::ARRAY:
      out.Put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      out.Put<uint64_t>(v.arr.size());
      for (const Value& e : v.arr) PutValue(out, v.elem_type, e);
      break;
  }
}

Value Scalar(ValueType t) {
  Value v;
  v.type = t;
  return v;
}

}  // namespace

void GgufWriter::Set(const std::string& key, Value value) {
  for (KeyValue& kv : kv_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kv_.push_back({key, std::move(value)});
}

void GgufWriter::SetU32(const std::string& key, uint32_t x) { Value v = Scalar(ValueType::UINT32); v.u = x; Set(key, std::move(v)); }
void GgufWriter::SetI32(const std::string& key, int32_t x) { Value v = Scalar(ValueType::INT32); v.i = x; Set(key, std::move(v)); }
void GgufWriter::SetU64(const std::string& key, uint64_t x) { Value v = Scalar(ValueType::UINT64); v.u = x; Set(key, std::move(v)); }
void GgufWriter::SetF32(const std::string& key, float x) { Value v = Scalar(ValueType::FLOAT32); v.f = x; Set(key, std::move(v)); }
void GgufWriter::SetBool(const std::string& key, bool x) { Value v = Scalar(ValueType::BOOL); v.u = x ? 1 : 0; Set(key, std::move(v)); }
void GgufWriter::SetString(const std::string& key, std::string x) {
  Value v = Scalar(ValueType::STRING);
  v.str = std::move(x);
  Set(key, std::move(v));
}

void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& xs) {
  Value v = Scalar(ValueType::ARRAY);
  v.elem_type = ValueType::STRING;
  v.arr.reserve(xs.size());
  for (const std::string& s : xs) {
    Value e = Scalar(ValueType::STRING);
    e.str = s;
    v.arr.push_back(std::move(e));
  }
  Set(key, std::move(v));
}

void GgufWriter::SetF32Array(const std::string& key, const std::vector<float>& xs) {
  Value v = Scalar(ValueType::ARRAY);
  v.elem_type = ValueType::FLOAT32;
  v.arr.reserve(xs.size());
  for (float x : xs) {
    Value e = Scalar(ValueType::FLOAT32);
    e.f = x;
    v.arr.push_back(std::move(e));
  }
  Set(key, std::move(v));
}

void GgufWriter::SetI32Array(const std::string& key, const std::vector<int32_t>& xs) {
  Value v = Scalar(ValueType::ARRAY);
  v.elem_type = ValueType::INT32;
  v.arr.reserve(xs.size());
  for (int32_t x : xs) {
    Value e = Scalar(ValueType::INT32);
    e.i = x;
    v.arr.push_back(std::move(e));
  }
  Set(key, std::move(v));
}

void GgufWriter::CopyMetadataFrom(const GgufFile& src) {
  for (const KeyValue& kv : src.metadata()) Set(kv.key, kv.value);
}

absl::Status GgufWriter::AddTensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                                   FillFn fill) {
  const GgmlTypeInfo* info = GetTypeInfo(type);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': unknown type ", static_cast<uint32_t>(type)));
  }
  if (dims.empty() || dims.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': needs 1 to 4 dimensions, got ", dims.size()));
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': dimension ", d, " must be > 0"));
    if (n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': element count overflows"));
    }
    n *= d;
  }
  if (dims[0] % info->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", dims[0],
                                                   " columns is not a multiple of the ", std::string(info->name),
                                                   " block size ", info->block_size));
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' added twice"));
  }
  const size_t nbytes = RowBytes(type, dims[0]) * static_cast<size_t>(n / dims[0]);
  tensors_.push_back({name, type, std::move(dims), nbytes, std::move(fill)});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensorBytes(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                                        std::string bytes) {
  auto shared = std::make_shared<std::string>(std::move(bytes));
  FillFn fill = [shared, name](uint8_t* dst, size_t nbytes) -> absl::Status {
    if (shared->size() != nbytes) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': got ", shared->size(),
                                                     " bytes of data, its shape needs ", nbytes));
    }
    std::copy(shared->begin(), shared->end(), dst);
    return absl::OkStatus();
  };
  RF_RETURN_IF_ERROR(AddTensor(name, type, std::move(dims), std::move(fill)));
  // Report a size mismatch now rather than halfway through writing.
  if (tensors_.back().nbytes != shared->size()) {
    const size_t want = tensors_.back().nbytes;
    tensors_.pop_back();
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': got ", shared->size(),
                                                   " bytes of data, its shape needs ", want));
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Write(const std::string& path) const {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF alignment ", alignment_, " is not a power of two"));
  }
  // general.alignment must describe the layout we actually write.
  std::vector<KeyValue> kv = kv_;
  bool has_alignment_key = false;
  for (KeyValue& e : kv) {
    if (e.key == "general.alignment") {
      e.value = Scalar(ValueType::UINT32);
      e.value.u = alignment_;
      has_alignment_key = true;
    }
  }
  if (!has_alignment_key && alignment_ != kDefaultAlignment) {
    Value v = Scalar(ValueType::UINT32);
    v.u = alignment_;
    kv.push_back({"general.alignment", std::move(v)});
  }

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  auto fail = [&](const std::string& msg) {
    std::fclose(f);
    std::remove(tmp.c_str());
    return absl::InternalError(msg);
  };
  std::vector<char> iobuf(1 << 20);
  std::setvbuf(f, iobuf.data(), _IOFBF, iobuf.size());

  Out out(f);
  out.Bytes("GGUF", 4);
  out.Put<uint32_t>(kVersion);
  out.Put<uint64_t>(tensors_.size());
  out.Put<uint64_t>(kv.size());
  for (const KeyValue& e : kv) {
    out.String(e.key);
    out.Put<uint32_t>(static_cast<uint32_t>(e.value.type));
    PutValue(out, e.value.type, e.value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    out.String(t.name);
    out.Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) out.Put<int64_t>(d);
    out.Put<uint32_t>(static_cast<uint32_t>(t.type));
    out.Put<uint64_t>(offset);
    offset = AlignUp(offset + t.nbytes, alignment_);
  }
  out.Pad(alignment_);

  std::vector<uint8_t> buf;
  for (const PendingTensor& t : tensors_) {
    buf.assign(t.nbytes, 0);
    if (t.fill) {
      absl::Status s = t.fill(buf.data(), buf.size());
      if (!s.ok()) return fail(absl::StrCat(path, ": filling tensor '", t.name, "': ", s.message()));
    }
    out.Bytes(buf.data(), buf.size());
    out.Pad(alignment_);
    if (!out.ok()) break;
  }
  if (!out.ok()) return fail(absl::StrCat(tmp, ": write failed: ", std::strerror(errno)));
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(tmp, ": write failed: ", std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace rocmforge::gguf
