// `rocmforge generate --server HOST:PORT --prompt TEXT [--session ID] [sampling flags]`:
// the local `generate` command hands calls with --server to this one (same
// arguments). Streams the generated text to stdout as it arrives and a timing
// summary to stderr. An API key comes from --api-key or $ROCMFORGE_API_KEY; TLS
// is used when --tls-ca or $ROCMFORGE_TLS_CA names the CA certificate file.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "grpcpp/grpcpp.h"
#include "rocmforge/v1/inference.grpc.pb.h"

namespace rocmforge::cli {
namespace {

constexpr char kUsage[] =
    "generate-remote --server HOST:PORT --prompt TEXT [--session ID] [--max-tokens N] "
    "[--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] "
    "[--stop STR] [--ignore-eos] [--api-key KEY] [--tls-ca FILE] [--timeout-seconds S]";

std::string EnvOr(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : dflt;
}

int RunGenerateRemote(const std::vector<std::string>& args) {
  // Accepts every flag of the local `generate` (it forwards its arguments);
  // the engine-only ones (--model, --threads, --device, --ctx) do not apply.
  auto flags = Flags::Parse(
      args,
      {"server", "prompt", "session", "max-tokens", "temperature", "top-k", "top-p", "min-p",
       "repeat-penalty", "seed", "stop", "api-key", "tls-ca", "timeout-seconds", "model",
       "threads", "device", "ctx"},
      {"ignore-eos"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  const std::string server = flags->GetOr("server", "");
  if (server.empty()) return Fail("generate --server needs HOST:PORT");
  if (!flags->Has("prompt")) return Fail("generate needs --prompt TEXT");

  v1::GenerateRequest req;
  req.set_prompt(flags->GetOr("prompt", ""));
  req.set_session_id(flags->GetOr("session", ""));
  v1::SamplingOptions* s = req.mutable_sampling();
  v1::StoppingOptions* st = req.mutable_stopping();
  if (flags->Has("max-tokens")) {
    auto v = flags->GetInt("max-tokens", 0);
    if (!v.ok()) return Fail(std::string(v.status().message()));
    st->set_max_tokens(static_cast<int32_t>(*v));
  }
  struct FloatFlag {
    const char* name;
    void (v1::SamplingOptions::*set)(float);
  };
  for (const FloatFlag& f : {FloatFlag{"temperature", &v1::SamplingOptions::set_temperature},
                             FloatFlag{"top-p", &v1::SamplingOptions::set_top_p},
                             FloatFlag{"min-p", &v1::SamplingOptions::set_min_p},
                             FloatFlag{"repeat-penalty", &v1::SamplingOptions::set_repetition_penalty}}) {
    if (!flags->Has(f.name)) continue;
    auto v = flags->GetDouble(f.name, 0);
    if (!v.ok()) return Fail(std::string(v.status().message()));
    (s->*f.set)(static_cast<float>(*v));
  }
  if (flags->Has("top-k")) {
    auto v = flags->GetInt("top-k", 0);
    if (!v.ok()) return Fail(std::string(v.status().message()));
    s->set_top_k(static_cast<int32_t>(*v));
  }
  if (flags->Has("seed")) {
    auto v = flags->GetInt("seed", 0);
    if (!v.ok()) return Fail(std::string(v.status().message()));
    s->set_seed(static_cast<uint64_t>(*v));
  }
  for (const std::string& stop : flags->GetAll("stop")) st->add_stop(stop);
  st->set_ignore_eos(flags->Has("ignore-eos"));
  auto timeout = flags->GetDouble("timeout-seconds", 600);
  if (!timeout.ok()) return Fail(std::string(timeout.status().message()));

  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  const std::string ca_file = flags->GetOr("tls-ca", EnvOr("ROCMFORGE_TLS_CA", ""));
  if (!ca_file.empty()) {
    std::ifstream in(ca_file);
    if (!in) return Fail(absl::StrCat("cannot read CA certificate '", ca_file, "'"));
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(ssl);
  }
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(server, creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000)));
  const std::string key = flags->GetOr("api-key", EnvOr("ROCMFORGE_API_KEY", ""));
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);

  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point first_token;
  int tokens = 0;
  std::string worker;
  v1::GenerateResponse m, last;
  auto reader = stub->Generate(&ctx, req);
  while (reader->Read(&m)) {
    if (tokens == 0 && m.token_ids_size() > 0) first_token = Clock::now();
    tokens += m.token_ids_size();
    if (!m.text().empty()) {
      std::fwrite(m.text().data(), 1, m.text().size(), stdout);
      std::fflush(stdout);
    }
    if (!m.worker().empty()) worker = m.worker();
    last = m;
  }
  const grpc::Status status = reader->Finish();
  // End the streamed line on a terminal; stdout stays exactly the text.
  if (tokens > 0) std::fputc('\n', stderr);
  if (!status.ok()) {
    return Fail(absl::StrCat("generate via ", server, " failed (code ", status.error_code(),
                             "): ", status.error_message()));
  }
  if (last.finish_reason() == v1::FINISH_REASON_ERROR) {
    return Fail(absl::StrCat("generate via ", server, " failed: ", last.error()));
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  const double ttft =
      tokens > 0 ? std::chrono::duration<double>(first_token - start).count() : 0.0;
  std::fprintf(stderr,
               "rocmforge: %d prompt tokens, %d generated in %.3f s (%.1f tokens/s), "
               "first token after %.1f ms%s%s\n",
               last.usage().prompt_tokens(), tokens, total, total > 0 ? tokens / total : 0.0,
               ttft * 1000, worker.empty() ? "" : ", worker ", worker.c_str());
  return 0;
}

}  // namespace

RF_REGISTER_COMMAND(generate_remote, "generate-remote", kUsage, RunGenerateRemote);

}  // namespace rocmforge::cli
