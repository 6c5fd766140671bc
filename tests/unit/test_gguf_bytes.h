// Test helper: builds GGUF images byte by byte, so tests can write exactly the
// malformed files they need (the real writer refuses to produce them).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace rocmforge::gguf::testing {

class GgufBytes {
 public:
  template <typename T>
  GgufBytes& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    data_.append(b, sizeof(T));
    return *this;
  }
  GgufBytes& Raw(const std::string& s) { data_ += s; return *this; }
  GgufBytes& Str(const std::string& s) { Put<uint64_t>(s.size()); return Raw(s); }
  // "GGUF", version, n_tensors, n_kv.
  GgufBytes& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    Raw("GGUF");
    Put<uint32_t>(version);
    Put<uint64_t>(n_tensors);
    return Put<uint64_t>(n_kv);
  }
  // A key with a uint32 value (value type 4).
  GgufBytes& KeyU32(const std::string& key, uint32_t v) { Str(key); Put<uint32_t>(4); return Put<uint32_t>(v); }
  GgufBytes& KeyStr(const std::string& key, const std::string& v) { Str(key); Put<uint32_t>(8); return Str(v); }
  GgufBytes& TensorInfo(const std::string& name, const std::vector<int64_t>& dims, uint32_t type, uint64_t offset) {
    Str(name);
    Put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) Put<int64_t>(d);
    Put<uint32_t>(type);
    return Put<uint64_t>(offset);
  }
  GgufBytes& PadTo(size_t alignment) {
    while (data_.size() % alignment) data_.push_back('\0');
    return *this;
  }
  GgufBytes& Zeros(size_t n) { data_.append(n, '\0'); return *this; }
  const std::string& str() const { return data_; }
  size_t size() const { return data_.size(); }

 private:
  std::string data_;
};

}  // namespace rocmforge::gguf::testing
