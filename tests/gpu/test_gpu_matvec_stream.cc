// The bulk-copy batch-1 matrix x vector (kernels/matvec_stream.hip, sm_90+):
// against the CPU backend and the portable kernels at awkward row counts (1,
// 3, odd, past a wave of warps) and every width class (one unit, the Llama
// widths, many units a row); every ring setting (slots, slot bytes, warps a
// block, blocks an SM) must give the default setting's rows bit for bit (a
// row's sum is formed the same way whichever warp owns it), so must a group
// launch against single launches; and where the kernel does not apply
// (misaligned weights, widths that are not whole units) the launch falls back
// to the portable kernels and stays correct. Outputs start as NaN; weights and
// inputs are fresh random values each run.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gpu_api.h"
#include "tests/gpu/gpu_config_guard.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

class GpuMatVecStream : public ::testing::TestWithParam<TypeCase> {};

// Weights of a unit (32 lane items): 1024 for Q8_0 / Q4_0, 2048 for the K-quants.
int64_t UnitWeights(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 ? 1024 : 2048; }

gpu::MatVecConfig Forced(int slots = 0, int slot_bytes = 0, int warps = 0, int per_sm = 0, int early = -1) {
  gpu::MatVecConfig c;
  c.stream = 1;
  c.stream_slots = slots;
  c.stream_slot_bytes = slot_bytes;
  c.stream_warps = warps;
  c.stream_blocks_per_sm = per_sm;
  c.stream_early = early;
  return c;
}

std::string Describe(const gpu::MatVecConfig& c) {
  return "slots " + std::to_string(c.stream_slots) + " slot bytes " + std::to_string(c.stream_slot_bytes) +
         " warps " + std::to_string(c.stream_warps) + " blocks/SM " + std::to_string(c.stream_blocks_per_sm) + " early " + std::to_string(c.stream_early);
}

// Random weights of a group's parts (rows each, cols wide) loaded on the GPU,
// the CPU's product of each with x, and NaN-filled GPU outputs with the parts
// that write them.
struct GroupCase {
  std::vector<HostTensor> tensors;
  std::vector<Weight> weights;
  std::vector<std::vector<float>> want;
  std::vector<std::unique_ptr<Buf>> out;
  gpu::MatVecPart parts[gpu::kMaxMatVecParts];
};
void MakeGroupCase(std::mt19937& rng, Backend* gpu, Backend* cpu, GgmlType type, const std::vector<int64_t>& rows,
                   int64_t cols, const std::vector<float>& x, GroupCase* g) {
  for (size_t i = 0; i < rows.size(); ++i) {
    g->tensors.push_back(MakeTensor(rng, type, rows[i], cols));
    auto wg = gpu->LoadWeight(g->tensors.back().info);
    auto wc = cpu->LoadWeight(g->tensors.back().info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    g->weights.push_back(*wg);
    g->want.push_back(CpuMatMul(cpu, *wc, x, 1));
    g->out.push_back(std::make_unique<Buf>(gpu, std::vector<float>(rows[i], std::nanf(""))));
    g->parts[i] = gpu::MatVecPart{wg->data, g->out.back()->p, rows[i]};
  }
}
// The same parts writing fresh NaN-filled outputs.
void MoreOutputs(Backend* gpu, const GroupCase& g, std::vector<std::unique_ptr<Buf>>* out, gpu::MatVecPart* parts) {
  for (size_t i = 0; i < g.weights.size(); ++i) {
    out->push_back(std::make_unique<Buf>(gpu, std::vector<float>(g.parts[i].rows, std::nanf(""))));
    parts[i] = gpu::MatVecPart{g.weights[i].data, out->back()->p, g.parts[i].rows};
  }
}

TEST_P(GpuMatVecStream, MatchesCpuPortableAndItself) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  const TypeCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const int64_t u = UnitWeights(c.type);
  const int64_t odd_rows = 37 + static_cast<int64_t>(rng() % 300) * 2 + 1;
  struct Shape {
    int64_t rows, cols;
  };
  // With 2 warps a block and 1 block an SM (a setting below), 4097 rows give
  // every warp ~16 rows: long runs through the ring, as a big matrix does.
  for (Shape sh : {Shape{1, u}, Shape{3, 4096}, Shape{odd_rows, 14336}, Shape{4097, 4096}, Shape{odd_rows, 7 * u}}) {
    HostTensor t = MakeTensor(rng, c.type, sh.rows, sh.cols);
    auto wg = gpu->LoadWeight(t.info);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wg.ok()) << wg.status();
    ASSERT_TRUE(wc.ok()) << wc.status();
    const gpu::MatVecPart probe{wg->data, nullptr, sh.rows};
    gpu::SetMatVecConfig(Forced());
    if (!gpu::MatVecStreamTakes(c.type, &probe, 1, sh.cols, false)) {
      GTEST_SKIP() << "the bulk-copy kernel needs an sm_90 device and code (or the weight is not 16-byte aligned)";
    }
    const auto x = RandomVec(rng, size_t(sh.cols));
    Buf xg(gpu.get(), x);
    void* scratch = nullptr;
    ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(sh.cols, 1)).ok);
    auto run = [&](const gpu::MatVecConfig& cfg) {
      gpu::SetMatVecConfig(cfg);
      Buf yg(gpu.get(), std::vector<float>(size_t(sh.rows), std::nanf("")));
      gpu::LaunchMatMulSmallBatch(wg->type, wg->data, sh.rows, sh.cols, xg.p, yg.p, 1, scratch, gpu->stream());
      EXPECT_TRUE(gpu::LastLaunchError().ok);
      EXPECT_TRUE(gpu->Synchronize().ok());
      return yg.Get();
    };
    const std::string what = std::string(TypeName(c.type)) + " rows " + std::to_string(sh.rows) + " cols " +
                             std::to_string(sh.cols);
    const std::vector<float> want = CpuMatMul(cpu.get(), *wc, x, 1);
    const std::vector<float> def = run(Forced());
    EXPECT_LE(RelErr(def, want), c.tol) << "stream, " << what;
    gpu::MatVecConfig portable;  // the default settings: the portable kernels
    EXPECT_LE(RelErr(def, run(portable)), c.tol) << "stream vs portable, " << what;
    // Every setting fits in shared memory (8 warps x 8 slots x 3 KiB is the largest).
    for (const gpu::MatVecConfig& cfg : {Forced(2, 0, 1, 0), Forced(8, 3072, 8, 0), Forced(3, 1, 2, 1, 0),
                                         Forced(4, 6000, 4, 2, 2), Forced(5, 0, 3, 0, 1)}) {
      EXPECT_EQ(run(cfg), def) << Describe(cfg) << ", " << what;
    }
    gpu::Free(scratch);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GpuMatVecStream,
                         ::testing::Values(TypeCase{GgmlType::Q4_0, 1e-2}, TypeCase{GgmlType::Q8_0, 1e-2},
                                           TypeCase{GgmlType::Q4_K, 1e-2}, TypeCase{GgmlType::Q5_K, 1e-2},
                                           TypeCase{GgmlType::Q6_K, 1e-2}),
                         TypeCaseName);

// A group launch of three parts (odd sizes, one of them shorter than a wave
// of warps) equals each part launched alone, bit for bit, and the CPU.
TEST(GpuMatVecStreamGroup, GroupEqualsSingleLaunches) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    const int64_t cols = 4096;
    const std::vector<int64_t> part_rows = {4096 + 1 + static_cast<int64_t>(rng() % 512), 17, 1023};
    const auto x = RandomVec(rng, size_t(cols));
    Buf xg(gpu.get(), x);
    void* xq = nullptr;
    ASSERT_TRUE(gpu::Malloc(&xq, gpu::MatMulScratchBytes(cols, 1)).ok);
    gpu::LaunchQuantizeActivation(type, xg.p, cols, xq, gpu->stream());
    GroupCase g;
    MakeGroupCase(rng, gpu.get(), cpu.get(), type, part_rows, cols, x, &g);
    if (::testing::Test::HasFatalFailure()) return;
    gpu::SetMatVecConfig(Forced());
    std::vector<std::unique_ptr<Buf>> single;
    gpu::MatVecPart single_parts[gpu::kMaxMatVecParts];
    MoreOutputs(gpu.get(), g, &single, single_parts);
    if (!gpu::MatVecStreamTakes(type, g.parts, 3, cols, false)) {
      GTEST_SKIP() << "the bulk-copy kernel needs an sm_90 device and code";
    }
    const gpu::MatVecPart* ps = g.parts;
    gpu::LaunchMatVecQuantizedGroup(type, cols, xq, ps, 3, gpu->stream());
    for (size_t i = 0; i < part_rows.size(); ++i) {
      gpu::LaunchMatMulSmallBatchQuantized(type, single_parts[i].w, part_rows[i], cols, xq, single_parts[i].y, 1,
                                           gpu->stream());
    }
    EXPECT_TRUE(gpu::LastLaunchError().ok);
    ASSERT_TRUE(gpu->Synchronize().ok());
    for (size_t i = 0; i < part_rows.size(); ++i) {
      const std::vector<float> got = g.out[i]->Get();
      EXPECT_EQ(got, single[i]->Get()) << TypeName(type) << " part " << i;
      EXPECT_LE(RelErr(got, g.want[i]), 1e-2) << TypeName(type) << " part " << i;
    }
    gpu::Free(xq);
  }
}

// Where the kernel does not apply it is not taken, and the launch is still
// right: a weight 2 bytes off 16-byte alignment (Q8_0 rows are 34-byte
// blocks), and widths that are no whole number of units.
TEST(GpuMatVecStreamGroup, FallsBackWhereItDoesNotApply) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  gpu::SetMatVecConfig(Forced());
  struct Case {
    GgmlType type;
    int64_t cols;
    size_t offset;
  };
  for (Case k : {Case{GgmlType::Q8_0, 4096, 34}, Case{GgmlType::Q8_0, 800, 0}, Case{GgmlType::Q4_K, 4096 + 256, 0},
                 Case{GgmlType::Q6_K, 256, 0}}) {
    const int64_t rows = 33 + static_cast<int64_t>(rng() % 100);
    HostTensor t = MakeTensor(rng, k.type, rows, k.cols);
    auto wc = cpu->LoadWeight(t.info);
    ASSERT_TRUE(wc.ok()) << wc.status();
    DevMem wmem(t.bytes.size() + 64);
    uint8_t* w = static_cast<uint8_t*>(wmem.p) + k.offset;
    ASSERT_TRUE(gpu::CopyToDevice(w, t.bytes.data(), t.bytes.size(), gpu->stream()).ok);
    const gpu::MatVecPart part{w, nullptr, rows};
    EXPECT_FALSE(gpu::MatVecStreamTakes(k.type, &part, 1, k.cols, false))
        << TypeName(k.type) << " cols " << k.cols << " offset " << k.offset;
    const auto x = RandomVec(rng, size_t(k.cols));
    Buf xg(gpu.get(), x), yg(gpu.get(), std::vector<float>(size_t(rows), std::nanf("")));
    void* scratch = nullptr;
    ASSERT_TRUE(gpu::Malloc(&scratch, gpu::MatMulScratchBytes(k.cols, 1)).ok);
    gpu::LaunchMatMulSmallBatch(k.type, w, rows, k.cols, xg.p, yg.p, 1, scratch, gpu->stream());
    EXPECT_TRUE(gpu::LastLaunchError().ok);
    ASSERT_TRUE(gpu->Synchronize().ok());
    EXPECT_LE(RelErr(yg.Get(), CpuMatMul(cpu.get(), *wc, x, 1)), 1e-2)
        << TypeName(k.type) << " cols " << k.cols << " offset " << k.offset;
    gpu::Free(scratch);
  }
}

// The group launch with the input's RMSNorm + quantization inside every block
// (LaunchMatVecGroupNormIn) against the CPU (RmsNorm then the product) and
// against the GPU's own RmsNorm + quantize kernel + the same kernel's group
// launch: the stored row and its quantized form bit for bit, and so the
// products, for every type, at a Q/K/V-like group of odd parts and a long part.
TEST(GpuMatVecStreamGroup, RmsNormInEveryBlockMatchesSeparateNorm) {
  RF_REQUIRE_GPU(gpu);
  auto cpu = MakeCpu();
  std::mt19937 rng(std::random_device{}());
  const GpuConfigGuard restore_settings;
  const int64_t cols = 4096;
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::vector<int64_t> part_rows = {1023 + static_cast<int64_t>(rng() % 64), 5, 4097};
    HostTensor nw = MakeTensor(rng, GgmlType::F32, 1, cols);
    auto nwg = gpu->LoadWeight(nw.info);
    auto nwc = cpu->LoadWeight(nw.info);
    ASSERT_TRUE(nwg.ok() && nwc.ok());
    const auto x = RandomVec(rng, size_t(cols), 2.0f);
    Buf xg(gpu.get(), x), xc(cpu.get(), x), hc(cpu.get(), size_t(cols)), hg(gpu.get(), size_t(cols));
    cpu->RmsNorm(xc.p, *nwc, hc.p, 1, static_cast<int>(cols), 1e-5f);
    const std::vector<float> h = hc.Get();
    GroupCase g;
    MakeGroupCase(rng, gpu.get(), cpu.get(), type, part_rows, cols, h, &g);
    if (::testing::Test::HasFatalFailure()) return;
    std::vector<std::unique_ptr<Buf>> separate;
    gpu::MatVecPart psep[gpu::kMaxMatVecParts];
    MoreOutputs(gpu.get(), g, &separate, psep);
    if (!gpu::MatVecNormInTakes(type, g.parts, 3, cols, false)) {
      GTEST_SKIP() << "the bulk-copy kernel needs an sm_90 device and code";
    }
    const size_t xq_bytes = gpu::MatMulScratchBytes(cols, 1);
    DevMem xq_in_mem(xq_bytes), xq_sep_mem(xq_bytes);
    void *const xq_in = xq_in_mem.p, *const xq_sep = xq_sep_mem.p;
    ASSERT_TRUE(xq_in != nullptr && xq_sep != nullptr);
    const std::vector<uint8_t> fill(xq_bytes, 0xa5);  // bytes past the row's blocks compare equal
    ASSERT_TRUE(gpu->Upload(xq_in, fill.data(), xq_bytes).ok() && gpu->Upload(xq_sep, fill.data(), xq_bytes).ok());
    Buf h_in(gpu.get(), std::vector<float>(size_t(cols), std::nanf("")));
    gpu::MatVecNormIn norm;
    norm.x = xg.p;
    norm.w = static_cast<const float*>(nwg->data);
    norm.eps = 1e-5f;
    norm.out = h_in.p;
    norm.xq = xq_in;
    ASSERT_TRUE(gpu::LaunchMatVecGroupNormIn(type, cols, norm, g.parts, 3, nullptr, gpu->stream()));
    // The kernel API, not the backend op (which the backend holds back for
    // fusion); the group on the bulk-copy kernel, as the norm-in launch.
    gpu::LaunchRmsNormQuantize(xg.p, norm.w, hg.p, 1, static_cast<int>(cols), 1e-5f, type, xq_sep, gpu->stream());
    gpu::SetMatVecConfig(Forced());
    gpu::LaunchMatVecQuantizedGroup(type, cols, xq_sep, psep, 3, gpu->stream());
    EXPECT_TRUE(gpu::LastLaunchError().ok);
    ASSERT_TRUE(gpu->Synchronize().ok());
    EXPECT_TRUE(h_in.Get() == hg.Get()) << TypeName(type) << " stored row";
    std::vector<uint8_t> q_in(xq_bytes), q_sep(xq_bytes);
    ASSERT_TRUE(gpu->Download(q_in.data(), xq_in, xq_bytes).ok());
    ASSERT_TRUE(gpu->Download(q_sep.data(), xq_sep, xq_bytes).ok());
    EXPECT_TRUE(q_in == q_sep) << TypeName(type) << " stored quantized row";
    for (size_t i = 0; i < part_rows.size(); ++i) {
      const std::vector<float> got = g.out[i]->Get();
      EXPECT_LE(RelErr(got, g.want[i]), 1e-2) << TypeName(type) << " part " << i << " vs CPU";
      EXPECT_TRUE(got == separate[i]->Get()) << TypeName(type) << " part " << i << " vs separate norm";
    }
    gpu::SetMatVecConfig(gpu::MatVecConfig{});
  }
}

}  // namespace
}  // namespace rocmforge::gputest
