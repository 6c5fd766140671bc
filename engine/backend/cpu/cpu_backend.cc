#include "engine/backend/cpu/cpu_backend.h"

#include <sys/mman.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "engine/gguf/quant.h"
#include "engine/sampling/sampler.h"

namespace rocmforge {
namespace {

constexpr size_t kAlignment = 64;  // a cache line; also what AVX-512 loads like

// Reads MemAvailable from /proc/meminfo (bytes); 0 when unknown.
size_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

// One row of an F32 weight vector, or a dequantized copy of it in `tmp`.
const float* AsF32(const Weight& w, std::vector<float>& tmp) {
  if (w.type == GgmlType::F32) return static_cast<const float*>(w.data);
  tmp.resize(w.cols);
  quant::DequantizeRow(w.type, w.data, tmp.data(), w.cols);
  return tmp.data();
}

}  // namespace

CpuBackend::CpuBackend(int threads) : pool_(threads) {}

CpuBackend::~CpuBackend() { FreeKvCache(); }

absl::StatusOr<void*> CpuBackend::Alloc(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cpu backend: cannot allocate ", bytes, " bytes"));
  }
  return p;
}

void CpuBackend::Free(void* p) { std::free(p); }

absl::Status CpuBackend::Upload(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::Download(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

size_t CpuBackend::AvailableMemoryBytes() const {
  // Half of what the kernel calls available: the rest stays for the page
  // cache holding the mmapped weights and for everything else on the host.
  return MemAvailableBytes() / 2;
}

absl::StatusOr<Weight> CpuBackend::LoadWeight(const gguf::TensorInfo& t) {
  const GgmlTypeInfo* info = GetTypeInfo(t.type);
  if (info == nullptr || !info->supported || !quant::IsSupported(t.type)) {
    return absl::UnimplementedError(absl::StrCat("tensor '", t.name, "' has type ", std::string(TypeName(t.type)),
                                                 ", which the CPU backend cannot compute"));
  }
  Weight w;
  w.type = t.type;
  w.cols = t.cols();
  w.rows = t.rows();
  w.data = t.data;
  return w;
}

absl::Status CpuBackend::InitKvCache(const KvCacheShape& shape) {
  if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.block_size <= 0 ||
      shape.num_blocks <= 0) {
    return absl::InvalidArgumentError("KV cache shape needs positive layers, heads, head_dim, block size and blocks");
  }
  FreeKvCache();
  const size_t values = static_cast<size_t>(shape.num_blocks) * shape.n_layers * shape.block_size *
                        shape.n_kv_heads * shape.head_dim;
  const size_t bytes = values * sizeof(float);
  // Anonymous mappings: zero-filled and committed page by page as blocks are
  // first written, so a pool sized from free memory costs nothing up front,
  // and a slot read before it is written gives zeros, not garbage.
  void* k = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* v = k == MAP_FAILED ? MAP_FAILED : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k == MAP_FAILED || v == MAP_FAILED) {
    if (k != MAP_FAILED) munmap(k, bytes);
    return absl::ResourceExhaustedError(absl::StrCat("cpu backend: cannot reserve ", 2 * bytes,
                                                     " bytes for a KV cache of ", shape.num_blocks, " blocks"));
  }
  kv_ = shape;
  kv_bytes_ = bytes;
  k_cache_ = static_cast<float*>(k);
  v_cache_ = static_cast<float*>(v);
  return absl::OkStatus();
}

void CpuBackend::FreeKvCache() {
  if (k_cache_ != nullptr) munmap(k_cache_, kv_bytes_);
  if (v_cache_ != nullptr) munmap(v_cache_, kv_bytes_);
  k_cache_ = v_cache_ = nullptr;
  kv_bytes_ = 0;
}

float* CpuBackend::KvRow(float* cache, int layer, int32_t slot) const {
  return KvBlock(cache, layer, slot / kv_.block_size) + static_cast<int64_t>(slot % kv_.block_size) * kv_dim();
}

absl::Status CpuBackend::BeginStep(const StepBatch& b) {
  if (k_cache_ == nullptr) return absl::FailedPreconditionError("BeginStep before InitKvCache");
  RF_RETURN_IF_ERROR(ValidateStepBatch(b, kv_, &token_seq_));
  step_ = b;
  return absl::OkStatus();
}

void CpuBackend::Embed(const Weight& table, float* out) {
  const int64_t dim = table.cols;
  const size_t row_bytes = RowBytes(table.type, dim);
  const auto* base = static_cast<const uint8_t*>(table.data);
  for (int32_t t = 0; t < step_.n_tokens(); ++t) {
    const int32_t id = step_.tokens[t];
    float* dst = out + static_cast<int64_t>(t) * dim;
    if (id < 0 || id >= table.rows) {  // the engine validates ids; never read outside the table
      std::memset(dst, 0, dim * sizeof(float));
      continue;
    }
    quant::DequantizeRow(table.type, base + static_cast<size_t>(id) * row_bytes, dst, dim);
  }
}

void CpuBackend::RmsNorm(const float* x, const Weight& w, float* out, int n, int dim, float eps) {
  std::vector<float> tmp;
  const float* wf = AsF32(w, tmp);
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<int64_t>(r) * dim;
    float* o = out + static_cast<int64_t>(r) * dim;
    double ss = 0.0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int i = 0; i < dim; ++i) o[i] = xr[i] * scale * wf[i];
  }
}

void CpuBackend::AddBias(float* y, const Weight& bias, int n) {
  std::vector<float> tmp;
  const float* b = AsF32(bias, tmp);
  for (int r = 0; r < n; ++r) {
    float* yr = y + static_cast<int64_t>(r) * bias.cols;
    for (int64_t i = 0; i < bias.cols; ++i) yr[i] += b[i];
  }
}

void CpuBackend::Rope(float* x, int n, int n_heads, int head_dim, int rot_dim, float freq_base,
                      RopeStyle style) {
  const int half = rot_dim / 2;
  // inv_freq[i] = base^(-2i / rot_dim), as float like the reference models.
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    inv_freq[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(freq_base), 2.0 * i / rot_dim));
  }
  std::vector<float> cs(half), sn(half);
  for (int t = 0; t < n; ++t) {
    const float pos = static_cast<float>(step_.positions[t]);
    for (int i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sn[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const int a = style == RopeStyle::kNorm ? 2 * i : i;
        const int b = style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[i] - x1 * sn[i];
        v[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

void CpuBackend::StoreKv(int layer, const float* k, const float* v) {
  const int d = kv_dim();
  for (int32_t t = 0; t < step_.n_tokens(); ++t) {
    std::memcpy(KvRow(k_cache_, layer, step_.slots[t]), k + static_cast<int64_t>(t) * d, d * sizeof(float));
    std::memcpy(KvRow(v_cache_, layer, step_.slots[t]), v + static_cast<int64_t>(t) * d, d * sizeof(float));
  }
}

void CpuBackend::SwiGLU(const float* gate, const float* up, float* out, int64_t n) {
  pool_.ParallelFor(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const float g = gate[i];
          out[i] = g / (1.0f + std::exp(-g)) * up[i];
        }
      },
      1 << 14);
}

void CpuBackend::Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::GatherRows(const float* x, float* out, int dim) {
  for (size_t r = 0; r < step_.logit_rows.size(); ++r) {
    std::memcpy(out + r * dim, x + static_cast<int64_t>(step_.logit_rows[r]) * dim, dim * sizeof(float));
  }
}

absl::Status CpuBackend::Sample(const float* logits, int n_rows, int vocab, const SampleRequest* requests,
                                SampleResult* results) {
  for (int r = 0; r < n_rows; ++r) {
    const SampleRequest& req = requests[r];
    SampledToken s = SampleToken(logits + static_cast<int64_t>(r) * vocab, vocab, req.params, req.step,
                                 req.recent.data(), req.recent.size());
    results[r].token = s.token;
    results[r].logprob = s.logprob;
    results[r].top_logprobs = std::move(s.top_logprobs);
  }
  return absl::OkStatus();
}

std::unique_ptr<Backend> CreateCpuBackend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace rocmforge
