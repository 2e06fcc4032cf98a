#pragma once
// Exact rational numbers for answer checking. Verifiers must never be fooled by floating-point rounding
// (0.1+0.2) nor crash on hostile input, so every operation reports overflow or division by zero as "no
// value".
#include <cstdint>
#include <optional>
#include <string>

namespace handoff {

struct Rational {
  int64_t num = 0;
  int64_t den = 1;  // always > 0, and gcd(num, den) == 1

  bool is_integer() const { return den == 1; }
  bool operator==(const Rational& o) const { return num == o.num && den == o.den; }
  bool operator!=(const Rational& o) const { return !(*this == o); }
  // "7" for integers, "7/2" otherwise.
  std::string to_string() const;
};

// num/den in lowest terms; nullopt when den == 0.
std::optional<Rational> make_rational(int64_t num, int64_t den = 1);

// Each returns nullopt on overflow of int64 (after reduction) or on division by zero.
std::optional<Rational> add(const Rational& a, const Rational& b);
std::optional<Rational> sub(const Rational& a, const Rational& b);
std::optional<Rational> mul(const Rational& a, const Rational& b);
std::optional<Rational> div(const Rational& a, const Rational& b);

// Applies '+', '-', '*' or '/'; nullopt for any other operator.
std::optional<Rational> apply_op(char op, const Rational& a, const Rational& b);

}  // namespace handoff
