// The router end to end, in-process, against fake workers (router/fake_worker.h):
// relaying, session affinity across replicas, bounded load, failover before
// and after the first token (no lost or repeated tokens), a killed worker,
// draining, discovery changes, the front door and the metrics contract.
// The fake's tokens are a fixed function of (seed, ids so far), so every
// stream is checked against an independently computed reference.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "grpcpp/generic/generic_stub.h"
#include "prometheus/text_serializer.h"
#include "router/fake_worker.h"
#include "tests/integration/support/child_process.h"
#include "router/placement.h"
#include "router/router_server.h"

namespace rocmforge::router {
namespace {

using testing::FakeWorker;
using testing::FakeWorkerOptions;
using namespace std::chrono_literals;

constexpr int kVocab = 1000;

struct Cluster {
  std::vector<std::unique_ptr<FakeWorker>> workers;
  std::vector<std::unique_ptr<Router>> routers;
  std::vector<std::string> addresses() const {
    std::vector<std::string> a;
    for (const auto& w : workers) a.push_back(w->address());
    return a;
  }
};

RouterOptions TestOptions() {
  RouterOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.metrics_port = 0;
  o.health_interval = 100ms;
  o.dns_refresh = 100ms;
  return o;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

std::unique_ptr<FakeWorker> StartFake(std::chrono::microseconds delay = 0us) {
  FakeWorkerOptions o;
  o.vocab = kVocab;
  o.token_delay = delay;
  auto w = FakeWorker::Start(o);
  EXPECT_TRUE(w.ok()) << w.status();
  return std::move(w).value();
}

std::unique_ptr<Router> StartRouter(RouterOptions o, size_t expect_usable) {
  auto r = Router::Start(o);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return nullptr;
  Router* router = r->get();
  EXPECT_TRUE(WaitFor([&] { return router->pool().Usable().size() == expect_usable; }))
      << router->pool().Usable().size() << " usable";
  return std::move(r).value();
}

Cluster MakeCluster(int workers, int routers, std::chrono::microseconds delay = 0us,
                    std::function<void(RouterOptions&)> tweak = nullptr) {
  Cluster c;
  for (int i = 0; i < workers; ++i) c.workers.push_back(StartFake(delay));
  for (int i = 0; i < routers; ++i) {
    RouterOptions o = TestOptions();
    o.workers = c.addresses();
    if (tweak) tweak(o);
    c.routers.push_back(StartRouter(o, workers));
  }
  return c;
}

std::unique_ptr<v1::Inference::Stub> Client(const Router& r) {
  return v1::Inference::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(r.port()), grpc::InsecureChannelCredentials()));
}

struct StreamResult {
  grpc::Status status;
  std::vector<int32_t> ids;
  std::string text;
  std::vector<std::string> workers;  // per message
  v1::GenerateResponse last;
  std::multimap<std::string, std::string> trailers;
};

StreamResult Generate(v1::Inference::Stub& stub, const v1::GenerateRequest& req,
                      const std::string& key = "",
                      std::chrono::milliseconds deadline = 20000ms,
                      const std::function<void(grpc::ClientContext&, int)>& on_token = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  StreamResult out;
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    out.ids.insert(out.ids.end(), m.token_ids().begin(), m.token_ids().end());
    out.text += m.text();
    out.workers.push_back(m.worker());
    out.last = m;
    if (on_token) on_token(ctx, static_cast<int>(out.ids.size()));
  }
  out.status = reader->Finish();
  for (const auto& [k, v] : ctx.GetServerTrailingMetadata())
    out.trailers.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return out;
}

v1::GenerateRequest IdsRequest(std::vector<int32_t> prompt, int max_tokens, uint64_t seed,
                               const std::string& session = "") {
  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_ids(id);
  r.mutable_stopping()->set_max_tokens(max_tokens);
  r.mutable_sampling()->set_seed(seed);
  r.set_session_id(session);
  return r;
}

std::vector<int32_t> Reference(std::vector<int32_t> prompt, uint64_t seed, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t id = FakeWorker::NextToken(seed, prompt, kVocab);
    prompt.push_back(id);
    out.push_back(id);
  }
  return out;
}

std::string ReferenceText(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += FakeWorker::Piece(id);
  return s;
}

// The worker a session prefers when no worker is loaded.
std::string PreferredWorker(const std::string& session, const std::vector<std::string>& addrs) {
  std::vector<Candidate> c;
  for (const auto& a : addrs) c.push_back({a, 0});
  return c[RendezvousOrder(session, c).front()].address;
}

FakeWorker* ByAddress(Cluster& c, const std::string& address) {
  for (auto& w : c.workers)
    if (w->address() == address) return w.get();
  return nullptr;
}

std::string Scrape(Router& r) {
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, r.metrics().registry().Collect());
  return os.str();
}

double MetricValue(Router& r, const std::string& name_and_labels) {
  std::istringstream in(Scrape(r));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  }
  return -1;
}

TEST(RouterRelay, RelaysTheWorkersStreamUnchanged) {
  Cluster c = MakeCluster(1, 1);
  auto stub = Client(*c.routers[0]);
  const std::vector<int32_t> prompt = {1, 40, 41, 42, 43, 44, 45};
  StreamResult r = Generate(*stub, IdsRequest(prompt, 37, 99));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.ids, Reference(prompt, 99, 37));
  EXPECT_EQ(r.text, ReferenceText(r.ids));
  EXPECT_EQ(r.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  for (const auto& w : r.workers) EXPECT_EQ(w, c.workers[0]->address());
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_relayed_tokens_total"), 37);
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_requests_total{outcome=\"ok\"}"), 1);
}

TEST(RouterRelay, DrawsASeedWhenTheClientGivesNone) {
  Cluster c = MakeCluster(1, 1);
  auto stub = Client(*c.routers[0]);
  v1::GenerateRequest req = IdsRequest({1, 5, 6}, 4, 0);
  req.mutable_sampling()->clear_seed();
  StreamResult r = Generate(*stub, req);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(c.workers[0]->last_request().sampling().has_seed());
  EXPECT_EQ(r.last.usage().seed(), c.workers[0]->last_request().sampling().seed());
}

TEST(RouterRelay, SameSessionSameWorkerThroughEitherRouter) {
  Cluster c = MakeCluster(3, 2);
  auto a = Client(*c.routers[0]);
  auto b = Client(*c.routers[1]);
  std::set<std::string> used;
  for (int s = 0; s < 30; ++s) {
    const std::string session = "user-" + std::to_string(s * 7919);
    StreamResult ra = Generate(*a, IdsRequest({1, 7}, 2, s, session));
    StreamResult rb = Generate(*b, IdsRequest({1, 8}, 2, s, session));
    ASSERT_TRUE(ra.status.ok() && rb.status.ok());
    EXPECT_EQ(ra.workers.front(), rb.workers.front()) << session;
    EXPECT_EQ(ra.workers.front(), PreferredWorker(session, c.addresses())) << session;
    used.insert(ra.workers.front());
  }
  EXPECT_EQ(used.size(), 3u);
}

// 200 sessions held open at once on 3 workers: bounded load keeps the busiest
// worker within 1.25x the mean.
TEST(RouterRelay, TwoHundredOpenSessionsStayBalanced) {
  // Health checks with room to be slow: under TSan on two busy cores, with 200
  // streams open, three 200 ms checks in a row once went unanswered and took
  // every worker out of placement (CI, session 22). Balance is what this test
  // is about; the health rules have their own tests.
  Cluster c = MakeCluster(3, 1, 50ms, [](RouterOptions& o) {
    o.health_interval = 1000ms;
    o.unhealthy_after = 10;
  });
  auto stub = Client(*c.routers[0]);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::map<std::string, int> per_worker;
  std::vector<grpc::ClientContext*> contexts(200, nullptr);
  std::atomic<int> started{0};
  std::string no_first_token;  // guarded by mu
  for (int s = 0; s < 200; ++s) {
    threads.emplace_back([&, s] {
      v1::GenerateRequest req = IdsRequest({1, 9}, 100000, s, "sess-" + std::to_string(s));
      grpc::ClientContext ctx;
      auto reader = stub->Generate(&ctx, req);
      v1::GenerateResponse m;
      if (reader->Read(&m)) {
        std::lock_guard<std::mutex> lock(mu);
        ++per_worker[m.worker()];
        contexts[s] = &ctx;
      } else {  // no first token: keep why, for the count's failure message
        const grpc::Status st = reader->Finish();
        {
          std::lock_guard<std::mutex> lock(mu);
          no_first_token += absl::StrCat(" sess-", s, ": ", st.error_code(), " ", st.error_message(), ";");
        }
        started.fetch_add(1);
        return;
      }
      started.fetch_add(1);
      while (reader->Read(&m)) {
      }
      reader->Finish();
      std::lock_guard<std::mutex> lock(mu);
      contexts[s] = nullptr;
    });
    // One at a time, so each placement sees the streams before it.
    ASSERT_TRUE(WaitFor([&] { return started.load() == s + 1; }));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    int total = 0, busiest = 0;
    for (const auto& [w, n] : per_worker) {
      total += n;
      busiest = std::max(busiest, n);
    }
    EXPECT_EQ(total, 200) << "streams without a first token:" << no_first_token;
    EXPECT_EQ(per_worker.size(), 3u);
    EXPECT_LE(busiest, 1.25 * total / 3.0)
        << "per worker: " << absl::StrJoin(per_worker, ", ", absl::PairFormatter("="));
    for (grpc::ClientContext* ctx : contexts)
      if (ctx) ctx->TryCancel();
  }
  for (auto& t : threads) t.join();
  // 200 cancellations to relay: generous under TSan on two busy cores.
  EXPECT_TRUE(WaitFor([&] {
    for (auto& w : c.workers)
      if (w->in_flight() != 0) return false;
    return true;
  }, 20000ms));
}

TEST(RouterRelay, FailureBeforeFirstTokenRetriesOnTheNextWorker) {
  Cluster c = MakeCluster(3, 1);
  const std::string session = "retry-me";
  const std::string first = PreferredWorker(session, c.addresses());
  ByAddress(c, first)->SetFailAfterTokens(0);
  auto stub = Client(*c.routers[0]);
  StreamResult r = Generate(*stub, IdsRequest({1, 2, 3}, 12, 5, session));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.ids, Reference({1, 2, 3}, 5, 12));
  EXPECT_NE(r.workers.front(), first);
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_placements_total{decision=\"retry\"}"), 1);
}

// Mid-stream failure, for each prompt form: the stream continues on another
// worker with no lost or repeated token.
void CheckResume(v1::GenerateRequest req, const std::vector<int32_t>& prompt_ids,
                 bool expect_resume_fields) {
  Cluster c = MakeCluster(3, 1);
  req.set_session_id("resume-session");
  const std::string first = PreferredWorker(req.session_id(), c.addresses());
  ByAddress(c, first)->SetFailAfterTokens(5);
  auto stub = Client(*c.routers[0]);
  StreamResult r = Generate(*stub, req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const uint64_t seed = r.last.usage().seed();
  const std::vector<int32_t> want = Reference(prompt_ids, seed, req.stopping().max_tokens());
  EXPECT_EQ(r.ids, want);
  EXPECT_EQ(r.text, ReferenceText(want));
  ASSERT_EQ(r.workers.size(), want.size());
  EXPECT_EQ(r.workers[4], first);
  EXPECT_NE(r.workers[5], first);
  FakeWorker* second = ByAddress(c, r.workers[5]);
  const v1::GenerateRequest resumed = second->last_request();
  EXPECT_EQ(resumed.sampling().seed(), seed);
  EXPECT_EQ(resumed.stopping().max_tokens(), req.stopping().max_tokens());
  if (expect_resume_fields) {
    EXPECT_EQ(resumed.resume_generated(), 5);
    std::vector<int32_t> expect_prompt = prompt_ids;
    expect_prompt.insert(expect_prompt.end(), want.begin(), want.begin() + 5);
    EXPECT_EQ(std::vector<int32_t>(resumed.prompt_ids().begin(), resumed.prompt_ids().end()),
              expect_prompt);
  }
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_placements_total{decision=\"resume\"}"), 1);
}

TEST(RouterRelay, MidStreamFailureResumesPromptIds) {
  CheckResume(IdsRequest({1, 50, 60, 70}, 17, 4242), {1, 50, 60, 70}, true);
}

TEST(RouterRelay, MidStreamFailureResumesTextPromptViaTokenize) {
  v1::GenerateRequest req;
  req.set_prompt("In the beginning");
  req.mutable_stopping()->set_max_tokens(13);  // no seed: the router's drawn seed must carry over
  CheckResume(req, FakeWorker::TokenizeText("In the beginning", true), true);
}

TEST(RouterRelay, MidStreamFailureReplaysChatMessages) {
  v1::GenerateRequest req;
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("hello there");
  req.mutable_stopping()->set_max_tokens(11);
  req.mutable_sampling()->set_seed(77);
  CheckResume(req, FakeWorker::TokenizeText("user: hello there\n", true), false);
}

// A worker dies (all its calls end at once, its port closes) while 20 streams
// are in flight: every stream completes with exactly the undisturbed tokens.
TEST(RouterRelay, KilledWorkerLosesNoStream) {
  Cluster c = MakeCluster(3, 1, 3ms);
  auto stub = Client(*c.routers[0]);
  std::vector<StreamResult> results(20);
  std::vector<std::vector<int32_t>> prompts(20);
  std::atomic<int> tokens_seen{0}, streams_started{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    prompts[i] = {1, 100 + i, 200 + i};
    threads.emplace_back([&, i] {
      bool started = false;
      results[i] = Generate(*stub, IdsRequest(prompts[i], 40, 1000 + i, "kill-" + std::to_string(i)),
                            "", 20000ms, [&](grpc::ClientContext&, int) {
                              if (!std::exchange(started, true)) streams_started.fetch_add(1);
                              tokens_seen.fetch_add(1);
                            });
    });
  }
  // Every stream placed (its first token seen) before the victim is chosen:
  // a thread that started late could otherwise land on the victim between
  // counting its streams and the kill (a fake worker sends the first token at
  // once), and count as moved without being counted in victim_streams (seen
  // once in a TSan run on a loaded 2-core machine: 7 moved vs 6).
  ASSERT_TRUE(WaitFor([&] { return streams_started.load() == 20 && tokens_seen.load() >= 20 * 5; }));
  FakeWorker* victim = c.workers[0].get();
  for (auto& w : c.workers)
    if (w->in_flight() > victim->in_flight()) victim = w.get();
  const int victim_streams = victim->in_flight();
  const std::string victim_address = victim->address();
  victim->Kill();
  for (auto& t : threads) t.join();
  int moved = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].ids, Reference(prompts[i], 1000 + i, 40)) << i;
    EXPECT_EQ(results[i].text, ReferenceText(results[i].ids)) << i;
    // Moved: first tokens from the victim, the rest from another worker.
    if (results[i].workers.front() == victim_address && results[i].workers.back() != victim_address) ++moved;
  }
  // Streams that had their first token from the victim were cut mid-stream
  // and resumed (one that had not yet got a token was retried instead).
  EXPECT_GT(victim_streams, 0);
  EXPECT_GT(moved, 0);
  EXPECT_LE(moved, victim_streams);
}

TEST(RouterRelay, DrainingWorkerGetsNoNewSessionsAndFinishesItsStreams) {
  Cluster c = MakeCluster(3, 1, 5ms);
  auto stub = Client(*c.routers[0]);
  const std::string session = "long-running";
  const std::string drained = PreferredWorker(session, c.addresses());
  StreamResult long_run;
  std::atomic<bool> got_first{false};
  std::thread t([&] {
    long_run = Generate(*stub, IdsRequest({1, 3}, 60, 8, session), "", 20000ms,
                        [&](grpc::ClientContext&, int) { got_first.store(true); });
  });
  ASSERT_TRUE(WaitFor([&] { return got_first.load(); }));
  ByAddress(c, drained)->SetDraining(true);
  ASSERT_TRUE(WaitFor([&] { return c.routers[0]->pool().Usable().size() == 2; }));
  for (int s = 0; s < 40; ++s) {
    StreamResult r = Generate(*stub, IdsRequest({1, 4}, 1, s, "new-" + std::to_string(s)));
    ASSERT_TRUE(r.status.ok());
    EXPECT_NE(r.workers.front(), drained);
  }
  t.join();
  ASSERT_TRUE(long_run.status.ok());
  EXPECT_EQ(long_run.ids, Reference({1, 3}, 8, 60));
  for (const auto& w : long_run.workers) EXPECT_EQ(w, drained);
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_worker_healthy{worker=\"" + drained + "\"}"), 0);
}

// Discovery: a worker that appears in the resolver's answer starts getting
// sessions without a restart; one that vanishes gets none.
TEST(RouterRelay, WorkersAddedAndRemovedAtRunTime) {
  Cluster c;
  for (int i = 0; i < 3; ++i) c.workers.push_back(StartFake());
  std::mutex mu;
  std::vector<std::string> answer = {c.workers[0]->address(), c.workers[1]->address()};
  RouterOptions o = TestOptions();
  o.resolver = [&]() -> absl::StatusOr<std::vector<std::string>> {
    std::lock_guard<std::mutex> lock(mu);
    return answer;
  };
  auto router = StartRouter(o, 2);
  auto stub = Client(*router);
  {
    std::lock_guard<std::mutex> lock(mu);
    answer.push_back(c.workers[2]->address());
  }
  ASSERT_TRUE(WaitFor([&] { return router->pool().Usable().size() == 3; }));
  std::map<std::string, int> count;
  for (int s = 0; s < 60; ++s) {
    StreamResult r = Generate(*stub, IdsRequest({1, 4}, 1, s, "dyn-" + std::to_string(s)));
    ASSERT_TRUE(r.status.ok());
    ++count[r.workers.front()];
  }
  EXPECT_GT(count[c.workers[2]->address()], 5);
  {
    std::lock_guard<std::mutex> lock(mu);
    answer = {c.workers[1]->address(), c.workers[2]->address()};
  }
  ASSERT_TRUE(WaitFor([&] { return router->pool().All().size() == 2; }));
  for (int s = 0; s < 30; ++s) {
    StreamResult r = Generate(*stub, IdsRequest({1, 4}, 1, s, "dyn-" + std::to_string(s)));
    ASSERT_TRUE(r.status.ok());
    EXPECT_NE(r.workers.front(), c.workers[0]->address());
  }
}

TEST(RouterRelay, ResolvesDnsNames) {
  auto w = StartFake();
  RouterOptions o = TestOptions();
  o.workers_dns = "localhost:" + std::to_string(w->port());
  auto router = StartRouter(o, 1);
  ASSERT_TRUE(router);
  auto stub = Client(*router);
  StreamResult r = Generate(*stub, IdsRequest({1, 2}, 3, 1));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.ids, Reference({1, 2}, 1, 3));
}

TEST(RouterRelay, ClientCancelAndDeadlineReachTheWorker) {
  Cluster c = MakeCluster(1, 1, 10ms);
  auto stub = Client(*c.routers[0]);
  StreamResult r = Generate(*stub, IdsRequest({1, 2}, 100000, 1), "", 20000ms,
                            [](grpc::ClientContext& ctx, int n) {
                              if (n == 3) ctx.TryCancel();
                            });
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return c.workers[0]->in_flight() == 0; }, 10000ms));

  StreamResult d = Generate(*stub, IdsRequest({1, 2}, 100000, 1), "", 500ms);
  EXPECT_EQ(d.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitFor([&] { return c.workers[0]->in_flight() == 0; }, 10000ms));
  EXPECT_TRUE(WaitFor([&] {
    return MetricValue(*c.routers[0], "rocmforge_router_requests_total{outcome=\"cancelled\"}") == 1 &&
           MetricValue(*c.routers[0],
                       "rocmforge_router_requests_total{outcome=\"deadline_exceeded\"}") == 1 &&
           MetricValue(*c.routers[0], "rocmforge_router_worker_in_flight{worker=\"" +
                                          c.workers[0]->address() + "\"}") == 0;
  })) << Scrape(*c.routers[0]);
}

TEST(RouterRelay, BadInputsGetTheRightCodes) {
  Cluster c = MakeCluster(2, 1, 0us, [](RouterOptions& o) { o.max_request_bytes = 64 * 1024; });
  auto stub = Client(*c.routers[0]);
  auto code = [&](const v1::GenerateRequest& r) { return Generate(*stub, r).status.error_code(); };

  v1::GenerateRequest none;
  EXPECT_EQ(code(none), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest both = IdsRequest({1, 2}, 3, 1);
  both.set_prompt("and text");
  EXPECT_EQ(code(both), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest lp = IdsRequest({1, 2}, 3, 1);
  lp.set_logprobs(99);
  EXPECT_EQ(code(lp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest resume = IdsRequest({1, 2}, 3, 1);
  resume.set_resume_generated(3);
  EXPECT_EQ(code(resume), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest model = IdsRequest({1, 2}, 3, 1);
  model.set_model("no-such-model");
  EXPECT_EQ(code(model), grpc::StatusCode::INVALID_ARGUMENT);

  // A worker's own INVALID_ARGUMENT is relayed as is, not retried elsewhere.
  const int calls_before = c.workers[0]->generate_calls() + c.workers[1]->generate_calls();
  EXPECT_EQ(code(IdsRequest({1, 2}, -5, 1)), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(c.workers[0]->generate_calls() + c.workers[1]->generate_calls(), calls_before + 1);

  v1::GenerateRequest huge;
  huge.set_prompt(std::string(200 * 1024, 'x'));
  EXPECT_EQ(code(huge), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Bytes that are not a GenerateRequest at all.
  grpc::GenericStub generic(grpc::CreateChannel("127.0.0.1:" + std::to_string(c.routers[0]->port()),
                                                grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  const char garbage[] = "\x0a\xff\xff\xff\xff\x0f\x12\x01";
  grpc::Slice slice(garbage, sizeof(garbage) - 1);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status garbage_status;
  generic.UnaryCall(&ctx, "/rocmforge.v1.Inference/Tokenize", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      garbage_status = s;
                      done = true;
                      cv.notify_all();
                    });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  EXPECT_FALSE(garbage_status.ok());

  // Still serving afterwards.
  EXPECT_TRUE(Generate(*stub, IdsRequest({1, 2}, 3, 1)).status.ok());
  EXPECT_EQ(MetricValue(*c.routers[0], "rocmforge_router_requests_total{outcome=\"invalid_argument\"}"), 6);
}

TEST(RouterRelay, NoHealthyWorkerIsUnavailable) {
  Cluster c = MakeCluster(1, 1);
  c.workers[0]->SetServing(false);
  ASSERT_TRUE(WaitFor([&] { return c.routers[0]->pool().Usable().empty(); }));
  auto stub = Client(*c.routers[0]);
  EXPECT_EQ(Generate(*stub, IdsRequest({1}, 2, 1)).status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

// A check that gets no load report (a busy worker past the check's deadline)
// counts only from the third in a row; an answer puts the worker back.
TEST(RouterRelay, WorkerLeavesPlacementOnlyAfterThreeUnansweredChecks) {
  std::unique_ptr<FakeWorker> fake = StartFake();
  RouterMetrics metrics;
  WorkerPoolOptions o;
  o.poll_interval = std::chrono::hours(1);  // checks only when this test asks
  o.check_timeout = 5000ms;
  WorkerPool pool(o, &metrics);
  pool.SetWorkers({fake->address()});
  // One round of checks, waited for.
  auto check = [&] {
    pool.PollOnce();
    ASSERT_TRUE(WaitFor([&] { return !pool.All().front()->poll_pending.load(); }));
  };
  check();
  ASSERT_EQ(pool.Usable().size(), 1u);
  fake->SetLoadReportError(grpc::StatusCode::DEADLINE_EXCEEDED);
  check();
  check();
  EXPECT_EQ(pool.Usable().size(), 1u) << "two unanswered checks took the worker out";
  check();
  EXPECT_TRUE(pool.Usable().empty()) << "three unanswered checks left the worker in";
  fake->SetLoadReportError(grpc::StatusCode::OK);
  check();
  EXPECT_EQ(pool.Usable().size(), 1u);
  // The streak starts over after an answer.
  fake->SetLoadReportError(grpc::StatusCode::UNAVAILABLE);
  check();
  check();
  EXPECT_EQ(pool.Usable().size(), 1u);
  pool.Stop();
}

// Readiness follows the workers: the named service is SERVING only while some
// worker is usable; the overall service (liveness) stays SERVING.
TEST(RouterRelay, ReadinessFollowsUsableWorkers) {
  Cluster c = MakeCluster(1, 1);
  const std::string address = "127.0.0.1:" + std::to_string(c.routers[0]->port());
  const std::string ready = Router::kReadyService;
  ASSERT_TRUE(WaitFor([&] { return rocmforge::testing::HealthStatus(address, ready) == "SERVING"; }));
  c.workers[0]->SetServing(false);
  EXPECT_TRUE(WaitFor([&] { return rocmforge::testing::HealthStatus(address, ready) == "NOT_SERVING"; }));
  EXPECT_EQ(rocmforge::testing::HealthStatus(address), "SERVING");
  c.workers[0]->SetServing(true);
  EXPECT_TRUE(WaitFor([&] { return rocmforge::testing::HealthStatus(address, ready) == "SERVING"; }));
}

TEST(RouterRelay, ApiKeysAndPerKeyConcurrency) {
  Cluster c = MakeCluster(1, 1, 10ms, [](RouterOptions& o) {
    o.api_keys = {"key-a", "key-b"};
    o.max_concurrency_per_key = 1;
  });
  auto stub = Client(*c.routers[0]);
  const v1::GenerateRequest req = IdsRequest({1, 2}, 2, 1);
  EXPECT_EQ(Generate(*stub, req).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(*stub, req, "wrong").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Generate(*stub, req, "key-a").status.ok());

  // key-a holds its one slot with a long stream; a second key-a call is refused
  // with a retry hint, key-b is not affected.
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  std::thread t([&] {
    Generate(*stub, IdsRequest({1, 2}, 100000, 1), "key-a", 20000ms,
             [&](grpc::ClientContext& ctx, int) {
               holding.store(true);
               if (release.load()) ctx.TryCancel();
             });
  });
  ASSERT_TRUE(WaitFor([&] { return holding.load(); }));
  StreamResult refused = Generate(*stub, req, "key-a");
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.status.error_message().find("retry after"), std::string::npos);
  EXPECT_EQ(refused.trailers.count("retry-after-ms"), 1u);
  EXPECT_TRUE(Generate(*stub, req, "key-b").status.ok());
  v1::TokenizeRequest tq;
  tq.set_text("x");
  v1::TokenizeResponse tr;
  grpc::ClientContext tctx;
  EXPECT_EQ(stub->Tokenize(&tctx, tq, &tr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  release.store(true);
  t.join();
  EXPECT_TRUE(WaitFor([&] { return Generate(*stub, req, "key-a").status.ok(); }));
}

TEST(RouterRelay, ForwardsTokenizeDetokenizeModelInfo) {
  Cluster c = MakeCluster(2, 1);
  auto stub = Client(*c.routers[0]);
  grpc::ClientContext c1, c2, c3;
  v1::TokenizeRequest tq;
  tq.set_text("hi!");
  tq.set_add_special(true);
  v1::TokenizeResponse tr;
  ASSERT_TRUE(stub->Tokenize(&c1, tq, &tr).ok());
  EXPECT_EQ(std::vector<int32_t>(tr.token_ids().begin(), tr.token_ids().end()),
            FakeWorker::TokenizeText("hi!", true));
  v1::DetokenizeRequest dq;
  dq.add_token_ids(17);
  dq.add_token_ids(23);
  v1::DetokenizeResponse dr;
  ASSERT_TRUE(stub->Detokenize(&c2, dq, &dr).ok());
  EXPECT_EQ(dr.text(), FakeWorker::Piece(17) + FakeWorker::Piece(23));
  v1::ModelInfoResponse mr;
  ASSERT_TRUE(stub->ModelInfo(&c3, v1::ModelInfoRequest(), &mr).ok());
  EXPECT_EQ(mr.model(), "fake-model");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TLS at the front door and mTLS from the router to a worker that requires a
// client certificate signed by its CA. Certificates are made fresh with the
// openssl tool (EC P-256, a throwaway CA).
TEST(RouterRelay, TlsFrontDoorAndMutualTlsToWorkers) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl tool";
  const std::string dir = std::string(ROCMFORGE_BINARY_DIR) + "/router_tls_test";
  std::filesystem::create_directories(dir);
  const std::string script =
      "cd " + dir + " && "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
      "-out ca.crt -days 2 -subj /CN=rocmforge-test-ca && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
      "-out server.csr -subj /CN=localhost && "
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt "
      "-days 2 -extfile san.ext && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key "
      "-out client.csr -subj /CN=router && "
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt "
      "-days 2 > /dev/null 2>&1";
  ASSERT_EQ(std::system((script + " > /dev/null 2>&1").c_str()), 0);

  grpc::SslServerCredentialsOptions worker_ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  worker_ssl.pem_root_certs = ReadAll(dir + "/ca.crt");
  worker_ssl.pem_key_cert_pairs.push_back({ReadAll(dir + "/server.key"), ReadAll(dir + "/server.crt")});
  FakeWorkerOptions wo;
  wo.vocab = kVocab;
  wo.credentials = grpc::SslServerCredentials(worker_ssl);
  auto worker = FakeWorker::Start(wo);
  ASSERT_TRUE(worker.ok()) << worker.status();

  RouterOptions o = TestOptions();
  o.workers = {(*worker)->address()};
  o.tls_cert_file = dir + "/server.crt";
  o.tls_key_file = dir + "/server.key";
  o.worker_ca_file = dir + "/ca.crt";
  o.worker_cert_file = dir + "/client.crt";
  o.worker_key_file = dir + "/client.key";
  auto router = StartRouter(o, 1);
  ASSERT_TRUE(router);

  grpc::SslCredentialsOptions client_ssl;
  client_ssl.pem_root_certs = ReadAll(dir + "/ca.crt");
  auto tls_stub = v1::Inference::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(router->port()), grpc::SslCredentials(client_ssl)));
  StreamResult r = Generate(*tls_stub, IdsRequest({1, 2}, 5, 3));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.ids, Reference({1, 2}, 3, 5));
  // A plaintext client cannot talk to the TLS front door.
  auto plain = Client(*router);
  EXPECT_FALSE(Generate(*plain, IdsRequest({1, 2}, 5, 3), "", 2000ms).status.ok());

  // A router without a client certificate never gets the worker healthy.
  RouterOptions no_cert = TestOptions();
  no_cert.workers = {(*worker)->address()};
  no_cert.worker_ca_file = dir + "/ca.crt";
  auto r2 = Router::Start(no_cert);
  ASSERT_TRUE(r2.ok());
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE((*r2)->pool().Usable().empty());
}

// Every router metric named in docs/metrics.md exists (dashboards query them).
TEST(RouterRelay, ExportsExactlyTheDocumentedMetricNames) {
  Cluster c = MakeCluster(1, 1);
  auto stub = Client(*c.routers[0]);
  ASSERT_TRUE(Generate(*stub, IdsRequest({1, 2}, 2, 1)).status.ok());
  std::ifstream doc(std::string(ROCMFORGE_MODELS_DIR) + "/../docs/metrics.md");
  ASSERT_TRUE(doc.good());
  std::stringstream ss;
  ss << doc.rdbuf();
  const std::string text = ss.str();
  std::set<std::string> documented;
  std::regex name_re("`(rocmforge_router_[a-z_]+)`");
  for (std::sregex_iterator it(text.begin(), text.end(), name_re), end; it != end; ++it)
    documented.insert((*it)[1]);
  ASSERT_GE(documented.size(), 8u);
  std::set<std::string> exported;
  for (const auto& family : c.routers[0]->metrics().registry().Collect()) exported.insert(family.name);
  EXPECT_EQ(documented, exported);
}

}  // namespace
}  // namespace rocmforge::router
