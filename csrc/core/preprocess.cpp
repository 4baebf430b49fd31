// The preprocessor in three steps: split the source into logical lines (continuations spliced,
// comments removed, each line remembering how many newlines it consumed); run the directives;
// expand macros in the lines that remain, using hide sets (Prosser's algorithm) so that
// recursive macros stop where a C compiler stops. Every logical line is written back with as
// many newlines as it consumed, which keeps output line N on input line N.
#include "core/preprocess.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/errors.h"
#include "core/lexer.h"

namespace metalrt {

Defines msl_predefined() {
  return {{"__METAL_VERSION__", "310"}, {"__METAL_MACOS__", "1"}, {"__HAVE_BFLOAT__", "1"},
          {"__cplusplus", "201402L"}};
}

Defines cuda_predefined() {
  return {{"__CUDACC__", "1"}, {"__CUDACC_RTC__", "1"}, {"__CUDA_ARCH__", "800"},
          {"__cplusplus", "201703L"}};
}

std::vector<std::string> cuda_system_headers() {
  return {"cuda_fp16.h", "cuda_bf16.h", "cuda_runtime.h", "cuda.h", "cuda_fp8.h", "cuda/*",
          "stdint.h", "cstdint", "stddef.h", "cstddef", "math.h", "cmath", "float.h", "cfloat",
          "limits.h", "climits", "mma.h", "cooperative_groups.h", "cooperative_groups/*",
          "device_launch_parameters.h", "vector_types.h", "crt/*"};
}

namespace {

// ---- step 1: logical lines -----------------------------------------------------------------

struct Line {
  std::string text;
  int first = 1;        // input line it starts on
  int breaks = 0;       // newlines it consumed (continuations and comment lines included)
  bool directive = false;
};

std::vector<Line> split_lines(std::string_view s, bool keep_comments) {
  std::vector<Line> lines;
  Line cur;
  int line = 1;
  bool at_start = true;
  size_t i = 0, n = s.size();
  auto splice_at = [&](size_t k) {  // backslash-newline (or backslash-CR-LF) at k?
    if (s[k] != '\\') return size_t(0);
    if (k + 1 < n && s[k + 1] == '\n') return size_t(2);
    if (k + 2 < n && s[k + 1] == '\r' && s[k + 2] == '\n') return size_t(3);
    return size_t(0);
  };
  while (i < n) {
    char c = s[i];
    if (size_t k = splice_at(i)) {
      i += k, ++cur.breaks, ++line;
      continue;
    }
    if (c == '\n') {
      ++cur.breaks, ++line, ++i;
      lines.push_back(std::move(cur));
      cur = Line{};
      cur.first = line;
      at_start = true;
      continue;
    }
    if (at_start) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        cur.text += c, ++i;
        continue;
      }
      cur.directive = c == '#';
      at_start = false;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      size_t start = i;
      while (i < n && s[i] != '\n') {
        if (size_t k = splice_at(i)) {
          i += k, ++cur.breaks, ++line;
          continue;
        }
        ++i;
      }
      if (keep_comments && !cur.directive) cur.text.append(s.substr(start, i - start));
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      size_t end = s.find("*/", i + 2);
      end = end == std::string_view::npos ? n : end + 2;
      int newlines = static_cast<int>(std::count(s.begin() + i, s.begin() + end, '\n'));
      if (cur.directive) {
        cur.text += ' ';
      } else if (keep_comments) {
        cur.text.append(s.substr(i, end - i));
      } else {
        // Newlines inside the comment stay, so code after it keeps its line.
        cur.text += ' ';
        cur.text.append(newlines, '\n');
      }
      cur.breaks += newlines, line += newlines, i = end;
      continue;
    }
    bool separator = c == '\'' && i > 0 && std::isdigit(static_cast<unsigned char>(s[i - 1]));
    if ((c == '"' || c == '\'') && !separator) {
      size_t j = i + 1;
      while (j < n && s[j] != c && s[j] != '\n') j += s[j] == '\\' && j + 1 < n ? 2 : 1;
      if (j < n && s[j] == c) ++j;
      cur.text.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    cur.text += c, ++i;
  }
  if (!cur.text.empty() || cur.breaks > 0) lines.push_back(std::move(cur));
  return lines;
}

// ---- tokens with hide sets -----------------------------------------------------------------

using HideSet = std::shared_ptr<const std::set<std::string>>;

struct PPToken {
  Token::Kind kind = Token::Punct;
  std::string text;
  std::string lead;           // original whitespace before a token from the source line
  bool from_source = false;   // emit `lead` verbatim; otherwise one space if space_before
  bool space_before = false;
  bool placemarker = false;   // an empty argument next to ##
  bool paste = false;         // a ## operator from a macro body (not one produced by expansion)
  HideSet hide;

  bool is(const char* p) const { return kind == Token::Punct && text == p; }
  bool hidden(const std::string& name) const { return hide && hide->count(name); }
};

HideSet with(const HideSet& h, const std::string& name) {
  auto s = h ? std::make_shared<std::set<std::string>>(*h) : std::make_shared<std::set<std::string>>();
  s->insert(name);
  return s;
}

HideSet intersect(const HideSet& a, const HideSet& b) {
  if (!a || !b) return nullptr;
  auto s = std::make_shared<std::set<std::string>>();
  std::set_intersection(a->begin(), a->end(), b->begin(), b->end(), std::inserter(*s, s->end()));
  return s;
}

HideSet unite(const HideSet& a, const HideSet& b) {
  if (!a) return b;
  if (!b) return a;
  auto s = std::make_shared<std::set<std::string>>(*a);
  s->insert(b->begin(), b->end());
  return s;
}

// Tokens of `text`, each remembering the whitespace before it.
std::vector<PPToken> pp_tokens(std::string_view text, bool from_source) {
  std::vector<PPToken> out;
  size_t prev_end = 0;
  for (const Token& t : tokenize_directive_text(text)) {
    if (t.kind == Token::End) break;
    PPToken p;
    p.kind = t.kind;
    p.text = std::string(t.text);
    p.lead = std::string(text.substr(prev_end, t.offset - prev_end));
    p.space_before = !p.lead.empty();
    p.from_source = from_source;
    prev_end = t.offset + t.text.size();
    out.push_back(std::move(p));
  }
  return out;
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

struct Macro {
  bool function_like = false;
  bool variadic = false;
  std::vector<std::string> params;  // the variadic one is last ("__VA_ARGS__" or its GNU name)
  std::vector<PPToken> body;
};

struct Cond {
  bool parent_active;
  bool active;
  bool taken;     // some branch of this #if was taken
  bool seen_else;
  int line;
};

class Preprocessor {
 public:
  explicit Preprocessor(const PreprocessOptions& options) : options_(options) {}

  std::string run(std::string_view source) {
    for (const auto& [name, value] : options_.predefined) define_from_option(name, value);
    for (const auto& [name, value] : options_.defines) define_from_option(name, value);
    lines_ = split_lines(source, options_.keep_comments);
    out_.reserve(source.size() + 64);
    for (size_t i = 0; i < lines_.size(); ++i) {
      const Line& line = lines_[i];
      line_ = line.first;
      if (line.directive) {
        directive(line);
      } else if (!active()) {
        emit("", line.breaks);
      } else {
        i = expand_text_line(i);
      }
    }
    if (!conds_.empty())
      fail(conds_.back().line, "unterminated #if (no matching #endif)");
    return std::move(out_);
  }

 private:
  // ---- output and errors ----

  void emit(const std::string& text, int breaks) {
    out_ += text;
    int newlines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    out_.append(std::max(0, breaks - newlines), '\n');
  }

  [[noreturn]] void fail(int line, const std::string& message) {
    std::string where = options_.filename + ":" + std::to_string(line) + ": ";
    throw CompileError(where + message, where + "error: " + message, line);
  }
  [[noreturn]] void fail(const std::string& message) { fail(line_, message); }

  bool active() const { return conds_.empty() || conds_.back().active; }

  // ---- macro definitions ----

  void define_from_option(const std::string& name, const std::string& value) {
    std::string text = name;
    size_t eq = text.find('=');
    if (eq != std::string::npos && text.find('(') == std::string::npos) text = text.substr(0, eq);
    define(text + " " + value);
  }

  // `rest` is what follows "#define".
  void define(std::string_view rest) {
    std::vector<PPToken> toks = pp_tokens(rest, false);
    if (toks.empty() || toks[0].kind != Token::Ident) fail("#define needs a macro name");
    const std::string name = toks[0].text;
    if (name == "defined") fail("'defined' cannot be used as a macro name");
    Macro m;
    size_t i = 1;
    if (i < toks.size() && toks[i].is("(") && !toks[i].space_before) {
      m.function_like = true;
      ++i;
      bool closed = false;
      while (i < toks.size()) {
        const PPToken& t = toks[i++];
        if (t.is(")")) {
          closed = true;
          break;
        }
        if (t.is(",")) continue;
        if (t.is("...")) {
          m.variadic = true;
          m.params.push_back("__VA_ARGS__");
        } else if (t.kind == Token::Ident) {
          if (i < toks.size() && toks[i].is("...")) {  // GNU named variadic: args...
            m.variadic = true;
            ++i;
          }
          m.params.push_back(t.text);
        } else {
          fail("invalid parameter '" + t.text + "' in the definition of macro '" + name + "'");
        }
      }
      if (!closed) fail("missing ')' in the parameter list of macro '" + name + "'");
    }
    m.body.assign(toks.begin() + i, toks.end());
    if (!m.body.empty()) m.body[0].space_before = false;
    for (size_t k = 0; k < m.body.size(); ++k) {
      if (!m.body[k].is("##")) continue;
      if (k == 0 || k + 1 == m.body.size())
        fail("'##' cannot appear at either end of the definition of macro '" + name + "'");
      m.body[k].paste = true;
    }
    macros_[name] = std::move(m);
  }

  // ---- directives ----

  void directive(const Line& line) {
    std::string_view text = line.text;
    size_t p = text.find('#') + 1;
    while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
    size_t q = p;
    while (q < text.size() && ident_char(text[q])) ++q;
    std::string name(text.substr(p, q - p));
    std::string_view rest = text.substr(q);

    if (name == "if" || name == "ifdef" || name == "ifndef") {
      bool parent = active();
      bool value = false;
      if (parent) {
        if (name == "if")
          value = evaluate(rest);
        else
          value = macros_.count(macro_name(rest, name)) == (name == "ifdef" ? 1u : 0u);
      }
      conds_.push_back(Cond{parent, parent && value, parent && value, false, line_});
    } else if (name == "elif" || name == "elifdef" || name == "elifndef") {
      if (conds_.empty()) fail("#" + name + " without #if");
      Cond& c = conds_.back();
      if (c.seen_else) fail("#" + name + " after #else");
      bool value = false;
      if (c.parent_active && !c.taken) {
        if (name == "elif")
          value = evaluate(rest);
        else
          value = macros_.count(macro_name(rest, name)) == (name == "elifdef" ? 1u : 0u);
      }
      c.active = c.parent_active && !c.taken && value;
      c.taken = c.taken || c.active;
    } else if (name == "else") {
      if (conds_.empty()) fail("#else without #if");
      Cond& c = conds_.back();
      if (c.seen_else) fail("a second #else for the #if on line " + std::to_string(c.line));
      c.seen_else = true;
      c.active = c.parent_active && !c.taken;
      c.taken = true;
    } else if (name == "endif") {
      if (conds_.empty()) fail("#endif without #if");
      conds_.pop_back();
    } else if (!active()) {
      // Other directives in a skipped block are not even checked, as in C.
    } else if (name == "define") {
      define(rest);
    } else if (name == "undef") {
      macros_.erase(macro_name(rest, name));
    } else if (name == "include" || name == "include_next" || name == "import") {
      include(rest);
    } else if (name == "error") {
      std::string msg(rest);
      msg.erase(0, msg.find_first_not_of(" \t"));
      fail("#error " + msg);
    } else if (name == "pragma") {
      emit(line.text, line.breaks);  // kept for the backend's compiler
      return;
    } else if (name == "warning" || name == "line" || name == "ident" || name.empty()) {
      // #warning is advisory; #line would break the line mapping; '#' alone is a null directive.
    } else {
      fail("unknown preprocessor directive '#" + name + "'");
    }
    emit("", line.breaks);
  }

  std::string macro_name(std::string_view rest, const std::string& directive) {
    std::vector<PPToken> toks = pp_tokens(rest, false);
    if (toks.empty() || toks[0].kind != Token::Ident) fail("#" + directive + " needs a macro name");
    return toks[0].text;
  }

  void include(std::string_view rest) {
    std::string spec(rest);
    spec.erase(0, spec.find_first_not_of(" \t"));
    if (!spec.empty() && spec[0] != '<' && spec[0] != '"') {  // #include MACRO
      std::vector<PPToken> toks = pp_tokens(spec, false);
      std::deque<PPToken> in(toks.begin(), toks.end());
      std::vector<PPToken> expanded;
      expand(in, expanded, /*source_line=*/false);
      spec.clear();
      for (const PPToken& t : expanded) spec += t.text;
    }
    while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back()))) spec.pop_back();
    std::string header;
    if (spec.size() >= 2 && ((spec.front() == '<' && spec.back() == '>') ||
                             (spec.front() == '"' && spec.back() == '"')))
      header = spec.substr(1, spec.size() - 2);
    else
      fail("#include expects <header> or \"header\", got '" + spec + "'");
    for (const std::string& pattern : options_.system_headers) {
      bool prefix = !pattern.empty() && pattern.back() == '*';
      std::string_view stem(pattern.data(), pattern.size() - (prefix ? 1 : 0));
      if (prefix ? header.compare(0, stem.size(), stem) == 0 : header == pattern) return;
    }
    fail("#include " + spec +
         ": a metalrt source must be self-contained (one string, no other files); paste what "
         "you need from that header into the source");
  }

  // ---- #if expressions ----

  struct Value {
    int64_t v = 0;
    bool is_unsigned = false;
  };

  bool evaluate(std::string_view expr_text) {
    std::vector<PPToken> toks = pp_tokens(expr_text, false);
    // `defined X` and `defined(X)` are decided before macro expansion.
    std::deque<PPToken> in;
    for (size_t i = 0; i < toks.size(); ++i) {
      if (toks[i].kind == Token::Ident && toks[i].text == "defined") {
        size_t j = i + 1;
        bool paren = j < toks.size() && toks[j].is("(");
        if (paren) ++j;
        if (j >= toks.size() || toks[j].kind != Token::Ident) fail("'defined' needs a macro name");
        PPToken one;
        one.kind = Token::Number;
        one.text = macros_.count(toks[j].text) ? "1" : "0";
        if (paren && (j + 1 >= toks.size() || !toks[j + 1].is(")"))) fail("missing ')' after 'defined('");
        in.push_back(one);
        i = j + (paren ? 1 : 0);
        continue;
      }
      if (toks[i].kind == Token::Ident && toks[i].text.compare(0, 6, "__has_") == 0 && i + 1 < toks.size() &&
          toks[i + 1].is("(")) {
        // __has_include(<metal_stdlib>) is true for the headers the target provides; the
        // __has_attribute / __has_builtin / __has_feature family is answered "no".
        size_t j = i + 2;
        int depth = 1;
        std::string inner;
        for (; j < toks.size() && depth > 0; ++j) {
          if (toks[j].is("(")) ++depth;
          if (toks[j].is(")") && --depth == 0) break;
          inner += toks[j].text;
        }
        if (depth != 0) fail("missing ')' after '" + toks[i].text + "('");
        PPToken v;
        v.kind = Token::Number;
        v.text = toks[i].text == "__has_include" && has_system_header(inner) ? "1" : "0";
        in.push_back(v);
        i = j;
        continue;
      }
      in.push_back(toks[i]);
    }
    std::vector<PPToken> expanded;
    expand(in, expanded, /*source_line=*/false);
    expr_ = std::move(expanded);
    pos_ = 0;
    if (expr_.empty()) fail("#if with no expression");
    Value v = conditional();
    if (pos_ < expr_.size()) fail("unexpected '" + expr_[pos_].text + "' in #if expression");
    return v.v != 0;
  }

  bool has_system_header(std::string spec) {
    if (spec.size() >= 2) spec = spec.substr(1, spec.size() - 2);
    for (const std::string& pattern : options_.system_headers) {
      bool prefix = !pattern.empty() && pattern.back() == '*';
      std::string stem = prefix ? pattern.substr(0, pattern.size() - 1) : pattern;
      if (prefix ? spec.compare(0, stem.size(), stem) == 0 : spec == pattern) return true;
    }
    return false;
  }

  bool peek(const char* p) const { return pos_ < expr_.size() && expr_[pos_].is(p); }
  bool accept(const char* p) {
    if (!peek(p)) return false;
    ++pos_;
    return true;
  }

  Value conditional() {
    Value c = binary(0);
    if (!accept("?")) return c;
    Value a = conditional();
    if (!accept(":")) fail("missing ':' in a ?: of an #if expression");
    Value b = conditional();
    Value r = c.v ? a : b;
    r.is_unsigned = a.is_unsigned || b.is_unsigned;
    return r;
  }

  static int precedence(const std::string& op) {
    static const std::unordered_map<std::string, int> table = {
        {"||", 1}, {"&&", 2}, {"|", 3},  {"^", 4},  {"&", 5},  {"==", 6}, {"!=", 6},
        {"<", 7},  {">", 7},  {"<=", 7}, {">=", 7}, {"<<", 8}, {">>", 8}, {"+", 9},
        {"-", 9},  {"*", 10}, {"/", 10}, {"%", 10}};
    auto it = table.find(op);
    return it == table.end() ? -1 : it->second;
  }

  Value binary(int min_prec) {
    Value lhs = unary();
    while (pos_ < expr_.size() && expr_[pos_].kind == Token::Punct) {
      const std::string op = expr_[pos_].text;
      int prec = precedence(op);
      if (prec < 0 || prec < min_prec) break;
      ++pos_;
      Value rhs = binary(prec + 1);
      lhs = apply(op, lhs, rhs);
    }
    return lhs;
  }

  Value apply(const std::string& op, Value a, Value b) {
    bool u = a.is_unsigned || b.is_unsigned;
    uint64_t ua = static_cast<uint64_t>(a.v), ub = static_cast<uint64_t>(b.v);
    Value r;
    r.is_unsigned = u;
    auto boolean = [](bool x) { return Value{x ? 1 : 0, false}; };
    if (op == "||") return boolean(a.v || b.v);
    if (op == "&&") return boolean(a.v && b.v);
    if (op == "==") return boolean(a.v == b.v);
    if (op == "!=") return boolean(a.v != b.v);
    if (op == "<") return boolean(u ? ua < ub : a.v < b.v);
    if (op == ">") return boolean(u ? ua > ub : a.v > b.v);
    if (op == "<=") return boolean(u ? ua <= ub : a.v <= b.v);
    if (op == ">=") return boolean(u ? ua >= ub : a.v >= b.v);
    if ((op == "/" || op == "%") && b.v == 0) fail("division by zero in #if expression");
    if (op == "|") r.v = a.v | b.v;
    else if (op == "^") r.v = a.v ^ b.v;
    else if (op == "&") r.v = a.v & b.v;
    else if (op == "<<") r.v = static_cast<int64_t>(ua << (ub & 63));
    else if (op == ">>") r.v = u ? static_cast<int64_t>(ua >> (ub & 63)) : a.v >> (ub & 63);
    else if (op == "+") r.v = static_cast<int64_t>(ua + ub);
    else if (op == "-") r.v = static_cast<int64_t>(ua - ub);
    else if (op == "*") r.v = static_cast<int64_t>(ua * ub);
    else if (op == "/") r.v = u ? static_cast<int64_t>(ua / ub) : (b.v == -1 ? -a.v : a.v / b.v);
    else if (op == "%") r.v = u ? static_cast<int64_t>(ua % ub) : (b.v == -1 ? 0 : a.v % b.v);
    return r;
  }

  Value unary() {
    if (pos_ >= expr_.size()) fail("#if expression ends too early");
    const PPToken& t = expr_[pos_++];
    if (t.is("(")) {
      Value v = conditional();
      if (!accept(")")) fail("missing ')' in #if expression");
      return v;
    }
    if (t.is("!")) return Value{unary().v ? 0 : 1, false};
    if (t.is("-")) {
      Value v = unary();
      v.v = static_cast<int64_t>(0 - static_cast<uint64_t>(v.v));
      return v;
    }
    if (t.is("+")) return unary();
    if (t.is("~")) {
      Value v = unary();
      v.v = ~v.v;
      return v;
    }
    if (t.kind == Token::Number) return number(t.text);
    if (t.kind == Token::Char) return character(t.text);
    if (t.kind == Token::Ident) {
      // After expansion, `true` is 1 and any other identifier is 0 (C++ [cpp.cond]).
      return Value{t.text == "true" ? 1 : 0, false};
    }
    fail("unexpected '" + t.text + "' in #if expression");
  }

  Value number(const std::string& text) {
    std::string digits;
    for (char c : text)
      if (c != '\'') digits += c;
    size_t end = digits.size();
    bool is_unsigned = false;
    while (end > 0 && std::strchr("uUlLzZ", digits[end - 1])) is_unsigned |= std::toupper(digits[--end]) == 'U';
    digits.resize(end);
    int base = 10;
    size_t start = 0;
    if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) base = 16, start = 2;
    else if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) base = 2, start = 2;
    else if (digits.size() > 1 && digits[0] == '0') base = 8, start = 1;
    uint64_t v = 0;
    for (size_t i = start; i < digits.size(); ++i) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(digits[i])));
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : 99);
      if (d >= base) fail("invalid integer '" + text + "' in #if expression (floating point is not allowed there)");
      v = v * base + d;
    }
    return Value{static_cast<int64_t>(v), is_unsigned};
  }

  Value character(const std::string& text) {
    size_t q = text.find('\'');
    std::string body = text.substr(q + 1, text.size() - q - 2);
    if (body.empty()) fail("empty character literal in #if expression");
    if (body[0] != '\\') return Value{static_cast<unsigned char>(body[0]), false};
    static const std::unordered_map<char, int> escapes = {{'n', '\n'}, {'t', '\t'}, {'r', '\r'}, {'0', 0},
                                                          {'\\', '\\'}, {'\'', '\''}, {'"', '"'},
                                                          {'a', '\a'}, {'b', '\b'}, {'f', '\f'}, {'v', '\v'}};
    if (body.size() > 2 && body[1] == 'x') {
      char* end = nullptr;
      long long v = std::strtoll(body.c_str() + 2, &end, 16);
      if (*end == 0) return Value{v, false};
    }
    auto it = escapes.find(body.size() > 1 ? body[1] : 0);
    if (it == escapes.end()) fail("unsupported character literal " + text + " in #if expression");
    return Value{it->second, false};
  }

  // ---- macro expansion ----

  // Expands the text line at `index`; a macro call spread over the next lines pulls them in.
  // Returns the index of the last line consumed.
  size_t expand_text_line(size_t index) {
    const Line& first = lines_[index];
    std::string text = first.text;
    int breaks = first.breaks;
    size_t last = index;
    for (;;) {
      std::vector<PPToken> toks = pp_tokens(text, true);
      if (!mentions_macro(toks)) {
        emit(text, breaks);
        return last;
      }
      std::deque<PPToken> in(toks.begin(), toks.end());
      std::vector<PPToken> out;
      last_line_index_ = last;
      if (expand(in, out, /*source_line=*/true)) {
        emit(render(out), breaks);
        return last;
      }
      if (last + 1 >= lines_.size() || lines_[last + 1].directive)
        fail(first.first, "unterminated argument list of a call to macro '" + pending_macro_ + "'");
      ++last;
      text += ' ';
      text += lines_[last].text;
      breaks += lines_[last].breaks;
    }
  }

  // Can a macro call be completed from the lines after last_line_index_? (need_paren: the
  // call's '(' itself is still to come.)
  bool more_input(bool need_paren) const {
    for (size_t k = last_line_index_ + 1; k < lines_.size(); ++k) {
      const Line& l = lines_[k];
      if (l.directive) return false;
      size_t p = l.text.find_first_not_of(" \t\r\n\f\v");
      if (p == std::string::npos) continue;
      return !need_paren || l.text[p] == '(';
    }
    return false;
  }

  bool mentions_macro(const std::vector<PPToken>& toks) const {
    for (const PPToken& t : toks)
      if (t.kind == Token::Ident && (macros_.count(t.text) || t.text == "__LINE__" || t.text == "__FILE__" ||
                                     t.text == "__COUNTER__"))
        return true;
    return false;
  }

  // Expands `in` into `out`. For a source line (not a macro argument or #if text), returns
  // false when the line ends before a macro call is complete and later lines can complete it.
  bool expand(std::deque<PPToken>& in, std::vector<PPToken>& out, bool source_line) {
    while (!in.empty()) {
      PPToken t = std::move(in.front());
      in.pop_front();
      if (t.kind != Token::Ident) {
        out.push_back(std::move(t));
        continue;
      }
      if (t.text == "__LINE__" || t.text == "__FILE__" || t.text == "__COUNTER__") {
        t.kind = t.text == "__FILE__" ? Token::String : Token::Number;
        t.text = t.text == "__LINE__"   ? std::to_string(line_)
                 : t.text == "__FILE__" ? "\"" + options_.filename + "\""
                                        : std::to_string(counter_++);
        out.push_back(std::move(t));
        continue;
      }
      auto it = macros_.find(t.text);
      if (it == macros_.end() || t.hidden(t.text)) {
        out.push_back(std::move(t));
        continue;
      }
      const Macro& m = it->second;
      std::vector<PPToken> replacement;
      if (!m.function_like) {
        replacement = substitute(t.text, m, {}, with(t.hide, t.text));
      } else {
        if (in.empty()) {
          if (source_line && more_input(/*need_paren=*/true)) {
            pending_macro_ = t.text;
            return false;
          }
          out.push_back(std::move(t));
          continue;
        }
        if (!in.front().is("(")) {
          out.push_back(std::move(t));
          continue;
        }
        std::vector<std::vector<PPToken>> args;
        HideSet rparen_hide;
        if (!collect_args(in, t.text, m, &args, &rparen_hide)) {
          if (source_line) {
            pending_macro_ = t.text;
            return false;
          }
          fail("unterminated argument list of a call to macro '" + t.text + "'");
        }
        replacement = substitute(t.text, m, args, with(intersect(t.hide, rparen_hide), t.text));
      }
      // The expansion takes the place (and the spacing) of the macro name.
      if (!replacement.empty()) {
        replacement[0].lead = t.lead;
        replacement[0].from_source = t.from_source;
        replacement[0].space_before = t.space_before;
      } else if (!in.empty() && !in.front().from_source) {
        in.front().space_before = in.front().space_before || t.space_before;
      }
      in.insert(in.begin(), replacement.begin(), replacement.end());
    }
    return true;
  }

  // Consumes "( ... )" from `in`. On false (input ended), `in` is left as it was.
  bool collect_args(std::deque<PPToken>& in, const std::string& name, const Macro& m,
                    std::vector<std::vector<PPToken>>* args, HideSet* rparen_hide) {
    int depth = 0;
    size_t i = 1;  // in[0] is '('
    std::vector<std::vector<PPToken>> result(1);
    for (; i < in.size(); ++i) {
      const PPToken& t = in[i];
      if (t.is("(")) ++depth;
      if (t.is(")")) {
        if (depth == 0) break;
        --depth;
      }
      bool in_variadic = m.variadic && result.size() == m.params.size();
      if (t.is(",") && depth == 0 && !in_variadic) {
        result.emplace_back();
        continue;
      }
      result.back().push_back(t);
    }
    if (i >= in.size()) return false;
    *rparen_hide = in[i].hide;
    in.erase(in.begin(), in.begin() + static_cast<long>(i) + 1);

    size_t nparams = m.params.size();
    if (nparams == 0 && result.size() == 1 && result[0].empty()) result.clear();
    if (m.variadic && result.size() + 1 == nparams) result.emplace_back();  // no variadic args
    if (result.size() != nparams) {
      fail("macro '" + name + "' takes " + std::to_string(m.variadic ? nparams - 1 : nparams) +
           (m.variadic ? " or more" : "") + " argument" + (nparams == 1 ? "" : "s") + ", got " +
           std::to_string(result.size()));
    }
    *args = std::move(result);
    return true;
  }

  int param_index(const Macro& m, const PPToken& t) const {
    if (t.kind != Token::Ident) return -1;
    for (size_t i = 0; i < m.params.size(); ++i)
      if (m.params[i] == t.text) return static_cast<int>(i);
    return -1;
  }

  std::vector<PPToken> expanded_arg(const std::vector<PPToken>& arg) {
    std::deque<PPToken> in(arg.begin(), arg.end());
    std::vector<PPToken> out;
    expand(in, out, /*source_line=*/false);
    return out;
  }

  static std::string stringize(const std::vector<PPToken>& arg) {
    std::string s = "\"";
    for (size_t i = 0; i < arg.size(); ++i) {
      if (i > 0 && arg[i].space_before) s += ' ';
      bool literal = arg[i].kind == Token::String || arg[i].kind == Token::Char;
      for (char c : arg[i].text) {
        if (literal && (c == '"' || c == '\\')) s += '\\';
        s += c;
      }
    }
    return s + "\"";
  }

  std::vector<PPToken> substitute(const std::string& name, const Macro& m,
                                  const std::vector<std::vector<PPToken>>& args, const HideSet& hide) {
    std::vector<PPToken> r;
    const std::vector<PPToken>& body = m.body;
    bool va_empty = m.variadic && args.back().empty();
    for (size_t i = 0; i < body.size(); ++i) {
      const PPToken& t = body[i];
      if (m.function_like && t.is("#") && !t.paste) {
        int p = i + 1 < body.size() ? param_index(m, body[i + 1]) : -1;
        if (p < 0) fail("'#' in macro '" + name + "' must be followed by a parameter name");
        PPToken s;
        s.kind = Token::String;
        s.text = stringize(args[p]);
        s.space_before = t.space_before;
        r.push_back(std::move(s));
        ++i;
        continue;
      }
      if (m.variadic && t.kind == Token::Ident && t.text == "__VA_OPT__" && i + 1 < body.size() && body[i + 1].is("(")) {
        size_t j = i + 2;
        int depth = 0;
        std::vector<PPToken> inner;
        for (; j < body.size(); ++j) {
          if (body[j].is("(")) ++depth;
          if (body[j].is(")") && depth-- == 0) break;
          inner.push_back(body[j]);
        }
        if (!va_empty) {
          Macro sub = m;
          sub.body = inner;
          std::vector<PPToken> part = substitute(name, sub, args, nullptr);
          r.insert(r.end(), part.begin(), part.end());
        }
        i = j;
        continue;
      }
      // GNU `, ## __VA_ARGS__`: the comma goes when there are no variadic arguments, and
      // stays (with no pasting) when there are.
      if (t.paste && m.variadic && i > 0 && body[i - 1].is(",") && i + 1 < body.size() &&
          param_index(m, body[i + 1]) + 1 == static_cast<int>(m.params.size()) && !r.empty() && r.back().is(",")) {
        if (va_empty) {
          r.pop_back();
        } else {
          std::vector<PPToken> value = args.back();
          value[0].space_before = body[i + 1].space_before || t.space_before;
          for (PPToken& v : value) v.from_source = false;
          r.insert(r.end(), value.begin(), value.end());
        }
        ++i;
        continue;
      }
      int p = param_index(m, t);
      if (p >= 0) {
        bool next_paste = i + 1 < body.size() && body[i + 1].paste;
        bool prev_paste = i > 0 && body[i - 1].paste;
        std::vector<PPToken> value = (next_paste || prev_paste) ? args[p] : expanded_arg(args[p]);
        if (value.empty() && (next_paste || prev_paste)) {
          PPToken pm;
          pm.placemarker = true;
          value.push_back(pm);
        }
        if (!value.empty()) {
          value[0].space_before = t.space_before;
          value[0].from_source = false;
        }
        r.insert(r.end(), value.begin(), value.end());
        continue;
      }
      PPToken copy = t;
      copy.from_source = false;
      r.push_back(std::move(copy));
    }
    r = paste_all(name, r);
    for (PPToken& t : r) {
      t.hide = unite(t.hide, hide);
      t.from_source = false;
    }
    return r;
  }

  std::vector<PPToken> paste_all(const std::string& name, const std::vector<PPToken>& in) {
    std::vector<PPToken> out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i].paste && !out.empty() && i + 1 < in.size()) {
        PPToken left = out.back();
        const PPToken& right = in[++i];
        out.pop_back();
        if (left.placemarker) {
          PPToken r = right;
          r.space_before = left.space_before;
          out.push_back(r);
          continue;
        }
        if (right.placemarker) {
          out.push_back(left);
          continue;
        }
        std::string joined = left.text + right.text;
        std::vector<PPToken> toks = pp_tokens(joined, false);
        if (toks.size() != 1)
          fail("pasting '" + left.text + "' and '" + right.text + "' in macro '" + name +
               "' does not give a valid token");
        toks[0].space_before = left.space_before;
        toks[0].hide = left.hide;
        out.push_back(toks[0]);
        continue;
      }
      out.push_back(in[i]);
    }
    out.erase(std::remove_if(out.begin(), out.end(), [](const PPToken& t) { return t.placemarker; }), out.end());
    return out;
  }

  // Writes tokens back as text: source tokens with their own whitespace, expanded ones with
  // single spaces, plus a space wherever two tokens would otherwise run together.
  static std::string render(const std::vector<PPToken>& toks) {
    std::string s;
    for (const PPToken& t : toks) {
      if (t.from_source && !t.lead.empty()) {
        s += t.lead;
      } else if (t.from_source) {
        if (!s.empty() && !t.text.empty() && would_merge(s, t.text)) s += ' ';
      } else if (t.space_before) {
        s += ' ';
      } else if (!s.empty() && !t.text.empty() && would_merge(s, t.text)) {
        s += ' ';
      }
      s += t.text;
    }
    return s;
  }

  static bool would_merge(const std::string& before, const std::string& next) {
    char a = before.back(), b = next.front();
    if ((ident_char(a) || a == '.') && (ident_char(b) || b == '.')) return true;
    if (std::isspace(static_cast<unsigned char>(a))) return false;
    std::string pair{a, b};
    static const std::set<std::string> merging = {"++", "--", "<<", ">>", "&&", "||", "==", "!=", "<=", ">=",
                                                  "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "->",
                                                  "::", "##", "//", "/*", "[[", "]]", ".."};
    return merging.count(pair) > 0;
  }

  const PreprocessOptions& options_;
  std::unordered_map<std::string, Macro> macros_;
  std::vector<Line> lines_;
  std::vector<Cond> conds_;
  std::string out_;
  int line_ = 1;
  int counter_ = 0;
  size_t last_line_index_ = 0;
  std::string pending_macro_;
  std::vector<PPToken> expr_;
  size_t pos_ = 0;
};

}  // namespace

std::string preprocess(std::string_view source, const PreprocessOptions& options) {
  return Preprocessor(options).run(source);
}

}  // namespace metalrt
