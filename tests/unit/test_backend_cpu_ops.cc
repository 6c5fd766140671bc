// Every CPU backend op against a naive double-precision reference on random
// inputs of awkward sizes.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_simd.h"
#include "engine/common/fp16.h"
#include "engine/common/thread_pool.h"
#include "engine/gguf/quant.h"

namespace rocmforge {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// `rows` rows of `cols` floats, quantized to `type` row by row.
std::vector<uint8_t> QuantizeRows(GgmlType type, const std::vector<float>& w, int64_t cols, int64_t rows) {
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> q(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) quant::QuantizeRow(type, w.data() + r * cols, q.data() + r * row_bytes, cols);
  return q;
}

Weight F32Weight(const std::vector<float>& data, int64_t cols, int64_t rows) {
  return Weight{GgmlType::F32, cols, rows, data.data()};
}

// A step with the given sequences (token counts and context lengths), block
// size `bs`, scattered block tables drawn from a pool of `num_blocks`.
StepBatch MakeStep(const std::vector<std::pair<int, int>>& seqs, int bs, int num_blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> free_blocks(num_blocks);
  for (int i = 0; i < num_blocks; ++i) free_blocks[i] = i;
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  StepBatch b;
  size_t next_block = 0;
  for (auto [n_tokens, kv_len] : seqs) {
    BatchSeq s;
    s.token_start = b.n_tokens();
    s.n_tokens = n_tokens;
    s.kv_len = kv_len;
    for (int i = 0; i < (kv_len + bs - 1) / bs; ++i) s.block_table.push_back(free_blocks[next_block++]);
    for (int i = 0; i < n_tokens; ++i) {
      const int pos = kv_len - n_tokens + i;
      b.tokens.push_back(static_cast<int32_t>(rng() % 50));
      b.positions.push_back(pos);
      b.slots.push_back(s.block_table[pos / bs] * bs + pos % bs);
    }
    b.logit_rows.push_back(b.n_tokens() - 1);
    b.seqs.push_back(std::move(s));
  }
  return b;
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 97, 10007}) {
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelFor(
            n,
            [&](int64_t b, int64_t e) {
              ASSERT_LE(b, e);
              for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
            },
            grain);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
      }
    }
  }
}

TEST(CpuSimdTest, DotAndAxpyMatchScalar) {
  for (int64_t n : {1, 7, 8, 17, 64, 131}) {
    auto a = Random(n, 1), b = Random(n, 2);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(cpu::DotF32(a.data(), b.data(), n), want, 1e-4 * n);
    EXPECT_NEAR(cpu::DotF32Scalar(a.data(), b.data(), n), want, 1e-4 * n);
    std::vector<float> y = b, y_ref = b;
    cpu::AxpyF32(0.37f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], y_ref[i] + 0.37 * a[i], 1e-5);
  }
}

// The attention run kernels equal the one-row kernels called row by row, bit
// for bit (prefill and decode must agree exactly however a run is cut), at
// head sizes on and off their fast paths' multiples and runs of 1..37 rows.
TEST(CpuSimdTest, AttentionRunsEqualRowByRow) {
  std::mt19937 rng(std::random_device{}());
  for (int hd : {64, 128, 80, 72, 20}) {
    for (int n : {1, 3, 4, 5, 16, 37}) {
      const int64_t stride = hd + static_cast<int64_t>(rng() % 3) * 8;  // rows of other heads between
      const auto q = Random(hd, rng()), kv = Random(static_cast<size_t>(stride * n), rng());
      const auto p = Random(n, rng()), start = Random(hd, rng());
      const float scale = 0.125f;
      std::vector<float> scores(n), want_scores(n);
      cpu::ScoresF32(q.data(), kv.data(), stride, n, hd, scale, scores.data());
      for (int j = 0; j < n; ++j) want_scores[j] = cpu::DotF32(q.data(), kv.data() + j * stride, hd) * scale;
      EXPECT_EQ(scores, want_scores) << "hd " << hd << " n " << n;
      std::vector<float> out = start, want_out = start;
      cpu::AccumulateRowsF32(p.data(), kv.data(), stride, n, hd, out.data());
      for (int j = 0; j < n; ++j) cpu::AxpyF32(p[j], kv.data() + j * stride, want_out.data(), hd);
      EXPECT_EQ(out, want_out) << "hd " << hd << " n " << n;
    }
  }
}

class MatMulTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatMulTest, MatchesDequantizedDoubleReference) {
  const GgmlType type = GetParam();
  CpuBackend be(3);
  const int64_t cols = 512, rows = 37;
  const int n = 5;
  const std::vector<uint8_t> wq = QuantizeRows(type, Random(cols * rows, 10), cols, rows);
  // Reference weights: exactly what is stored.
  std::vector<float> wd(cols * rows);
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantizeRow(type, wq.data() + r * RowBytes(type, cols), wd.data() + r * cols, cols);
  }
  auto x = Random(cols * n, 11);
  std::vector<float> y(rows * n);
  be.MatMul(Weight{type, cols, rows, wq.data()}, x.data(), y.data(), n);
  // Quantized activations (Q8_0 / Q8_K) carry ~0.4% error per element.
  const bool exact_act = quant::ActivationType(type) == GgmlType::F32;
  for (int t = 0; t < n; ++t) {
    // Rounding x to 8 bits with scale amax/127 (the scale itself in f16)
    // moves each element by at most amax/200, so the dot moves by at most
    // sum|w| * amax/200; float accumulation adds a little on top.
    double amax = 0;
    for (int64_t i = 0; i < cols; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[t * cols + i])));
    for (int64_t r = 0; r < rows; ++r) {
      double want = 0, mag = 0, wabs = 0;
      for (int64_t i = 0; i < cols; ++i) {
        want += static_cast<double>(wd[r * cols + i]) * x[t * cols + i];
        mag += std::fabs(static_cast<double>(wd[r * cols + i]) * x[t * cols + i]);
        wabs += std::fabs(wd[r * cols + i]);
      }
      const double tol = 1e-5 * mag + 1e-5 + (exact_act ? 0.0 : wabs * amax / 200);
      EXPECT_NEAR(y[t * rows + r], want, tol) << TypeName(type) << " t=" << t << " r=" << r;
    }
  }
}

// Prefill (many tokens, tiled kernels) and decode (one token) give the same
// outputs, so a sequence's logits do not depend on how it was batched.
TEST_P(MatMulTest, ManyTokensEqualOneAtATime) {
  const GgmlType type = GetParam();
  CpuBackend be(2);
  const int64_t cols = 768, rows = 45;
  const int n = 11;
  const std::vector<uint8_t> wq = QuantizeRows(type, Random(cols * rows, 12), cols, rows);
  const Weight w{type, cols, rows, wq.data()};
  auto x = Random(cols * n, 13);
  std::vector<float> all(rows * n), one(rows);
  be.MatMul(w, x.data(), all.data(), n);
  for (int t = 0; t < n; ++t) {
    be.MatMul(w, x.data() + t * cols, one.data(), 1);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(all[t * rows + r], one[r], 1e-6f * (1.0f + std::fabs(one[r]))) << "t=" << t << " r=" << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatMulTest,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0,
                                           GgmlType::Q4_K, GgmlType::Q6_K),
                         [](const auto& info) { return std::string(TypeName(info.param)); });

TEST(CpuOpsTest, RmsNormAddBiasSwiGluAdd) {
  CpuBackend be(2);
  const int n = 3, dim = 67;
  auto x = Random(n * dim, 20, 3.0f), w = Random(dim, 21), bias = Random(dim, 22);
  std::vector<float> out(n * dim);
  be.RmsNorm(x.data(), F32Weight(w, dim, 1), out.data(), n, dim, 1e-5f);
  for (int r = 0; r < n; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    const double s = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int i = 0; i < dim; ++i) EXPECT_NEAR(out[r * dim + i], x[r * dim + i] * s * w[i], 1e-5);
  }
  std::vector<float> y = x;
  be.AddBias(y.data(), F32Weight(bias, dim, 1), n);
  for (int i = 0; i < n * dim; ++i) EXPECT_FLOAT_EQ(y[i], x[i] + bias[i % dim]);

  const int64_t m = 100003;  // large enough to go parallel
  auto g = Random(m, 23, 3.0f), u = Random(m, 24);
  std::vector<float> s(m);
  be.SwiGLU(g.data(), u.data(), s.data(), m);
  for (int64_t i = 0; i < m; i += 97) {
    const double gi = g[i];
    EXPECT_NEAR(s[i], gi / (1 + std::exp(-gi)) * u[i], 1e-5);
  }
  std::vector<float> a = g;
  be.Add(a.data(), u.data(), m);
  for (int64_t i = 0; i < m; i += 101) EXPECT_FLOAT_EQ(a[i], g[i] + u[i]);
}

TEST(CpuOpsTest, EmbedGatherAndRope) {
  CpuBackend be(2);
  const int dim = 96, vocab = 50;
  ASSERT_TRUE(be.InitKvCache({1, 1, 8, 4, 16}).ok());
  StepBatch b = MakeStep({{3, 9}, {1, 5}, {2, 2}}, 4, 16, 30);
  ASSERT_TRUE(be.BeginStep(b).ok());
  const int n = b.n_tokens();
  // F16 embedding table.
  auto table = Random(dim * vocab, 31);
  std::vector<uint16_t> table16(table.size());
  for (size_t i = 0; i < table.size(); ++i) table16[i] = Fp32ToFp16(table[i]);
  std::vector<float> emb(n * dim);
  be.Embed(Weight{GgmlType::F16, dim, vocab, table16.data()}, emb.data());
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < dim; ++i) EXPECT_EQ(emb[t * dim + i], Fp16ToFp32(table16[b.tokens[t] * dim + i]));
  }
  std::vector<float> gathered(b.logit_rows.size() * dim);
  be.GatherRows(emb.data(), gathered.data(), dim);
  for (size_t r = 0; r < b.logit_rows.size(); ++r) {
    for (int i = 0; i < dim; ++i) EXPECT_EQ(gathered[r * dim + i], emb[b.logit_rows[r] * dim + i]);
  }

  // RoPE: 3 heads of 32 dims, 24 of them rotating; base 1e4.
  const int heads = 3, hd = 32, rot = 24;
  for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
    auto x = Random(n * heads * hd, 32);
    std::vector<float> y = x;
    be.Rope(y.data(), n, heads, hd, rot, 10000.0f, style);
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < heads; ++h) {
        const float* xi = x.data() + (t * heads + h) * hd;
        const float* yi = y.data() + (t * heads + h) * hd;
        for (int i = 0; i < rot / 2; ++i) {
          const int a = style == RopeStyle::kNorm ? 2 * i : i;
          const int c = style == RopeStyle::kNorm ? 2 * i + 1 : i + rot / 2;
          const double theta = b.positions[t] * std::pow(10000.0, -2.0 * i / rot);
          EXPECT_NEAR(yi[a], xi[a] * std::cos(theta) - xi[c] * std::sin(theta), 1e-4);
          EXPECT_NEAR(yi[c], xi[a] * std::sin(theta) + xi[c] * std::cos(theta), 1e-4);
        }
        for (int i = rot; i < hd; ++i) EXPECT_EQ(yi[i], xi[i]);
      }
    }
  }
}

TEST(CpuOpsTest, PagedAttentionMatchesNaiveCausalAttention) {
  CpuBackend be(3);
  const int layers = 2, kv_heads = 2, heads = 6, hd = 40, bs = 4, num_blocks = 24;
  const int kvd = kv_heads * hd, qd = heads * hd;
  ASSERT_TRUE(be.InitKvCache({layers, kv_heads, hd, bs, num_blocks}).ok());
  // Each sequence's full history: K/V of every position, written over two
  // steps (a prefill of the first part, then the rest) to exercise the cache.
  const std::vector<int> lens = {13, 5, 1};
  std::vector<std::pair<int, int>> first, second;
  for (int len : lens) {
    const int head = len > 1 ? len - 2 : 0;
    if (head > 0) first.push_back({head, head});
    second.push_back({len - head, len});
  }
  // Same block tables in both steps: build the second step and derive the first from it.
  StepBatch step2 = MakeStep(second, bs, num_blocks, 40);
  std::vector<std::vector<float>> hist_k(lens.size()), hist_v(lens.size());
  for (size_t s = 0; s < lens.size(); ++s) {
    hist_k[s] = Random(lens[s] * kvd * layers, 41 + s);
    hist_v[s] = Random(lens[s] * kvd * layers, 51 + s);
  }
  auto write_step = [&](bool is_first) {
    StepBatch b;
    for (size_t s = 0; s < lens.size(); ++s) {
      const BatchSeq& full = step2.seqs[s];
      const int head = lens[s] - full.n_tokens;
      const int from = is_first ? 0 : head, to = is_first ? head : lens[s];
      if (to == from) continue;
      BatchSeq q;
      q.token_start = b.n_tokens();
      q.n_tokens = to - from;
      q.kv_len = to;
      q.block_table = full.block_table;
      for (int p = from; p < to; ++p) {
        b.tokens.push_back(0);
        b.positions.push_back(p);
        b.slots.push_back(q.block_table[p / bs] * bs + p % bs);
      }
      b.seqs.push_back(q);
    }
    EXPECT_TRUE(be.BeginStep(b).ok());
    for (int l = 0; l < layers; ++l) {
      std::vector<float> k, v;
      for (size_t s = 0; s < lens.size(); ++s) {
        const int head = lens[s] - step2.seqs[s].n_tokens;
        const int from = is_first ? 0 : head, to = is_first ? head : lens[s];
        for (int p = from; p < to; ++p) {
          const float* kp = hist_k[s].data() + (l * lens[s] + p) * kvd;
          const float* vp = hist_v[s].data() + (l * lens[s] + p) * kvd;
          k.insert(k.end(), kp, kp + kvd);
          v.insert(v.end(), vp, vp + kvd);
        }
      }
      be.StoreKv(l, k.data(), v.data());
    }
    return b;
  };
  write_step(true);
  StepBatch b = write_step(false);
  const int n = b.n_tokens();
  auto q = Random(n * qd, 60);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int l = 0; l < layers; ++l) {
    std::vector<float> out(n * qd);
    be.Attention(l, q.data(), out.data(), heads, scale);
    for (size_t s = 0; s < b.seqs.size(); ++s) {
      const BatchSeq& seq = b.seqs[s];
      for (int i = 0; i < seq.n_tokens; ++i) {
        const int t = seq.token_start + i, ctx = seq.kv_len - seq.n_tokens + i + 1;
        for (int h = 0; h < heads; ++h) {
          const int kvh = h / (heads / kv_heads);
          std::vector<double> sc(ctx);
          double mx = -1e300, z = 0;
          for (int j = 0; j < ctx; ++j) {
            double d = 0;
            for (int e = 0; e < hd; ++e) {
              d += static_cast<double>(q[t * qd + h * hd + e]) * hist_k[s][(l * lens[s] + j) * kvd + kvh * hd + e];
            }
            sc[j] = d * scale;
            mx = std::max(mx, sc[j]);
          }
          for (int j = 0; j < ctx; ++j) z += (sc[j] = std::exp(sc[j] - mx));
          for (int e = 0; e < hd; ++e) {
            double o = 0;
            for (int j = 0; j < ctx; ++j) o += sc[j] / z * hist_v[s][(l * lens[s] + j) * kvd + kvh * hd + e];
            EXPECT_NEAR(out[t * qd + h * hd + e], o, 1e-5) << "layer " << l << " seq " << s << " tok " << i;
          }
        }
      }
    }
  }
}

TEST(CpuOpsTest, BeginStepRejectsInconsistentBatches) {
  CpuBackend be(1);
  EXPECT_FALSE(be.BeginStep(MakeStep({{1, 1}}, 4, 8, 1)).ok());  // no KV cache yet
  ASSERT_TRUE(be.InitKvCache({1, 1, 8, 4, 8}).ok());
  StepBatch ok = MakeStep({{2, 6}, {1, 3}}, 4, 8, 2);
  EXPECT_TRUE(be.BeginStep(ok).ok());
  StepBatch bad = ok;
  bad.slots[0] += 1;  // slot disagrees with the block table
  EXPECT_FALSE(be.BeginStep(bad).ok());
  bad = ok;
  bad.seqs[0].block_table[0] = 99;  // outside the pool
  EXPECT_FALSE(be.BeginStep(bad).ok());
  bad = ok;
  bad.seqs[1].kv_len = 100;  // table too short
  EXPECT_FALSE(be.BeginStep(bad).ok());
  bad = ok;
  bad.logit_rows = {7};
  EXPECT_FALSE(be.BeginStep(bad).ok());
  bad = ok;
  bad.positions.pop_back();
  EXPECT_FALSE(be.BeginStep(bad).ok());
}

TEST(CpuOpsTest, SampleUsesTheCpuSampler) {
  CpuBackend be(1);
  auto logits = Random(2 * 300, 70);
  std::vector<SampleRequest> req(2);
  req[0].params.temperature = 0.0f;
  req[1].params.temperature = 0.0f;
  req[1].params.logprobs = 3;
  std::vector<SampleResult> res(2);
  ASSERT_TRUE(be.Sample(logits.data(), 2, 300, req.data(), res.data()).ok());
  for (int r = 0; r < 2; ++r) {
    const float* row = logits.data() + r * 300;
    EXPECT_EQ(res[r].token, std::max_element(row, row + 300) - row);
  }
  EXPECT_EQ(res[1].top_logprobs.size(), 3u);
  EXPECT_EQ(res[1].top_logprobs[0].first, res[1].token);
}

TEST(CpuOpsTest, LoadWeightRejectsUnsupportedTypes) {
  CpuBackend be(1);
  gguf::TensorInfo t;
  t.name = "blk.0.attn_q.weight";
  t.type = GgmlType::IQ2_XS;
  t.dims = {256, 4};
  t.n_elements = 1024;
  auto w = be.LoadWeight(t);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("blk.0.attn_q.weight"), std::string::npos);
}

}  // namespace
}  // namespace rocmforge
