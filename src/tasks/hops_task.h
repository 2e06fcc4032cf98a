#pragma once
// "hops": pointer chasing whose length the prompt hides. Every prompt lists the same 16 nodes a..p, in a
// random order, each with the node it points to; the walk starts at 'a' and follows the pointers until it
// reaches the one node that points to itself, which is the answer:
//   prompt   Q:f>b a>k p>d c>e ... e>e?                    (always 66 characters)
//   solution a>k k>c c>e e>e Answer: e                     (three moves: difficulty 3)
// Difficulty = the number of moves before the fixed point, 1..kMaxHops. Every extra move is one more lookup
// the model must get right, so errors were expected to compound with the difficulty as they do on `chain`
// (feasibility.md) -- with the walk's length a property of the pointers, not of the prompt's length. Measured
// (configs/hops.json): they do not; the quick device gets every length about equally right or wrong.
//
// Why a prompt probe should not see the class: the class-c graph is drawn as a path a -> x1 -> ... -> xc
// (distinct labels from b..p, xc the fixed point) and every other node points to a uniform label in b..p
// other than itself. By the symmetry of the labels b..p this makes every prompt position's character
// distribution the same in every class: a's target is uniform on b..p; any other node is the fixed point with
// probability 1/15 and otherwise points uniformly to one of the 14 other labels in b..p. Nothing points to
// 'a'. What differs between classes is how the pointers chain, which is what solving reads.
#include "tasks/task.h"

namespace handoff {

class HopsTask : public SyntheticTask {
 public:
  static constexpr int kNodes = 16;  // labels 'a'..'p'; the walk starts at 'a'
  static constexpr int kMaxHops = 8;

  HopsTask() : SyntheticTask("hops", 1, kMaxHops) {}
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  std::string solution(const Problem& problem) const override;
};

}  // namespace handoff
