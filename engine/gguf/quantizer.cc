#include "engine/gguf/quantizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "engine/common/thread_pool.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/quant.h"
#include "engine/gguf/quant_mix.h"

namespace rocmforge::quant {
namespace {

// block_count of the model's architecture, or one more than the highest
// "blk.N." seen when the key is missing.
int LayerCount(const gguf::GgufFile& f) {
  auto arch = f.GetString("general.architecture");
  if (arch.ok()) {
    auto n = f.GetInt(*arch + ".block_count");
    if (n.ok() && *n > 0 && *n < (1 << 20)) return static_cast<int>(*n);
  }
  int max_layer = -1;
  for (const auto& t : f.tensors()) {
    if (t.name.rfind("blk.", 0) == 0) max_layer = std::max(max_layer, std::atoi(t.name.c_str() + 4));
  }
  return max_layer + 1;
}

// n_head / n_head_kv, 1 when unknown.
int GqaFactor(const gguf::GgufFile& f) {
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return 1;
  auto heads = f.GetInt(*arch + ".attention.head_count");
  auto kv_heads = f.GetIntOr(*arch + ".attention.head_count_kv", heads.ok() ? *heads : 1);
  if (!heads.ok() || !kv_heads.ok() || *kv_heads <= 0 || *heads <= 0) return 1;
  return static_cast<int>(*heads / *kv_heads);
}

// Converts all rows of `src` into `dst` (already sized for `to`).
absl::Status ConvertRows(const gguf::TensorInfo& src, GgmlType to, uint8_t* dst, size_t nbytes,
                         ThreadPool* pool) {
  const int64_t cols = src.cols(), rows = src.rows();
  const size_t in_row = RowBytes(src.type, cols), out_row = RowBytes(to, cols);
  if (out_row * static_cast<size_t>(rows) != nbytes || in_row * static_cast<size_t>(rows) != src.nbytes) {
    return absl::InternalError(absl::StrCat("tensor ", src.name, ": size mismatch while converting ",
                                            std::string(TypeName(src.type)), " to ", std::string(TypeName(to))));
  }
  if (src.type == to) {
    std::memcpy(dst, src.data, nbytes);
    return absl::OkStatus();
  }
  // Aim for chunks of ~1M values so small tensors do not pay for hand-offs.
  const int64_t min_chunk = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(cols, 1));
  pool->ParallelFor(
      rows,
      [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = begin; r < end; ++r) {
          DequantizeRow(src.type, src.data + r * in_row, row.data(), cols);
          QuantizeRow(to, row.data(), dst + r * out_row, cols);
        }
      },
      min_chunk);
  return absl::OkStatus();
}

}  // namespace

absl::Status QuantizeModel(const std::string& in, const std::string& out, FileType ftype,
                           int threads) {
  std::error_code ec;
  if (std::filesystem::equivalent(in, out, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("output ", out, " is the input file; choose another name"));
  }
  RF_ASSIGN_OR_RETURN(std::unique_ptr<gguf::GgufFile> src, gguf::GgufFile::Open(in));
  const int n_layers = LayerCount(*src);
  const bool has_output = src->FindTensor("output.weight") != nullptr;
  const int n_gqa = GqaFactor(*src);

  gguf::GgufWriter writer(src->alignment());
  writer.CopyMetadataFrom(*src);
  writer.SetU32("general.file_type", static_cast<uint32_t>(ftype));
  writer.SetU32("general.quantization_version", 2);

  auto pool = std::make_shared<ThreadPool>(threads);
  for (const gguf::TensorInfo& t : src->tensors()) {
    if (!IsSupported(t.type)) {
      return absl::InvalidArgumentError(absl::StrCat(in, ": tensor ", t.name, " has type ", std::string(TypeName(t.type)),
                                                     ", which quantize cannot read"));
    }
    const GgmlType to = TensorTypeFor(ftype, t.name, static_cast<int>(t.dims.size()), t.cols(), n_layers,
                                      has_output, n_gqa);
    if (!CanQuantize(to)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", t.name, ": cannot produce type ", std::string(TypeName(to))));
    }
    const gguf::TensorInfo* info = &t;  // lives as long as `src`, which outlives Write()
    RF_RETURN_IF_ERROR(writer.AddTensor(
        t.name, to, t.dims, [info, to, pool](uint8_t* dst, size_t nbytes) {
          return ConvertRows(*info, to, dst, nbytes, pool.get());
        }));
  }
  return writer.Write(out);
}

}  // namespace rocmforge::quant
