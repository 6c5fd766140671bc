// Read-only view of a GGUF file (versions 2 and 3), memory-mapped.
//
// Contract: Open() validates the whole header up front (magic, version, counts,
// every key/value, every tensor info, alignment, that every tensor's data lies
// inside the file, no overflow in dims or sizes) and returns a Status naming the
// first problem, e.g. "tiny.gguf: truncated while reading metadata key 12 of 24".
// After a successful Open() every accessor is safe on any input.
// Tensor data is never copied: TensorInfo::data points into the mapping, which
// lives as long as the GgufFile.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/ggml_types.h"

namespace rocmforge::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view ValueTypeName(ValueType t);

// One metadata value. Scalars are widened into the matching member; arrays keep
// their element type and hold their elements (nested arrays allowed).
struct Value {
  ValueType type = ValueType::UINT8;
  uint64_t u = 0;      // UINT8/16/32/64 and BOOL (0/1)
  int64_t i = 0;       // INT8/16/32/64
  double f = 0;        // FLOAT32/64
  std::string str;     // STRING
  ValueType elem_type = ValueType::UINT8;  // ARRAY
  std::vector<Value> arr;                  // ARRAY

  bool IsInteger() const;
  bool IsFloat() const;
  // Value as a number, whatever its integer/float/bool type; 0 for others.
  int64_t AsInt() const;
  double AsDouble() const;
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  // dims[0] is the innermost (contiguous) dimension: a 2-D weight of
  // shape {cols, rows} stores `rows` rows of `cols` elements each.
  std::vector<int64_t> dims;
  uint64_t offset = 0;          // relative to the start of the data section
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;
  int64_t n_elements = 0;

  int64_t cols() const { return dims.empty() ? 1 : dims[0]; }
  int64_t rows() const { return n_elements / (dims.empty() ? 1 : dims[0]); }
};

class GgufFile {
 public:
  // Maps and validates `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image (copied); used by tests and the fuzzer.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::string_view bytes,
                                                             std::string_view label = "<memory>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const Value* Find(std::string_view key) const;
  const TensorInfo* FindTensor(std::string_view name) const;

  // Typed getters: NotFound when missing, InvalidArgument when the stored type
  // does not fit ("key llama.block_count: expected an integer, found string").
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  // Same, with a default when the key is absent (a wrong type is still an error).
  absl::StatusOr<int64_t> GetIntOr(std::string_view key, int64_t dflt) const;
  absl::StatusOr<double> GetFloatOr(std::string_view key, double dflt) const;
  absl::StatusOr<bool> GetBoolOr(std::string_view key, bool dflt) const;
  absl::StatusOr<std::string> GetStringOr(std::string_view key, std::string dflt) const;

 private:
  GgufFile() = default;
  absl::Status Parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // munmap on destruction when set
  std::string owned_;        // FromBytes() keeps its copy here
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace rocmforge::gguf
