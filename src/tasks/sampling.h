#pragma once
// How every task draws problems: portable random integers, the difficulty check, and drawing until the
// prompt falls in the requested split.
#include <cstdint>
#include <functional>
#include <random>

#include "tasks/task.h"

namespace handoff {

// Uniform integer in [lo, hi]. std::uniform_int_distribution is implementation-defined, so problems would
// differ between libstdc++ and libc++; mt19937_64's raw output is fixed by the standard, this mapping too.
// (Modulo bias is below 1e-16 for our ranges.)
int draw_int(std::mt19937_64& rng, int lo, int hi);

// Throws Error naming the task and its range when difficulty is outside it.
void check_difficulty(const Task& task, int difficulty);

// Attempts allowed to hit the requested split; 1 in 8 prompts is a test prompt, so 10,000 failures in a row
// means the generator has (almost) no prompts of that split at this difficulty.
constexpr int kMaxSplitAttempts = 10000;

// check_difficulty, then calls draw_one until split_of(prompt) == split. Deterministic for a given rng state
// as long as draw_one is. Throws Error after kMaxSplitAttempts.
Problem sample_in_split(const Task& task, int difficulty, Split split,
                        const std::function<Problem()>& draw_one);

}  // namespace handoff
