#pragma once
// What one SFT step trains on: the batch of a step (a function of (seed, step) alone) and the ways it is cut
// for the update — length micro-batches (--update-tokens) or one share per data thread — with the count of
// tokens each cut computes (issue 18: padding is measured, not assumed). Public for the benchmarks' peer
// trainer (bench/bench_sft_batches.cpp), which must train on exactly these rows.
#include <cstdint>
#include <vector>

#include "rl/sft_options.h"

namespace handoff {

class Task;
struct DeviceSpeech;

struct SftBatch {
  std::vector<std::vector<int>> prompts, completions;  // token ids; a completion ends with EOS
  int64_t tokens = 0;                                  // prompt + completion tokens, padding aside
};

// The batch of step `step`: o.batch_size items drawn from the difficulty mix `mix`, as the role's prompts and
// the protocol's targets. It depends only on (o.seed, step), so a resumed run sees exactly the data it
// would have seen.
SftBatch make_sft_batch(const Task& task, const DeviceSpeech& io, const SftOptions& o,
                        const std::vector<int>& mix, int64_t step);

// Tokens a forward over `b` computes: every row padded to the longest.
int64_t padded_tokens(const SftBatch& b);
// Tokens of `b`'s rows, padding aside.
int64_t real_tokens_of(const SftBatch& b);

// The batch's rows cut into micro-batches of similar length with at most `max_tokens` padded tokens each
// (at least one row each); max_tokens <= 0: the batch itself. Rows in order of length, so a part pads to
// its last row.
std::vector<SftBatch> length_parts(SftBatch b, int64_t max_tokens);

// The rows dealt to `threads` data threads by length (runtime/data_threads.h), one part each; a share without
// rows (a batch smaller than the threads) is dropped.
std::vector<SftBatch> thread_shares(SftBatch b, int threads);

}  // namespace handoff
