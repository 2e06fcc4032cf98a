// handoff: device–cloud collaborative LLM inference, trained with RL (GAPG).
#include <cstdio>
#include <cstring>
#include <exception>

#include <c10/util/Exception.h>

#include "cli/commands.h"
#include "common/error.h"
#include "runtime/kernels.h"

namespace {

// Commands whose numbers should not depend on the CPU kind (runtime/kernels.h), and info, which reports them;
// add-token and --help start without the extra exec.
bool computes(int argc, char** argv) {
  if (argc < 2) return false;
  for (const char* c : {"sft", "train", "eval", "demo", "serve", "ask", "route", "info"})
    if (std::strcmp(argv[1], c) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "handoff: a small on-device LLM that answers or hands off to a cloud LLM, trained by RL (GAPG)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "handoff 0.1.0");
  handoff::cli::register_info(app);
  handoff::cli::register_sft(app);
  handoff::cli::register_eval(app);
  handoff::cli::register_ask(app);
  handoff::cli::register_serve(app);
  handoff::cli::register_train(app);
  handoff::cli::register_demo(app);
  handoff::cli::register_add_token(app);
  handoff::cli::register_export_gguf(app);
  handoff::cli::register_route(app);
  handoff::cli::register_init(app);
  handoff::cli::register_protocol(app);
  try {
    handoff::pin_portable_kernels(argv, computes(argc, argv));
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const handoff::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error (libtorch): %s\n", e.what_without_backtrace());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
  return 0;
}
