// `tokenpool serve`: the gateway (src/gateway/server.h) on a YAML config, or with --demo on a
// built-in config in front of two `tokenpool mock` children (a short and a long pool) that it
// starts with its own binary and stops by PID on exit. Behaviour: docs/gateway.md.

#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "gateway/child_process.h"
#include "gateway/config.h"
#include "gateway/demo.h"
#include "gateway/server.h"

namespace tokenpool::cli {
namespace {

struct ServeOptions {
  std::string config_path;
  bool demo = false;
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  uint16_t admin_port = 8081;
};

void Fail(const std::string& message) {
  std::fprintf(stderr, "tokenpool serve: %s\n", message.c_str());
  throw CLI::RuntimeError(2);
}

void RunDemo(const ServeOptions& o) {
  const std::string self = gateway::SelfExecutable();
  const std::string model(gateway::kDemoModel);
  const std::string profile(gateway::kDemoProfile);
  gateway::ChildProcess short_mock(
      self, {"mock", "--port", "0", "--model", model, "--profile", profile, "--max-model-len",
             std::to_string(gateway::kDemoShortLen)});
  gateway::ChildProcess long_mock(
      self, {"mock", "--port", "0", "--model", model, "--profile", profile, "--max-model-len",
             std::to_string(gateway::kDemoLongLen)});
  if (short_mock.port() == 0 || long_mock.port() == 0) {
    Fail("the demo's mock servers did not start: " + short_mock.banner() + long_mock.banner());
  }
  std::printf(
      "demo: short pool mock on 127.0.0.1:%d (pid %d), long pool mock on 127.0.0.1:%d "
      "(pid %d)\n",
      short_mock.port(), static_cast<int>(short_mock.pid()), long_mock.port(),
      static_cast<int>(long_mock.pid()));
  const std::string yaml = gateway::DemoConfigYaml(o.host, o.port, o.admin_port,
                                                   static_cast<uint16_t>(short_mock.port()),
                                                   static_cast<uint16_t>(long_mock.port()));
  Result<gateway::GatewayConfig> config = gateway::ParseGatewayConfig(yaml, "demo.yaml");
  if (!config.ok()) Fail(config.status().message());
  const std::string key(gateway::kDemoKey);
  const std::string admin(gateway::kDemoAdminToken);
  Status s = gateway::RunGateway(*config, stdout, [&](uint16_t port, uint16_t admin_port) {
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    std::printf(
        "\nTry it (tenant 'demo', guaranteed; key %s):\n"
        "  curl -s %s/v1/chat/completions -H 'Authorization: Bearer %s' "
        "-H 'Content-Type: application/json' -d '{\"model\":\"%s\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Hello!\"}],\"max_tokens\":32}' -i\n"
        "Streaming: add \"stream\":true. Spot tenant 'free': key %s. Pool state:\n"
        "  curl -s http://127.0.0.1:%u/admin/pools -H 'Authorization: Bearer %s'\n"
        "Ctrl-C stops the gateway and its mocks.\n",
        key.c_str(), base.c_str(), key.c_str(), model.c_str(),
        std::string(gateway::kFreeKey).c_str(), static_cast<unsigned>(admin_port), admin.c_str());
    std::fflush(stdout);
  });
  if (!s.ok()) Fail(s.message());
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve",
                                 "Run the gateway: an OpenAI-compatible proxy with token "
                                 "pools and pool routing");
  auto o = std::make_shared<ServeOptions>();
  cmd->add_option("--config", o->config_path, "Gateway YAML config (docs/gateway.md)");
  cmd->add_flag("--demo", o->demo,
                "Built-in config in front of two mock pools (short 8K, long 32K) started here");
  CLI::Option* host =
      cmd->add_option("--host", o->host, "--demo: address to listen on")->capture_default_str();
  CLI::Option* port =
      cmd->add_option("--port", o->port, "--demo: port (0: any free port)")->capture_default_str();
  CLI::Option* admin_port =
      cmd->add_option("--admin-port", o->admin_port, "--demo: admin port (0: any free port)")
          ->capture_default_str();
  cmd->callback([o, host, port, admin_port] {
    if (o->demo == !o->config_path.empty()) Fail("give exactly one of --config FILE or --demo");
    // With a config file they would be ignored in silence (the file's listen and admin say).
    for (const CLI::Option* opt : {host, port, admin_port}) {
      if (!o->demo && opt->count() > 0) {
        Fail(opt->get_name() + ": only with --demo (a config file has listen and admin)");
      }
    }
    if (o->demo) {
      RunDemo(*o);
      return;
    }
    Result<gateway::GatewayConfig> config = gateway::LoadGatewayConfigFile(o->config_path);
    if (!config.ok()) Fail(config.status().message());
    if (Status s = gateway::RunGateway(*config, stdout, {}, o->config_path); !s.ok()) {
      Fail(s.message());
    }
  });
}

}  // namespace tokenpool::cli
