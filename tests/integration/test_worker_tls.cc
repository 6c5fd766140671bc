// A real `rocmforge worker` whose gRPC port requires mTLS (--tls-cert,
// --tls-key, --tls-client-ca), with certificates made fresh by the openssl
// tool: clients without a client certificate and plaintext clients are
// refused; a real `rocmforge router` holding a client certificate
// (--worker-ca/--worker-cert/--worker-key) serves greedy text equal to a
// plaintext worker's. Also the one-line errors for bad TLS flags.
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rocmforge/v1/inference.grpc.pb.h"
#include "tests/integration/support/child_process.h"
#include "tests/integration/support/grpc_client.h"
#include "tests/integration/support/worker_process.h"

namespace rocmforge {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;

const char kModel[] = "tiny-llama-spm-f16.gguf";
const char kPrompt[] = "In the beginning God created";
constexpr int kTokens = 24;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// A throwaway CA, a worker server certificate for 127.0.0.1/localhost and a
// router client certificate, all signed by the CA, plus a second CA that
// signed nothing the worker trusts.
class WorkerTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("openssl version > /dev/null 2>&1") != 0) {
      GTEST_SKIP() << "the openssl command-line tool is not installed; it makes this test's certificates";
    }
    std::string templ = (std::filesystem::temp_directory_path() / "rocmforge-worker-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    const std::string ec = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string script =
        "cd " + dir_ + " && " + ec + "-x509 -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca && " +
        ec + "-x509 -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca && " + ec +
        "-keyout worker.key -out worker.csr -subj /CN=localhost && "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
        "openssl x509 -req -in worker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out worker.crt "
        "-days 2 -extfile san.ext && " +
        ec + "-keyout router.key -out router.csr -subj /CN=router && "
        "openssl x509 -req -in router.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out router.crt -days 2";
    ASSERT_EQ(std::system(("(" + script + ") > /dev/null 2>&1").c_str()), 0) << "openssl failed in " << dir_;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

std::unique_ptr<v1::Inference::Stub> TlsStub(const std::string& address, const std::string& ca,
                                              const std::string& cert = "", const std::string& key = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca;
  ssl.pem_cert_chain = cert;
  ssl.pem_private_key = key;
  return v1::Inference::NewStub(grpc::CreateChannel(address, grpc::SslCredentials(ssl)));
}

std::unique_ptr<v1::Inference::Stub> PlainStub(const std::string& address) {
  return v1::Inference::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

testing::StreamResult Greedy(v1::Inference::Stub& stub, std::chrono::milliseconds timeout = 30000ms) {
  testing::CollectOptions options;
  options.timeout = timeout;
  return testing::CollectGenerate(stub, testing::TextRequest(kPrompt, kTokens), options);
}

TEST_F(WorkerTls, RequiresClientCertificateAndServesRouterWithOne) {
  const int port = testing::FreePort();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  ChildProcess worker = ChildProcess::SpawnCli(
      {"worker", "--model", testing::ModelPath(kModel), "--port", std::to_string(port), "--metrics-port",
       "-1", "--host", "127.0.0.1", "--threads", "1", "--tls-cert", File("worker.crt"), "--tls-key",
       File("worker.key"), "--tls-client-ca", File("ca.crt")});
  testing::ServerProcess plain = testing::StartWorker(kModel, {"--threads", "1"});
  ASSERT_TRUE(plain.ok()) << plain.error;
  ASSERT_TRUE(worker.WaitForOutput("listening on", 30s)) << worker.Output();

  const std::string ca = ReadAll(File("ca.crt"));
  // The reference: the same greedy request on a plaintext worker.
  testing::StreamResult reference = Greedy(*PlainStub(plain.address));
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  ASSERT_EQ(reference.token_ids.size(), static_cast<size_t>(kTokens));

  // A client with a certificate signed by the worker's client CA gets in.
  testing::StreamResult direct =
      Greedy(*TlsStub(address, ca, ReadAll(File("router.crt")), ReadAll(File("router.key"))));
  ASSERT_TRUE(direct.status.ok()) << direct.status.error_message() << "\n" << worker.Output();
  EXPECT_EQ(direct.text, reference.text);

  // (1) Trusts the worker but shows no client certificate: refused.
  testing::StreamResult no_cert = Greedy(*TlsStub(address, ca), 5000ms);
  EXPECT_EQ(no_cert.status.error_code(), grpc::StatusCode::UNAVAILABLE) << no_cert.status.error_message();
  EXPECT_TRUE(no_cert.text.empty());
  // A client certificate from a CA the worker does not trust: refused.
  testing::StreamResult wrong_ca =
      Greedy(*TlsStub(address, ca, ReadAll(File("other-ca.crt")), ReadAll(File("other-ca.key"))), 5000ms);
  EXPECT_EQ(wrong_ca.status.error_code(), grpc::StatusCode::UNAVAILABLE) << wrong_ca.status.error_message();
  // (2) Plaintext: refused.
  testing::StreamResult plaintext = Greedy(*PlainStub(address), 5000ms);
  EXPECT_EQ(plaintext.status.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.status.error_message();

  // (3) A real router with the client certificate relays to the worker.
  const int router_port = testing::FreePort();
  const int router_metrics = testing::FreePort();
  const std::string router_address = "127.0.0.1:" + std::to_string(router_port);
  ChildProcess router = ChildProcess::SpawnCli(
      {"router", "--workers", address, "--port", std::to_string(router_port), "--metrics-port",
       std::to_string(router_metrics), "--host", "127.0.0.1", "--health-interval-ms", "100",
       "--worker-ca", File("ca.crt"), "--worker-cert", File("router.crt"), "--worker-key",
       File("router.key")});
  ASSERT_TRUE(router.WaitForOutput("listening on", 20s)) << router.Output();
  // Its health checks go over mTLS too: the worker turns healthy.
  ASSERT_TRUE(WaitFor(
      [&] {
        return testing::MetricValue(testing::HttpGet(router_metrics), "rocmforge_router_worker_healthy",
                                    "worker=\"" + address + "\"") == 1.0;
      },
      10s))
      << testing::HttpGet(router_metrics) << router.Output();
  testing::StreamResult relayed = Greedy(*PlainStub(router_address));
  ASSERT_TRUE(relayed.status.ok()) << relayed.status.error_message() << "\n" << router.Output();
  EXPECT_EQ(relayed.text, reference.text);
  EXPECT_EQ(relayed.token_ids, reference.token_ids);
}

// Bad TLS flags fail at start with one line naming the flag.
TEST_F(WorkerTls, BadTlsFlagsFailWithOneLine) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", File("worker.crt")}, "--tls-cert and --tls-key go together"},
      {{"--tls-key", File("worker.key")}, "--tls-cert and --tls-key go together"},
      {{"--tls-client-ca", File("ca.crt")}, "--tls-client-ca needs --tls-cert and --tls-key"},
      {{"--tls-cert", File("missing.crt"), "--tls-key", File("worker.key")}, "--tls-cert: cannot read"},
      {{"--tls-cert", File("worker.crt"), "--tls-key", File("missing.key")}, "--tls-key: cannot read"},
      {{"--tls-cert", File("worker.crt"), "--tls-key", File("worker.key"), "--tls-client-ca",
        File("missing-ca.crt")},
       "--tls-client-ca: cannot read"},
      {{"--tls-cert", File("san.ext"), "--tls-key", File("worker.key")},
       "--tls-cert: '" + File("san.ext") + "' is not a PEM file"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"worker", "--model", testing::ModelPath(kModel), "--port",
                                     std::to_string(testing::FreePort()), "--metrics-port", "-1"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    ChildProcess p = ChildProcess::SpawnCli(args);
    const std::optional<int> code = p.Wait(10s);
    ASSERT_TRUE(code.has_value()) << c.message;
    EXPECT_NE(*code, 0) << c.message;
    const std::string out = p.Output();
    EXPECT_NE(out.find(c.message), std::string::npos) << out;
    EXPECT_EQ(out.find("listening on"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace rocmforge
