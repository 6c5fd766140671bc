// load_bench: a gRPC load generator for rocmforge.v1.Inference (a worker or
// the router). For each concurrency level N it keeps N streams open at once:
// N clients take requests from one shared queue of N x `--rounds` jobs (a
// seeded, realistic mix of prompt and output lengths), each starting its next
// request as soon as its last one ends. It reports generated-token throughput,
// time to first token (TTFT) and inter-token latency (ITL) p50/p99 as a table
// (stdout) and JSON (--json FILE).
//
// Throughput is reported twice. "steady" counts the tokens that arrived in the
// steady state: after N requests have completed (the synchronized start, where
// all N prompts arrive in the same instant and wait for prefill together, is
// over) and before the first client found the queue empty (after that fewer
// than N streams are open). That is the throughput AT concurrency N; it needs
// --rounds >= 2 (3 or more for a long window). "whole run" is all tokens over
// the whole run, start burst and drain tail included: it depends on --rounds.
//
//   load_bench --server 127.0.0.1:50061 --concurrency 1,8,32,128 [--rounds 2]
//              [--prompt-words 16:400] [--output-tokens 32:256] [--seed 1]
//              [--temperature 0.7] [--json out.json]
//
// ITL is measured per token as the client sees it: a message carrying k
// tokens after a gap g counts as k gaps of g/k (the server coalesces tokens
// for slow readers).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "rocmforge/v1/inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string server = "127.0.0.1:50061";
  std::vector<int> concurrency = {1, 8, 32, 128};
  int rounds = 2;
  int prompt_words_min = 16, prompt_words_max = 400;
  int output_min = 32, output_max = 256;
  uint64_t seed = 1;
  float temperature = 0.7f;
  std::string json_path;
};

// Words for synthetic prompts; plain English the tiny models know.
const char* const kWords[] = {
    "the", "and", "of", "to", "in", "that", "he", "shall", "unto", "for", "his", "i", "a",
    "lord", "they", "be", "is", "him", "not", "them", "it", "with", "all", "thou", "was",
    "which", "my", "me", "said", "but", "ye", "their", "have", "will", "thee", "from", "as",
    "are", "when", "this", "out", "were", "upon", "man", "by", "you", "israel", "king", "son",
    "up", "there", "people", "came", "had", "house", "into", "on", "her", "come", "one", "we",
    "children", "before", "your", "also", "day", "land", "men", "against", "shalt", "if",
    "let", "go", "hand", "us", "made", "saying", "every", "now", "went", "even", "do", "our",
    "time", "life", "love", "money", "never", "good", "work", "friend", "truth", "wise", "fool"};

struct Job {
  std::string prompt;
  int max_tokens;
  uint64_t seed;
};

struct Sample {
  bool ok = false;
  std::string error;
  int tokens = 0;
  double ttft = 0;
  std::vector<double> itl;
  std::vector<double> arrivals;  // per token: seconds since the level started
};

Job MakeJob(std::mt19937_64& rng, const Config& c) {
  // Prompt lengths are log-uniform (many short chats, some long documents);
  // output lengths uniform.
  std::uniform_real_distribution<double> logu(std::log(c.prompt_words_min), std::log(c.prompt_words_max));
  const int words = static_cast<int>(std::lround(std::exp(logu(rng))));
  std::uniform_int_distribution<int> out(c.output_min, c.output_max);
  std::uniform_int_distribution<size_t> word(0, sizeof(kWords) / sizeof(kWords[0]) - 1);
  Job j;
  for (int i = 0; i < words; ++i) {
    if (i) j.prompt += ' ';
    j.prompt += kWords[word(rng)];
  }
  j.max_tokens = out(rng);
  j.seed = rng();
  return j;
}

Sample RunOne(rocmforge::v1::Inference::Stub& stub, const Job& job, float temperature,
              Clock::time_point level_start) {
  rocmforge::v1::GenerateRequest req;
  req.set_prompt(job.prompt);
  req.mutable_sampling()->set_temperature(temperature);
  req.mutable_sampling()->set_top_p(0.9f);
  req.mutable_sampling()->set_seed(job.seed);
  req.mutable_stopping()->set_max_tokens(job.max_tokens);
  req.mutable_stopping()->set_ignore_eos(true);  // fixed output lengths: comparable runs
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  Sample s;
  const Clock::time_point start = Clock::now();
  Clock::time_point last = start;
  auto reader = stub.Generate(&ctx, req);
  rocmforge::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    const int k = msg.token_ids_size();
    if (k == 0) continue;
    const Clock::time_point now = Clock::now();
    if (s.tokens == 0) {
      s.ttft = std::chrono::duration<double>(now - start).count();
      for (int i = 1; i < k; ++i) s.itl.push_back(0);
    } else {
      const double gap = std::chrono::duration<double>(now - last).count() / k;
      for (int i = 0; i < k; ++i) s.itl.push_back(gap);
    }
    s.tokens += k;
    s.arrivals.insert(s.arrivals.end(), static_cast<size_t>(k),
                      std::chrono::duration<double>(now - level_start).count());
    last = now;
  }
  const grpc::Status st = reader->Finish();
  s.ok = st.ok();
  if (!st.ok()) s.error = st.error_message();
  return s;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct LevelResult {
  int concurrency = 0, requests = 0, failed = 0;
  long tokens = 0, steady_tokens = 0;
  double wall = 0, tok_per_s = 0, ttft_p50 = 0, ttft_p99 = 0, itl_p50 = 0, itl_p99 = 0;
  double steady_seconds = 0, steady_tok_per_s = 0;  // the steady window (see the top)
  std::string first_error;
};

LevelResult RunLevel(const Config& c, int n) {
  std::mt19937_64 rng(c.seed * 1000003u + static_cast<uint64_t>(n));
  std::vector<Job> jobs;
  for (int i = 0; i < n * c.rounds; ++i) jobs.push_back(MakeJob(rng, c));
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::vector<Sample> samples;
  double first_idle = -1;   // when the first client found the queue empty
  double steady_from = -1;  // when the N-th request completed
  int completed = 0;
  std::vector<std::thread> clients;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&] {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per client
      auto channel = grpc::CreateCustomChannel(c.server, grpc::InsecureChannelCredentials(), args);
      auto stub = rocmforge::v1::Inference::NewStub(channel);
      for (;;) {
        const size_t j = next.fetch_add(1);
        if (j >= jobs.size()) break;
        Sample s = RunOne(*stub, jobs[j], c.temperature, start);
        std::lock_guard<std::mutex> lock(mu);
        samples.push_back(std::move(s));
        if (++completed == n) steady_from = std::chrono::duration<double>(Clock::now() - start).count();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (first_idle < 0) first_idle = std::chrono::duration<double>(Clock::now() - start).count();
    });
  }
  for (auto& t : clients) t.join();
  LevelResult r;
  r.concurrency = n;
  r.wall = std::chrono::duration<double>(Clock::now() - start).count();
  r.steady_seconds = steady_from >= 0 && first_idle > steady_from ? first_idle - steady_from : 0;
  std::vector<double> ttft, itl;
  for (const Sample& s : samples) {
    ++r.requests;
    if (!s.ok) {
      ++r.failed;
      if (r.first_error.empty()) r.first_error = s.error;
      continue;
    }
    r.tokens += s.tokens;
    for (double t : s.arrivals) r.steady_tokens += t > steady_from && t <= first_idle;
    ttft.push_back(s.ttft);
    itl.insert(itl.end(), s.itl.begin(), s.itl.end());
  }
  r.steady_tok_per_s = r.steady_seconds > 0 ? static_cast<double>(r.steady_tokens) / r.steady_seconds : 0;
  r.tok_per_s = r.wall > 0 ? static_cast<double>(r.tokens) / r.wall : 0;
  r.ttft_p50 = Percentile(ttft, 50);
  r.ttft_p99 = Percentile(ttft, 99);
  r.itl_p50 = Percentile(itl, 50);
  r.itl_p99 = Percentile(itl, 99);
  return r;
}

bool ParseRange(const std::string& v, int* lo, int* hi) {
  std::vector<std::string> parts = absl::StrSplit(v, ':');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], lo) || !absl::SimpleAtoi(parts[1], hi)) return false;
  return *lo >= 1 && *hi >= *lo;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "load_bench: %s\nusage: load_bench --server HOST:PORT [--concurrency 1,8,32,128] [--rounds 2]\n"
               "       [--prompt-words 16:400] [--output-tokens 32:256] [--seed 1] [--temperature 0.7] [--json FILE]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (auto eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return Usage(("missing value for " + a).c_str());
    }
    if (a == "--server") {
      c.server = v;
    } else if (a == "--concurrency") {
      c.concurrency.clear();
      for (absl::string_view p : absl::StrSplit(v, ',')) {
        int n;
        if (!absl::SimpleAtoi(p, &n) || n < 1 || n > 4096) return Usage("bad --concurrency");
        c.concurrency.push_back(n);
      }
    } else if (a == "--rounds") {
      if (!absl::SimpleAtoi(v, &c.rounds) || c.rounds < 1) return Usage("bad --rounds");
    } else if (a == "--prompt-words") {
      if (!ParseRange(v, &c.prompt_words_min, &c.prompt_words_max)) return Usage("bad --prompt-words (MIN:MAX)");
    } else if (a == "--output-tokens") {
      if (!ParseRange(v, &c.output_min, &c.output_max)) return Usage("bad --output-tokens (MIN:MAX)");
    } else if (a == "--seed") {
      if (!absl::SimpleAtoi(v, &c.seed)) return Usage("bad --seed");
    } else if (a == "--temperature") {
      if (!absl::SimpleAtof(v, &c.temperature) || !(c.temperature >= 0)) return Usage("bad --temperature");
    } else if (a == "--json") {
      c.json_path = v;
    } else {
      return Usage(("unknown flag " + a).c_str());
    }
  }

  {  // Warm-up: one short request, also checks the server is there.
    auto stub = rocmforge::v1::Inference::NewStub(grpc::CreateChannel(c.server, grpc::InsecureChannelCredentials()));
    Sample s = RunOne(*stub, Job{"hello", 4, 1}, 0, Clock::now());
    if (!s.ok) {
      std::fprintf(stderr, "load_bench: warm-up request to %s failed: %s\n", c.server.c_str(), s.error.c_str());
      return 1;
    }
  }

  std::vector<LevelResult> results;
  std::printf(
      "| concurrency | requests | failed | generated tokens | wall s | tok/s (steady) | tok/s (whole run) | "
      "TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int n : c.concurrency) {
    LevelResult r = RunLevel(c, n);
    std::printf("| %d | %d | %d | %ld | %.2f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", r.concurrency,
                r.requests, r.failed, r.tokens, r.wall, r.steady_tok_per_s, r.tok_per_s, r.ttft_p50 * 1e3,
                r.ttft_p99 * 1e3, r.itl_p50 * 1e3, r.itl_p99 * 1e3);
    std::fflush(stdout);
    if (r.failed) std::fprintf(stderr, "load_bench: %d request(s) failed at N=%d, first: %s\n", r.failed, n, r.first_error.c_str());
    results.push_back(r);
  }

  std::string json = absl::StrFormat(
      "{\"server\": \"%s\", \"rounds\": %d, \"prompt_words\": [%d, %d], \"output_tokens\": [%d, %d], "
      "\"seed\": %d, \"temperature\": %g, \"levels\": [",
      c.server, c.rounds, c.prompt_words_min, c.prompt_words_max, c.output_min, c.output_max, c.seed, c.temperature);
  for (size_t i = 0; i < results.size(); ++i) {
    const LevelResult& r = results[i];
    absl::StrAppendFormat(&json,
                          "%s{\"concurrency\": %d, \"requests\": %d, \"failed\": %d, \"generated_tokens\": %d, "
                          "\"wall_seconds\": %.4f, \"tokens_per_second\": %.3f, \"steady_seconds\": %.4f, "
                          "\"steady_tokens\": %ld, \"steady_tokens_per_second\": %.3f, \"ttft_p50_seconds\": %.6f, "
                          "\"ttft_p99_seconds\": %.6f, \"itl_p50_seconds\": %.6f, \"itl_p99_seconds\": %.6f}",
                          i ? ", " : "", r.concurrency, r.requests, r.failed, r.tokens, r.wall, r.tok_per_s,
                          r.steady_seconds, r.steady_tokens, r.steady_tok_per_s, r.ttft_p50, r.ttft_p99, r.itl_p50, r.itl_p99);
  }
  json += "]}\n";
  if (!c.json_path.empty()) {
    std::ofstream(c.json_path) << json;
  } else {
    std::printf("\n%s", json.c_str());
  }
  int failed = 0;
  for (const auto& r : results) failed += r.failed;
  return failed ? 1 : 0;
}
