// Tokenizer for kernel sources. It only has to be right about token boundaries and lines: the
// signature parser reads declarations, and the backends' real compilers judge everything else.
#include "core/lexer.h"

#include <cctype>
#include <cstring>

namespace metalrt {
namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

// Longest punctuators first; `[[` and `]]` are single tokens so attributes are easy to spot
// (the parser splits them back when it counts brackets in expressions like a[b[i]]).
constexpr const char* kPunct3[] = {"<<=", ">>=", "...", "->*", "<=>"};
constexpr const char* kPunct2[] = {"[[", "]]", "::", "->", "++", "--", "<<", ">>", "<=", ">=",
                                   "==", "!=", "&&", "||", "+=", "-=", "*=", "/=", "%=", "&=",
                                   "|=", "^=", "##", ".*"};

size_t punct_length(std::string_view s, size_t i) {
  for (const char* p : kPunct3)
    if (s.compare(i, 3, p) == 0) return 3;
  for (const char* p : kPunct2)
    if (s.compare(i, 2, p) == 0) return 2;
  return 1;
}

// A pp-number: digits, letters, dots, and signs after an exponent letter (1e-5, 0x1p+3).
size_t number_length(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size()) {
    char c = s[j];
    if ((c == '+' || c == '-') && j > i) {
      char e = s[j - 1];
      if (e == 'e' || e == 'E' || e == 'p' || e == 'P') {
        ++j;
        continue;
      }
      break;
    }
    if (c == '\'' && j + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[j + 1]))) {
      j += 2;  // C++14 digit separator
      continue;
    }
    if (ident_char(c) || c == '.') {
      ++j;
      continue;
    }
    break;
  }
  return j - i;
}

// A string or character literal starting at the quote at `i`; stops at the closing quote or the
// end of the line (an unterminated literal is the compiler's business, not ours).
size_t quoted_length(std::string_view s, size_t i) {
  char q = s[i];
  size_t j = i + 1;
  while (j < s.size() && s[j] != q && s[j] != '\n') j += s[j] == '\\' ? 2 : 1;
  return (j < s.size() && s[j] == q ? j + 1 : j) - i;
}

// R"delim( ... )delim" starting at the quote at `i`.
size_t raw_string_length(std::string_view s, size_t i) {
  size_t open = s.find('(', i);
  if (open == std::string_view::npos) return s.size() - i;
  std::string close = ")" + std::string(s.substr(i + 1, open - i - 1)) + "\"";
  size_t end = s.find(close, open);
  return (end == std::string_view::npos ? s.size() : end + close.size()) - i;
}

std::vector<Token> tokenize_impl(std::string_view s, bool skip_directives) {
  std::vector<Token> out;
  out.reserve(s.size() / 4 + 1);
  int line = 1;
  bool line_start = true;
  size_t i = 0;
  auto count_lines = [&](size_t from, size_t to) {
    for (size_t k = from; k < to; ++k) line += s[k] == '\n';
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == '\n') {
      ++line, ++i, line_start = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '\\' && i + 1 < s.size() && s[i + 1] == '\n') {
      i += 2, ++line;
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      size_t end = s.find("*/", i + 2);
      end = end == std::string_view::npos ? s.size() : end + 2;
      count_lines(i, end);
      i = end;
      continue;
    }
    if (c == '#' && line_start && skip_directives) {
      // A directive left in the text (#pragma): skip it with its continuations.
      while (i < s.size() && s[i] != '\n') {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\n') ++line, ++i;
        ++i;
      }
      continue;
    }
    line_start = false;
    size_t start = i, len;
    Token::Kind kind;
    if (ident_start(c)) {
      size_t j = i;
      while (j < s.size() && ident_char(s[j])) ++j;
      std::string_view word = s.substr(i, j - i);
      // Encoding prefixes and raw strings: u8"..", L'..', R"(..)".
      if (j < s.size() && (s[j] == '"' || s[j] == '\'') &&
          (word == "u8" || word == "u" || word == "U" || word == "L" || word == "R" ||
           word == "u8R" || word == "uR" || word == "UR" || word == "LR")) {
        bool raw = word.back() == 'R' && s[j] == '"';
        len = (j - i) + (raw ? raw_string_length(s, j) : quoted_length(s, j));
        kind = s[j] == '"' ? Token::String : Token::Char;
      } else {
        len = j - i;
        kind = Token::Ident;
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      len = number_length(s, i);
      kind = Token::Number;
    } else if (c == '"' || c == '\'') {
      len = quoted_length(s, i);
      kind = c == '"' ? Token::String : Token::Char;
    } else {
      len = punct_length(s, i);
      kind = Token::Punct;
    }
    out.push_back(Token{kind, s.substr(start, len), line, start});
    count_lines(start, start + len);  // raw strings may span lines
    i = start + len;
  }
  out.push_back(Token{Token::End, s.substr(s.size()), line, s.size()});
  return out;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return tokenize_impl(source, true); }

std::vector<Token> tokenize_directive_text(std::string_view text) { return tokenize_impl(text, false); }

}  // namespace metalrt
