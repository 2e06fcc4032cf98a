#pragma once
// GPT-2's byte <-> symbol table, shared by byte-level BPE (tokenizer.json vocabularies are written in it) and
// the GGUF export (whose "gpt2" tokenizer reads token strings in it).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace handoff {

// GPT-2's byte <-> symbol table: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
// space, 0x7F-0xA0, 0xAD) are shifted to U+0100.. in byte order, so every byte is one visible character
// (the space 0x20 becomes 'Ġ' U+0120, '\n' becomes 'Ċ' U+010A).
struct ByteSymbols {
  std::array<int32_t, 256> cp_of_byte{};
  std::array<std::string, 256> symbol{};  // UTF-8 of cp_of_byte
  std::vector<int> byte_of_cp;            // -1 where a code point is no byte's symbol
  ByteSymbols();
};
const ByteSymbols& byte_symbols();

}  // namespace handoff
