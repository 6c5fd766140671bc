#include "router/worker_pool.h"

#include <set>

#include "router/router_metrics.h"

namespace rocmforge::router {
namespace {

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";
constexpr uint64_t kHealthServing = 1;  // grpc.health.v1.HealthCheckResponse.SERVING

// HealthCheckResponse is one field: `status` (field 1, varint). Parsing the wire
// bytes directly avoids compiling health.proto into a second copy of its
// descriptor (the worker library may link one).
bool ParseHealthStatus(const grpc::ByteBuffer& buffer, uint64_t* status) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  *status = 0;  // proto3 default (UNKNOWN) when the field is absent
  size_t i = 0;
  auto read_varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && i < bytes.size(); shift += 7) {
      const uint8_t b = static_cast<uint8_t>(bytes[i++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < bytes.size()) {
    uint64_t tag = 0, value = 0;
    if (!read_varint(&tag)) return false;
    const int wire_type = static_cast<int>(tag & 7);
    if (wire_type == 0) {
      if (!read_varint(&value)) return false;
      if ((tag >> 3) == 1) *status = value;
    } else if (wire_type == 2) {
      if (!read_varint(&value) || value > bytes.size() - i) return false;
      i += value;
    } else {
      return false;  // no other wire types in this message
    }
  }
  return true;
}

}  // namespace

WorkerPool::WorkerPool(WorkerPoolOptions options, RouterMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  if (!options_.credentials) options_.credentials = grpc::InsecureChannelCredentials();
}

WorkerPool::~WorkerPool() { Stop(); }

WorkerHandle WorkerPool::MakeWorker(const std::string& address) const {
  grpc::ChannelArguments args;
  // Notice dead peers and come back quickly when a worker restarts.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (!options_.tls_target_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls_target_name);
  }
  auto w = std::make_shared<Worker>();
  w->address = address;
  w->channel = grpc::CreateCustomChannel(address, options_.credentials, args);
  w->inference = v1::Inference::NewStub(w->channel);
  w->control = v1::WorkerControl::NewStub(w->channel);
  w->generic = std::make_unique<grpc::GenericStub>(w->channel);
  return w;
}

void WorkerPool::SetWorkers(const std::vector<std::string>& addresses) {
  std::vector<WorkerHandle> added;
  std::vector<std::string> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::set<std::string> wanted(addresses.begin(), addresses.end());
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (!wanted.count(it->first)) {
        removed.push_back(it->first);
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& a : wanted) {
      if (!workers_.count(a)) {
        WorkerHandle w = MakeWorker(a);
        workers_.emplace(a, w);
        added.push_back(w);
      }
    }
  }
  for (const std::string& a : removed) metrics_->RemoveWorker(a);
  if (!removed.empty()) PublishAnyUsable();
  for (const WorkerHandle& w : added) {
    PublishHealth(w);
    metrics_->SetWorkerInFlight(w->address, 0);
    Check(w);  // a new worker becomes usable as soon as it answers
  }
}

std::vector<WorkerHandle> WorkerPool::Usable() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerHandle> out;
  for (const auto& [address, w] : workers_)
    if (w->Usable()) out.push_back(w);
  return out;
}

std::vector<WorkerHandle> WorkerPool::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerHandle> out;
  for (const auto& [address, w] : workers_) out.push_back(w);
  return out;
}

void WorkerPool::MarkFailed(const WorkerHandle& w) {
  w->fail_epoch.fetch_add(1);
  w->failed.store(true);
  PublishHealth(w);
}

void WorkerPool::StreamOpened(const WorkerHandle& w) {
  metrics_->SetWorkerInFlight(w->address, w->in_flight.fetch_add(1) + 1);
}
void WorkerPool::StreamClosed(const WorkerHandle& w) {
  metrics_->SetWorkerInFlight(w->address, w->in_flight.fetch_sub(1) - 1);
}

void WorkerPool::PublishHealth(const WorkerHandle& w) {
  metrics_->SetWorkerHealthy(w->address, w->Usable());
  metrics_->SetWorkerLoad(w->address, w->reported_load.load());
  PublishAnyUsable();
}

void WorkerPool::PublishAnyUsable() {
  if (!options_.on_usable_change) return;
  // Computed under usable_mu_, so two threads cannot tell stale answers out of order.
  std::lock_guard<std::mutex> lock(usable_mu_);
  const int any = Usable().empty() ? 0 : 1;
  if (any == last_any_usable_) return;
  last_any_usable_ = any;
  options_.on_usable_change(any == 1);
}

void WorkerPool::Check(const WorkerHandle& w) {
  if (w->poll_pending.exchange(true)) return;  // the previous check is still out
  struct CheckCall {
    grpc::ClientContext health_ctx;
    grpc::ClientContext load_ctx;
    grpc::ByteBuffer health_request;
    grpc::ByteBuffer health_response;
    v1::LoadRequest load_request;
    v1::LoadReport load_response;
    grpc::Status health_status;
    grpc::Status load_status;
    std::atomic<int> remaining{2};
    uint64_t fail_epoch = 0;
    int in_flight_at_ask = 0;
  };
  auto call = std::make_shared<CheckCall>();
  call->fail_epoch = w->fail_epoch.load();
  call->in_flight_at_ask = w->in_flight.load();
  grpc::Slice empty;  // HealthCheckRequest{service: ""} encodes to zero bytes
  call->health_request = grpc::ByteBuffer(&empty, 1);
  const auto deadline = std::chrono::system_clock::now() + options_.check_timeout;
  call->health_ctx.set_deadline(deadline);
  call->load_ctx.set_deadline(deadline);
  checks_outstanding_.fetch_add(1);

  auto finish = [this, w, call]() {
    if (call->remaining.fetch_sub(1) != 1) return;
    uint64_t status = 0;
    const bool health_answered =
        call->health_status.ok() && ParseHealthStatus(call->health_response, &status);
    // A worker without the control service is still usable (load unknown).
    const bool load_ok = call->load_status.ok();
    const bool load_usable =
        load_ok || call->load_status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
    const bool answered = health_answered && load_usable;
    const int unanswered = answered ? 0 : w->unanswered_checks.fetch_add(1) + 1;
    if (answered) w->unanswered_checks.store(0);
    // An unanswered check short of the streak keeps what the last answered
    // one found (and its load report).
    if (answered || unanswered >= options_.unhealthy_after || !w->serving.load()) {
      const bool serving = health_answered && status == kHealthServing;
      if (load_ok) {
        w->reported_load.store(call->load_response.running() + call->load_response.waiting());
        w->in_flight_at_report.store(call->in_flight_at_ask);
        w->draining.store(call->load_response.draining());
        std::lock_guard<std::mutex> lock(w->model_mu);
        w->model = call->load_response.model();
      } else {
        w->draining.store(false);
      }
      w->serving.store(serving && load_usable);
      // Only a check that started after the last failure may clear it.
      if (serving && load_usable && w->fail_epoch.load() == call->fail_epoch) w->failed.store(false);
    }
    PublishHealth(w);
    w->poll_pending.store(false);
    {
      std::lock_guard<std::mutex> lock(poll_mu_);
      checks_outstanding_.fetch_sub(1);
    }
    poll_cv_.notify_all();
  };
  w->generic->UnaryCall(&call->health_ctx, kHealthCheckMethod, grpc::StubOptions(),
                        &call->health_request, &call->health_response,
                        [call, finish](grpc::Status s) {
                          call->health_status = std::move(s);
                          finish();
                        });
  w->control->async()->GetLoad(&call->load_ctx, &call->load_request, &call->load_response,
                               [call, finish](grpc::Status s) {
                                 call->load_status = std::move(s);
                                 finish();
                               });
}

void WorkerPool::PollOnce() {
  for (const WorkerHandle& w : All()) Check(w);
}

void WorkerPool::Start() {
  std::lock_guard<std::mutex> lock(poll_mu_);
  if (poller_.joinable()) return;
  stop_ = false;
  poller_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(poll_mu_);
    while (!stop_) {
      lock.unlock();
      PollOnce();
      lock.lock();
      poll_cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; });
    }
  });
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  // Checks carry a deadline, so this wait is bounded by check_timeout.
  std::unique_lock<std::mutex> lock(poll_mu_);
  poll_cv_.wait(lock, [this] { return checks_outstanding_.load() == 0; });
}

}  // namespace rocmforge::router
