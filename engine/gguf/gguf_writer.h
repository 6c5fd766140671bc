// Writes GGUF v3 files. Metadata is kept in memory; tensor data is produced one
// tensor at a time by a fill callback while writing, so multi-gigabyte models
// (make-model, quantize) never need to fit in memory at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/gguf_file.h"

namespace rocmforge::gguf {

class GgufWriter {
 public:
  // Fills exactly RowBytes(type, dims[0]) * rows bytes at `dst`.
  using FillFn = std::function<absl::Status(uint8_t* dst, size_t nbytes)>;

  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}

  // Setting a key twice replaces the value (order of first insertion is kept).
  void Set(const std::string& key, Value value);
  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, std::string v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);
  // Copies every key of `src` (used by quantize to carry metadata over).
  void CopyMetadataFrom(const GgufFile& src);

  // dims as in TensorInfo (dims[0] innermost). Returns InvalidArgument if dims[0]
  // is not a multiple of the type's block size.
  absl::Status AddTensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                         FillFn fill);
  // Convenience: copies `bytes` (must be the exact size).
  absl::Status AddTensorBytes(const std::string& name, GgmlType type,
                              std::vector<int64_t> dims, std::string bytes);

  // Writes header, metadata, tensor infos, then each tensor's data (aligned).
  // Writes to `path + ".tmp"` and renames on success.
  absl::Status Write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    size_t nbytes;
    FillFn fill;
  };
  uint64_t alignment_;
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace rocmforge::gguf
