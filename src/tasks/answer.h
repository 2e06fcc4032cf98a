#pragma once
// Comparing numeric answers the way a grader would. (Reading the answer out of a completion is the
// device grammar's job: protocol/response.h.)
#include <optional>
#include <string>

#include "tasks/rational.h"

namespace handoff {

// Parses a numeric answer leniently in form, exactly in value: spaces (not between digits), a leading '+', a
// '$', thousands commas ("1,234"), a decimal tail ("6.0", "2.50") and fractions ("3/4", "-3/4") are accepted.
// nullopt for anything else (words, units, two numbers, empty text, more than 18 digits).
std::optional<Rational> parse_numeric_answer(const std::string& text);

// True when both texts parse as numbers and denote the same rational value ("1,000" == "1000.00").
bool numeric_answers_equal(const std::string& a, const std::string& b);

// Whitespace trimmed from both ends (space, tab, CR, LF).
std::string trim(const std::string& s);

}  // namespace handoff
