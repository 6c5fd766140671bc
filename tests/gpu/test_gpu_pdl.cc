// Programmatic dependent launch (gpu::SetPdl): a long chain of dependent
// decode kernels (embedding, AddRmsNorm + quantize, grouped matvec, RoPE + KV
// store, SwiGLU + quantize, matvec, add, greedy sampler), with memsets, device
// copies and ordinary (non-PDL) kernels between them, run with PDL off, with
// PDL on, and with PDL on captured in a graph and replayed: every result must
// be bit-identical, so a kernel that read its input before the previous kernel
// finished would show. Also: the batch-1 matvec shapes (rows per thread, L2
// prefetch) give the default shape's results.
#include <cstring>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

#define ASSERT_GPU(x)                     \
  do {                                    \
    const gpu::GpuStatus st_ = (x);       \
    ASSERT_TRUE(st_.ok) << st_.message;   \
  } while (0)

// Device copy of host bytes.
void* Upload(const void* p, size_t bytes, gpu::Stream s) {
  void* d = nullptr;
  EXPECT_TRUE(gpu::Malloc(&d, bytes).ok);
  EXPECT_TRUE(gpu::CopyToDevice(d, p, bytes, s).ok);
  return d;
}
template <typename T>
std::vector<T> Download(const void* d, size_t n, gpu::Stream s) {
  std::vector<T> v(n);
  EXPECT_TRUE(gpu::CopyToHost(v.data(), d, n * sizeof(T), s).ok);
  EXPECT_TRUE(gpu::StreamSync(s).ok);
  return v;
}

// Shapes of the chain: a small Llama-like layer, repeated.
constexpr int kDim = 512, kFf = 1536, kHeads = 4, kKvHeads = 2, kHeadDim = 64;
constexpr int kKvDim = kKvHeads * kHeadDim, kVocab = 300, kRounds = 50, kSlots = 64;
constexpr GgmlType kW = GgmlType::Q4_K;

struct Chain {
  gpu::Stream s = nullptr;
  // weights
  void *embd = nullptr, *wg = nullptr, *wu = nullptr, *wd = nullptr, *wt = nullptr;
  float* norm_w = nullptr;
  // activations
  float *x = nullptr, *res = nullptr, *h = nullptr, *a = nullptr, *b = nullptr, *g = nullptr,
        *t = nullptr, *res_copy = nullptr;
  void *xq = nullptr, *gq = nullptr, *sample_scratch = nullptr;
  uint16_t *k_cache = nullptr, *v_cache = nullptr;
  int32_t *token = nullptr, *positions = nullptr, *slots = nullptr;
  gpu::SampleRowResult* result = nullptr;
  std::vector<void*> owned;

  template <typename T>
  T* Alloc(size_t n) {
    void* p = nullptr;
    EXPECT_TRUE(gpu::Malloc(&p, n * sizeof(T) + 256).ok);
    owned.push_back(p);
    return static_cast<T*>(p);
  }
  ~Chain() {
    for (void* p : owned) gpu::Free(p);
  }

  // The whole chain; every kernel reads what the one before it wrote.
  void Run() {
    (void)gpu::Memset(k_cache, 0, size_t{kSlots} * kKvDim * 2, s);
    (void)gpu::Memset(v_cache, 0, size_t{kSlots} * kKvDim * 2, s);
    gpu::LaunchEmbed(GgmlType::Q8_0, embd, kVocab, kDim, token, 1, x, s);
    (void)gpu::Memset(res, 0, kDim * sizeof(float), s);  // a memset right before a PDL kernel
    for (int i = 0; i < kRounds; ++i) {
      gpu::LaunchAddRmsNormQuantize(x, res, norm_w, h, 1, kDim, 1e-5f, kW, xq, s);
      const gpu::MatVecPart parts[2] = {{wg, a, kFf}, {wu, b, kFf}};
      gpu::LaunchMatVecQuantizedGroup(kW, kDim, xq, parts, 2, s);
      // Q = a[0..256), K = b[0..128), V = b[128..256); K/V into slot slots[i].
      gpu::LaunchRopeStoreKv(a, b, b + kKvDim, positions + i, slots + i, 1, kHeads, kKvHeads,
                             kHeadDim, kHeadDim, 10000.0f, i % 2 == 0, k_cache, v_cache, s);
      gpu::LaunchSwiGLUQuantize(a, b, g, kFf, kW, gq, s);
      gpu::LaunchMatMulSmallBatchQuantized(kW, wd, kDim, kFf, gq, res, 1, s);
      if (i % 5 == 4) {  // a device copy, then a PDL kernel reading it
        (void)gpu::CopyDeviceToDevice(res_copy, res, kDim * sizeof(float), s);
        gpu::LaunchAdd(res, res_copy, kDim, s);
      }
      if (i % 7 == 6) {  // an ordinary kernel between PDL kernels
        gpu::LaunchMatMulTiled(GgmlType::F32, wt, kDim, kDim, h, t, 1, s);
        gpu::LaunchAdd(res, t, kDim, s);
      }
      if (i % 10 == 9) (void)gpu::Memset(t, 0, kDim * sizeof(float), s);
    }
    gpu::LaunchRmsNorm(x, norm_w, h, 1, kDim, 1e-5f, s);
    gpu::LaunchSampleGreedy(h, 1, kVocab, result, sample_scratch, s);
  }

  struct Out {
    std::vector<float> x, res, h;
    std::vector<uint16_t> k, v;
    int32_t token = -1;
  };
  Out Read() {
    Out o;
    o.x = Download<float>(x, kDim, s);
    o.res = Download<float>(res, kDim, s);
    o.h = Download<float>(h, kDim, s);
    o.k = Download<uint16_t>(k_cache, size_t{kSlots} * kKvDim, s);
    o.v = Download<uint16_t>(v_cache, size_t{kSlots} * kKvDim, s);
    o.token = Download<gpu::SampleRowResult>(result, 1, s)[0].token;
    return o;
  }
};

void ExpectSame(const Chain::Out& got, const Chain::Out& want, const char* what) {
  auto same = [](const auto& a, const auto& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
  };
  EXPECT_TRUE(same(got.x, want.x)) << what << ": residual stream differs";
  EXPECT_TRUE(same(got.res, want.res)) << what << ": FFN output differs";
  EXPECT_TRUE(same(got.h, want.h)) << what << ": final norm differs";
  EXPECT_TRUE(same(got.k, want.k)) << what << ": K cache differs";
  EXPECT_TRUE(same(got.v, want.v)) << what << ": V cache differs";
  EXPECT_EQ(got.token, want.token) << what;
}

TEST(GpuPdl, LongDependentChainMatchesWithoutPdl) {
  RF_REQUIRE_GPU(gpu);
  const GpuConfigGuard restore_settings;
  std::mt19937 rng(std::random_device{}());
  Chain c;
  ASSERT_GPU(gpu::StreamCreate(&c.s));
  const HostTensor embd = MakeTensor(rng, GgmlType::Q8_0, kVocab, kDim);
  const HostTensor wg = MakeTensor(rng, kW, kFf, kDim, 0.1f);
  const HostTensor wu = MakeTensor(rng, kW, kFf, kDim, 0.1f);
  const HostTensor wd = MakeTensor(rng, kW, kDim, kFf, 0.05f);
  const std::vector<float> wt = RandomVec(rng, size_t{kDim} * kDim, 0.02f);
  const std::vector<float> norm_w = RandomVec(rng, kDim, 1.0f);
  c.embd = Upload(embd.bytes.data(), embd.bytes.size(), c.s);
  c.wg = Upload(wg.bytes.data(), wg.bytes.size(), c.s);
  c.wu = Upload(wu.bytes.data(), wu.bytes.size(), c.s);
  c.wd = Upload(wd.bytes.data(), wd.bytes.size(), c.s);
  c.wt = Upload(wt.data(), wt.size() * sizeof(float), c.s);
  c.norm_w = static_cast<float*>(Upload(norm_w.data(), kDim * sizeof(float), c.s));
  for (void* p : {c.embd, c.wg, c.wu, c.wd, c.wt, static_cast<void*>(c.norm_w)}) c.owned.push_back(p);
  c.x = c.Alloc<float>(kDim);
  c.res = c.Alloc<float>(kDim);
  c.h = c.Alloc<float>(kDim);
  c.a = c.Alloc<float>(kFf);
  c.b = c.Alloc<float>(kFf);
  c.g = c.Alloc<float>(kFf);
  c.t = c.Alloc<float>(kDim);
  c.res_copy = c.Alloc<float>(kDim);
  c.xq = c.Alloc<uint8_t>(gpu::MatMulScratchBytes(kDim, 1));
  c.gq = c.Alloc<uint8_t>(gpu::MatMulScratchBytes(kFf, 1));
  c.sample_scratch = c.Alloc<uint8_t>(gpu::SampleScratchBytes(1, kVocab));
  c.k_cache = c.Alloc<uint16_t>(size_t{kSlots} * kKvDim);
  c.v_cache = c.Alloc<uint16_t>(size_t{kSlots} * kKvDim);
  c.result = c.Alloc<gpu::SampleRowResult>(1);
  std::vector<int32_t> host_i(kRounds);
  const int32_t token = static_cast<int32_t>(rng() % kVocab);
  c.token = static_cast<int32_t*>(Upload(&token, sizeof(token), c.s));
  for (int i = 0; i < kRounds; ++i) host_i[i] = 100 + 41 * i;  // positions
  c.positions = static_cast<int32_t*>(Upload(host_i.data(), kRounds * sizeof(int32_t), c.s));
  for (int i = 0; i < kRounds; ++i) host_i[i] = (i * 7) % kSlots;  // slots, some reused
  c.slots = static_cast<int32_t*>(Upload(host_i.data(), kRounds * sizeof(int32_t), c.s));
  for (void* p : {static_cast<void*>(c.token), static_cast<void*>(c.positions),
                  static_cast<void*>(c.slots)}) {
    c.owned.push_back(p);
  }
  ASSERT_GPU(gpu::StreamSync(c.s));

  gpu::SetPdl(false);
  c.Run();
  ASSERT_GPU(gpu::LastLaunchError());
  const Chain::Out want = c.Read();
  // The chain really computes something: finite, not constant.
  double ss = 0.0;
  for (float v : want.h) ss += double(v) * v;
  ASSERT_TRUE(std::isfinite(ss) && ss > 0.0);
  ASSERT_NE(want.x[0], want.x[1]);

  gpu::SetPdl(true);
  for (int rep = 0; rep < 3; ++rep) {
    c.Run();
    ASSERT_GPU(gpu::LastLaunchError());
    ExpectSame(c.Read(), want, "PDL on, direct launches");
  }

  // Captured once, replayed: the programmatic edges live in the graph.
  ASSERT_GPU(gpu::BeginCapture(c.s));
  c.Run();
  gpu::GraphExec exec = nullptr;
  ASSERT_GPU(gpu::EndCapture(c.s, &exec));
  for (int rep = 0; rep < 5; ++rep) {
    ASSERT_GPU(gpu::Memset(c.x, 0xff, kDim * sizeof(float), c.s));  // NaN: stale data would show
    ASSERT_GPU(gpu::Memset(c.h, 0xff, kDim * sizeof(float), c.s));
    ASSERT_GPU(gpu::GraphLaunch(exec, c.s));
    ExpectSame(c.Read(), want, "PDL on, graph replay");
  }
  gpu::GraphDestroy(exec);
  ASSERT_GPU(gpu::StreamSync(c.s));
  gpu::StreamDestroy(c.s);
}

// Every batch-1 matvec shape (threads per row x rows per thread, with and
// without the L2 prefetch) gives the default shape's result (the default is
// checked against the CPU in test_gpu_matmul.cc), at rows that are not a
// multiple of any block, PDL on.
TEST(GpuPdl, MatVecShapesAgree) {
  RF_REQUIRE_GPU(gpu);
  const GpuConfigGuard restore_settings;
  gpu::SetPdl(true);
  std::mt19937 rng(std::random_device{}());
  gpu::Stream s = gpu->stream();
  for (GgmlType type : {GgmlType::F16, GgmlType::F32, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K,
                        GgmlType::Q5_K, GgmlType::Q6_K}) {
    const int64_t rows = 203, cols = 2816;
    const HostTensor t = MakeTensor(rng, type, rows, cols);
    void* w = Upload(t.bytes.data(), t.bytes.size(), s);
    const std::vector<float> x = RandomVec(rng, cols);
    void* xd = Upload(x.data(), x.size() * sizeof(float), s);
    void* scratch = nullptr;
    ASSERT_GPU(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(cols, 1)));
    void* y = nullptr;
    ASSERT_GPU(gpu::Malloc(&y, rows * sizeof(float)));
    auto run = [&](const gpu::MatVecConfig& cfg) {
      gpu::SetMatVecConfig(cfg);
      (void)gpu::Memset(y, 0xff, rows * sizeof(float), s);
      gpu::LaunchMatMulSmallBatch(type, w, rows, cols, static_cast<const float*>(xd),
                                  static_cast<float*>(y), 1, scratch, s);
      EXPECT_TRUE(gpu::LastLaunchError().ok);
      return Download<float>(y, rows, s);
    };
    for (int tpr : {32, 64, 128, 256}) {
      for (bool pairs : {false, true}) {
        gpu::MatVecConfig base;
        base.threads_per_row = tpr;
        base.pairs = pairs;
        base.rows_per_thread = 1;
        base.prefetch_bytes = 0;
        const std::vector<float> want = run(base);
        for (int rpt : {1, 2, 4}) {
          for (int prefetch : {-1, 0, 1000, 1 << 20}) {
            gpu::MatVecConfig cfg = base;
            cfg.rows_per_thread = rpt;
            cfg.prefetch_bytes = prefetch;
            const std::vector<float> got = run(cfg);
            EXPECT_LE(RelErr(got, want), 1e-6) << TypeName(type) << " tpr " << tpr << " pairs "
                                               << pairs << " rpt " << rpt << " prefetch " << prefetch;
          }
        }
      }
    }
    for (void* p : {w, xd, scratch, y}) gpu::Free(p);
  }
}

}  // namespace
}  // namespace rocmforge::gputest
