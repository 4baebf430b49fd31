// A C++ tokenizer for kernel sources (MSL and CUDA): identifiers, numbers, strings and chars,
// punctuators (longest match, including `[[`, `]]`, `::`, `->`, `<<`...), with line numbers.
// Comments and whitespace are skipped; preprocessor lines should be gone already.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace metalrt {

struct Token {
  enum Kind : unsigned char { Ident, Number, String, Char, Punct, End } kind;
  std::string_view text;  // view into the source given to tokenize()
  int line;               // 1-based
  size_t offset;          // byte offset into the source
};

// The returned tokens view into `source`, which must outlive them. Always ends with an End token.
std::vector<Token> tokenize(std::string_view source);

// Tokenizes text from inside a preprocessor directive or a macro body: `#` and `##` are ordinary
// punctuators there, never the start of a directive line.
std::vector<Token> tokenize_directive_text(std::string_view text);

}  // namespace metalrt
