// Random-weight model writer; see random_model.h for the pooling scheme.
#include "engine/gguf/random_model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/common/fp16.h"
#include "engine/common/status_macros.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/quant.h"
#include "engine/gguf/quant_mix.h"

namespace rocmforge::gguf {
namespace {

constexpr float kWeightStd = 0.02f;

// splitmix64: turns (seed, stream ids) into well-mixed independent seeds.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t HashName(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

void RandomRow(uint64_t seed, float mean, float* out, int64_t n) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, kWeightStd);
  for (int64_t k = 0; k < n; ++k) out[k] = dist(rng);
}

// Converts one float row into `type`. Float types are converted here; the
// quantized ones go through the quantizer.
void EncodeRow(GgmlType type, const float* src, uint8_t* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16:
      for (int64_t k = 0; k < n; ++k) {
        const uint16_t h = Fp32ToFp16(src[k]);
        std::memcpy(dst + 2 * k, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t k = 0; k < n; ++k) {
        const uint16_t h = Fp32ToBf16(src[k]);
        std::memcpy(dst + 2 * k, &h, 2);
      }
      return;
    default:
      quant::QuantizeRow(type, src, dst, n);
  }
}

// kPoolRows encoded rows of one (type, row length, mean).
struct Pool {
  GgmlType type;
  int64_t cols;
  float mean;
  size_t row_bytes;
  std::vector<uint8_t> rows;  // kPoolRows * row_bytes
};

using PoolKey = std::tuple<uint32_t, int64_t, bool>;  // (type, cols, is_norm)

// Fills every pool's rows, spreading (pool, row) jobs over `threads` threads.
void BuildPools(std::vector<Pool*>& pools, uint64_t seed, int threads) {
  const int64_t jobs = static_cast<int64_t>(pools.size()) * kPoolRows;
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> row;
    for (int64_t j = next++; j < jobs; j = next++) {
      Pool& p = *pools[static_cast<size_t>(j / kPoolRows)];
      const int64_t r = j % kPoolRows;
      row.resize(static_cast<size_t>(p.cols));
      const uint64_t row_seed = Mix(seed ^ Mix(static_cast<uint64_t>(p.type) * 1000003u + static_cast<uint64_t>(p.cols)) ^
                                    Mix(static_cast<uint64_t>(r) + (p.mean != 0 ? 0x5555u : 0u)));
      RandomRow(row_seed, p.mean, row.data(), p.cols);
      EncodeRow(p.type, row.data(), p.rows.data() + static_cast<size_t>(r) * p.row_bytes, p.cols);
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(std::max<int64_t>(jobs, 1))));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

std::string Mib(double bytes) { return absl::StrCat(static_cast<int64_t>(bytes / (1024.0 * 1024.0) + 0.5), " MiB"); }

}  // namespace

absl::Status WriteRandomModel(const ModelShape& shape, FileType ftype, const std::string& path,
                              const RandomModelOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const int threads =
      options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  GgufWriter writer;
  SetShapeMetadata(shape, ftype, &writer);

  // Decide every tensor's type, and which pools they need.
  struct Planned {
    TensorSpec spec;
    GgmlType type;
    Pool* pool;
  };
  std::vector<Planned> plan;
  std::map<PoolKey, std::unique_ptr<Pool>> pools;
  for (TensorSpec& spec : TensorsOf(shape)) {
    const int n_dims = static_cast<int>(spec.dims.size());
    GgmlType type = quant::TensorTypeFor(ftype, spec.name, n_dims, spec.dims[0], static_cast<int>(shape.n_layers));
    const GgmlTypeInfo* info = GetTypeInfo(type);
    if (info == nullptr || !info->supported || spec.dims[0] % info->block_size != 0) {
      return absl::InternalError(absl::StrCat("quant mix chose type ", static_cast<uint32_t>(type), " for tensor ",
                                              spec.name, " with ", spec.dims[0], " columns, which cannot hold it"));
    }
    if (info->quantized && !quant::CanQuantize(type)) {
      return absl::UnimplementedError(absl::StrCat("cannot quantize to ", std::string(info->name), " (tensor ",
                                                   spec.name, ")"));
    }
    const PoolKey key{static_cast<uint32_t>(type), spec.dims[0], spec.is_norm};
    auto& slot = pools[key];
    if (!slot) {
      slot = std::make_unique<Pool>();
      slot->type = type;
      slot->cols = spec.dims[0];
      slot->mean = spec.is_norm ? 1.0f : 0.0f;
      slot->row_bytes = RowBytes(type, spec.dims[0]);
      slot->rows.resize(slot->row_bytes * kPoolRows);
    }
    plan.push_back({std::move(spec), type, slot.get()});
  }

  std::vector<Pool*> pool_list;
  for (auto& [key, p] : pools) pool_list.push_back(p.get());
  BuildPools(pool_list, options.seed, threads);
  if (options.progress) {
    std::fprintf(stderr, "make-model: %s %s: %zu tensors, %zu row pools quantized in %.1f s with %d threads\n",
                 shape.name.c_str(), std::string(quant::FileTypeName(ftype)).c_str(), plan.size(), pool_list.size(),
                 elapsed(), threads);
  }

  // Each tensor copies pool rows, starting at a per-tensor random offset.
  auto written = std::make_shared<double>(0.0);
  const size_t total = plan.size();
  for (size_t k = 0; k < plan.size(); ++k) {
    const Planned& p = plan[k];
    const Pool* pool = p.pool;
    const uint64_t start = Mix(options.seed ^ HashName(p.spec.name)) % kPoolRows;
    const bool progress = options.progress;
    const std::string name = p.spec.name;
    auto fill = [pool, start, progress, name, k, total, written, elapsed](uint8_t* dst, size_t nbytes) -> absl::Status {
      if (pool->row_bytes == 0 || nbytes % pool->row_bytes != 0) {
        return absl::InternalError(absl::StrCat("tensor ", name, ": size ", nbytes, " is not a whole number of rows"));
      }
      const size_t rows = nbytes / pool->row_bytes;
      for (size_t r = 0; r < rows; ++r) {
        const size_t src = (start + r) % kPoolRows;
        std::memcpy(dst + r * pool->row_bytes, pool->rows.data() + src * pool->row_bytes, pool->row_bytes);
      }
      *written += static_cast<double>(nbytes);
      if (progress) {
        std::fprintf(stderr, "make-model: [%zu/%zu] %-28s %-5s %s written, %.1f s\n", k + 1, total, name.c_str(),
                     std::string(TypeName(pool->type)).c_str(), Mib(*written).c_str(), elapsed());
      }
      return absl::OkStatus();
    };
    RF_RETURN_IF_ERROR(writer.AddTensor(p.spec.name, p.type, p.spec.dims, std::move(fill)));
  }
  RF_RETURN_IF_ERROR(writer.Write(path));
  if (options.progress) std::fprintf(stderr, "make-model: wrote %s in %.1f s\n", path.c_str(), elapsed());
  return absl::OkStatus();
}

}  // namespace rocmforge::gguf
