// RMSNorm + activation quantization in one kernel (kernels/rmsnorm.hip: the
// register kernel and the 8-values-per-lane one, gpu::SetRmsNormQuantKernel):
// the same math as the unfused path (the register-resident norm, then the
// stand-alone quantization), so x, out and every integer and scale must match
// it bit for bit, with and without the residual add, for one row and several,
// with spans to zero, and in place (out = the residual, as the model calls it;
// out = x for the plain norm). Also the quantizing producers' zeroing where
// their kernel cannot zero in its own pass.
#include <cstring>
#include <string>

#include "kernels/act_quant_launch.h"
#include "tests/gpu/gpu_test_util.h"

namespace rocmforge::gputest {
namespace {

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One launch's results: x (the residual stream), out and the ActQ8 slices
// (as floats: 40 bytes = 10 floats a slice, compared as bits).
struct NormResult {
  std::vector<float> x, out, xq;
};

struct Variant {
  const char* name;
  bool run_layout;  // SetRmsNormQuantKernel: kRunLayout / kRegister
  bool zero;        // with spans to zero
  bool in_place;    // out = the residual (as the model calls it) / x for the plain norm
};

TEST(GpuNormQuantize, BitIdenticalToUnfusedNormAndQuantize) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const gpu::Stream st = gpu->stream();
  const gpu::NormQuantKernel layout_saved = gpu::GetRmsNormQuantKernel();
  const Variant variants[] = {
      {"register kernel", false, false, false},          {"8-per-lane kernel", true, false, false},
      {"register kernel zeroing", false, true, false},   {"8-per-lane kernel zeroing", true, true, false},
      {"register kernel in place", false, false, true},  {"8-per-lane kernel in place zeroing", true, true, true},
  };
  struct Case {
    GgmlType type;
    std::vector<int> dims;
  };
  for (const Case& c : {Case{GgmlType::Q8_0, {96, 352, 4096, 8192}}, Case{GgmlType::Q4_K, {256, 768, 4096, 8192}}}) {
    for (int dim : c.dims) {
      for (int n : {1, 3, 33}) {
        for (bool add : {false, true}) {
          const size_t total = size_t(n) * dim, slices = total / 32;
          const auto x0 = RandomVec(rng, total, 2.0f), r0 = RandomVec(rng, total), w0 = RandomVec(rng, dim);
          Buf r(gpu.get(), r0), w(gpu.get(), w0);
          // The unfused path: the norm kernel, then the quantization of its output.
          NormResult ref;
          {
            Buf x(gpu.get(), x0), out(gpu.get(), total), xq(gpu.get(), slices * 10);
            if (add) {
              gpu::LaunchAddRmsNorm(x.p, r.p, w.p, out.p, n, dim, 1e-5f, st);
            } else {
              gpu::LaunchRmsNorm(x.p, w.p, out.p, n, dim, 1e-5f, st);
            }
            gpu::LaunchQuantizeActivation(c.type, out.p, int64_t(total), xq.p, st);
            ref = {x.Get(), out.Get(), xq.Get()};
          }
          for (const Variant& v : variants) {
            gpu::SetRmsNormQuantKernel(v.run_layout ? gpu::NormQuantKernel::kRunLayout : gpu::NormQuantKernel::kRegister);
            const std::string what = std::string(TypeName(c.type)) + (add ? " add" : "") + " dim " +
                                     std::to_string(dim) + " n " + std::to_string(n) + " " + v.name;
            for (int rep = 0; rep < 2; ++rep) {  // twice: nothing a launch leaves behind matters
              Buf x(gpu.get(), x0), out(gpu.get(), total), xq(gpu.get(), slices * 10), r1(gpu.get(), r0);
              Buf z0(gpu.get(), RandomVec(rng, 3001)), z1(gpu.get(), RandomVec(rng, 64));
              gpu::ZeroSpans z;
              if (v.zero) z.p[0] = z0.p + 1, z.count[0] = 3000, z.p[1] = z1.p, z.count[1] = 64, z.n = 2;
              // In place: out = the residual (a copy of it) with the add, else out = x.
              float* const o = !v.in_place ? out.p : add ? r1.p : x.p;
              if (add) {
                gpu::LaunchAddRmsNormQuantize(x.p, v.in_place ? r1.p : r.p, w.p, o, n, dim, 1e-5f, c.type, xq.p, st,
                                              z);
              } else {
                gpu::LaunchRmsNormQuantize(x.p, w.p, o, n, dim, 1e-5f, c.type, xq.p, st, z);
              }
              const std::string at = what + " rep " + std::to_string(rep);
              if (v.in_place && add) {
                EXPECT_TRUE(SameBits(x.Get(), ref.x)) << at;
                EXPECT_TRUE(SameBits(r1.Get(), ref.out)) << at;
              } else if (v.in_place) {
                EXPECT_TRUE(SameBits(x.Get(), ref.out)) << at;
              } else {
                EXPECT_TRUE(SameBits(x.Get(), ref.x)) << at;
                EXPECT_TRUE(SameBits(out.Get(), ref.out)) << at;
              }
              EXPECT_TRUE(SameBits(xq.Get(), ref.xq)) << at;
              if (v.zero) {
                const std::vector<float> a = z0.Get(), b = z1.Get();
                EXPECT_EQ(std::vector<float>(a.begin() + 1, a.end()), std::vector<float>(3000, 0.0f)) << at;
                EXPECT_EQ(b, std::vector<float>(64, 0.0f)) << at;
              }
            }
          }
        }
      }
    }
  }
  gpu::SetRmsNormQuantKernel(layout_saved);
}

// Spans zeroed by the quantizing producers where their kernel cannot zero in
// its own pass (a misaligned input: the one-value-per-thread kernels, then a
// zeroing launch): the integers of the aligned path, and the zeros.
TEST(GpuNormQuantize, ProducersZeroSpansWhereTheirKernelCannot) {
  RF_REQUIRE_GPU(gpu);
  std::mt19937 rng(std::random_device{}());
  const gpu::Stream st = gpu->stream();
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K}) {
    const int64_t total = 3 * 768;
    const auto x0 = RandomVec(rng, size_t(total) + 1, 2.0f), u0 = RandomVec(rng, size_t(total) + 1);
    const std::string what(TypeName(type));
    for (bool swiglu : {false, true}) {
      Buf x(gpu.get(), x0), u(gpu.get(), u0), q0(gpu.get(), size_t(total) / 32 * 10),
          q1(gpu.get(), size_t(total) / 32 * 10), zz(gpu.get(), RandomVec(rng, 999));
      gpu::ZeroSpans z;
      z.p[0] = zz.p, z.count[0] = 999, z.n = 1;
      // The same values once aligned without zeroing (reference), once
      // misaligned by one float with zeroing.
      std::vector<float> shifted(x0.begin() + 1, x0.end()), ushift(u0.begin() + 1, u0.end());
      Buf xa(gpu.get(), shifted), ua(gpu.get(), ushift), outa(gpu.get(), size_t(total)), outb(gpu.get(), size_t(total) + 1);
      if (swiglu) {
        gpu::LaunchSwiGLUQuantize(xa.p, ua.p, outa.p, total, type, q0.p, st);
        gpu::LaunchSwiGLUQuantize(x.p + 1, u.p + 1, outb.p + 1, total, type, q1.p, st, z);
        const std::vector<float> b = outb.Get();
        EXPECT_TRUE(SameBits(outa.Get(), std::vector<float>(b.begin() + 1, b.end()))) << what;
      } else {
        gpu::LaunchQuantizeActivation(type, xa.p, total, q0.p, st);
        gpu::LaunchQuantizeActivation(type, x.p + 1, total, q1.p, st, z);
      }
      EXPECT_TRUE(SameBits(q0.Get(), q1.Get())) << what << (swiglu ? " swiglu" : "");
      EXPECT_EQ(zz.Get(), std::vector<float>(999, 0.0f)) << what << (swiglu ? " swiglu" : "");
    }
  }
}

}  // namespace
}  // namespace rocmforge::gputest
