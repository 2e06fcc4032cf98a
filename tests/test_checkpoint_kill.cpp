// Checkpoints under kills (issue 16, "lost work"): publishing a directory is atomic at every instant, and a
// save interrupted anywhere is completed by recover_directory. The kills are real SIGKILLs of a child process
// (this test binary re-run in a loop mode), at random moments of a save loop.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "common/atomic_file.h"
#include "io/checkpoint.h"
#include "test_support.h"

extern char** environ;

using namespace handoff;
using handoff::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr size_t kPayload = 256 * 1024;  // large enough that a save takes a while
constexpr int kTrials = 10;              // per mode; each starts this binary once (~0.5-1 s)

// Version v of a checkpoint: version.txt and a payload whose every byte encodes v.
void write_version(const std::string& dir, int v) {
  make_dirs(dir);
  write_file_atomic(dir + "/version.txt", std::to_string(v));
  write_file_atomic(dir + "/payload.bin", std::string(kPayload, static_cast<char>('A' + v % 26)));
}

// The version DIR holds, checking that its two files agree (-1 if DIR is torn or absent).
int read_version(const std::string& dir) {
  if (!file_exists(dir + "/version.txt") || !file_exists(dir + "/payload.bin")) return -1;
  const int v = std::stoi(read_file(dir + "/version.txt"));
  const std::string payload = read_file(dir + "/payload.bin");
  if (payload != std::string(kPayload, static_cast<char>('A' + v % 26))) return -1;
  return v;
}

PublishMode mode_named(const std::string& name) {
  return name == "exchange" ? PublishMode::kExchange : PublishMode::kTwoRenames;
}

// Starts this test binary as the save loop below, on DIR with MODE; returns its pid.
pid_t spawn_save_loop(const std::string& dir, const std::string& mode) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string filter = "--gtest_filter=CheckpointKillChild.SaveLoop";
  setenv("HANDOFF_SAVE_LOOP_DIR", dir.c_str(), 1);
  setenv("HANDOFF_SAVE_LOOP_MODE", mode.c_str(), 1);
  char* argv[] = {const_cast<char*>(self.c_str()), const_cast<char*>(filter.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, environ);
  unsetenv("HANDOFF_SAVE_LOOP_DIR");
  unsetenv("HANDOFF_SAVE_LOOP_MODE");
  EXPECT_EQ(rc, 0);
  return pid;
}

}  // namespace

// Not a test on its own: the child that the kill test below starts (it returns at once otherwise).
TEST(CheckpointKillChild, SaveLoop) {
  const char* dir = std::getenv("HANDOFF_SAVE_LOOP_DIR");
  const char* mode = std::getenv("HANDOFF_SAVE_LOOP_MODE");
  if (!dir || !mode) return;
  const int start = read_version(dir);
  write_file_atomic(std::string(dir) + ".ready", "1");  // the parent kills only after this
  for (int v = start + 1;; ++v) {
    write_version(std::string(dir) + ".tmp", v);
    publish_directory(std::string(dir) + ".tmp", dir, mode_named(mode));
  }
}

TEST(CheckpointKill, EveryKillLeavesACompleteCheckpointAfterRecovery) {
  for (const std::string mode : {"exchange", "two-renames"}) {
    TempDir tmp("kill_" + mode);
    const std::string dir = tmp.str("model");
    write_version(dir, 0);
    std::mt19937 rng(7);
    int last = 0, progressed = 0;
    for (int trial = 0; trial < kTrials; ++trial) {
      fs::remove(dir + ".ready");
      const pid_t pid = spawn_save_loop(dir, mode);
      // The child needs a moment to start (it is this binary, libtorch and all): kill inside its loop.
      for (int waited = 0; !fs::exists(dir + ".ready") && waited < 30000; ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
      ASSERT_TRUE(WIFSIGNALED(status)) << mode << ": the save loop ended by itself";
      recover_directory(dir);
      const int v = read_version(dir);
      ASSERT_GE(v, last) << mode << " trial " << trial << ": the checkpoint is torn, absent or went back";
      progressed += v > last;
      last = v;
      EXPECT_FALSE(fs::exists(dir + ".old")) << mode;
    }
    std::printf("%s: %d kills, the checkpoint advanced in %d, last version %d\n", mode.c_str(), kTrials,
                progressed, last);
    EXPECT_GT(progressed, kTrials / 2) << mode << ": the kills did not land inside the save loop";
  }
}

// The two-renames protocol's states, each built by hand, including the instant between the renames that a
// random kill rarely hits: recovery always yields the newest complete checkpoint.
TEST(CheckpointKill, RecoveryFromEachStateOfTheTwoRenameProtocol) {
  TempDir tmp("recover_states");
  const std::string dir = tmp.str("model"), t = dir + ".tmp", old = dir + ".old";
  struct State {
    const char* what;
    int dir_v, tmp_v, old_v;  // -1: absent; -2: a partial directory (no payload)
    int expect;
  };
  const State states[] = {
      {"never saved", -1, -1, -1, -1},
      {"first save writing TMP", -1, -2, -1, -1},
      {"writing TMP over a previous checkpoint", 1, -2, -1, 1},
      {"TMP complete, DIR not yet moved", 1, 2, -1, 1},
      {"between the renames (DIR moved to OLD)", -1, 2, 1, 2},
      {"after the second rename, OLD not yet removed", 2, -1, 1, 2},
      {"after an exchange, TMP (the previous) not yet removed", 2, 1, -1, 2},
  };
  for (const State& s : states) {
    fs::remove_all(dir), fs::remove_all(t), fs::remove_all(old);
    for (auto [path, v] : {std::pair{dir, s.dir_v}, {t, s.tmp_v}, {old, s.old_v}}) {
      if (v >= 0) write_version(path, v);
      if (v == -2) make_dirs(path), write_file_atomic(path + "/version.txt", "9");
    }
    recover_directory(dir);
    EXPECT_EQ(read_version(dir), s.expect) << s.what;
    EXPECT_FALSE(fs::exists(old)) << s.what;
  }
}
