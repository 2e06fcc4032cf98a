#pragma once
// "hops": chain arithmetic along a pointer walk whose length the prompt hides. Every prompt has a start value
// and the same 8 nodes a..h, in a random order, each with a single-digit step and the node it points to. The
// walk starts at 'a'; each move applies the step of the node it leaves; it ends at the one node that points
// to itself, and the answer is the value there:
//   prompt   Q:23 e+5>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h?     (always 53 characters)
//   solution a>c 23-4=19 c>e 19+2=21 e>e Answer: 21                    (two moves: difficulty 2)
// Difficulty = the number of moves, 1..7. Each move is one chain step (tasks/chain_task.h), so the device's
// errors compound with the difficulty as they do on `chain` -- but the number of steps is a property of the
// pointers, not of the prompt's length. Values may leave 0..99 (even go negative): keeping them in range
// would need sign flips on the walk only, and those would show on the prompt's surface.
//
// Why a prompt probe should not see the class: the class-d graph is a path a -> x1 -> ... -> xd (distinct
// labels, a uniform shuffle of b..h), xd the fixed point, and every other node points to a uniform label in
// b..h other than itself; the start and every step are uniform and independent of the graph. By the symmetry
// of the labels b..h, every prompt position's character distribution is the same in every class. What
// differs between classes is how the pointers chain, which is what solving reads.
//
// History (configs/hops.json): a first version was pointer chasing alone (16 nodes, answer = the end node's
// label); the quick device either learnt the lookup or not, whatever the walk's length -- no spread.
#include "tasks/task.h"

namespace handoff {

class HopsTask : public SyntheticTask {
 public:
  static constexpr int kNodes = 8;  // labels 'a'..'h'; the walk starts at 'a'
  static constexpr int kMaxHops = kNodes - 1;
  static constexpr int kMinStart = 20, kMaxStart = 79;

  HopsTask() : SyntheticTask("hops", 1, kMaxHops) {}
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  std::string solution(const Problem& problem) const override;
};

}  // namespace handoff
