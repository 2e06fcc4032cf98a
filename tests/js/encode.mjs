// Reference encoder for tests/test_bpe_tokenizer.cpp: Hugging Face's pure-JS tokenizers (@huggingface/tokenizers).
// Usage: node encode.mjs TOKENIZER_JSON STRINGS_JSON
//   STRINGS_JSON: a JSON array of strings. Prints a JSON array with the ids of each string, encoded as
//   tokenizer.encode(s, {add_special_tokens: false}) (no post-processor tokens, like BpeTokenizer::encode).
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokenizerPath, stringsPath] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")), {});
const strings = JSON.parse(readFileSync(stringsPath, "utf8"));
const ids = strings.map((s) => Array.from(tokenizer.encode(s, { add_special_tokens: false }).ids));
process.stdout.write(JSON.stringify(ids) + "\n");
