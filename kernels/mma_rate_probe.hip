// MeasureMmaRate (kernels/mma_rate_probe.h): a saturating loop of independent
// mma.sync products per warp; the operands come from the thread index so the
// compiler cannot fold them, and the accumulators are summed into `sink` so it
// cannot drop the loop.
#include "kernels/mma_rate_probe.h"

#include "kernels/launch_util.h"

namespace rocmforge::gpu {

#if defined(RF_GPU_CUDA)
namespace {

constexpr int kChains = 8;   // independent accumulators a warp
constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 4;

__global__ void __launch_bounds__(kThreads) MmaRateI8Kernel(int iters, int* sink) {
  mma::FragAI8 a;
  mma::FragBI8 b;
  for (int i = 0; i < 4; ++i) a.x[i] = 0x01010101u * ((threadIdx.x + i) & 3u);
  for (int i = 0; i < 2; ++i) b.x[i] = 0x01020102u * ((threadIdx.x + i) & 1u);
  mma::FragCI8 c[kChains];
  for (int j = 0; j < kChains; ++j) c[j] = mma::FragCI8{{0, 0, 0, 0}};
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int j = 0; j < kChains; ++j) mma::MmaI8(c[j], a, b);
  }
  int s = 0;
  for (int j = 0; j < kChains; ++j) s += c[j].x[0] + c[j].x[1] + c[j].x[2] + c[j].x[3];
  if (s == 0x7fffffff) *sink = s;  // practically never: keeps the loop
}

__global__ void __launch_bounds__(kThreads) MmaRateF16Kernel(int iters, float* sink) {
  mma::FragA a;
  mma::FragB b;
  for (int i = 0; i < 4; ++i) a.x[i] = b.x[i] = 0x3c003c00u ^ ((threadIdx.x + i) & 7u);
  mma::FragC c[kChains / 2];  // each Mma is two m16n8k16 products
  for (int j = 0; j < kChains / 2; ++j) mma::Zero(c[j]);
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int j = 0; j < kChains / 2; ++j) mma::Mma(c[j], a, b);
  }
  float s = 0.0f;
  for (int j = 0; j < kChains / 2; ++j)
    for (int e = 0; e < 8; ++e) s += c[j].x[e];
  if (s == 1.2345f) *sink = s;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// D (64 x 128, s32, this warpgroup) += A (64 x 32 s8, registers: the m16n8k32
// A fragment of each warp's 16 rows) . B (32 x 128 s8, shared memory, `b_desc`).
__device__ __forceinline__ void WgmmaI8M64N128K32(int (&d)[64], const uint32_t (&a)[4], uint64_t b_desc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p;\n}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(1));
}
#endif

// One warpgroup a block streams m64n128k32 products from register A and a
// shared B (contents irrelevant to the rate: 8 KB, no swizzle, core matrices
// 128 bytes apart along K and 256 along N) into one accumulator tile, four a
// commit group, at most two groups in flight. Writes -1 to sink[1] where the
// loaded code has no wgmma (not an sm_90a build).
__global__ void __launch_bounds__(128) WgmmaRateI8Kernel(int iters, int* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(128) uint8_t b_tile[8192];
  for (int i = threadIdx.x; i < 8192 / 4; i += 128) reinterpret_cast<uint32_t*>(b_tile)[i] = 0x01010101u * (i & 3);
  __syncthreads();
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  const uint64_t addr = static_cast<uint64_t>(__cvta_generic_to_shared(b_tile));
  const uint64_t desc = ((addr & 0x3FFFF) >> 4) | (uint64_t{128 >> 4} << 16) | (uint64_t{256 >> 4} << 32);
  uint32_t a[4];
  for (int i = 0; i < 4; ++i) a[i] = 0x01010101u * ((threadIdx.x + i) & 3u);
  int d[64];
  for (int i = 0; i < 64; ++i) d[i] = 0;
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int j = 0; j < 4; ++j) WgmmaI8M64N128K32(d, a, desc);
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  int s = 0;
  for (int i = 0; i < 64; ++i) s += d[i];
  if (s == 0x7fffffff) sink[0] = s;
#else
  (void)iters;
  if (threadIdx.x == 0 && blockIdx.x == 0) sink[1] = -1;
#endif
}

}  // namespace

double MeasureMmaRate(MmaRateKind kind, int iters, Stream s) {
  void* sink = nullptr;
  if (!Malloc(&sink, 16).ok) return 0.0;
  if (!Memset(sink, 0, 16, s).ok) {
    Free(sink);
    return 0.0;
  }
  Event e0 = nullptr, e1 = nullptr;
  EventCreate(&e0);
  EventCreate(&e1);
  const int blocks = MultiprocessorCount() * kBlocksPerSm;
  auto launch = [&](int n) {
    if (kind == MmaRateKind::kInt8WgmmaM64N128K32) {
      WgmmaRateI8Kernel<<<blocks, 128, 0, ToStream(s)>>>(n, static_cast<int*>(sink));
    } else if (kind == MmaRateKind::kInt8M16N8K32) {
      MmaRateI8Kernel<<<blocks, kThreads, 0, ToStream(s)>>>(n, static_cast<int*>(sink));
    } else {
      MmaRateF16Kernel<<<blocks, kThreads, 0, ToStream(s)>>>(n, static_cast<float*>(sink));
    }
  };
  launch(iters / 10 + 1);  // warm-up (clocks, code load)
  EventRecord(e0, s);
  launch(iters);
  EventRecord(e1, s);
  float ms = 0.0f;
  const bool ok = EventElapsedMs(e0, e1, &ms).ok && ms > 0.0f;
  int flags[2] = {0, 0};  // flags[1] = -1: the loaded code has no wgmma
  const bool wgmma_ran = kind != MmaRateKind::kInt8WgmmaM64N128K32 ||
                         (CopyToHost(flags, sink, sizeof(flags), s).ok && StreamSync(s).ok && flags[1] == 0);
  EventDestroy(e0);
  EventDestroy(e1);
  Free(sink);
  if (!ok || !wgmma_ran) return 0.0;
  double macs = 0.0;
  if (kind == MmaRateKind::kInt8WgmmaM64N128K32) {  // 4 m64n128k32 a warpgroup (block) a round
    macs = static_cast<double>(blocks) * static_cast<double>(iters) * 4 * 64.0 * 128 * 32;
  } else {  // kChains products a warp a round: m16n8k32 (4096 multiply-adds) or m16n8k16 (2048)
    const double macs_per = kind == MmaRateKind::kInt8M16N8K32 ? 16.0 * 8 * 32 : 16.0 * 8 * 16;
    macs = static_cast<double>(blocks) * (kThreads / 32) * static_cast<double>(iters) * kChains * macs_per;
  }
  return 2.0 * macs / (ms * 1e-3) / 1e12;
}
#else
double MeasureMmaRate(MmaRateKind, int, Stream) { return 0.0; }
#endif

}  // namespace rocmforge::gpu
