// tokenpool: the command-line entry point. Subcommands register themselves here, one line each.
//
// Flag errors are the commands' "bad input": exit status 2 with a message naming the flag and
// the rule (docs/load.md, docs/planner.md), whichever layer finds them. CLI11 alone would exit
// with its own codes (104 for a value it cannot convert, 109 for an unknown flag...), read
// "-1" into an unsigned flag as 2^64 - 1 and saturate a value past the type's range, so every
// numeric option gets a check of its text before CLI11 converts it.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "commands.h"

namespace {

constexpr int kExitBadInput = 2;

std::string Got(const std::string& text) { return ", got \"" + text + "\""; }

// Whether an integer's text has a leading zero ("010", "-07"): CLI11 reads integers with
// base 0, so it would take such a text as octal (010 as 8).
bool LeadingZero(const std::string& text) {
  const size_t at = !text.empty() && text[0] == '-' ? 1 : 0;
  return text.size() > at + 1 && text[at] == '0';
}

// The rule of a numeric option's type, checked on its text: "" when it holds.
std::string CheckNumber(const std::string& type, const std::string& text) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (type == "UINT") {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc() && p == e && !LeadingZero(text)) return "";
    return "must be an integer in [0, 18446744073709551615] in decimal, without leading zeros" +
           Got(text);
  }
  if (type == "INT") {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc() && p == e && !LeadingZero(text)) return "";
    return "must be an integer in decimal, without leading zeros" + Got(text);
  }
  if (type == "FLOAT") {
    char* end = nullptr;
    std::strtod(text.c_str(), &end);  // range: each command's own rule
    if (!text.empty() && end == text.c_str() + text.size()) return "";
    return "must be a number" + Got(text);
  }
  return "";
}

void CheckNumbers(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name();
    if (type != "UINT" && type != "INT" && type != "FLOAT") continue;
    opt->check(
        CLI::Validator([type](std::string& text) { return CheckNumber(type, text); }, "", ""));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) CheckNumbers(*sub);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenpool: token pools and token-budget-aware pool routing for LLM inference"};
  app.require_subcommand(1);
  tokenpool::cli::RegisterVersion(app);
  tokenpool::cli::RegisterDemo(app);
  tokenpool::cli::RegisterEstimateEval(app);
  tokenpool::cli::RegisterPlan(app);
  tokenpool::cli::RegisterMock(app);
  tokenpool::cli::RegisterSim(app);
  tokenpool::cli::RegisterServe(app);
  tokenpool::cli::RegisterLoad(app);
  CheckNumbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // a command's own exit status
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every other parse error is bad input.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  }
  return 0;
}
