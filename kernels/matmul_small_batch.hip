// The public small-batch matrix x vector entry points (kernels/gpu_api.h): the
// batch-1 settings, the dispatch over weight types to the launchers that
// matmul_small_batch_*.hip instantiate (one file per group of types, compiled
// side by side), the group launches with their epilogues and the mixed-type
// Q/K/V kernel. The kernels and what they measured: matmul_small_batch_impl.h.
#include <cstdlib>
#include <iterator>
#include <type_traits>

#include "kernels/matmul_small_batch_impl.h"

namespace rocmforge::gpu {
namespace small_batch {
namespace {
// Default: pairs on, auto threads per row (best tg128 in the H100 sweep, docs/gpu.md).
// The start-up settings: the defaults, with the bulk-copy kernel on where
// RF_MATVEC_STREAM=1 is set in the environment.
MatVecConfig InitialConfig() {
  MatVecConfig c;
  const char* e = std::getenv("RF_MATVEC_STREAM");
  c.stream = e != nullptr && std::atoi(e) == 1 ? 1 : 0;
  return c;
}
}  // namespace
MatVecConfig g_config = InitialConfig();  // benchmarks may change it (SetMatVecConfig)
}  // namespace small_batch

using namespace small_batch;  // NOLINT: this file is the module's own front

namespace {
// The one switch over the quantized types these kernels take: calls
// f(std::integral_constant<GgmlType, T>{}) for `type`; false for any other
// type (f not called).
template <typename F>
bool WithQuantType(GgmlType type, F&& f) {
  switch (type) {
    case GgmlType::Q8_0: f(std::integral_constant<GgmlType, GgmlType::Q8_0>{}); return true;
    case GgmlType::Q4_0: f(std::integral_constant<GgmlType, GgmlType::Q4_0>{}); return true;
    case GgmlType::Q4_K: f(std::integral_constant<GgmlType, GgmlType::Q4_K>{}); return true;
    case GgmlType::Q5_K: f(std::integral_constant<GgmlType, GgmlType::Q5_K>{}); return true;
    case GgmlType::Q6_K: f(std::integral_constant<GgmlType, GgmlType::Q6_K>{}); return true;
    case GgmlType::Q2_K: f(std::integral_constant<GgmlType, GgmlType::Q2_K>{}); return true;
    case GgmlType::Q3_K: f(std::integral_constant<GgmlType, GgmlType::Q3_K>{}); return true;
    default: return false;
  }
}

void LaunchAny(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
               const void* xq, float* y, int n, Stream s) {
  switch (type) {
    case GgmlType::F32: return LaunchType<GgmlType::F32>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::F16: return LaunchType<GgmlType::F16>(w, rows, cols, x, xq, y, n, s);
    case GgmlType::BF16: return LaunchType<GgmlType::BF16>(w, rows, cols, x, xq, y, n, s);
    default:
      WithQuantType(type, [&](auto t) { LaunchType<decltype(t)::value>(w, rows, cols, x, xq, y, n, s); });
  }
}

// Whether the group launch of these parts can carry the RoPE + KV store
// epilogue: a quantized slice / pairs kernel (not the Q4_0 runs kernel) whose
// blocks own an even number of rows (so a NORM pair never straddles blocks),
// every part's rows a whole number of heads.
template <GgmlType T>
bool GroupEpiShapeOk(const MatVecPart* parts, int n_parts, int64_t cols) {
  int64_t rows = 0;
  for (int i = 0; i < n_parts; ++i) rows += parts[i].rows;
  const int tpr = BatchOneTpr<T>(rows, cols), rpt = BatchOneRpt<T>(rows, cols);
  const int block_rows = BlockRowsOf(tpr, rpt);
  if (block_rows % 2 != 0) return false;
  if constexpr (T == GgmlType::Q4_0) {
    if (rpt <= 2 && Q4_0Runs(rows, cols) && cols % 256 == 0) return false;
  }
  return true;
}

// The RoPE + KV store epilogue's conditions on the Q, K, V parts: whole heads,
// K and V the same rows, NORM pairs within the rotated dims.
bool RopeKvPartsOk(const MatVecPart* parts, int n_parts, int head_dim, int rot_dim) {
  if (n_parts != 3 || head_dim <= 0 || head_dim % 2 != 0 || rot_dim % 2 != 0 || rot_dim <= 0 ||
      rot_dim > head_dim) {
    return false;
  }
  if (parts[1].rows != parts[2].rows) return false;
  for (int i = 0; i < n_parts; ++i) {
    if (parts[i].rows <= 0 || parts[i].rows % head_dim != 0) return false;
  }
  return true;
}
}  // namespace

void SetMatVecConfig(const MatVecConfig& c) {
  g_config = c;
  const int t = g_config.threads_per_row;
  if (t != 0 && t != -1 && t != -2 && t != 32 && t != 128 && t != 256) g_config.threads_per_row = 64;
  const int r = g_config.rows_per_thread;
  if (r != 0 && r != 2 && r != 4) g_config.rows_per_thread = 1;
  const int l = g_config.loads_per_thread;
  if (l != 0 && l != 2 && l != 4) g_config.loads_per_thread = 1;
  if (g_config.q4_0_runs < -1 || g_config.q4_0_runs > 1) g_config.q4_0_runs = 1;
  for (MatVecConfig::Shape& o : g_config.shape) {
    if (o.tpr != 0 && o.tpr != 32 && o.tpr != 64 && o.tpr != 128) o.tpr = 64;
    if (o.rpt != 2 && o.rpt != 4) o.rpt = 1;
  }
}
MatVecConfig GetMatVecConfig() { return g_config; }

bool MatVecStreamTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue) {
  return StreamKernelTakes(type, parts, n_parts, cols, epilogue, g_config);
}

int ActivationRule(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: return 1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q2_K:
    case GgmlType::Q3_K:
      return 2;
    default: return 0;
  }
}


bool MatVecGroupRopeKvSupported(GgmlType type, int64_t cols, const MatVecPart* parts, int n_parts,
                                int head_dim, int rot_dim) {
  if (!RopeKvPartsOk(parts, n_parts, head_dim, rot_dim)) return false;
  if (StreamKernelTakes(type, parts, n_parts, cols, true, g_config)) return true;
  bool ok = false;
  WithQuantType(type, [&](auto t) { ok = GroupEpiShapeOk<decltype(t)::value>(parts, n_parts, cols); });
  return ok;
}

void LaunchMatVecQuantizedGroupRopeKv(GgmlType type, int64_t cols, const void* xq,
                                      const MatVecPart* parts, int n_parts, const MatVecRopeKv& r,
                                      Stream s) {
  if (!MatVecGroupRopeKvSupported(type, cols, parts, n_parts, r.head_dim, r.rot_dim)) return;
  const RopeKvEpi e = MakeRopeKvEpi(r, parts[1].rows);
  WithQuantType(type, [&](auto t) { LaunchGroupType<decltype(t)::value>(parts, n_parts, cols, xq, s, e); });
}

void LaunchMatVecQuantizedGroup(GgmlType type, int64_t cols, const void* xq, const MatVecPart* parts,
                                int n_parts, Stream s) {
  if (n_parts <= 0 || n_parts > kMaxMatVecParts) return;
  WithQuantType(type, [&](auto t) { LaunchGroupType<decltype(t)::value>(parts, n_parts, cols, xq, s); });
}

void LaunchMatVecQuantizedAddTo(GgmlType type, int64_t cols, const void* xq, const MatVecPart& part,
                                float* add_to, Stream s) {
  RopeKvEpi e;
  e.add_to = add_to;
  WithQuantType(type, [&](auto t) { LaunchGroupType<decltype(t)::value>(&part, 1, cols, xq, s, e); });
}

namespace {
// The mixed-type group launch (MatVecMixedKernel): each type at the shape its
// own group launch takes. Only Llama-3-8B's Q4_K_M layers have a kernel: Q4_K
// pairs at one of kMixShapesA (the automatic 32 x 2 of its 5120 Q + K rows,
// 64 x 1 below 4097 rows, or what a sweep asks for through
// MatVecConfig::shape), Q6_K slices at 128 x 2; others go separately.
struct MixedPlan {
  Parts parts{};
  unsigned a_blocks = 0, blocks = 0;
  int shape_a = 0;  // index into kMixShapesA
};
struct MixShape {
  int tpr, rpt;
};
constexpr MixShape kMixShapesA[] = {{64, 1}, {32, 1}, {32, 2}, {64, 2}, {32, 4}};
constexpr int kMixTprB = 128, kMixRptB = 2;
bool PlanMixed(GgmlType ta, const MatVecPart* pa, int n_a, GgmlType tb, const MatVecPart& pb, int64_t cols,
               MixedPlan* plan) {
  if (g_config.stream != 0 || ta != GgmlType::Q4_K || tb != GgmlType::Q6_K || n_a < 1 ||
      n_a + 1 > kMaxMatVecParts || cols <= 0) {
    return false;
  }
  int64_t rows_a = 0;
  for (int i = 0; i < n_a; ++i) rows_a += pa[i].rows;
  const int tpr_a = BatchOneTpr<GgmlType::Q4_K>(rows_a, cols), rpt_a = BatchOneRpt<GgmlType::Q4_K>(rows_a, cols);
  plan->shape_a = -1;
  for (int i = 0; i < static_cast<int>(std::size(kMixShapesA)); ++i) {
    if (kMixShapesA[i].tpr == tpr_a && kMixShapesA[i].rpt == rpt_a) plan->shape_a = i;
  }
  if (plan->shape_a < 0 || !UsePairs<GgmlType::Q4_K>(rows_a, cols) ||
      BatchOneTpr<GgmlType::Q6_K>(pb.rows, cols) != kMixTprB || BatchOneRpt<GgmlType::Q6_K>(pb.rows, cols) != kMixRptB ||
      UsePairs<GgmlType::Q6_K>(pb.rows, cols)) {
    return false;
  }
  MatVecPart all[kMaxMatVecParts];
  for (int i = 0; i < n_a; ++i) all[i] = pa[i];
  all[n_a] = pb;
  const int block_rows_a = BlockRowsOf(tpr_a, rpt_a);
  plan->blocks = FillParts(all, n_a + 1, [n_a, block_rows_a](int k) {
    return k < n_a ? block_rows_a : BlockRows<kMixTprB, kMixRptB>();
  }, &plan->parts);
  plan->a_blocks = plan->parts.end[n_a - 1];
  return true;
}

// The Q, K, V parts of a mixed group (n_a == 2) for RopeKvPartsOk.
bool MixedRopeOk(const MatVecPart* parts_a, int n_a, const MatVecPart& part_b, int head_dim, int rot_dim) {
  if (n_a != 2) return false;
  const MatVecPart all[3] = {parts_a[0], parts_a[1], part_b};
  return RopeKvPartsOk(all, 3, head_dim, rot_dim);
}
}  // namespace

bool MatVecMixedGroupTakes(GgmlType type_a, const MatVecPart* parts_a, int n_a, GgmlType type_b,
                           const MatVecPart& part_b, int64_t cols, int head_dim, int rot_dim) {
  MixedPlan plan;
  if (!PlanMixed(type_a, parts_a, n_a, type_b, part_b, cols, &plan)) return false;
  return head_dim <= 0 || MixedRopeOk(parts_a, n_a, part_b, head_dim, rot_dim);
}

bool LaunchMatVecMixedGroup(GgmlType type_a, const MatVecPart* parts_a, int n_a, GgmlType type_b,
                            const MatVecPart& part_b, int64_t cols, const void* xq, const MatVecRopeKv* rope,
                            Stream s) {
  MixedPlan plan;
  if (!PlanMixed(type_a, parts_a, n_a, type_b, part_b, cols, &plan)) return false;
  RopeKvEpi epi;
  if (rope != nullptr) {
    if (!MixedRopeOk(parts_a, n_a, part_b, rope->head_dim, rope->rot_dim)) return false;
    epi = MakeRopeKvEpi(*rope, parts_a[1].rows);
  }
  if (plan.blocks == 0) return true;
  constexpr GgmlType kA = GgmlType::Q4_K, kB = GgmlType::Q6_K;
  auto launch = [&](auto kernel) {
    LaunchKernel(kernel, plan.blocks, kThreads, 0, s, plan.parts, plan.a_blocks, cols,
                 cols / BlockElems(kA) * BlockBytes(kA), cols / BlockElems(kB) * BlockBytes(kB),
                 static_cast<const ActQ8*>(xq), PrefetchBytes<kA>(), PrefetchBytes<kB>(), epi);
  };
  static_assert(std::size(kMixShapesA) == 5);
  switch (plan.shape_a) {
#if defined(RF_GPU_CUDA)  // 32 threads a row: NVIDIA only (BatchOneTpr)
    case 1: launch(MatVecMixedKernel<kA, kMixShapesA[1].tpr, kMixShapesA[1].rpt, kB, kMixTprB, kMixRptB>); break;
    case 2: launch(MatVecMixedKernel<kA, kMixShapesA[2].tpr, kMixShapesA[2].rpt, kB, kMixTprB, kMixRptB>); break;
    case 4: launch(MatVecMixedKernel<kA, kMixShapesA[4].tpr, kMixShapesA[4].rpt, kB, kMixTprB, kMixRptB>); break;
#endif
    case 3: launch(MatVecMixedKernel<kA, kMixShapesA[3].tpr, kMixShapesA[3].rpt, kB, kMixTprB, kMixRptB>); break;
    default: launch(MatVecMixedKernel<kA, kMixShapesA[0].tpr, kMixShapesA[0].rpt, kB, kMixTprB, kMixRptB>); break;
  }
  return true;
}

void LaunchMatMulSmallBatchQuantized(GgmlType type, const void* w, int64_t rows, int64_t cols,
                                     const void* xq, float* y, int n, Stream s) {
  if (n <= 0 || rows == 0) return;
  LaunchAny(type, w, rows, cols, nullptr, xq, y, n, s);
}

void LaunchMatMulSmallBatch(GgmlType type, const void* w, int64_t rows, int64_t cols,
                            const float* x, float* y, int n, void* scratch, Stream s) {
  // Larger batches run in chunks of kSmallBatchMax rows.
  for (int j0 = 0; j0 < n; j0 += kSmallBatchMax) {
    const int nj = n - j0 < kSmallBatchMax ? n - j0 : kSmallBatchMax;
    const float* xj = x + static_cast<int64_t>(j0) * cols;
    float* yj = y + static_cast<int64_t>(j0) * rows;
    if (ActivationRule(type) != 0) {
      LaunchQuantizeActivation(type, xj, static_cast<int64_t>(nj) * cols, scratch, s);
    }
    LaunchAny(type, w, rows, cols, xj, scratch, yj, nj, s);
  }
}

}  // namespace rocmforge::gpu
