#include "tokenizer/byte_symbols.h"

#include "tokenizer/utf8.h"

namespace handoff {

ByteSymbols::ByteSymbols() : byte_of_cp(324, -1) {
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cp_of_byte[b] = printable ? b : 256 + shifted++;
    utf8::append(symbol[b], cp_of_byte[b]);
    byte_of_cp[cp_of_byte[b]] = b;
  }
}

const ByteSymbols& byte_symbols() {
  static const ByteSymbols t;
  return t;
}

}  // namespace handoff
