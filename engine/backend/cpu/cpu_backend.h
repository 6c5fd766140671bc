// The CPU backend: the reference implementation of every op in backend.h.
//
// Memory is host memory; weights are views into the GGUF mapping and are used
// in place (quantized rows are never expanded). MatMul quantizes each
// activation row once into the weight type's activation format and runs
// quant::VecDot per output, in parallel over output rows. The KV pool is f32,
// laid out [block][layer][slot in block][n_kv_heads * head_dim], so one block
// of one layer is a contiguous run of block_size K (or V) rows.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/common/thread_pool.h"

namespace rocmforge {

class CpuBackend final : public Backend {
 public:
  // threads: 0 = hardware_concurrency.
  explicit CpuBackend(int threads);
  ~CpuBackend() override;

  std::string_view name() const override { return "cpu"; }
  bool is_gpu() const override { return false; }
  int threads() const { return pool_.size(); }

  absl::StatusOr<void*> Alloc(size_t bytes) override;
  void Free(void* p) override;
  absl::Status Upload(void* dst, const void* src, size_t bytes) override;
  absl::Status Download(void* dst, const void* src, size_t bytes) override;
  size_t AvailableMemoryBytes() const override;
  absl::StatusOr<Weight> LoadWeight(const gguf::TensorInfo& t) override;
  absl::Status InitKvCache(const KvCacheShape& shape) override;
  const KvCacheShape& kv_shape() const override { return kv_; }

  // Validates the batch against the KV pool (slots, block tables, logit rows)
  // and keeps a copy for the ops of this step.
  absl::Status BeginStep(const StepBatch& batch) override;

  void Embed(const Weight& table, float* out) override;
  void RmsNorm(const float* x, const Weight& w, float* out, int n, int dim, float eps) override;
  void MatMul(const Weight& w, const float* x, float* y, int n) override;
  void AddBias(float* y, const Weight& bias, int n) override;
  void Rope(float* x, int n, int n_heads, int head_dim, int rot_dim, float freq_base,
            RopeStyle style) override;
  void StoreKv(int layer, const float* k, const float* v) override;
  void Attention(int layer, const float* q, float* out, int n_heads, float scale) override;
  void SwiGLU(const float* gate, const float* up, float* out, int64_t n) override;
  void Add(float* x, const float* y, int64_t n) override;
  void GatherRows(const float* x, float* out, int dim) override;
  absl::Status Sample(const float* logits, int n_rows, int vocab, const SampleRequest* requests,
                      SampleResult* results) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }

  // Direct access for tests: K (or V) row of `layer` at KV `slot`.
  const float* KRow(int layer, int32_t slot) const { return KvRow(k_cache_, layer, slot); }
  const float* VRow(int layer, int32_t slot) const { return KvRow(v_cache_, layer, slot); }

 private:
  int kv_dim() const { return kv_.n_kv_heads * kv_.head_dim; }
  float* KvRow(float* cache, int layer, int32_t slot) const;
  // The first row of KV block `block` of `layer`; its rows follow kv_dim() apart
  // (KvRow(slot) == KvBlock(slot / block_size) + (slot % block_size) * kv_dim()).
  float* KvBlock(float* cache, int layer, int32_t block) const {
    return cache + (static_cast<int64_t>(block) * kv_.n_layers + layer) * kv_.block_size * kv_dim();
  }
  void FreeKvCache();

  ThreadPool pool_;
  KvCacheShape kv_;
  float* k_cache_ = nullptr;
  float* v_cache_ = nullptr;
  size_t kv_bytes_ = 0;  // of each of the two mappings
  StepBatch step_;
  std::vector<int32_t> token_seq_;  // sequence index of each step token
  std::vector<uint8_t> act_;        // quantized activations for MatMul
  std::vector<float> act_scales_;   // their Q8_0 block scales as floats (the tiled kernel)
};

std::unique_ptr<Backend> CreateCpuBackend(int threads);

}  // namespace rocmforge
