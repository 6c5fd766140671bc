#include "tests/integration/support/fake_engine.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rocmforge::testing {

absl::StatusOr<std::unique_ptr<FakeEngine>> FakeEngine::Create(const Options& options,
                                                               EngineObserver* observer) {
  std::unique_ptr<FakeEngine> e(new FakeEngine());
  e->options_ = options;
  e->observer_ = observer;
  auto file = gguf::GgufFile::Open(options.tokenizer_gguf);
  if (!file.ok()) return file.status();
  e->file_ = std::move(*file);
  auto tok = Tokenizer::FromGguf(*e->file_);
  if (!tok.ok()) return tok.status();
  e->tokenizer_ = std::move(*tok);
  e->config_.arch = "llama";
  e->config_.name = "fake";
  e->config_.n_vocab = e->tokenizer_->vocab_size();
  e->config_.n_ctx_train = options.context_length;
  e->loop_ = std::thread([p = e.get()] { p->Loop(); });
  return e;
}

FakeEngine::~FakeEngine() { Shutdown(); }

TokenId FakeEngine::TokenAt(const std::vector<TokenId>& prompt, int32_t step) const {
  // Ordinary word pieces only (skip the control/byte tokens at the start).
  const int32_t lo = 300, span = tokenizer_->vocab_size() - lo;
  uint32_t h = 2166136261u;
  for (TokenId t : prompt) h = (h ^ static_cast<uint32_t>(t)) * 16777619u;
  h = (h ^ static_cast<uint32_t>(step)) * 16777619u;
  return lo + static_cast<TokenId>(h % static_cast<uint32_t>(span));
}

void FakeEngine::SetPaused(bool paused) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = paused;
  }
  cv_.notify_all();
}

absl::StatusOr<uint64_t> FakeEngine::Submit(GenerationRequest request, EventSink sink) {
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (static_cast<int32_t>(request.prompt.size()) >= options_.context_length) {
    return absl::InvalidArgumentError("prompt is longer than the context");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return absl::UnavailableError("engine is shut down");
  const uint64_t id = next_id_++;
  Running r;
  r.decoder = std::make_unique<IncrementalDecoder>(*tokenizer_);
  r.request = std::move(request);
  r.sink = std::move(sink);
  r.submitted = r.last_token = std::chrono::steady_clock::now();
  running_.emplace(id, std::move(r));
  ++submitted_;
  cv_.notify_all();
  return id;
}

void FakeEngine::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(request_id);
  if (it == running_.end() || it->second.cancelled) return;
  it->second.cancelled = true;
  ++cancels_;
  cv_.notify_all();
}

int32_t FakeEngine::BlocksFor(const Running& r) const {
  const int32_t tokens = static_cast<int32_t>(r.request.prompt.size()) + r.generated;
  return (tokens + options_.kv_block_size - 1) / options_.kv_block_size;
}

EngineStats FakeEngine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s;
  s.total_kv_blocks = options_.total_kv_blocks;
  int32_t used = 0;
  for (const auto& [id, r] : running_) used += BlocksFor(r);
  s.free_kv_blocks = std::max(0, options_.total_kv_blocks - used);
  s.running = paused_ ? 0 : static_cast<int32_t>(running_.size());
  s.waiting = paused_ ? static_cast<int32_t>(running_.size()) : 0;
  return s;
}

void FakeEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
}

void FakeEngine::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.token_interval);
    // Sinks run without the lock (they may call Cancel/Stats re-entrantly).
    std::vector<std::pair<EventSink*, TokenEvent>> events;
    std::vector<uint64_t> done;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, r] : running_) {
      TokenEvent ev;
      if (r.cancelled || stop_) {
        ev.finished = true;
        ev.finish_reason = FinishReason::kCancelled;
      } else if (paused_) {
        continue;
      } else {
        const TokenId t = TokenAt(r.request.prompt, r.generated);
        ev.token_ids.push_back(t);
        ev.text = r.decoder->Push(t);
        const double since = std::chrono::duration<double>(now - r.last_token).count();
        if (r.generated == 0) {
          if (observer_) observer_->OnFirstToken(0, std::chrono::duration<double>(now - r.submitted).count());
        } else if (observer_) {
          observer_->OnToken(since);
        }
        r.last_token = now;
        ++r.generated;
        if (r.generated >= r.request.stopping.max_tokens) {
          ev.text += r.decoder->Flush();
          ev.finished = true;
          ev.finish_reason = FinishReason::kLength;
        }
      }
      if (ev.finished) {
        ev.usage.prompt_tokens = static_cast<int32_t>(r.request.prompt.size());
        ev.usage.generated_tokens = r.generated;
        ev.usage.seed = r.request.sampling.seed;
        ev.usage.total_seconds = std::chrono::duration<double>(now - r.submitted).count();
        if (observer_) observer_->OnFinish(ev.finish_reason, ev.usage);
        done.push_back(id);
      }
      events.emplace_back(&r.sink, std::move(ev));
    }
    if (observer_ && !events.empty()) observer_->OnStep(static_cast<int32_t>(events.size()), static_cast<int32_t>(events.size()), 1e-4);
    // Finished entries leave the map after their sinks ran (the sink
    // pointers stay valid: std::map nodes are stable, and only this thread
    // erases).
    lock.unlock();
    for (auto& [sink, ev] : events) (*sink)(std::move(ev));
    lock.lock();
    for (uint64_t id : done) running_.erase(id);
    if (stop_ && running_.empty()) return;
  }
}

}  // namespace rocmforge::testing
