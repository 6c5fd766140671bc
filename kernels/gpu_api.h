// Host-side interface of the kernel suite: plain C++ (no vendor header), so the
// GPU backend (engine/backend/gpu) compiles with the ordinary C++ compiler.
// Every Launch* enqueues work on `stream` and returns at once; pointers are
// device memory. Shapes are trusted (the backend checks them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/gguf/ggml_types.h"

namespace rocmforge::gpu {

using Stream = void*;     // hipStream_t / cudaStream_t
using Event = void*;      // hipEvent_t / cudaEvent_t
using GraphExec = void*;  // hipGraphExec_t / cudaGraphExec_t

// Result of a runtime call: ok, or the runtime's message with the call named.
struct GpuStatus {
  bool ok = true;
  std::string message;
};

// ---- runtime ---------------------------------------------------------------
const char* RuntimeName();  // "hip" or "cuda"
GpuStatus DeviceCount(int* count);
GpuStatus SetDevice(int device);
GpuStatus DeviceName(int device, std::string* name);
// Whether the current device runs the mma:: tile interface of gpu_runtime.h on
// matrix cores: NVIDIA always; AMD CDNA (gfx908, gfx90a, gfx94x, gfx950: MFMA)
// and RDNA3 (gfx11: WMMA). Elsewhere (e.g. gfx1030) mma:: is a slow portable
// fallback and large matmuls should take the float32 tiled kernel. Cached per
// device; false if the device cannot be queried.
bool DeviceHasMatrixCores();
GpuStatus MemInfo(size_t* free_bytes, size_t* total_bytes);
GpuStatus Malloc(void** p, size_t bytes);
void Free(void* p);
GpuStatus HostAlloc(void** p, size_t bytes);  // pinned
void HostFree(void* p);
GpuStatus CopyToDevice(void* dst, const void* src, size_t bytes, Stream s);
GpuStatus CopyToHost(void* dst, const void* src, size_t bytes, Stream s);
GpuStatus CopyDeviceToDevice(void* dst, const void* src, size_t bytes, Stream s);
GpuStatus Memset(void* dst, int value, size_t bytes, Stream s);
// Multiprocessors (NVIDIA SMs / AMD CUs) of the device current at the first
// call, cached for the process (64 when it cannot be read); the launchers size
// K splits and tile choices by it. kernels/runtime.hip.
int MultiprocessorCount();
GpuStatus StreamCreate(Stream* s);
void StreamDestroy(Stream s);
GpuStatus StreamSync(Stream s);
GpuStatus LastLaunchError();  // error of the most recent launch, if any
GpuStatus EventCreate(Event* e);
void EventDestroy(Event e);
GpuStatus EventRecord(Event e, Stream s);
GpuStatus EventElapsedMs(Event start, Event stop, float* ms);  // waits for stop
// Graph capture of everything enqueued on `s` between Begin and End.
GpuStatus BeginCapture(Stream s);
GpuStatus EndCapture(Stream s, GraphExec* exec);
GpuStatus GraphLaunch(GraphExec exec, Stream s);
void GraphDestroy(GraphExec exec);
// Programmatic dependent launch (PDL) of the kernels a batch-1 decode step runs
// (matvec, RMSNorm and its fusions, SwiGLU, RoPE / KV store, activation
// quantization, embedding, add, greedy sampler): each may start while the
// kernel before it finishes and waits inside for that kernel's results
// (kernels/launch_util.h). NVIDIA sm_90 and later only; elsewhere SetPdl(true)
// changes nothing. On by default. Global, read at each launch: graphs captured
// before a change keep the launches they had (GpuBackend keys its automatic
// graphs by it).
void SetPdl(bool on);
bool GetPdl();
// The L1 / shared-memory split asked for every kernel LaunchKernel launches
// (kernels/launch_util.h): a percentage of the most shared memory an SM can
// have (cudaFuncAttributePreferredSharedMemoryCarveout), or -1 for the
// driver's choice per kernel (the default; RF_SMEM_CARVEOUT at start-up). An
// SM changes its split only when idle, so neighbours in a decode chain that
// want different splits cannot overlap. NVIDIA only; a no-op elsewhere.
// Global, read at each launch (GpuBackend keys its automatic graphs by it).
// Measured (H100, 2026-11-27 02:40 UTC, tg128 Q4_K_M): -1 352-354, 7 348-352,
// 14 262-268 tok/s: at 14 the matvecs ran under the 228 KB split (ncu) and
// the Q4_K pair matvecs took 2.20 ms a step instead of 1.25. So -1 stays.
void SetSmemCarveout(int percent);
int GetSmemCarveout();
// ---- L2 prefetch on a side stream (kernels/prefetch_l2.hip)
// An event for ordering only (no timestamps); StreamWaitEvent makes later work
// on `s` wait for the work recorded before `e`. Both work inside stream
// capture (a fork / join of the captured graph).
GpuStatus EventCreateNoTiming(Event* e);
GpuStatus StreamWaitEvent(Stream s, Event e);
// Enqueues a kernel on `s` that asks L2 for [p, p + bytes) (NVIDIA sm_90:
// cp.async.bulk.prefetch; p 16-byte aligned, bytes rounded down to 16): a grid
// of 128-thread blocks, one bulk prefetch of GetL2PrefetchChunk() bytes a
// thread (one block alone moves only ~0.25 TB/s). Reads nothing into
// registers and writes nothing: it cannot change a result. Enqueues nothing on AMD.
void LaunchPrefetchL2(const void* p, size_t bytes, Stream s);
// Whether LaunchPrefetchL2 enqueues anything here (an sm_90+ NVIDIA device).
bool L2PrefetchWorks();
// Bytes a thread asks for in one prefetch (a multiple of 16; default 4096;
// 0 = the old form: one block looping 64 KiB prefetches). Part of a captured
// graph's signature.
void SetL2PrefetchChunk(uint32_t bytes);
uint32_t GetL2PrefetchChunk();
// The prefetch kernel at the device's highest stream priority (a launch
// attribute; graphs captured while it is on are instantiated so that node
// priorities hold): its blocks are then dispatched before pending blocks of
// the main stream's kernels, which otherwise take every free slot while the
// kernel between two matvecs runs. Default on; part of a captured graph's
// signature.
void SetL2PrefetchHighPriority(bool on);
bool GetL2PrefetchHighPriority();
// Brackets the region an external profiler (ncu --profile-from-start off) records.
void ProfilerStart();
void ProfilerStop();

// ---- elementwise / row ops (float32 activations) ---------------------------
// out[i][:] = dequantized row tokens[i] of table (F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K);
// a token outside [0, rows) gives a row of zeros.
void LaunchEmbed(GgmlType type, const void* table, int64_t rows, int64_t cols,
                 const int32_t* tokens, int n, float* out, Stream s);
// out = x / rms(x) * w (w: F32 [dim]); out may alias x.
void LaunchRmsNorm(const float* x, const float* w, float* out, int n, int dim, float eps, Stream s);
// x += residual; out = RmsNorm(x).
void LaunchAddRmsNorm(float* x, const float* residual, const float* w, float* out, int n, int dim,
                      float eps, Stream s);
// In-place rotary embedding of x[n][n_heads*head_dim] at positions[n].
void LaunchRope(float* x, const int32_t* positions, int n, int n_heads, int head_dim, int rot_dim,
                float freq_base, bool neox, Stream s);
void LaunchAddBias(float* y, const float* bias, int n, int cols, Stream s);
void LaunchSwiGLU(const float* gate, const float* up, float* out, int64_t n, Stream s);
// Float spans to zero, passed by value to the producers of a K-split GEMM's
// input (kernels/act_quant_launch.h says why). The spans must not overlap
// anything the producer reads or writes (the caller checks).
struct ZeroSpans {
  static constexpr int kMax = 3;
  float* p[kMax] = {nullptr, nullptr, nullptr};
  int64_t count[kMax] = {0, 0, 0};  // floats
  int n = 0;
};
// Fused producers of an int8-matmul input: the op above AND, in the same pass,
// xq = LaunchQuantizeActivation(weight_type, out, n * dim) (bit-identical
// integers and scales; kernels/act_quant_device.h). For the RMSNorms, n rows of
// `dim` with RmsNormQuantizeSupported(weight_type, dim) (dim <= 8192 and a
// multiple of 32 for the Q8_0 rule, of 256 for Q8_K); for SwiGLU, n values,
// a multiple of 32 (Q8_0 rule) or 256 (Q8_K rule). out may alias x / gate.
// `zero` (optional): spans also set to 0.0f, in the kernel's own pass where it
// can, else by a separate launch; the other results are the same either way.
bool RmsNormQuantizeSupported(GgmlType weight_type, int dim);
void LaunchRmsNormQuantize(const float* x, const float* w, float* out, int n, int dim, float eps,
                           GgmlType weight_type, void* xq, Stream s, const ZeroSpans& zero = {});
void LaunchAddRmsNormQuantize(float* x, const float* residual, const float* w, float* out, int n,
                              int dim, float eps, GgmlType weight_type, void* xq, Stream s,
                              const ZeroSpans& zero = {});
void LaunchSwiGLUQuantize(const float* gate, const float* up, float* out, int64_t n,
                          GgmlType weight_type, void* xq, Stream s, const ZeroSpans& zero = {});
void LaunchAdd(float* x, const float* y, int64_t n, Stream s);
// out[r][:] = x[rows[r]][:].
void LaunchGatherRows(const float* x, const int32_t* rows, int n_rows, int dim, float* out,
                      Stream s);

// ---- matrix multiply: y[n][rows] = x[n][cols] . W^T --------------------------
bool MatMulSupported(GgmlType type);
// Bytes of device scratch MatMul needs for n activation rows of `cols`.
size_t MatMulScratchBytes(int64_t cols, int n);
// Picks the path: per-row dot (n small; int8 activations for quantized types) or
// the tiled large-batch kernel. `scratch` holds MatMulScratchBytes(cols, n).
void LaunchMatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                  float* y, int n, void* scratch, Stream s);
// The two paths, for tests and benchmarks.
void LaunchMatMulSmallBatch(GgmlType type, const void* w, int64_t rows, int64_t cols,
                            const float* x, float* y, int n, void* scratch, Stream s);
void LaunchMatMulTiled(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                       float* y, int n, Stream s);
// Matrix-core GEMM (kernels/matmul_mma.hip: f16 operands, float accumulation,
// 128-row weight tiles x 32/64/128-token tiles by n, K split over more blocks
// when the grid is small); falls back to LaunchMatMulTiled where the device has
// no matrix cores (DeviceHasMatrixCores), for types it has no kernel for
// (MatMulMmaTypeSupported: F32, Q2_K, Q3_K) and for F16/BF16 rows that are not
// a multiple of 16. With a K split, y is zeroed and accumulated with atomics:
// its last bits may differ between runs.
bool MatMulMmaAvailable();
bool MatMulMmaTypeSupported(GgmlType type);
void LaunchMatMulMma(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
                     float* y, int n, Stream s);
// Shape of the matrix-core GEMM, for benchmark sweeps: the token tile (0 =
// auto by n, else 32, 64 or 128; 129 = 128 with activations staged through
// shared memory by async copies, NVIDIA only) and how many blocks per SM the K split aims to
// fill (0 = auto, 2). Global; read at each launch.
// narrow: the batched-decode path for n <= 128 (weights staged as whole 256-value
// spans by async copies; MatMulMmaNarrowTakes): 0 = auto (taken wherever it
// applies unless token_tile forces another tile), 1 = forced where it applies
// (token_tile 16, 32, 64 or 128 then picks its tile), 2 = the previous (v4)
// narrow kernel, n <= 64, for comparison, -1 = off.
// narrow = 3: the int8 MMQ kernel where the caller quantized the activations
// (MatMulMmqTakes / LaunchMatMulMmqGroup below); float-input calls behave as 0.
// narrow = 4: the automatic choice without MMQ (for A/B runs).
// splits: K splits of the narrow kernels and GemmMmaKernel (0 = auto; 1 = none,
// so results are bit-reproducible, e.g. grouped vs separate launches in tests).
struct GemmConfig {
  int token_tile = 0;
  int blocks_per_sm = 0;
  int narrow = 0;
  int splits = 0;
};
void SetGemmConfig(const GemmConfig& c);
GemmConfig GetGemmConfig();
// Whether LaunchMatMulMma takes the narrow path for these arguments under the
// current GemmConfig (Q4_K / Q6_K / Q8_0, 9..128 tokens, cols % 256 == 0, w
// 16-byte aligned, a device with matrix cores, and shared memory for the tile).
bool MatMulMmaNarrowTakes(GgmlType type, const void* w, int64_t cols, int n);
constexpr int kSmallBatchMax = 8;

// ---- dense prefill path (kernels/dequantize_f16.hip, kernels/matmul_dense.hip)
// For large n the weight matrix is dequantized once into a plain f16 copy and
// multiplied by a dense f16 GEMM (float accumulation): the matrix-core GEMM
// with in-loop dequantization is bound by its per-tile decode, this one by
// the matrix cores.
// out[r][c] = f16(element c of row r of w) (round to nearest even of the
// float dequantization); cols % 8 == 0 and whole blocks; out 16-byte aligned.
bool DequantizeF16Supported(GgmlType type);
void LaunchDequantizeF16(GgmlType type, const void* w, int64_t rows, int64_t cols, uint16_t* out, Stream s);
// out[i] = f16(x[i]), i < total.
void LaunchConvertF16(const float* x, int64_t total, uint16_t* out, Stream s);
// y[n][rows] = x16[n][cols] . w16[rows][cols]^T, float accumulation; cols % 8 ==
// 0, w16 and x16 16-byte aligned. With a K split (short grids) y is zeroed and
// accumulated with atomics: its last bits may differ between runs.
void LaunchGemmF16(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* y, int n,
                   Stream s);
// Device scratch of the dense path: x16 holds the f16 activations
// (MatMulDenseActivationBytes), w16 the f16 weights (MatMulDenseWeightBytes; F16
// weights are used in place and need none).
struct DenseScratch {
  void* w16 = nullptr;
  size_t w16_bytes = 0;
  void* x16 = nullptr;
  size_t x16_bytes = 0;
  // The caller converts each input once for all its matmuls and dequantizes
  // weights off the critical path (GpuBackend::SetDensePrefill): the per-shape
  // crossovers of DenseMinTokensFor, measured with both costs in line, give
  // way to kDenseMinTokens (MatMulDenseSuitsPrepared).
  bool operands_prepared = false;
  // The caller holds a resident f16 copy of every dense-path weight
  // (GpuBackend::UseSpareMemory): the dense path costs no dequantization and
  // takes the shapes whose crossover is kDenseMinTokens from right past the
  // MMQ GEMM's range (kDenseMinTokensResident).
  bool weights_resident = false;
};
size_t MatMulDenseActivationBytes(int64_t cols, int n);
size_t MatMulDenseWeightBytes(GgmlType type, int64_t rows, int64_t cols);
// Smallest n the dense path takes by default (the measured crossover against
// LaunchMatMulMma on the H100, docs/gpu.md "Dense prefill GEMM"), and the
// per-shape crossover that replaces it where measured (DenseMinTokensFor;
// DenseGemmConfig::min_n overrides both). Never n <= kSmallBatchMax.
constexpr int kDenseMinTokens = 192;
// The crossover with resident f16 weights (DenseScratch::weights_resident):
// right past kMmqMaxTokens. H100, bench_gpu_decode Q4_K_M batch 32 512
// (2026-11-26 12:44 and 13:58 UTC), ms a step of 32 decodes + a chunk: 128
// tokens MMQ 11.1 vs dense 12.3; 160 tokens in-loop GEMM 31.6 vs dense 16.3
// (every shape dense); 192 and up the same path either way.
constexpr int kDenseMinTokensResident = 129;
// The same crossover when the Hopper GEMM runs the dense path
// (DenseWgmmaActive): H100, bench_gpu_decode Q4_K_M batch 32 512 (2026-11-26
// 21:24 UTC), ms a step of 32 decodes + a chunk, MMQ vs wgmma dense: 64 tokens
// 6.97 vs 8.66, 80 tokens 8.76 vs 8.88, 96 tokens 10.31 vs 9.15-9.20, 128
// tokens 11.17 vs 9.45-9.55.
constexpr int kDenseMinTokensResidentWgmma = 81;
// Whether LaunchGemmF16 / LaunchGemmF16SwiGLU run the Hopper GEMM: SetDenseWgmma
// on, a device that has it (kernels/matmul_dense_wgmma.h), and no forced mma.sync
// variant (DenseGemmConfig row tile / K step / main loop).
bool DenseWgmmaActive();
// The resident crossover in force: kDenseMinTokensResidentWgmma while
// DenseWgmmaActive, else kDenseMinTokensResident.
int DenseMinTokensResident();
int DenseMinTokensFor(GgmlType type, int64_t rows, int64_t cols);
// Whether the dense path suits the matmul, scratch aside: a device with matrix
// cores, a type other than F32 (kept exact), n >= the crossover, cols % 8 == 0.
bool MatMulDenseSuits(GgmlType type, const void* w, int64_t rows, int64_t cols, int n);
// MatMulDenseSuits, or with `prepared` (DenseScratch::operands_prepared) the
// crossover kDenseMinTokens for every shape whose own crossover is higher; with `resident`
// (DenseScratch::weights_resident) DenseMinTokensResident() wherever the
// crossover would be kDenseMinTokens (DenseGemmConfig::min_n still overrides).
bool MatMulDenseSuitsPrepared(GgmlType type, const void* w, int64_t rows, int64_t cols, int n, bool prepared,
                              bool resident = false);
// Whether LaunchMatMul takes the dense path: MatMulDenseSuitsPrepared(d.operands_prepared,
// d.weights_resident) and scratch large enough.
bool MatMulDenseTakes(GgmlType type, const void* w, int64_t rows, int64_t cols, int n, const DenseScratch& d);
// Convert x, dequantize w (unless F16), GEMM. Needs MatMulDenseTakes.
void LaunchMatMulDense(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n,
                       const DenseScratch& d, Stream s);
// LaunchMatMulDense with x16 = f16(x) already made (LaunchConvertF16, or a
// producer that writes f16: LaunchRmsNormF16, LaunchSwiGLUF16): dequantize w
// into d.w16 (unless F16), GEMM. Needs MatMulDenseTakes; d.x16 is not touched.
void LaunchMatMulDenseX16(GgmlType type, const void* w, int64_t rows, int64_t cols, const uint16_t* x16, float* y,
                          int n, const DenseScratch& d, Stream s);
// LaunchDequantizeF16 in a grid of at most `blocks` blocks (each walks rows;
// <= 0: the default grid); the same kernel, so the same values. One row per
// block (blocks = rows) keeps blocks short, for a dequantization running on a
// side stream beside a GEMM that must get SMs as they free up.
void LaunchDequantizeF16Blocks(GgmlType type, const void* w, int64_t rows, int64_t cols, uint16_t* out,
                               int64_t blocks, Stream s);
// The gate / up pair of a SwiGLU FFN as one GEMM (GpuBackend's dense prefill
// option fuse_gate_up_swiglu): out rows 2i and 2i + 1 = LaunchDequantizeF16 of
// row i of w_even and of w_odd (same type and shape: rows x cols each), in a
// grid of at most `blocks` blocks (<= 0: the default grid); out holds 2 x rows
// rows.
void LaunchDequantizeF16Pair(GgmlType type, const void* w_even, const void* w_odd, int64_t rows, int64_t cols,
                             uint16_t* out, int64_t blocks, Stream s);
// LaunchGemmF16 over such an interleaved w16 (rows = 2 x FFN rows, even) with
// SwiGLU in its epilogue: for token t and FFN column i, with g and u the float
// sums of rows 2i and 2i + 1, out[t][i] = g / (1 + expf(-g)) * u (the
// expression of LaunchSwiGLU) and out16[t][i] = f16(out[t][i]) (round to
// nearest even); gate[t][i] = g and up[t][i] = u where not null (neither may
// overlap out). Never splits K, so the sums are those of LaunchGemmF16 without
// a K split: bit for bit the two GEMMs + LaunchSwiGLUF16.
void LaunchGemmF16SwiGLU(const uint16_t* w16, int64_t rows, int64_t cols, const uint16_t* x16, float* out,
                         uint16_t* out16, float* gate, float* up, int n, Stream s);
// A stream of the device's highest priority (non-blocking): its pending blocks
// are dispatched before those of default-priority streams.
GpuStatus StreamCreateHighPriority(Stream* s);
// Producers of a dense GEMM's input that also write it as f16 (round to
// nearest even of the float they write, so out16 == LaunchConvertF16(out)
// bit for bit); out is written exactly as by LaunchRmsNorm / LaunchAddRmsNorm /
// LaunchSwiGLU. RMSNorm: dim <= 8192 (RmsNormF16Supported).
bool RmsNormF16Supported(int dim);
void LaunchRmsNormF16(const float* x, const float* w, float* out, uint16_t* out16, int n, int dim, float eps,
                      Stream s);
void LaunchAddRmsNormF16(float* x, const float* residual, const float* w, float* out, uint16_t* out16, int n,
                         int dim, float eps, Stream s);
void LaunchSwiGLUF16(const float* gate, const float* up, float* out, uint16_t* out16, int64_t n, Stream s);
// LaunchMatMul with the dense path available (taken where MatMulDenseTakes).
void LaunchMatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y, int n,
                  void* scratch, const DenseScratch& dense, Stream s);
// Benchmark overrides: row tile (0 = auto, 128, 256), K splits (0 = auto), the
// smallest n taken (0 = DenseMinTokensFor; RF_DENSE_MIN_N in the environment sets
// it at start-up), the K step (0 = auto, 32 or 64) and the main loop (overlap:
// 1 = the barrier before each step's last MMA slice, -1 = barrier first, 0 =
// auto: 1 for 128 x 256 tiles, -1 for 128 x 128); the last two NVIDIA only.
// Global; read at each launch.
struct DenseGemmConfig {
  int row_tile = 0;
  int splits = 0;
  int min_n = 0;
  int k_step = 0;
  int overlap = 0;
};
void SetDenseGemmConfig(const DenseGemmConfig& c);
DenseGemmConfig GetDenseGemmConfig();
// Dense GEMM tile extras (NVIDIA; kernels/matmul_dense.hip), 0 = the default
// (measured on the H100): tile224 = 1 lets the automatic row tile pick
// 128 x 224 where its waves of one block per SM fill the chip better than
// 128 x 256's (e.g. 14336 rows at n = 512), -1 never (DenseGemmConfig::row_tile
// = 224 forces it); stages = 3 or 4 pipeline stages for the 64-wide K steps of
// the 224 / 256 tiles; short_tile = 128 or 256: the row tile of grids short of
// one wave (K split), e.g. 4096 rows at n = 512. Global; read at each launch.
// swiglu_tile: the row tile of the fused gate / up + SwiGLU GEMM
// (LaunchGemmF16SwiGLU): 0 = the plain GEMM's rule, 128, 224 or 256 forced
// (DenseGemmConfig::row_tile, when set, overrides it).
struct DenseTileConfig {
  int tile224 = 0;
  int stages = 0;
  int short_tile = 0;
  int swiglu_tile = 0;
};
void SetDenseTileConfig(const DenseTileConfig& c);
DenseTileConfig GetDenseTileConfig();
// The Hopper dense GEMM (kernels/matmul_dense_wgmma.hip: TMA + wgmma, sm_90a)
// for LaunchGemmF16 / LaunchGemmF16SwiGLU where the device has it; off = the
// mma.sync kernel. Default on; RF_DENSE_WGMMA=0|1 in the environment sets it at
// start-up. A DenseGemmConfig that forces a row tile, K step or main loop (or
// DenseTileConfig::swiglu_tile, for the fused GEMM) keeps the mma.sync kernel.
// Global; read at each launch.
void SetDenseWgmma(bool on);
bool GetDenseWgmma();
// Shape of the small-batch matvec kernels, for benchmark sweeps: threads per
// weight row (0 = auto: 32 for rows of >= 8192 Q4_K/Q5_K/Q4_0 values on NVIDIA,
// else 64; or 32, 64, 128; widths other than 64 apply at batch 1 only) and,
// for Q4_K / Q5_K, one thread per 64-value pair of slices instead of per slice
// (for Q2_K / Q3_K per 128-value quad: a half-block's four 2-bit planes; for
// Q6_K per pair of slices sharing one ql run).
// Global; kernels already captured in a graph keep the shape they had.
// Since v6 (docs/gpu.md, "Batch-1 decode v6"): threads_per_row may also be 256,
// or -1 for the automatic choice of v5 (for comparisons); the automatic choice
// is per weight type. rows_per_thread (batch 1): each group of threads_per_row
// threads computes 1, 2 or 4 consecutive rows, loading each activation slice
// once for all of them (0 = auto, per type). prefetch_bytes: with PDL
// (SetPdl), the first bytes of each weight row a block asks L2 for before
// waiting on the previous kernel (0 = none; -1 = auto: 1024 for Q8_0, whose
// tg128 it raised by 1.7% on the H100, none for the other types, whose tg128
// it lowered).
// Since v7 (session 4): the automatic choice (threads_per_row 0) follows a
// per-type and per-shape table (kernels/matmul_small_batch_impl.h, V7Pick);
// threads_per_row -2 = the automatic choice of v6 (for comparisons: v6
// shapes, and neither of the two v7 kernels below).
// loads_per_thread (F32 / F16 / BF16 at batch 1): each thread issues this many
// 16-byte weight loads per row (1, 2 or 4) before it uses any (0 = auto, per
// type and shape; 1 is the v6 loop). q4_0_runs (Q4_0 at batch 1): one thread
// per 256-value run (8 blocks, 144 bytes) loaded as nine 16-byte loads and
// decoded from registers, activations as 16-byte loads too; needs cols % 256
// == 0 and 16-byte aligned weights and activations, else the slice kernel runs
// (1 = on, -1 = off, 0 = auto).
struct MatVecConfig {
  int threads_per_row = 0;
  bool pairs = true;
  int rows_per_thread = 0;
  int prefetch_bytes = -1;
  int loads_per_thread = 0;
  int q4_0_runs = 0;
  // The bulk-copy kernel for quantized weights at batch 1 (kernels/matvec_stream.hip,
  // NVIDIA sm_90+; an option, off by default: no faster in a decode step on the H100):
  // 1 = taken wherever it applies (any shape setting), 0 = never. Start-up value from
  // RF_MATVEC_STREAM=1 in the environment. Its ring per warp: stream_slots copies (0: 2; 2..8)
  // of stream_slot_bytes (0: ~3 KiB, rounded down to whole units), stream_warps
  // warps a block (0: 4; 1..8), at most stream_blocks_per_sm blocks an SM (0: as
  // many as fit); stream_early of a warp's first slots are requested before the
  // programmatic-dependent-launch wait (-1: all of them).
  int stream = 0;
  int stream_slots = 0;
  int stream_slot_bytes = 0;
  int stream_warps = 0;
  int stream_blocks_per_sm = 0;
  int stream_early = -1;
  // Q6_K pairs at batch 1 with a warp a row group (32 threads a row, 1 or 2
  // rows, NVIDIA): 1 = each warp's weights staged through its own shared
  // memory with coalesced 16-byte loads where the row width is a multiple of
  // 2048 and the weights are 16-byte aligned (bit-identical results), 0 = read
  // in place. kernels/matmul_small_batch_impl.h, MatVecQ6KStagedBody. With it
  // on, the automatic shape of such Q6_K weights with long rows or >= 8192
  // rows (the down projection, the output head) is 32 threads, one row.
  int q6k_staged = 1;
  // Batch-1 shape overrides by weight class (ShapeClass: the Llama-3-8B
  // Q4_K_M and Q8_0 launches), for sweeps inside a decode step (bench_gpu_decode
  // RF_SHAPES), where a launch follows a one-block kernel instead of a copy of
  // itself: threads per row (32, 64 or 128; 0 = the automatic shape), rows per
  // thread (1, 2 or 4), pairs (true) or single slices. NVIDIA only.
  struct Shape {
    int tpr = 0;
    int rpt = 1;
    bool pairs = true;
  };
  enum ShapeClass {
    kQ4KOutProj,    // Q4_K, rows of < 8192 values, <= 4096 rows (the attention output)
    kQ4KQkv,        // Q4_K, rows of < 8192 values, 4097..8191 rows (Q/K/V groups)
    kQ4KGateUp,     // Q4_K, rows of < 8192 values, >= 8192 rows (gate/up)
    kQ4KLongRows,   // Q4_K, rows of >= 8192 values (down)
    kQ6KLongRows,   // Q6_K, rows of >= 8192 values (down)
    kQ6KManyRows,   // Q6_K, rows of < 8192 values, >= 8192 rows (the output head)
    kQ80OutProj,    // Q8_0, rows of < 8192 values, <= 4096 rows
    kQ80Qkv,        // Q8_0, rows of < 8192 values, 4097..8191 rows
    kQ80GateUp,     // Q8_0, rows of < 8192 values, 8192..65535 rows
    kQ80LongRows,   // Q8_0, rows of >= 8192 values
    kQ80Head,       // Q8_0, rows of < 8192 values, >= 65536 rows (the output head)
    kShapeClasses
  };
  Shape shape[kShapeClasses] = {};
};
void SetMatVecConfig(const MatVecConfig& c);
MatVecConfig GetMatVecConfig();
// The two halves of the quantized small-batch path, so a caller can quantize an
// input once for several weights of the same kind (Q, K and V; gate and up).
// ActivationRule(type) names the rule; equal rules share quantized activations.
int ActivationRule(GgmlType type);  // 0 = float (no quantization), 1 = Q8_0, 2 = Q8_K
// `zero` as for the fused producers above (LaunchRmsNormQuantize).
void LaunchQuantizeActivation(GgmlType weight_type, const float* x, int64_t total, void* out,
                              Stream s, const ZeroSpans& zero = {});
// Batch 1, several weights of one quantized type and width reading the same
// quantized activation xq (Q, K and V; gate and up) in one launch:
// parts[i].y[r] = row r of parts[i].w . x. n_parts <= kMaxMatVecParts.
constexpr int kMaxMatVecParts = 3;
struct MatVecPart {
  const void* w = nullptr;
  float* y = nullptr;
  int64_t rows = 0;
};
void LaunchMatVecQuantizedGroup(GgmlType type, int64_t cols, const void* xq, const MatVecPart* parts,
                                int n_parts, Stream s);
// Whether a batch-1 launch of these parts (epilogue: the RoPE + KV store
// group) takes the bulk-copy kernel under the current MatVecConfig
// (kernels/matvec_stream.h says when it applies).
bool MatVecStreamTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue);
// The batch-1 launch of one weight (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) that also
// adds its rows into add_to: y[r] = row r of w . x, then add_to[r] += y[r],
// the float addition LaunchAdd would do (the residual add after the attention
// output / down projection, in the matvec's epilogue: each row has one owner).
// add_to must not overlap y or the weight.
void LaunchMatVecQuantizedAddTo(GgmlType type, int64_t cols, const void* xq, const MatVecPart& part,
                                float* add_to, Stream s);
// A batch-1 group launch that computes its own input (NVIDIA sm_90+, on the
// bulk-copy kernel of kernels/matvec_stream.hip whatever MatVecConfig::stream
// says): every block takes RMSNorm of x (f32 [cols], 16-byte aligned) times
// norm w and quantizes it by the type's activation rule into its own shared
// memory, instead of a norm kernel and a quantize kernel in front of the
// launch. The norm, the rounding and the integers are those of
// LaunchRmsNormQuantize bit for bit; block 0 also stores them to out (f32
// [cols]) and xq (MatMulScratchBytes(cols, 1)) where those are not null, so
// the launch leaves what the two kernels would. out and xq must not overlap x.
struct MatVecNormIn {
  const float* x = nullptr;
  const float* w = nullptr;
  float eps = 0.0f;
  float* out = nullptr;
  void* xq = nullptr;
};
// Whether LaunchMatVecGroupNormIn takes these parts (epilogue: with the RoPE +
// KV store). cols a multiple of 1024 (Q8_0, Q4_0) / 2048 (K-quants), <= 8192.
bool MatVecNormInTakes(GgmlType type, const MatVecPart* parts, int n_parts, int64_t cols, bool epilogue);
// rope null: plain group; else the Q/K/V group with the RoPE + KV store epilogue
// (LaunchMatVecQuantizedGroupRopeKv). False (nothing launched) where it does
// not apply.
struct MatVecRopeKv;
bool LaunchMatVecGroupNormIn(GgmlType type, int64_t cols, const MatVecNormIn& norm, const MatVecPart* parts,
                             int n_parts, const MatVecRopeKv* rope, Stream s);
// The same group launch for Q, K and V of one token (parts 0, 1, 2) with the
// RoPE + KV store folded into its epilogue: the block that sums rows 2i and
// 2i + 1 of a part rotates them (NORM pairs, head_dim / rot_dim as
// LaunchRopeStoreKv, at positions[0]) for Q and K, and stores K and V as f16
// at k_cache / v_cache row slots[0] (a row = parts[1].rows values). y holds
// what LaunchMatVecQuantizedGroup then LaunchRopeStoreKv (neox false) would
// leave, bit for bit. MatVecGroupRopeKvSupported says whether the launch can
// (quantized type whose chosen shape gives blocks an even number of rows,
// parts' rows whole heads, K and V the same rows); nothing runs otherwise.
struct MatVecRopeKv {
  const int32_t* positions = nullptr;
  const int32_t* slots = nullptr;
  int head_dim = 0, rot_dim = 0;
  float freq_base = 0.0f;
  uint16_t* k_cache = nullptr;
  uint16_t* v_cache = nullptr;
};
bool MatVecGroupRopeKvSupported(GgmlType type, int64_t cols, const MatVecPart* parts, int n_parts,
                                int head_dim, int rot_dim);
void LaunchMatVecQuantizedGroupRopeKv(GgmlType type, int64_t cols, const void* xq,
                                      const MatVecPart* parts, int n_parts, const MatVecRopeKv& r,
                                      Stream s);
// Batch 1, Q and K of one K-quant and V of another reading the same quantized
// x (Q4_K_M's layers with a Q6_K V) in one launch, with the RoPE + KV store
// epilogue when rope is not null (parts_a = Q, K): bit for bit the two group
// launches (and LaunchRopeStoreKv after them). False (nothing launched) where
// the shapes the two types take have no combined kernel (for now Q4_K pairs
// at 64 threads x 1 row with Q6_K at 128 x 2: the 8B layers' Q/K and V), the
// bulk-copy kernel is on, or the epilogue's conditions fail.
// head_dim > 0: also with the RoPE + KV store epilogue at these dims.
bool MatVecMixedGroupTakes(GgmlType type_a, const MatVecPart* parts_a, int n_a, GgmlType type_b,
                           const MatVecPart& part_b, int64_t cols, int head_dim = 0, int rot_dim = 0);
bool LaunchMatVecMixedGroup(GgmlType type_a, const MatVecPart* parts_a, int n_a, GgmlType type_b,
                            const MatVecPart& part_b, int64_t cols, const void* xq, const MatVecRopeKv* rope,
                            Stream s);
// n > kSmallBatchMax (the matrix-core GEMM, LaunchMatMulMma), several weights of
// one type and width reading the same float activations x[n][cols] (Q, K and V;
// gate and up): parts[i].y = x . parts[i].w^T in one launch whose grid holds
// the row tiles of every part and shares one K-split plan
// (kernels/gemm_parts.h). n_parts <= kMaxMatVecParts. Where the kernel chosen
// for (type, n) has no parts table (the v4 narrow kernel, GemmConfig::narrow
// = 2 or the automatic choice at 33..64 tokens), a device without matrix
// cores, or F32 weights, each part is launched on its own, exactly as
// LaunchMatMulMma. A part's result equals LaunchMatMulMma of that part bit for
// bit when neither splits K (GemmConfig::splits = 1); with K splits the group
// splits less (more blocks to fill the chip) and the atomics' order differs.
bool MatMulMmaGroupOneLaunch(GgmlType type, int64_t cols, int n, const MatVecPart* parts, int n_parts);
void LaunchMatMulMmaGroup(GgmlType type, int64_t cols, const float* x, int n, const MatVecPart* parts, int n_parts,
                          Stream s);
// ---- int8 matrix-core GEMM ("MMQ", kernels/matmul_mmq.hip) ----------------
// 1..128 tokens (the backend sends it kMmqMinTokens..128) of Q4_K / Q6_K weights multiplied on the int8 matrix cores with
// activations quantized ONCE per input by LaunchQuantizeActivation(type, x,
// n * cols, xq) (the Q8_K rule for these types; xq holds
// MatMulMmqScratchBytes(cols, n) bytes): no dequantization of the weights, the
// per-32 / per-16 scales are applied to the int32 sums. Same parts table as
// LaunchMatMulMmaGroup (n_parts <= kMaxMatVecParts, one launch). NVIDIA only
// (mma.sync s8); MatMulMmqTakes is false elsewhere. Selection: GemmConfig::narrow
// = 3 forces it wherever it applies (token_tile 16 / 32 / 64 / 128 picks the tile),
// 0 (auto) takes it for the (type, n) where it measured faster than v5, any
// other value never. With a K split (GemmConfig::splits != 1) y is zeroed and
// accumulated with atomics, as the other GEMMs.
constexpr int kMmqMaxTokens = 128;
static_assert(kDenseMinTokensResident == kMmqMaxTokens + 1, "the resident crossover follows MMQ's range");
// Batches from this size up take MMQ rather than the small-batch kernels, whose
// time grows with every token (each token's dot products are separate): H100,
// Llama-3-8B Q4_K_M step at 8 tokens 9.55 ms on them against 6.14 ms for 9
// tokens on MMQ's 16-token tile, at 4 tokens 6.09 ms (a tie: 4 stayed). With
// the row-owning MMQ kernel an 8-token step is 4.51 ms against 5.95 ms for 4
// tokens and 4.10 ms for 2 on the small-batch kernels; 4 tokens on MMQ took
// 4.96 ms even with a 15-35% slower MMQ variant (H100, 2026-11-26 10:59 UTC,
// `bench_gpu_decode Q4_K_M /tmp batch 32 512`; 3 tokens not timed): from 3
// tokens up MMQ is the cheaper path.
constexpr int kMmqMinTokens = 3;
bool MatMulMmqSupported(GgmlType type);  // whatever the config: the device and the type
bool MatMulMmqTakes(GgmlType type, const void* w, int64_t cols, int n);
size_t MatMulMmqScratchBytes(int64_t cols, int n);
void LaunchMatMulMmqGroup(GgmlType type, int64_t cols, const void* xq, int n, const MatVecPart* parts,
                          int n_parts, Stream s);
// n <= kSmallBatchMax; xq made by LaunchQuantizeActivation for n * cols values.
void LaunchMatMulSmallBatchQuantized(GgmlType type, const void* w, int64_t rows, int64_t cols,
                                     const void* xq, float* y, int n, Stream s);

// ---- paged KV cache and attention ------------------------------------------
// K/V of one layer: [num_blocks * block_size][kv_dim] as f16.
void LaunchStoreKv(const float* k, const float* v, const int32_t* slots, int n, int kv_dim,
                   uint16_t* k_cache, uint16_t* v_cache, Stream s);
// LaunchRope of q (n_heads heads) and of k (n_kv_heads heads), both at
// positions[n] with the same rotation, then LaunchStoreKv(k, v, slots): one
// launch, identical results. q may be null when n_heads == 0. head_dim and
// rot_dim even, rot_dim <= head_dim.
void LaunchRopeStoreKv(float* q, float* k, const float* v, const int32_t* positions,
                       const int32_t* slots, int n, int n_heads, int n_kv_heads, int head_dim,
                       int rot_dim, float freq_base, bool neox, uint16_t* k_cache,
                       uint16_t* v_cache, Stream s);

// Step metadata for attention, in device memory (uploaded once per step).
struct AttnBatch {
  const int32_t* token_seq = nullptr;    // [n_tokens] sequence index of each token
  const int32_t* token_ctx = nullptr;    // [n_tokens] keys visible to the token (pos + 1)
  const int32_t* seq_table_off = nullptr;  // [n_seqs] offset into block_tables
  const int32_t* block_tables = nullptr;   // concatenated block tables
  int n_tokens = 0;
  int max_ctx = 0;  // largest token_ctx (chooses the split count)
};
// Which kernel computes the prefill token tiles (kernels/attention_prefill.hip):
// kernel 0 = auto (the matrix-core kernel where DeviceHasMatrixCores, else the
// SIMT one), 1 = the matrix-core kernel (where the device has matrix cores),
// -1 = the SIMT kernel. Both give the same outputs within f16 rounding. The
// start-up value comes from RF_PREFILL_ATTN=mma|simt in the environment.
// Process-wide, read at each launch (graphs keep the kernel they captured).
struct PrefillAttnConfig {
  int kernel = 0;
};
void SetPrefillAttnConfig(const PrefillAttnConfig& c);
PrefillAttnConfig GetPrefillAttnConfig();
// Which kernel computes decode tokens (every token outside a prefill tile):
// kernel 0 = auto, 1 = the matrix-core decode kernel (NVIDIA mma.sync; head_dim
// 64 / 128, up to 8 query heads per KV-head block; other shapes and AMD take
// the SIMT one), -1 = the SIMT grouped kernel (kernels/attention_grouped.hip).
// min_tokens: auto takes the matrix-core kernel from this many tokens in the
// batch (0 = the built-in default); target_blocks: blocks its split rule aims
// for (0 = default). one_split_keys: with the default target, a step whose
// longest context (AttnBatch::max_ctx: a multiple of 256, or the value
// itself where it is under 256) is at most this many keys runs the matrix-core kernel unsplit, so its
// blocks also finish the output (no merge kernel); 0 = off. Outputs agree within f32
// rounding (the matrix-core kernel splits Q and the softmax weights into f16
// hi + lo parts). Start-up value from RF_DECODE_ATTN=mma|simt. Process-wide,
// read at each launch (the backend keys graphs by it).
struct DecodeAttnConfig {
  int kernel = 0;
  int min_tokens = 0;
  int target_blocks = 0;
  int one_split_keys = 256;
  // Warps a block of the matrix-core kernel's one-split launches whose
  // blocks all fit one to an SM: 8 (at <= 128 keys one 16-key tile a warp)
  // or 4 (every other launch's shape).
  int one_split_warps = 8;
};
void SetDecodeAttnConfig(const DecodeAttnConfig& c);
DecodeAttnConfig GetDecodeAttnConfig();
// Bytes of scratch Attention needs (split-K partial results).
size_t AttentionScratchBytes(int n_tokens, int n_heads, int head_dim, int max_ctx);
// Readies a newly allocated attention scratch buffer: zeroes the split
// counters at its head (the merge folded into the attention kernel counts
// finished splits there; every launch leaves them zero again). Call once per
// allocation, before its first attention launch, on the launching stream.
GpuStatus AttentionScratchInit(void* scratch, size_t bytes, Stream s);
// Whether the decode attention merges its split-K partials inside the
// attention kernel (the last split of a head chunk to finish merges, and
// quantizes for LaunchAttentionQuantize) instead of in a merge kernel: one
// kernel fewer per layer, bit-identical outputs. Read at launch time
// (process-wide; graphs are keyed by it). Default off: measured ~1.5% slower
// at tg128 on the H100 (kernels/attention.hip).
void SetAttentionMergeFold(bool on);
bool GetAttentionMergeFold();
// out[t][h*head_dim..] = softmax(q.K^T * scale) V over the token's visible keys;
// q head h reads kv head h / (n_heads / n_kv_heads). head_dim <= 256, even.
void LaunchAttention(const float* q, float* out, const AttnBatch& b, int n_heads, int n_kv_heads,
                     int head_dim, float scale, const uint16_t* k_cache, const uint16_t* v_cache,
                     int block_size, void* scratch, Stream s);
// LaunchAttention, then xq = LaunchQuantizeActivation(weight_type, out,
// n_tokens * n_heads * head_dim) for the output projection, the quantization
// folded into the split-K merge kernel where there is one. Needs
// AttentionQuantizeSupported (a quantized weight type; n_heads * head_dim a
// multiple of 256). `zero` (optional): spans also set to 0.0f (the output
// projection's K-split outputs), by the merge kernel where there is one, else
// by the quantization or a launch of their own; the other results are the same.
bool AttentionQuantizeSupported(GgmlType weight_type, int n_heads, int head_dim);
void LaunchAttentionQuantize(const float* q, float* out, const AttnBatch& b, int n_heads,
                             int n_kv_heads, int head_dim, float scale, const uint16_t* k_cache,
                             const uint16_t* v_cache, int block_size, void* scratch,
                             GgmlType weight_type, void* xq, Stream s,
                             const ZeroSpans& zero = {});

// ---- sampling ----------------------------------------------------------------
// Per-row parameters in device memory.
struct SampleRowParams {
  float temperature;   // <= 0: greedy
  int32_t top_k;       // 0: off
  float top_p;         // 1: off
  float min_p;         // 0: off
  float repetition_penalty;  // 1: off
  int32_t recent_offset;     // into the recent-token array
  int32_t recent_count;
  int32_t n_top_logprobs;    // <= kMaxTopLogprobs
  uint64_t seed;
  uint64_t step;
};
constexpr int kMaxTopLogprobs = 20;
struct SampleRowResult {
  int32_t token;
  float logprob;
  int32_t top_ids[kMaxTopLogprobs];
  float top_logprobs[kMaxTopLogprobs];
  int32_t path;  // diagnostics: which SamplePath picked the token
};
// How a row's token was picked (SampleRowResult::path; tests and benches).
enum SamplePath : int32_t {
  kSamplePathArgmax = 0,       // greedy, or no finite logit
  kSamplePathList = 1,         // the candidate list of the histogram pass
  kSamplePathRefine = 2,       // wide row: the deciding bins refined until they fit the list
  kSamplePathSingleBlock = 3,  // wide row: single-block radix selects (the old path)
};
// Rows whose outcome needs more candidates than the sorted list holds (near-flat
// logits, large top-k): refine the deciding bins (default) or, with
// refine_wide_rows off, the single-block radix selects (for before/after timings).
struct SampleConfig {
  bool refine_wide_rows = true;
  // The refinement's passes over a row issue 8 loads per thread before using
  // them. On: H100, 2026-11-26 07:03 UTC, a flat 128k row 98 vs 117 us
  // (temperature) and 161 vs 197 us (top-p), tg128 sampled 320.1 vs 318.1 tok/s.
  bool batched_row_passes = true;
};
void SetSampleConfig(const SampleConfig& c);
SampleConfig GetSampleConfig();
// `scratch` holds SampleScratchBytes(n_rows, vocab).
size_t SampleScratchBytes(int n_rows, int vocab);
void LaunchSample(const float* logits, int n_rows, int vocab, const SampleRowParams* params,
                  const int32_t* recent, SampleRowResult* results, void* scratch, Stream s);
// The same result as LaunchSample for rows that are all greedy with no
// repetition penalty and no top logprobs (token and logprob only), computed by
// many blocks per row instead of one.
void LaunchSampleGreedy(const float* logits, int n_rows, int vocab, SampleRowResult* results,
                        void* scratch, Stream s);

}  // namespace rocmforge::gpu
