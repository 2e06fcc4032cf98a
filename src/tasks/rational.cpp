#include "tasks/rational.h"

#include <limits>

namespace handoff {

namespace {

// 128-bit intermediates: a product or sum of two int64 values always fits, so overflow is decided
// once, after reduction, instead of at every step.
using Wide = __int128;

Wide wide_abs(Wide v) {
  return v < 0 ? -v : v;
}

Wide wide_gcd(Wide a, Wide b) {
  a = wide_abs(a);
  b = wide_abs(b);
  while (b != 0) {
    Wide t = a % b;
    a = b;
    b = t;
  }
  return a;
}

std::optional<Rational> reduce(Wide num, Wide den) {
  if (den == 0) return std::nullopt;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  Wide g = wide_gcd(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  constexpr Wide kMax = std::numeric_limits<int64_t>::max();
  // Symmetric range (no INT64_MIN) so that negation can never overflow later.
  if (num > kMax || num < -kMax || den > kMax) return std::nullopt;
  return Rational{static_cast<int64_t>(num), static_cast<int64_t>(den)};
}

}  // namespace

std::string Rational::to_string() const {
  return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den);
}

std::optional<Rational> make_rational(int64_t num, int64_t den) {
  return reduce(num, den);
}

std::optional<Rational> add(const Rational& a, const Rational& b) {
  return reduce(Wide(a.num) * b.den + Wide(b.num) * a.den, Wide(a.den) * b.den);
}

std::optional<Rational> sub(const Rational& a, const Rational& b) {
  return reduce(Wide(a.num) * b.den - Wide(b.num) * a.den, Wide(a.den) * b.den);
}

std::optional<Rational> mul(const Rational& a, const Rational& b) {
  // Cross-reduce first so that the 128-bit product cannot overflow either.
  Wide g1 = wide_gcd(a.num, b.den), g2 = wide_gcd(b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  return reduce((Wide(a.num) / g1) * (Wide(b.num) / g2), (Wide(a.den) / g2) * (Wide(b.den) / g1));
}

std::optional<Rational> div(const Rational& a, const Rational& b) {
  if (b.num == 0) return std::nullopt;
  return mul(a, Rational{b.den, b.num} /* sign fixed by reduce */);
}

std::optional<Rational> apply_op(char op, const Rational& a, const Rational& b) {
  switch (op) {
    case '+':
      return add(a, b);
    case '-':
      return sub(a, b);
    case '*':
      return mul(a, b);
    case '/':
      return div(a, b);
    default:
      return std::nullopt;
  }
}

}  // namespace handoff
