// Top-1 agreement of quantized GGUF files with their F16 original, measured
// with our engine on the CPU backend. The counterpart of
// bench/quality/llamacpp_top1_agreement.mjs (same measures, same output), so
// the two engines can be compared number for number.
//
// For every reference prompt in REFERENCE.json the sequence
//   prompt_ids + greedy_ids[0..46]
// runs teacher-forced in one prefill step with logits at every position, and
// the argmax is recorded at each. Measures per quantized file:
//   greedy: the 48 positions that predict the reference greedy ids (what
//           tests/unit/test_model_quantized.cc counts);
//   prompt: positions inside the prompt (predicting prompt token i+1);
//   text:   with --text FILE, every next-token prediction over that text
//           (tokenized by the model's own tokenizer, BOS as the vocab says).
// plus agreement with the reference greedy ids, and the greedy steps split by
// the F16 top-1/top-2 logit gap (near-ties flip first under quantization).
//
// --dump FILE writes every file's per-position argmax as JSON, the format
// llamacpp_top1_agreement.mjs writes with DUMP=FILE, for compare_argmax.py.
//
// Usage: top1_agreement [--threads N] [--text FILE] [--dump FILE] REFERENCE.json F16.gguf [QUANT.gguf ...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/backend_factory.h"
#include "engine/common/status_macros.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace rocmforge {
namespace {

constexpr int32_t kBlockSize = 16;

// One teacher-forced sequence: argmax and top-1/top-2 gap at every position.
struct Run {
  std::vector<int32_t> argmax;
  std::vector<float> gap;
  size_t n_prompt = 0;             // 0 for the free text: every position counts as "text"
  std::vector<int32_t> greedy;     // reference greedy ids (empty for the text)
};

struct Tally {
  size_t agree = 0, total = 0;
  std::string Str() const {
    if (total == 0) return "n/a (0/0)";
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.1f%% (%zu/%zu)", 100.0 * agree / total, agree, total);
    return buf;
  }
};

class Evaluator {
 public:
  static absl::StatusOr<Evaluator> Open(const std::string& path, int threads, int32_t max_tokens) {
    Evaluator e;
    RF_ASSIGN_OR_RETURN(e.file_, gguf::GgufFile::Open(path));
    RF_ASSIGN_OR_RETURN(e.backend_, CreateBackend("cpu", threads));
    RF_ASSIGN_OR_RETURN(e.model_, Model::Load(*e.file_, e.backend_.get(), max_tokens));
    RF_ASSIGN_OR_RETURN(e.tokenizer_, Tokenizer::FromGguf(*e.file_));
    const ModelConfig& c = e.model_->config();
    const int32_t blocks = (max_tokens + kBlockSize - 1) / kBlockSize;
    RF_RETURN_IF_ERROR(e.backend_->InitKvCache({c.n_layers, c.n_kv_heads, c.head_dim, kBlockSize, blocks}));
    return e;
  }

  const Tokenizer& tokenizer() const { return *tokenizer_; }

  // Logits at every position of `seq` (one fresh sequence in blocks 0..), reduced to argmax and gap.
  absl::StatusOr<Run> Evaluate(const std::vector<int32_t>& seq) {
    const int32_t n = static_cast<int32_t>(seq.size());
    if (n < 2 || n > model_->max_step_tokens()) {
      return absl::InvalidArgumentError(absl::StrCat("sequence of ", n, " tokens: need 2..", model_->max_step_tokens()));
    }
    StepBatch b;
    BatchSeq bs;
    bs.n_tokens = n;
    bs.kv_len = n;
    for (int32_t i = 0; i * kBlockSize < n; ++i) bs.block_table.push_back(i);
    for (int32_t i = 0; i < n; ++i) {
      b.tokens.push_back(seq[i]);
      b.positions.push_back(i);
      b.slots.push_back(i);  // blocks 0.. in order: slot = position
      b.logit_rows.push_back(i);
    }
    b.seqs.push_back(std::move(bs));
    RF_ASSIGN_OR_RETURN(const float* dev_logits, model_->Forward(b));
    const int32_t vocab = model_->config().n_vocab;
    std::vector<float> logits(static_cast<size_t>(n) * vocab);
    RF_RETURN_IF_ERROR(backend_->Download(logits.data(), dev_logits, logits.size() * sizeof(float)));
    Run r;
    for (int32_t i = 0; i < n; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i) * vocab;
      int32_t best = 0;
      for (int32_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
      float second = -1e30f;
      for (int32_t v = 0; v < vocab; ++v) second = v != best ? std::max(second, row[v]) : second;
      r.argmax.push_back(best);
      r.gap.push_back(row[best] - second);
    }
    return r;
  }

 private:
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

struct Options {
  int threads = 1;
  std::string text_path;
  std::string dump_path;
  std::string reference;
  std::vector<std::string> models;  // [0] = F16 baseline
};

// All runs of one file: the reference prompts, then the text (if any).
absl::StatusOr<std::vector<Run>> EvaluateFile(const std::string& path, const Options& opt, const nlohmann::json& ref,
                                              const std::string& text) {
  RF_ASSIGN_OR_RETURN(Evaluator e, Evaluator::Open(path, opt.threads, 512));
  std::vector<Run> runs;
  for (const auto& gen : ref["generations"]) {
    std::vector<int32_t> seq = gen["prompt_ids"].get<std::vector<int32_t>>();
    const auto greedy = gen["greedy_ids"].get<std::vector<int32_t>>();
    const size_t n_prompt = seq.size();
    seq.insert(seq.end(), greedy.begin(), greedy.end() - 1);
    RF_ASSIGN_OR_RETURN(Run r, e.Evaluate(seq));
    r.n_prompt = n_prompt;
    r.greedy = greedy;
    runs.push_back(std::move(r));
  }
  if (!text.empty()) {
    const std::vector<int32_t> ids = e.tokenizer().Encode(text, e.tokenizer().vocab().add_bos, false);
    RF_ASSIGN_OR_RETURN(Run r, e.Evaluate(ids));
    r.n_prompt = 0;
    runs.push_back(std::move(r));
  }
  return runs;
}

enum class Measure { kGreedy, kPrompt, kText };

// Positions of `r` that belong to `m` (see the file comment).
std::vector<size_t> Positions(const Run& r, Measure m) {
  std::vector<size_t> idx;
  const bool is_text = r.greedy.empty();
  if (m == Measure::kText && is_text) {
    for (size_t i = 0; i + 1 < r.argmax.size(); ++i) idx.push_back(i);  // last position predicts nothing
  } else if (m == Measure::kGreedy && !is_text) {
    for (size_t i = r.n_prompt - 1; i < r.argmax.size(); ++i) idx.push_back(i);
  } else if (m == Measure::kPrompt && !is_text) {
    for (size_t i = 0; i + 1 < r.n_prompt; ++i) idx.push_back(i);
  }
  return idx;
}

Tally Agreement(const std::vector<Run>& a, const std::vector<Run>& b, Measure m,
                const std::function<bool(float)>& gap_filter = nullptr) {
  Tally t;
  for (size_t g = 0; g < a.size(); ++g) {
    for (size_t i : Positions(a[g], m)) {
      if (gap_filter && !gap_filter(b[g].gap[i])) continue;
      ++t.total;
      t.agree += a[g].argmax[i] == b[g].argmax[i];
    }
  }
  return t;
}

Tally ReferenceAgreement(const std::vector<Run>& runs) {
  Tally t;
  for (const Run& r : runs) {
    const std::vector<size_t> idx = Positions(r, Measure::kGreedy);
    for (size_t k = 0; k < idx.size(); ++k) {
      ++t.total;
      t.agree += r.argmax[idx[k]] == r.greedy[k];
    }
  }
  return t;
}

std::string Base(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

nlohmann::json ToJson(const Tally& t) { return {{"agree", t.agree}, {"total", t.total}}; }

// {"file": name, "runs": [{"n_prompt": n, "argmax": [...]}, ...]}; n_prompt 0 marks the text.
nlohmann::json DumpJson(const std::string& name, const std::vector<Run>& runs) {
  nlohmann::json j = {{"file", name}, {"runs", nlohmann::json::array()}};
  for (const Run& r : runs) j["runs"].push_back({{"n_prompt", r.n_prompt}, {"argmax", r.argmax}});
  return j;
}

int Main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      opt.threads = std::atoi(argv[++i]);
    } else if (a == "--text" && i + 1 < argc) {
      opt.text_path = argv[++i];
    } else if (a == "--dump" && i + 1 < argc) {
      opt.dump_path = argv[++i];
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() < 2) {
    std::fprintf(stderr, "usage: top1_agreement [--threads N] [--text FILE] [--dump FILE] REFERENCE.json F16.gguf [QUANT.gguf ...]\n");
    return 2;
  }
  opt.reference = pos[0];
  opt.models.assign(pos.begin() + 1, pos.end());

  std::ifstream in(opt.reference);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", opt.reference.c_str());
    return 1;
  }
  const nlohmann::json ref = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (ref.is_discarded() || !ref.contains("generations")) {
    std::fprintf(stderr, "%s: not a reference JSON with \"generations\"\n", opt.reference.c_str());
    return 1;
  }
  std::string text;
  if (!opt.text_path.empty()) {
    std::ifstream t(opt.text_path);
    if (!t) {
      std::fprintf(stderr, "cannot read %s\n", opt.text_path.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << t.rdbuf();
    text = ss.str();
  }

  auto f16 = EvaluateFile(opt.models[0], opt, ref, text);
  if (!f16.ok()) {
    std::fprintf(stderr, "%s: %s\n", opt.models[0].c_str(), std::string(f16.status().message()).c_str());
    return 1;
  }
  const std::string f16_name = Base(opt.models[0]);
  const Tally f16_ref = ReferenceAgreement(*f16);
  const size_t near_ties = Agreement(*f16, *f16, Measure::kGreedy, [](float g) { return g < 0.5f; }).total;
  std::printf("[ours] %s: argmax = reference greedy id at %s steps\n", f16_name.c_str(), f16_ref.Str().c_str());
  std::printf("[ours] %s: greedy steps with top-1/top-2 logit gap < 0.5: %zu\n", f16_name.c_str(), near_ties);
  if (!text.empty()) {
    std::printf("[ours] %s: text of %zu tokens\n", f16_name.c_str(), f16->back().argmax.size());
  }
  nlohmann::json summary = {{"reference", Base(opt.reference)}, {"f16", f16_name},
                            {"threads", opt.threads},           {"f16_vs_reference", ToJson(f16_ref)},
                            {"f16_near_ties_lt_0_5", near_ties}, {"files", nlohmann::json::array()}};
  nlohmann::json dump = {{"engine", "rocmforge"}, {"files", {DumpJson(f16_name, *f16)}}};

  for (size_t k = 1; k < opt.models.size(); ++k) {
    auto q = EvaluateFile(opt.models[k], opt, ref, text);
    if (!q.ok()) {
      std::fprintf(stderr, "%s: %s\n", opt.models[k].c_str(), std::string(q.status().message()).c_str());
      return 1;
    }
    const Tally greedy = Agreement(*q, *f16, Measure::kGreedy);
    const Tally prompt = Agreement(*q, *f16, Measure::kPrompt);
    const Tally text_t = Agreement(*q, *f16, Measure::kText);
    const Tally vs_ref = ReferenceAgreement(*q);
    const Tally tie = Agreement(*q, *f16, Measure::kGreedy, [](float g) { return g < 0.5f; });
    const Tally clear = Agreement(*q, *f16, Measure::kGreedy, [](float g) { return g >= 0.5f; });
    const std::string name = Base(opt.models[k]);
    std::printf("[ours] %s: top-1 agreement with F16, greedy steps %s, prompt positions %s, text %s; "
                "= reference greedy id %s; greedy steps with F16 gap < 0.5 %s, >= 0.5 %s\n",
                name.c_str(), greedy.Str().c_str(), prompt.Str().c_str(), text_t.Str().c_str(), vs_ref.Str().c_str(),
                tie.Str().c_str(), clear.Str().c_str());
    summary["files"].push_back({{"file", name},
                                {"greedy", ToJson(greedy)},
                                {"prompt", ToJson(prompt)},
                                {"text", ToJson(text_t)},
                                {"vs_reference", ToJson(vs_ref)},
                                {"greedy_gap_lt_0_5", ToJson(tie)},
                                {"greedy_gap_ge_0_5", ToJson(clear)}});
    dump["files"].push_back(DumpJson(name, *q));
  }
  if (!opt.dump_path.empty()) {
    std::ofstream out(opt.dump_path);
    out << dump.dump() << "\n";
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", opt.dump_path.c_str());
      return 1;
    }
  }
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace rocmforge

int main(int argc, char** argv) { return rocmforge::Main(argc, argv); }
