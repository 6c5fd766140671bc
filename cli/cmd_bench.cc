// `rocmforge bench`: prefill (pp) and decode (tg) speed of one model, the way
// llama-bench measures them: pp = a prompt of random in-vocabulary tokens
// prefilled in one step; tg = greedy decoding of --gen-tokens tokens starting
// from a one-token context (so tg does not include attention over the pp
// prompt). With --batch B, B sequences decode together and tg counts all
// their tokens. Best of --repeat runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/backend/backend_factory.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/quant.h"
#include "engine/model/model.h"

namespace rocmforge::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// B sequences; sequence s owns blocks [s * per_seq, (s + 1) * per_seq).
StepBatch MakeStep(const std::vector<std::vector<int32_t>>& tokens, const std::vector<int32_t>& lengths,
                   int32_t block_size, int32_t blocks_per_seq) {
  StepBatch b;
  for (size_t s = 0; s < tokens.size(); ++s) {
    BatchSeq q;
    q.token_start = b.n_tokens();
    q.n_tokens = static_cast<int32_t>(tokens[s].size());
    q.kv_len = lengths[s] + q.n_tokens;
    for (int32_t i = 0; i < (q.kv_len + block_size - 1) / block_size; ++i) {
      q.block_table.push_back(static_cast<int32_t>(s) * blocks_per_seq + i);
    }
    for (int32_t i = 0; i < q.n_tokens; ++i) {
      const int32_t pos = lengths[s] + i;
      b.tokens.push_back(tokens[s][i]);
      b.positions.push_back(pos);
      b.slots.push_back(q.block_table[pos / block_size] * block_size + pos % block_size);
    }
    b.logit_rows.push_back(q.token_start + q.n_tokens - 1);
    b.seqs.push_back(std::move(q));
  }
  return b;
}

int RunBench(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"model", "threads", "prompt-tokens", "gen-tokens", "device", "batch", "repeat"},
                            {});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  std::string model_path = flags->GetOr("model", "");
  if (model_path.empty() && flags->positional().size() == 1) model_path = flags->positional()[0];
  if (model_path.empty()) return Fail("bench needs --model M.gguf");
  auto threads = flags->GetInt("threads", 0);
  auto pp = flags->GetInt("prompt-tokens", 512);
  auto tg = flags->GetInt("gen-tokens", 128);
  auto batch = flags->GetInt("batch", 1);
  auto repeat = flags->GetInt("repeat", 3);
  for (const absl::Status& s : {threads.status(), pp.status(), tg.status(), batch.status(), repeat.status()}) {
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  if (*threads < 0 || *threads > 1024) return Fail("flag --threads must be in [0, 1024]");
  if (*pp < 1 || *pp > 65536) return Fail("flag --prompt-tokens must be in [1, 65536]");
  if (*tg < 1 || *tg > 65536) return Fail("flag --gen-tokens must be in [1, 65536]");
  if (*batch < 1 || *batch > 256) return Fail("flag --batch must be in [1, 256]");
  if (*repeat < 1 || *repeat > 100) return Fail("flag --repeat must be in [1, 100]");

  auto file = gguf::GgufFile::Open(model_path);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  const std::string device = flags->GetOr("device", "cpu");
  auto backend = CreateBackend(device, static_cast<int>(*threads));
  if (!backend.ok()) return Fail(std::string(backend.status().message()));
  Backend* be = backend->get();
  const int32_t max_step = static_cast<int32_t>(std::max<int64_t>(*pp, *batch));
  auto model = Model::Load(**file, be, max_step);
  if (!model.ok()) return Fail(absl::StrCat(model_path, ": ", model.status().message()));
  const ModelConfig& c = (*model)->config();
  constexpr int32_t kBlock = 16;
  const int32_t per_seq = static_cast<int32_t>((*pp + *tg + kBlock - 1) / kBlock);
  const int32_t n_seqs = static_cast<int32_t>(*batch);
  if (absl::Status s = be->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlock, per_seq * n_seqs}); !s.ok()) {
    return Fail(std::string(s.message()));
  }

  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(*pp);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % c.n_vocab);

  double best_pp = 0, best_tg = 0;
  for (int64_t rep = 0; rep < *repeat; ++rep) {
    // Prefill: one sequence, the whole prompt in one step.
    Clock::time_point t0 = Clock::now();
    auto logits = (*model)->Forward(MakeStep({prompt}, {0}, kBlock, per_seq));
    if (!logits.ok()) return Fail(std::string(logits.status().message()));
    if (absl::Status s = be->Synchronize(); !s.ok()) return Fail(std::string(s.message()));
    Clock::time_point t1 = Clock::now();
    best_pp = std::max(best_pp, *pp / Seconds(t0, t1));

    // Decode from a fresh one-token context in every sequence (untimed).
    std::vector<std::vector<int32_t>> next(n_seqs, std::vector<int32_t>(1, prompt[0]));
    std::vector<int32_t> lengths(n_seqs, 0);
    if (auto r = (*model)->Forward(MakeStep(next, lengths, kBlock, per_seq)); !r.ok()) {
      return Fail(std::string(r.status().message()));
    }
    std::fill(lengths.begin(), lengths.end(), 1);

    // Decode: greedy, all sequences each step.
    std::vector<SampleRequest> req(n_seqs);
    for (auto& r : req) r.params.temperature = 0.0f;
    std::vector<SampleResult> res(n_seqs);
    t0 = Clock::now();
    for (int64_t i = 0; i < *tg; ++i) {
      auto out = (*model)->Forward(MakeStep(next, lengths, kBlock, per_seq));
      if (!out.ok()) return Fail(std::string(out.status().message()));
      if (absl::Status s = be->Sample(*out, n_seqs, c.n_vocab, req.data(), res.data()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
      for (int32_t s = 0; s < n_seqs; ++s) {
        next[s][0] = res[s].token;
        ++lengths[s];
      }
    }
    t1 = Clock::now();
    best_tg = std::max(best_tg, static_cast<double>(*tg) * n_seqs / Seconds(t0, t1));
  }

  const auto* cpu = dynamic_cast<const CpuBackend*>(be);
  const int used_threads = cpu ? cpu->threads() : 0;
  const GgmlType wtype = (*file)->FindTensor("blk.0.ffn_down.weight") ? (*file)->FindTensor("blk.0.ffn_down.weight")->type
                                                                       : GgmlType::F32;
  std::printf("model %s (%s weights), %s, %d threads, vecdot %s, best of %d\n", model_path.c_str(),
              std::string(TypeName(wtype)).c_str(), std::string(be->name()).c_str(), used_threads,
              quant::VecDotImpl(), static_cast<int>(*repeat));
  std::printf("pp%d: %.1f tok/s\n", static_cast<int>(*pp), best_pp);
  std::printf("tg%d%s: %.1f tok/s\n", static_cast<int>(*tg),
              n_seqs > 1 ? absl::StrCat(" x batch ", n_seqs).c_str() : "", best_tg);
  std::printf("%s\n", absl::StrFormat("{\"model\":\"%s\",\"device\":\"%s\",\"threads\":%d,\"batch\":%d,"
                                      "\"prompt_tokens\":%d,\"pp_tok_s\":%.2f,\"gen_tokens\":%d,\"tg_tok_s\":%.2f}",
                                      model_path, std::string(be->name()), used_threads, n_seqs, *pp, best_pp, *tg,
                                      best_tg)
                          .c_str());
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(bench, "bench",
                    "bench --model M.gguf [--threads N] [--prompt-tokens 512] [--gen-tokens 128] "
                    "[--device cpu|gpu] [--batch B] [--repeat 3]",
                    RunBench);

}  // namespace rocmforge::cli
