// `rocmforge generate`: one prompt, one sequence, streamed to stdout.
// Only the generated text goes to stdout (flushed per piece); the timing
// summary and errors go to stderr.
#include <chrono>
#include <cstdint>
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
#include "engine/model/sequence_runner.h"
#include "engine/sampling/stop_matcher.h"
#include "engine/tokenizer/tokenizer.h"

namespace rocmforge::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void Emit(const std::string& text) {
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int RunGenerate(const std::vector<std::string>& args) {
  // --server: the gRPC client (cli/server/, only in builds with the server)
  // takes the whole command line, including flags only it knows.
  for (const std::string& a : args) {
    if (a == "--server" || a.rfind("--server=", 0) == 0) {
      for (const Command& c : Commands()) {
        if (std::string(c.name) == "generate-remote") return c.run(args);
      }
      return Fail("this build has no gRPC client (configure with -DROCMFORGE_BUILD_SERVER=ON for --server)");
    }
  }
  auto flags = Flags::Parse(args,
                            {"model", "prompt", "max-tokens", "temperature", "top-k", "top-p", "min-p",
                             "repeat-penalty", "seed", "stop", "threads", "device", "ctx", "session"},
                            {"ignore-eos"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (flags->Has("session")) return Fail("--session needs --server");
  const std::string model_path = flags->GetOr("model", "");
  if (model_path.empty()) return Fail("generate needs --model M.gguf (or --server HOST:PORT)");
  if (!flags->Has("prompt")) return Fail("generate needs --prompt TEXT");
  const std::string prompt = flags->GetOr("prompt", "");

  SamplingParams sp;
  StoppingParams st;
  auto max_tokens = flags->GetInt("max-tokens", 256);
  auto temperature = flags->GetDouble("temperature", 1.0);
  auto top_k = flags->GetInt("top-k", 0);
  auto top_p = flags->GetDouble("top-p", 1.0);
  auto min_p = flags->GetDouble("min-p", 0.0);
  auto penalty = flags->GetDouble("repeat-penalty", 1.0);
  auto threads = flags->GetInt("threads", 0);
  auto ctx_flag = flags->GetInt("ctx", 0);
  for (const absl::Status& s : {max_tokens.status(), temperature.status(), top_k.status(), top_p.status(),
                                min_p.status(), penalty.status(), threads.status(), ctx_flag.status()}) {
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  uint64_t seed = std::random_device{}();
  if (auto s = flags->Get("seed")) {
    auto v = flags->GetInt("seed", 0);
    if (!v.ok() || *v < 0) return Fail(absl::StrCat("flag --seed: '", *s, "' is not a non-negative integer"));
    seed = static_cast<uint64_t>(*v);
  }
  if (*top_k > INT32_MAX) return Fail("flag --top-k is too large");
  sp.temperature = static_cast<float>(*temperature);
  sp.top_k = static_cast<int32_t>(*top_k);
  sp.top_p = static_cast<float>(*top_p);
  sp.min_p = static_cast<float>(*min_p);
  sp.repetition_penalty = static_cast<float>(*penalty);
  sp.seed = seed;
  st.max_tokens = static_cast<int32_t>(std::min<int64_t>(*max_tokens, 1 << 30));
  if (*max_tokens < 1) st.max_tokens = 0;  // rejected by validation with the field's name
  st.stop_strings = flags->GetAll("stop");
  st.ignore_eos = flags->Has("ignore-eos");
  if (absl::Status s = ValidateSamplingParams(sp); !s.ok()) return Fail(std::string(s.message()));
  if (absl::Status s = ValidateStoppingParams(st, 0); !s.ok()) return Fail(std::string(s.message()));
  if (*threads < 0 || *threads > 1024) return Fail("flag --threads must be in [0, 1024]");

  auto file = gguf::GgufFile::Open(model_path);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  auto tok = Tokenizer::FromGguf(**file);
  if (!tok.ok()) return Fail(absl::StrCat(model_path, ": ", tok.status().message()));
  auto backend = CreateBackend(flags->GetOr("device", "cpu"), static_cast<int>(*threads));
  if (!backend.ok()) return Fail(std::string(backend.status().message()));

  const std::vector<TokenId> prompt_ids = (*tok)->Encode(prompt, (*tok)->vocab().add_bos);
  if (prompt_ids.empty()) return Fail("the prompt encodes to no tokens; give a non-empty --prompt");
  // Context: what this run needs (prompt + max_tokens), capped by --ctx or
  // the model's training context.
  auto config = ModelConfigFromGguf(**file);
  if (!config.ok()) return Fail(absl::StrCat(model_path, ": ", config.status().message()));
  int64_t ctx = *ctx_flag > 0 ? *ctx_flag : config->n_ctx_train;
  if (ctx < static_cast<int64_t>(prompt_ids.size()) + 1) {
    return Fail(absl::StrCat("the prompt has ", prompt_ids.size(), " tokens; the context is ", ctx,
                             " (raise --ctx)"));
  }
  const int64_t needed = static_cast<int64_t>(prompt_ids.size()) + st.max_tokens;
  ctx = std::min(ctx, needed);
  // The CPU keeps K/V in f32: refuse a context that would not fit in memory.
  const size_t kv_per_token = static_cast<size_t>(config->n_layers) * 2 * config->n_kv_heads * config->head_dim *
                              sizeof(float);
  const size_t available = (*backend)->AvailableMemoryBytes();
  if (available > 0 && static_cast<size_t>(ctx) * kv_per_token > available) {
    return Fail(absl::StrCat("a context of ", ctx, " tokens needs ", static_cast<size_t>(ctx) * kv_per_token >> 20,
                             " MiB of KV cache, more than the ", available >> 20,
                             " MiB available; lower --max-tokens or --ctx"));
  }
  auto runner = SequenceRunner::Create(**file, backend->get(), static_cast<int32_t>(ctx));
  if (!runner.ok()) return Fail(absl::StrCat(model_path, ": ", runner.status().message()));
  Backend* be = backend->get();
  const int32_t vocab = (*runner)->model().config().n_vocab;

  const Clock::time_point t0 = Clock::now();
  auto logits = (*runner)->Append(prompt_ids);
  if (!logits.ok()) return Fail(std::string(logits.status().message()));
  const Clock::time_point t1 = Clock::now();

  // Decoded like Tokenizer::Decode(generated ids): SentencePiece's leading
  // space of the first piece is dropped, so stdout equals the reference
  // continuations (models/*.reference.json greedy_text).
  IncrementalDecoder decoder(**tok);
  StopMatcher stops(st.stop_strings);
  std::vector<int32_t> history(prompt_ids.begin(), prompt_ids.end());
  int32_t generated = 0;
  const char* finish = "length";
  while (generated < st.max_tokens) {
    SampleRequest req;
    req.params = sp;
    req.step = static_cast<uint64_t>(generated);
    const size_t window = std::min<size_t>(history.size(), static_cast<size_t>(sp.repetition_window));
    req.recent.assign(history.end() - window, history.end());
    SampleResult res;
    if (absl::Status s = be->Sample(*logits, 1, vocab, &req, &res); !s.ok()) return Fail(std::string(s.message()));
    ++generated;
    history.push_back(res.token);
    if ((*tok)->IsEog(res.token) && !st.ignore_eos) {
      finish = "eos";
      break;
    }
    Emit(stops.Push(decoder.Push(res.token)));
    if (stops.stopped()) {
      finish = "stop";
      break;
    }
    if (generated >= st.max_tokens) break;
    if ((*runner)->length() >= (*runner)->context_length()) break;  // context full
    logits = (*runner)->Append({res.token});
    if (!logits.ok()) return Fail(std::string(logits.status().message()));
  }
  if (!stops.stopped()) Emit(stops.Push(decoder.Flush()));
  if (!stops.stopped()) Emit(stops.Flush());
  const Clock::time_point t2 = Clock::now();
  std::fputc('\n', stderr);  // ends the streamed line on a terminal; stdout stays exactly the text

  const auto* cpu = dynamic_cast<const CpuBackend*>(be);
  const int used_threads = cpu ? cpu->threads() : 0;
  const double pp_s = Seconds(t0, t1), tg_s = Seconds(t1, t2);
  std::fprintf(stderr,
               "%s", absl::StrFormat("[rocmforge] prompt: %d tokens in %.3f s (%.1f tok/s) | generation: %d tokens "
                                     "in %.3f s (%.1f tok/s) | finish: %s | seed %d | %s, %d threads\n",
                                     prompt_ids.size(), pp_s, prompt_ids.size() / std::max(pp_s, 1e-9), generated,
                                     tg_s, generated / std::max(tg_s, 1e-9), finish, seed, std::string(be->name()),
                                     used_threads)
                         .c_str());
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(generate, "generate",
                    "generate --model M.gguf --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] "
                    "[--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--ignore-eos] [--stop STR]... "
                    "[--threads N] [--device cpu|gpu] [--ctx N] | --server HOST:PORT --prompt TEXT [--session ID]",
                    RunGenerate);

}  // namespace rocmforge::cli
