// The one signature parser. It reads declarations at namespace scope (kernels, template kernels
// and their explicit instantiations, structs, type aliases, function constants) and skips
// function bodies, which are the backends' compilers' business. What MSL forbids in a kernel
// signature is rejected here, with the line and the rule, so every backend rejects it alike.
#include "core/signature.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/errors.h"
#include "core/lexer.h"

namespace metalrt {

std::string_view address_space_name(AddressSpace a) {
  switch (a) {
    case AddressSpace::Device: return "device";
    case AddressSpace::Constant: return "constant";
    case AddressSpace::Thread: return "thread";
    case AddressSpace::Threadgroup: return "threadgroup";
    case AddressSpace::None: break;
  }
  return "";
}

std::vector<const Param*> KernelSignature::arguments() const {
  std::vector<const Param*> out;
  out.reserve(params.size());
  for (const Param& p : params)
    if (p.kind != ParamKind::Builtin && p.kind != ParamKind::Threadgroup) out.push_back(&p);
  return out;
}

namespace {

using Tokens = std::vector<Token>;

constexpr int kMaxBufferIndex = 30;  // Metal's buffer argument table has 31 entries

// ---- builtins ------------------------------------------------------------------------------

enum class BuiltinShape { Positional, Scalar };

// MSL spec, "Attributes for kernel function input arguments": the positional ones take uint or
// ushort and their 2- and 3-vectors; the index/count ones take uint or ushort.
const std::unordered_map<std::string, BuiltinShape>& builtin_table() {
  static const std::unordered_map<std::string, BuiltinShape> table = {
      {"thread_position_in_grid", BuiltinShape::Positional},
      {"thread_position_in_threadgroup", BuiltinShape::Positional},
      {"threadgroup_position_in_grid", BuiltinShape::Positional},
      {"threads_per_threadgroup", BuiltinShape::Positional},
      {"threadgroups_per_grid", BuiltinShape::Positional},
      {"threads_per_grid", BuiltinShape::Positional},
      {"dispatch_threads_per_threadgroup", BuiltinShape::Positional},
      {"thread_index_in_threadgroup", BuiltinShape::Scalar},
      {"thread_index_in_simdgroup", BuiltinShape::Scalar},
      {"simdgroup_index_in_threadgroup", BuiltinShape::Scalar},
      {"threads_per_simdgroup", BuiltinShape::Scalar},
      {"simdgroups_per_threadgroup", BuiltinShape::Scalar},
      {"dispatch_simdgroups_per_threadgroup", BuiltinShape::Scalar},
      {"thread_execution_width", BuiltinShape::Scalar},
      {"thread_index_in_quadgroup", BuiltinShape::Scalar},
      {"quadgroup_index_in_threadgroup", BuiltinShape::Scalar},
      {"quadgroups_per_threadgroup", BuiltinShape::Scalar},
      {"dispatch_quadgroups_per_threadgroup", BuiltinShape::Scalar},
  };
  return table;
}

bool is_address_space(std::string_view w) {
  return w == "device" || w == "constant" || w == "thread" || w == "threadgroup" ||
         w == "threadgroup_imageblock" || w == "ray_data" || w == "object_data";
}

AddressSpace address_space(std::string_view w) {
  if (w == "device") return AddressSpace::Device;
  if (w == "constant") return AddressSpace::Constant;
  if (w == "thread") return AddressSpace::Thread;
  if (w == "threadgroup") return AddressSpace::Threadgroup;
  return AddressSpace::None;
}

// Resource types metalrt cannot bind (it binds buffers only): textures, samplers and the like.
bool is_resource_type(std::string_view base) {
  std::string_view b = base;
  if (b.substr(0, 7) == "metal::") b.remove_prefix(7);
  if (b.substr(0, 6) == "array<") b.remove_prefix(6);  // array<texture2d<float>, 4>
  if (b.substr(0, 7) == "metal::") b.remove_prefix(7);
  b = b.substr(0, b.find('<'));
  static const std::set<std::string_view> names = {
      "texture1d", "texture1d_array", "texture2d", "texture2d_array", "texture2d_ms", "texture2d_ms_array",
      "texture3d", "texturecube", "texturecube_array", "texture_buffer", "depth2d", "depth2d_array",
      "depth2d_ms", "depth2d_ms_array", "depthcube", "depthcube_array", "sampler", "acceleration_structure",
      "instance_acceleration_structure", "primitive_acceleration_structure", "intersection_function_table",
      "visible_function_table", "indirect_command_buffer", "imageblock", "render_pipeline_state",
      "compute_pipeline_state", "command_buffer", "raytracing::acceleration_structure"};
  return names.count(b) > 0;
}

// Joins tokens as a person would write the type: "const device float*", "vec<float, 4>".
std::string join_tokens(const Tokens& toks, size_t b, size_t e) {
  std::string s;
  for (size_t i = b; i < e; ++i) {
    std::string_view t = toks[i].text;
    if (!s.empty()) {
      char last = s.back();
      bool word_before = std::isalnum(static_cast<unsigned char>(last)) || last == '_';
      bool glued = last == ' ' || last == '<' || last == '(' || last == '[' || last == ':' || t == "*" ||
                   t == "&" || t == "&&" || t == "," || t == ">" || t == ">>" || t == "::" || t == ")" ||
                   t == "]" || t == "(" || t == "[" || (t == "<" && word_before);
      if (!glued) s += ' ';
    }
    s += t;
    if (t == ",") s += ' ';
  }
  return s;
}

struct Attr {
  std::string name;
  Tokens args;  // tokens inside the parentheses
  int line = 0;
};

struct TemplateParam {
  std::string name;
  Tokens default_value;
  bool is_type = true;
};

// A primary template kernel, kept until its explicit instantiations are seen.
struct TemplateKernel {
  std::string function;
  std::vector<TemplateParam> tparams;
  std::vector<Tokens> params;  // one token list per parameter
  std::vector<Attr> attrs;     // the function's own attributes
  int line = 0;
  bool extern_c = false;
};

struct ParsedParamDecl {
  std::vector<Attr> attrs;
  Tokens type;       // the type as written, without the name and attributes
  std::string name;
  int line = 0;
};

class SignatureParser {
 public:
  SignatureParser(Dialect dialect, std::string filename, const std::string& text)
      : dialect_(dialect), filename_(std::move(filename)), toks_(tokenize(text)) {}

  ParsedSource parse(const std::vector<std::string>& name_expressions) {
    for (;;) {  // an unbalanced '}' is the compiler's to report; the declarations after it count
      scope();
      if (at_end()) break;
      ++i_;
    }
    if (dialect_ == Dialect::CUDA) instantiate_name_expressions(name_expressions);
    ParsedSource out;
    out.dialect = dialect_;
    out.kernels = std::move(kernels_);
    out.function_constants = std::move(constants_);
    out.structs = std::move(structs_);
    return out;
  }

 private:
  // ---- errors ----

  [[noreturn]] void fail(int line, const std::string& message) const {
    std::string where = filename_ + ":" + std::to_string(line) + ": ";
    throw CompileError(where + message, where + "error: " + message, line);
  }

  // ---- token helpers ----

  const Token& tok(size_t i) const { return toks_[std::min(i, toks_.size() - 1)]; }
  bool at_end() const { return toks_[i_].kind == Token::End; }
  static bool is(const Token& t, std::string_view text) {
    return (t.kind == Token::Punct || t.kind == Token::Ident) && t.text == text;
  }
  bool is(std::string_view text) const { return is(toks_[i_], text); }

  // Index just past the bracket group opening at `i` ('(', '[', '{', '[[' or '<').
  static size_t skip_group(const Tokens& t, size_t i, size_t end) {
    std::string_view open = t[i].text;
    if (open == "<") {
      int depth = 0;
      for (size_t k = i; k < end; ++k) {
        std::string_view x = t[k].text;
        if (t[k].kind != Token::Punct) continue;
        if (x == "<") ++depth;
        else if (x == ">") --depth;
        else if (x == ">>") depth -= 2;
        else if (x == "(" || x == "[" || x == "{") k = skip_group(t, k, end) - 1;
        else if (x == ";" || x == ")") return k;  // not a template argument list
        if (depth <= 0) return k + 1;
      }
      return end;
    }
    int depth = 0;
    for (size_t k = i; k < end; ++k) {
      if (t[k].kind != Token::Punct) continue;
      std::string_view x = t[k].text;
      if (x == "(" || x == "[" || x == "{") ++depth;
      else if (x == "[[") depth += 2;
      else if (x == ")" || x == "]" || x == "}") --depth;
      else if (x == "]]") depth -= 2;
      if (depth <= 0) return k + 1;
    }
    return end;
  }

  // Skips to just past the ';' that ends the current declaration (bodies skipped whole).
  void skip_declaration() {
    while (!at_end()) {
      if (is(";")) {
        ++i_;
        return;
      }
      if (is("{")) {
        i_ = skip_group(toks_, i_, toks_.size() - 1);
        if (is(";")) ++i_;
        return;
      }
      if (is("(") || is("[") || is("[[")) {
        i_ = skip_group(toks_, i_, toks_.size() - 1);
        continue;
      }
      if (is("}")) return;
      ++i_;
    }
  }

  // ---- namespace scope ----

  void scope() {
    while (!at_end() && !is("}")) {
      const Token& t = toks_[i_];
      if (is(";")) {
        ++i_;
      } else if (is("namespace")) {
        ++i_;
        std::string name;
        while (!at_end() && (toks_[i_].kind == Token::Ident || is("::"))) name += std::string(toks_[i_++].text);
        if (is("{")) {
          ++i_;
          namespaces_.push_back(name);
          scope();
          namespaces_.pop_back();
          if (is("}")) ++i_;
        } else {
          skip_declaration();
        }
      } else if (is("using")) {
        parse_using();
      } else if (is("typedef")) {
        parse_typedef();
      } else if (is("template")) {
        parse_template();
      } else if (is("static_assert") || is("enum")) {
        skip_declaration();
      } else if (is("extern") && tok(i_ + 1).kind == Token::String) {
        i_ += 2;
        if (is("{")) {
          ++i_;
          bool saved = extern_c_;
          extern_c_ = true;
          scope();
          extern_c_ = saved;
          if (is("}")) ++i_;
        } else {
          bool saved = extern_c_;
          extern_c_ = true;
          declaration({});
          extern_c_ = saved;
        }
      } else if ((is("struct") || is("class") || is("union")) && struct_head_name(i_ + 1)) {
        parse_struct_definition(std::string(tok(*struct_head_name(i_ + 1)).text));
        skip_declaration();  // declarators after the closing brace, if any
      } else if (t.kind == Token::Punct && !is("[[") && !is("::") && !is("~")) {
        ++i_;  // stray punctuation (e.g. from a kept #pragma region); not a declaration
      } else {
        declaration({});
      }
    }
  }

  void parse_using() {
    // using NAME = TYPE;  (using namespace X; and using X::y; are skipped)
    size_t start = i_;
    if (tok(i_ + 1).kind == Token::Ident && is(tok(i_ + 2), "=")) {
      std::string name(tok(i_ + 1).text);
      i_ += 3;
      size_t b = i_;
      skip_declaration();
      aliases_[name] = Tokens(toks_.begin() + b, toks_.begin() + (i_ - 1));
      return;
    }
    i_ = start;
    skip_declaration();
  }

  void parse_typedef() {
    ++i_;
    if ((is("struct") || is("union")) && (is(tok(i_ + 1), "{") || is(tok(i_ + 2), "{"))) {
      // typedef struct [Tag] { ... } Name;
      size_t brace = is(tok(i_ + 1), "{") ? i_ + 1 : i_ + 2;
      size_t after = skip_group(toks_, brace, toks_.size() - 1);
      std::string tag = brace == i_ + 2 ? std::string(tok(i_ + 1).text) : "";
      std::string name = tok(after).kind == Token::Ident ? std::string(tok(after).text) : tag;
      parse_struct_definition(name);
      if (!tag.empty() && tag != name) structs_[tag] = structs_[name];
      skip_declaration();
      return;
    }
    size_t b = i_;
    skip_declaration();
    size_t e = i_ - 1;  // the ';'
    if (e > b && toks_[e - 1].kind == Token::Ident)
      aliases_[std::string(toks_[e - 1].text)] = Tokens(toks_.begin() + b, toks_.begin() + (e - 1));
  }

  // ---- templates ----

  void parse_template() {
    ++i_;
    if (!is("<")) {
      // Explicit instantiation: template [[host_name("x")]] [[kernel]] void f<float>(...);
      size_t b = i_;
      skip_declaration();
      explicit_instantiation(Tokens(toks_.begin() + b, toks_.begin() + i_));
      return;
    }
    size_t close = skip_group(toks_, i_, toks_.size() - 1);
    std::vector<TemplateParam> tparams = parse_template_params(i_ + 1, close - 1);
    i_ = close;
    if (is("struct") || is("class") || is("union") || is("using")) {
      skip_declaration();  // template structs and alias templates cannot be laid out here
      return;
    }
    if (is("template")) {  // a member template or nested template header: not a kernel
      skip_declaration();
      return;
    }
    declaration(tparams);
  }

  std::vector<TemplateParam> parse_template_params(size_t b, size_t e) {
    std::vector<TemplateParam> out;
    for (const auto& [pb, pe] : split_commas(toks_, b, e)) {
      TemplateParam p;
      size_t eq = pe;
      for (size_t k = pb; k < pe; ++k)
        if (is(toks_[k], "=")) {
          eq = k;
          break;
        }
      for (size_t k = pb; k < eq; ++k)
        if (toks_[k].kind == Token::Ident) p.name = std::string(toks_[k].text);
      p.is_type = is(toks_[pb], "typename") || is(toks_[pb], "class");
      if (eq < pe) p.default_value.assign(toks_.begin() + eq + 1, toks_.begin() + pe);
      out.push_back(std::move(p));
    }
    return out;
  }

  // [b, e) split at the commas that are not inside (), [], {} or <>.
  static std::vector<std::pair<size_t, size_t>> split_commas(const Tokens& t, size_t b, size_t e) {
    std::vector<std::pair<size_t, size_t>> out;
    if (b >= e) return out;
    size_t start = b;
    for (size_t k = b; k < e; ++k) {
      std::string_view x = t[k].text;
      if (t[k].kind == Token::Punct && (x == "(" || x == "[" || x == "{" || x == "[[" || x == "<")) {
        size_t next = skip_group(t, k, e);
        if (next > k + 1) {
          k = next - 1;
          continue;
        }
      }
      if (t[k].kind == Token::Punct && x == ",") {
        out.emplace_back(start, k);
        start = k + 1;
      }
    }
    out.emplace_back(start, e);
    return out;
  }

  // ---- declarations ----

  // Reads one declaration at namespace scope and records what matters: kernels, template
  // kernels, and MSL function constants.
  void declaration(const std::vector<TemplateParam>& tparams) {
    size_t b = i_;
    // Find where the declaration ends: ';' at depth 0, or the body of a function.
    bool saw_params = false, saw_eq = false;
    size_t body = 0;
    while (!at_end()) {
      if (is(";")) break;
      if (is("}")) break;
      if (is("=")) saw_eq = true;
      if (is("{")) {
        if (saw_params && !saw_eq) {
          body = i_;
          break;
        }
        i_ = skip_group(toks_, i_, toks_.size() - 1);
        continue;
      }
      if (is("(")) {
        saw_params = true;
        i_ = skip_group(toks_, i_, toks_.size() - 1);
        continue;
      }
      if (is("[") || is("[[")) {
        i_ = skip_group(toks_, i_, toks_.size() - 1);
        continue;
      }
      ++i_;
    }
    size_t e = i_;
    if (body) {
      i_ = skip_group(toks_, body, toks_.size() - 1);
    } else if (is(";")) {
      ++i_;
    }
    Tokens decl(toks_.begin() + b, toks_.begin() + e);
    if (decl.empty()) return;
    if (is_kernel_declaration(decl)) {
      // A kernel prototype without a body declares nothing launchable (and would be listed
      // twice once the definition follows).
      if (body || !tparams.empty()) kernel_declaration(decl, tparams);
      return;
    }
    if (dialect_ == Dialect::MSL && tparams.empty() && !body) function_constant(decl);
  }

  bool is_kernel_declaration(const Tokens& d) const {
    for (size_t k = 0; k < d.size(); ++k) {
      if ((is(d[k], "__attribute__") || is(d[k], "__launch_bounds__") || is(d[k], "decltype") || is(d[k], "alignas")) &&
          k + 1 < d.size() && is(d[k + 1], "(")) {
        k = skip_group(d, k + 1, d.size()) - 1;
        continue;
      }
      if (d[k].kind == Token::Punct && d[k].text == "(") return false;  // reached the parameters
      if (dialect_ == Dialect::CUDA && is(d[k], "__global__")) return true;
      if (dialect_ == Dialect::MSL && d[k].kind == Token::Ident && d[k].text == "kernel") return true;
      if (dialect_ == Dialect::MSL && is(d[k], "[[")) {
        size_t end = skip_group(d, k, d.size());
        for (const Attr& a : parse_attrs(d, k, end))
          if (a.name == "kernel") return true;
        k = end - 1;
      }
    }
    return false;
  }

  // Attributes in one [[ ... ]] group at d[b] (d[e-1] is the "]]").
  std::vector<Attr> parse_attrs(const Tokens& d, size_t b, size_t e) const {
    std::vector<Attr> out;
    for (const auto& [ab, ae] : split_commas(d, b + 1, e - 1)) {
      if (ab >= ae) continue;
      Attr a;
      size_t k = ab;
      // Vendor namespaces (gnu::, clang::) are dropped.
      while (k + 1 < ae && d[k].kind == Token::Ident && is(d[k + 1], "::")) k += 2;
      a.name = std::string(d[k].text);
      a.line = d[k].line;
      if (k + 1 < ae && is(d[k + 1], "(")) {
        size_t close = skip_group(d, k + 1, ae);
        a.args.assign(d.begin() + k + 2, d.begin() + close - 1);
      }
      out.push_back(std::move(a));
    }
    return out;
  }

  struct FunctionParts {
    std::vector<Attr> attrs;  // attributes of the function itself
    Tokens prefix;            // return type and specifiers (attributes removed)
    std::string name;
    Tokens template_args;     // f<float, 4>: "float , 4"
    bool has_template_args = false;
    bool has_param_list = false;
    size_t params_begin = 0, params_end = 0;  // inside the parentheses
    bool via_decltype = false;
    int line = 0;
    uint32_t launch_bounds = 0;
  };

  FunctionParts split_function(const Tokens& d) const {
    FunctionParts f;
    const Token* name_tok = nullptr;
    size_t k = 0;
    while (k < d.size()) {
      const Token& t = d[k];
      if (is(t, "[[")) {
        size_t end = skip_group(d, k, d.size());
        for (Attr& a : parse_attrs(d, k, end)) f.attrs.push_back(std::move(a));
        k = end;
        continue;
      }
      if ((is(t, "__attribute__") || is(t, "__declspec") || is(t, "alignas")) && k + 1 < d.size() && is(d[k + 1], "(")) {
        k = skip_group(d, k + 1, d.size());
        continue;
      }
      if (is(t, "__launch_bounds__") && k + 1 < d.size() && is(d[k + 1], "(")) {
        size_t end = skip_group(d, k + 1, d.size());
        Tokens first;
        auto parts = split_commas(d, k + 2, end - 1);
        if (!parts.empty()) first.assign(d.begin() + parts[0].first, d.begin() + parts[0].second);
        if (auto v = eval_int(first)) f.launch_bounds = static_cast<uint32_t>(*v);
        k = end;
        continue;
      }
      if (is(t, "decltype") && k + 1 < d.size() && is(d[k + 1], "(")) {
        f.via_decltype = true;
        k = skip_group(d, k + 1, d.size());
        continue;
      }
      if (is(t, "(")) {
        f.has_param_list = true;
        f.params_begin = k + 1;
        f.params_end = skip_group(d, k, d.size()) - 1;
        break;
      }
      if (t.kind == Token::Ident && k + 1 < d.size() && is(d[k + 1], "<") && !is_keyword(t.text)) {
        // name<args> of an instantiation (or a template type in the return type: kept in prefix)
        size_t end = skip_group(d, k + 1, d.size());
        bool followed_by_name_end = end >= d.size() || is(d[end], "(") || is(d[end], ";");
        if (followed_by_name_end) {
          if (name_tok) f.prefix.push_back(*name_tok);
          name_tok = nullptr;
          f.name = std::string(t.text);
          f.line = t.line;
          f.has_template_args = true;
          f.template_args.assign(d.begin() + k + 2, d.begin() + end - 1);
          k = end;
          continue;
        }
        f.prefix.insert(f.prefix.end(), d.begin() + k, d.begin() + end);
        k = end;
        continue;
      }
      if (t.kind == Token::Ident) {
        // Every identifier is the name until a later one shows it was part of the type.
        if (name_tok) f.prefix.push_back(*name_tok);
        name_tok = &t;
        f.name = std::string(t.text);
        f.line = t.line;
        ++k;
        continue;
      }
      if (is(t, "::") && name_tok && k + 1 < d.size() && d[k + 1].kind == Token::Ident) {  // ns::f
        f.name += "::" + std::string(d[k + 1].text);
        name_tok = &d[k + 1];
        k += 2;
        continue;
      }
      if (name_tok) {
        f.prefix.push_back(*name_tok);
        name_tok = nullptr;
        f.name.clear();
      }
      f.prefix.push_back(t);
      ++k;
    }
    return f;
  }

  static bool is_keyword(std::string_view w) {
    return w == "kernel" || w == "void" || w == "static" || w == "inline" || w == "extern" ||
           w == "__global__" || w == "__device__" || w == "__host__" || w == "__forceinline__";
  }

  std::string host_name_of(const std::vector<Attr>& attrs) const {
    for (const Attr& a : attrs) {
      if (a.name != "host_name") continue;
      std::string s;
      for (const Token& t : a.args) {  // "copy_" "float32": adjacent literals concatenate
        if (t.kind != Token::String) fail(a.line, "[[host_name(...)]] takes a string literal");
        std::string_view v = t.text;
        size_t q = v.find('"');
        s += std::string(v.substr(q + 1, v.size() - q - 2));
      }
      if (s.empty()) fail(a.line, "[[host_name(...)]] needs a non-empty name");
      return s;
    }
    return "";
  }

  uint32_t max_threads_of(const std::vector<Attr>& attrs) const {
    for (const Attr& a : attrs)
      if (a.name == "max_total_threads_per_threadgroup") {
        auto v = eval_int(a.args);
        if (!v || *v <= 0) fail(a.line, "[[max_total_threads_per_threadgroup(N)]] needs a positive integer constant");
        return static_cast<uint32_t>(*v);
      }
    return 0;
  }

  void check_return_type(const FunctionParts& f) const {
    std::string written;
    for (const Token& t : f.prefix) {
      std::string_view w = t.text;
      if (w == "kernel" || w == "static" || w == "inline" || w == "extern" || w == "__global__" ||
          w == "__forceinline__" || t.kind == Token::String || w == "template")
        continue;
      written += (written.empty() ? "" : " ") + std::string(w);
    }
    if (written != "void")
      fail(f.line, "kernel '" + f.name + "' returns '" + written + "'; a kernel function must return void");
  }

  std::string qualified(const std::string& name) const {
    std::string q;
    for (const std::string& n : namespaces_)
      if (!n.empty()) q += n + "::";
    return q + name;
  }

  void kernel_declaration(const Tokens& d, const std::vector<TemplateParam>& tparams) {
    FunctionParts f = split_function(d);
    if (f.name.empty() || !f.has_param_list) fail(d[0].line, "cannot find the name and parameters of this kernel");
    check_return_type(f);
    if (!tparams.empty()) {
      TemplateKernel tk;
      tk.function = f.name;
      tk.tparams = tparams;
      tk.attrs = f.attrs;
      tk.line = f.line;
      tk.extern_c = extern_c_;
      for (const auto& [pb, pe] : split_commas(d, f.params_begin, f.params_end))
        if (pe > pb) tk.params.emplace_back(d.begin() + pb, d.begin() + pe);
      templates_[f.name] = std::move(tk);
      return;
    }
    KernelSignature sig;
    sig.function = qualified(f.name);
    std::string host = host_name_of(f.attrs);
    sig.name = host.empty() ? f.name : host;
    sig.line = f.line;
    sig.max_threads_per_group = dialect_ == Dialect::CUDA ? f.launch_bounds : max_threads_of(f.attrs);
    if (dialect_ == Dialect::CUDA && !extern_c_) sig.name_expression = sig.function;
    std::vector<Tokens> params;
    for (const auto& [pb, pe] : split_commas(d, f.params_begin, f.params_end))
      if (pe > pb) params.emplace_back(d.begin() + pb, d.begin() + pe);
    build_params(&sig, params, {});
    add_kernel(std::move(sig));
  }

  void explicit_instantiation(const Tokens& d) {
    // CUDA instantiations are chosen by name expressions (see instantiate_name_expressions).
    if (d.empty() || dialect_ == Dialect::CUDA) return;
    if (!is_kernel_declaration(d)) return;  // template struct X<float>; and the like
    FunctionParts f = split_function(d);
    if (f.name.empty() || !f.has_template_args)
      fail(d[0].line, "an explicit instantiation of a template kernel must name its template arguments, "
                      "e.g. `template [[host_name(\"f_float\")]] [[kernel]] void f<float>(...);`");
    auto it = templates_.find(f.name);
    if (it == templates_.end())
      fail(f.line, "explicit instantiation of '" + f.name + "', but no template kernel '" + f.name +
                       "' is defined above it");
    const TemplateKernel& tk = it->second;
    std::string host = host_name_of(f.attrs);
    if (host.empty())
      fail(f.line, "the instantiation of template kernel '" + f.name +
                       "' needs [[host_name(\"...\")]]: without it the kernel has only a mangled name and "
                       "cannot be looked up");
    KernelSignature sig;
    sig.function = qualified(f.name);
    sig.name = host;
    sig.line = f.line;
    sig.max_threads_per_group = max_threads_of(f.attrs);
    if (!sig.max_threads_per_group) sig.max_threads_per_group = max_threads_of(tk.attrs);

    std::vector<Tokens> args = template_args(f.template_args);
    std::map<std::string, Tokens> subst = bind_template_args(tk, args, f.line, &sig.template_args);

    std::vector<Tokens> given;
    bool given_has_attrs = false;
    if (f.has_param_list && !f.via_decltype) {
      for (const auto& [pb, pe] : split_commas(d, f.params_begin, f.params_end)) {
        if (pe <= pb) continue;
        given.emplace_back(d.begin() + pb, d.begin() + pe);
        for (size_t k = pb; k < pe; ++k) given_has_attrs |= is(d[k], "[[");
      }
    }
    if (given_has_attrs) {
      // The instantiation spells the parameters out (older MLX style): they are what binds.
      std::vector<std::string> names;
      for (const Tokens& p : tk.params) names.push_back(parse_param_decl(p).name);
      if (given.size() != tk.params.size())
        fail(f.line, "the instantiation of '" + f.name + "' lists " + std::to_string(given.size()) +
                         " parameters, but the template has " + std::to_string(tk.params.size()));
      build_params(&sig, given, names);
    } else {
      std::vector<Tokens> params;
      for (const Tokens& p : tk.params) params.push_back(substitute(p, subst));
      build_params(&sig, params, {});
    }
    add_kernel(std::move(sig));
  }

  std::vector<Tokens> template_args(const Tokens& t) const {
    std::vector<Tokens> out;
    for (const auto& [b, e] : split_commas(t, 0, t.size())) out.emplace_back(t.begin() + b, t.begin() + e);
    if (out.size() == 1 && out[0].empty()) out.clear();
    return out;
  }

  std::map<std::string, Tokens> bind_template_args(const TemplateKernel& tk, const std::vector<Tokens>& args, int line,
                                                   std::vector<std::string>* spelled) const {
    if (args.size() > tk.tparams.size())
      fail(line, "template kernel '" + tk.function + "' takes " + std::to_string(tk.tparams.size()) +
                     " template arguments, got " + std::to_string(args.size()));
    std::map<std::string, Tokens> subst;
    for (size_t k = 0; k < tk.tparams.size(); ++k) {
      const TemplateParam& p = tk.tparams[k];
      Tokens value;
      if (k < args.size()) {
        value = args[k];
      } else if (!p.default_value.empty()) {
        value = substitute(p.default_value, subst);
      } else {
        fail(line, "template kernel '" + tk.function + "' needs a value for template parameter '" + p.name + "'");
      }
      spelled->push_back(join_tokens(value, 0, value.size()));
      subst[p.name] = std::move(value);
    }
    return subst;
  }

  static Tokens substitute(const Tokens& t, const std::map<std::string, Tokens>& subst) {
    Tokens out;
    for (const Token& x : t) {
      auto it = x.kind == Token::Ident ? subst.find(std::string(x.text)) : subst.end();
      if (it == subst.end()) {
        out.push_back(x);
        continue;
      }
      for (Token r : it->second) {
        r.line = x.line;
        out.push_back(r);
      }
    }
    return out;
  }

  // Copies the layouts of the structs `sig` uses, following nested structs.
  void attach_structs(KernelSignature* sig) const {
    std::vector<std::string> todo;
    for (const Param& p : sig->params)
      if (p.type.scalar == Scalar::Struct) todo.push_back(p.type.name);
    while (!todo.empty()) {
      std::string name = todo.back();
      todo.pop_back();
      auto it = structs_.find(name);
      if (it == structs_.end() || sig->structs.count(name)) continue;
      sig->structs.emplace(name, it->second);
      for (const StructField& f : it->second.fields)
        if (!f.struct_name.empty()) todo.push_back(f.struct_name);
    }
  }

  void add_kernel(KernelSignature sig) {
    sig.dialect = dialect_;
    attach_structs(&sig);
    for (const KernelSignature& k : kernels_)
      if (k.name == sig.name)
        fail(sig.line, "two kernels are named '" + sig.name + "' (lines " + std::to_string(k.line) + " and " +
                           std::to_string(sig.line) + "); kernel names must be unique");
    kernels_.push_back(std::move(sig));
  }

  // ---- CUDA name expressions ----

  void instantiate_name_expressions(const std::vector<std::string>& exprs) {
    for (const std::string& expr : exprs) {
      std::string text = expr;
      Tokens t = tokenize_owned(text);
      if (t.empty() || t[0].kind != Token::Ident) fail(0, "name expression '" + expr + "' is not a kernel name");
      std::string name(t[0].text);
      bool has_args = t.size() > 1 && is(t[1], "<");
      if (!has_args) {
        bool found = false;
        for (KernelSignature& k : kernels_)
          if (k.function == name || k.name == name) found = true;
        if (!found)
          fail(0, "name expression '" + expr + "' names no __global__ function in the source");
        continue;
      }
      auto it = templates_.find(name);
      if (it == templates_.end())
        fail(0, "name expression '" + expr + "' names no __global__ template in the source");
      const TemplateKernel& tk = it->second;
      size_t end = skip_group(t, 1, t.size());
      Tokens inner(t.begin() + 2, t.begin() + end - 1);
      KernelSignature sig;
      sig.function = name;
      sig.name = expr;
      sig.name_expression = expr;
      sig.line = tk.line;
      std::map<std::string, Tokens> subst = bind_template_args(tk, template_args(inner), tk.line, &sig.template_args);
      std::vector<Tokens> params;
      for (const Tokens& p : tk.params) params.push_back(substitute(p, subst));
      build_params(&sig, params, {});
      add_kernel(std::move(sig));
    }
  }

  // Tokens over a string that lives as long as the parser.
  Tokens tokenize_owned(const std::string& text) {
    owned_.push_back(text);
    Tokens t = tokenize(owned_.back());
    t.pop_back();  // End
    return t;
  }

  // ---- parameters ----

  ParsedParamDecl parse_param_decl(const Tokens& p) const {
    ParsedParamDecl out;
    Tokens rest;
    for (size_t k = 0; k < p.size(); ++k) {
      if (is(p[k], "[[")) {
        size_t end = skip_group(p, k, p.size());
        for (Attr& a : parse_attrs(p, k, end)) out.attrs.push_back(std::move(a));
        k = end - 1;
        continue;
      }
      if ((is(p[k], "__attribute__") || is(p[k], "alignas")) && k + 1 < p.size() && is(p[k + 1], "(")) {
        k = skip_group(p, k + 1, p.size()) - 1;
        continue;
      }
      if (is(p[k], "=")) break;  // default argument: not allowed in kernels, ignored here
      rest.push_back(p[k]);
    }
    out.line = p.empty() ? 0 : p[0].line;
    // The name is the last identifier, unless that identifier is part of the type
    // ("device float*" in an instantiation's unnamed parameter list; "uint" alone).
    if (!rest.empty() && rest.back().kind == Token::Ident) {
      std::string_view last = rest.back().text;
      bool type_word = false;
      ValueType vt;
      if (lookup_msl_type(last, &vt) || lookup_cuda_type(last, &vt) || last == "const" || last == "volatile" ||
          is_address_space(last) || last == "__restrict__" || last == "restrict" || last == "__restrict")
        type_word = true;
      bool only_word = true;
      for (size_t k = 0; k + 1 < rest.size(); ++k) {
        std::string_view w = rest[k].text;
        if (!(w == "const" || w == "volatile" || is_address_space(w))) only_word = false;
      }
      if (!type_word && !only_word) {
        out.name = std::string(last);
        out.line = rest.back().line;
        rest.pop_back();
      }
    }
    out.type = std::move(rest);
    return out;
  }

  struct TypeInfo {
    std::string base;   // the element type, qualifiers removed: "float4", "Params"
    AddressSpace space = AddressSpace::None;
    std::string space_word;  // as written, for messages ("threadgroup_imageblock")
    bool pointee_const = false;
    int pointers = 0;
    bool reference = false;
  };

  TypeInfo analyze_type(const Tokens& t) const {
    TypeInfo ti;
    std::string base;
    Tokens base_toks;
    for (size_t k = 0; k < t.size(); ++k) {
      std::string_view w = t[k].text;
      if (t[k].kind == Token::Ident && is_address_space(w) && ti.pointers == 0 && !ti.reference) {
        ti.space = address_space(w);
        ti.space_word = std::string(w);
        continue;
      }
      if (w == "const" || w == "volatile") {
        if (ti.pointers == 0 && !ti.reference && w == "const") ti.pointee_const = true;
        continue;
      }
      if (w == "__restrict__" || w == "restrict" || w == "__restrict" || w == "__grid_constant__" ||
          w == "struct" || w == "typename" || w == "class")
        continue;
      if (w == "*") {
        ++ti.pointers;
        continue;
      }
      if (w == "&" || w == "&&") {
        ti.reference = true;
        continue;
      }
      if (ti.pointers == 0 && !ti.reference) base_toks.push_back(t[k]);
    }
    ti.base = join_tokens(base_toks, 0, base_toks.size());
    return ti;
  }

  // Resolves a written type (aliases followed) against the type table and the structs.
  ValueType resolve(const std::string& written, std::string* struct_name) const {
    std::string name = written;
    for (int depth = 0; depth < 16; ++depth) {
      ValueType vt;
      bool found = dialect_ == Dialect::MSL ? lookup_msl_type(name, &vt) : lookup_cuda_type(name, &vt);
      if (found) return vt;
      std::string bare = name;
      for (std::string_view prefix : {"metal::", "::"})
        if (bare.compare(0, prefix.size(), prefix) == 0) bare.erase(0, prefix.size());
      size_t colon = bare.rfind("::");
      std::string last = colon == std::string::npos ? bare : bare.substr(colon + 2);
      auto s = structs_.find(last);
      if (s != structs_.end()) {
        ValueType st;
        st.scalar = Scalar::Struct;
        st.size = s->second.size;
        st.align = s->second.align;
        st.name = last;
        if (struct_name) *struct_name = last;
        return st;
      }
      auto a = aliases_.find(last);
      if (a == aliases_.end()) break;
      TypeInfo ti = analyze_type(a->second);
      if (ti.pointers || ti.reference) break;
      name = ti.base;
    }
    ValueType unknown;
    unknown.scalar = Scalar::Opaque;
    unknown.name = name;
    return unknown;
  }

  void build_params(KernelSignature* sig, const std::vector<Tokens>& decls, const std::vector<std::string>& names) {
    std::set<std::string> seen_names;
    for (size_t pos = 0; pos < decls.size(); ++pos) {
      ParsedParamDecl d = parse_param_decl(decls[pos]);
      if (d.name.empty() && pos < names.size()) d.name = names[pos];
      if (d.name.empty()) d.name = "arg" + std::to_string(pos);
      Param p;
      p.name = d.name;
      p.position = static_cast<int>(pos);
      p.line = d.line ? d.line : sig->line;
      p.type_text = join_tokens(d.type, 0, d.type.size());
      if (dialect_ == Dialect::MSL)
        msl_param(*sig, d, &p);
      else
        cuda_param(*sig, d, &p);
      sig->params.push_back(std::move(p));
    }
    if (dialect_ == Dialect::MSL) assign_indices(sig);
  }

  std::string describe(const KernelSignature& sig, const Param& p) const {
    return "parameter '" + p.name + "' of kernel '" + sig.name + "'";
  }

  void msl_param(const KernelSignature& sig, const ParsedParamDecl& d, Param* p) {
    TypeInfo ti = analyze_type(d.type);
    p->pointee = ti.base;
    p->type = resolve(ti.base, nullptr);
    p->space = ti.space;
    p->is_const = ti.pointee_const || ti.space == AddressSpace::Constant;
    const std::string who = describe(sig, *p);

    if (is_resource_type(ti.base))
      fail(p->line, who + " has type '" + p->type_text +
                        "': metalrt binds buffers only (no textures, samplers or other resources); pass the "
                        "data as a `device T*` buffer instead");

    std::string builtin;
    std::optional<int64_t> buffer_index, threadgroup_index;
    for (const Attr& a : d.attrs) {
      if (builtin_table().count(a.name)) {
        if (!builtin.empty()) fail(a.line, who + " has two builtin attributes, [[" + builtin + "]] and [[" + a.name + "]]");
        builtin = a.name;
      } else if (a.name == "buffer" || a.name == "threadgroup") {
        auto v = eval_int(a.args);
        if (!v) fail(a.line, "[[" + a.name + "(...)]] of " + who + " needs an integer constant index");
        if (*v < 0 || *v > kMaxBufferIndex)
          fail(a.line, "[[" + a.name + "(" + std::to_string(*v) + ")]] of " + who + " is out of range: Metal has " +
                           std::to_string(kMaxBufferIndex + 1) + " " + a.name + " slots, indices 0 to " +
                           std::to_string(kMaxBufferIndex));
        (a.name == "buffer" ? buffer_index : threadgroup_index) = *v;
      } else if (a.name == "texture" || a.name == "sampler") {
        fail(a.line, who + " has [[" + a.name + "(...)]]: metalrt binds buffers only (no textures or samplers)");
      } else if (a.name == "function_constant") {
        p->condition = a.args.empty() ? "" : std::string(a.args[0].text);
      } else if (a.name == "maybe_unused" || a.name == "raster_order_group") {
        // no effect on binding
      } else if (a.name == "stage_in" || a.name == "grid_origin" || a.name == "grid_size") {
        fail(a.line, who + " has [[" + a.name + "]], which needs a stage-in descriptor; metalrt kernels take "
                                                "buffers and the thread-position builtins only");
      } else {
        fail(a.line, "unknown attribute [[" + a.name + "]] on " + who);
      }
    }

    if (!builtin.empty()) {
      if (ti.pointers || ti.reference)
        fail(p->line, who + " is a builtin ([[" + builtin + "]]) and must be passed by value, not as '" +
                          p->type_text + "'");
      if (buffer_index || threadgroup_index)
        fail(p->line, who + " is a builtin ([[" + builtin + "]]) and cannot also have a buffer or threadgroup index");
      check_builtin_type(who, builtin, *p);
      p->kind = ParamKind::Builtin;
      p->builtin = builtin;
      p->space = AddressSpace::None;
      return;
    }
    if (ti.pointers > 1)
      fail(p->line, who + " is a pointer to a pointer ('" + p->type_text +
                        "'); a kernel buffer argument is a single pointer such as `device float* x`");
    if (ti.pointers == 1 || ti.reference) {
      const char* what = ti.reference ? "reference" : "pointer";
      if (ti.space == AddressSpace::None && ti.space_word.empty())
        fail(p->line, who + " is a " + what + " without an address space ('" + p->type_text +
                          "'); MSL requires one for kernel arguments: write `device " + p->type_text +
                          "` (read-write), `constant " + p->type_text + "` (read-only) or `threadgroup " +
                          p->type_text + "` (group memory)");
      if (ti.space == AddressSpace::None || ti.space == AddressSpace::Thread)
        fail(p->line, who + " points to the '" + ti.space_word +
                          "' address space; kernel arguments must be in device, constant or threadgroup memory");
      if (ti.space == AddressSpace::Threadgroup) {
        if (ti.reference)
          fail(p->line, who + " is a threadgroup reference; declare threadgroup memory arguments as pointers: "
                              "`threadgroup T* x [[threadgroup(i)]]`");
        if (buffer_index) fail(p->line, who + " is threadgroup memory; use [[threadgroup(i)]], not [[buffer(i)]]");
        p->kind = ParamKind::Threadgroup;
        p->index = threadgroup_index ? static_cast<int>(*threadgroup_index) : -1;
        return;
      }
      if (threadgroup_index)
        fail(p->line, who + " is in " + ti.space_word + " memory; [[threadgroup(i)]] is for threadgroup pointers, use [[buffer(i)]]");
      p->kind = ti.reference ? ParamKind::Reference : ParamKind::Buffer;
      p->index = buffer_index ? static_cast<int>(*buffer_index) : -1;
      if (p->type.scalar == Scalar::Void && ti.reference)
        fail(p->line, who + " is a reference to void");
      return;
    }
    fail(p->line, who + " ('" + p->type_text +
                      "') is passed by value without a builtin attribute; MSL passes kernel arguments in "
                      "buffers: write `constant " + (ti.base.empty() ? std::string("T") : ti.base) + "& " + p->name +
                      " [[buffer(i)]]` for a value, or add the builtin attribute it stands for (e.g. "
                      "[[thread_position_in_grid]])");
  }

  void check_builtin_type(const std::string& who, const std::string& builtin, const Param& p) const {
    const ValueType& t = p.type;
    bool integral = (t.scalar == Scalar::UInt || t.scalar == Scalar::UShort) && !t.packed && !t.atomic;
    bool ok = builtin_table().at(builtin) == BuiltinShape::Positional ? integral && t.width <= 3
                                                                      : integral && t.width == 1;
    if (ok) return;
    std::string allowed = builtin_table().at(builtin) == BuiltinShape::Positional
                              ? "uint, uint2, uint3, ushort, ushort2 or ushort3"
                              : "uint or ushort";
    fail(p.line, who + " has type '" + p.type_text + "', but [[" + builtin + "]] must be " + allowed);
  }

  // Parameters without an explicit index get the lowest index not taken, in declaration order
  // (the explicit ones are reserved first, so the two never collide).
  void assign_indices(KernelSignature* sig) {
    for (ParamKind kind : {ParamKind::Buffer, ParamKind::Threadgroup}) {
      auto same_table = [kind](const Param& p) {
        return kind == ParamKind::Threadgroup ? p.kind == ParamKind::Threadgroup
                                              : (p.kind == ParamKind::Buffer || p.kind == ParamKind::Reference);
      };
      std::map<int, const Param*> used;
      for (const Param& p : sig->params) {
        if (!same_table(p) || p.index < 0) continue;
        auto [it, fresh] = used.emplace(p.index, &p);
        if (!fresh)
          fail(p.line, "parameters '" + it->second->name + "' and '" + p.name + "' of kernel '" + sig->name +
                           "' both use [[" + (kind == ParamKind::Threadgroup ? "threadgroup" : "buffer") + "(" +
                           std::to_string(p.index) + ")]]; each index can be bound once");
      }
      int next = 0;
      for (Param& p : sig->params) {
        if (!same_table(p) || p.index >= 0) continue;
        while (used.count(next)) ++next;
        if (next > kMaxBufferIndex)
          fail(p.line, "kernel '" + sig->name + "' has more than " + std::to_string(kMaxBufferIndex + 1) +
                           " buffer arguments; Metal has slots 0 to " + std::to_string(kMaxBufferIndex));
        p.index = next;
        used.emplace(next, &p);
      }
    }
  }

  void cuda_param(const KernelSignature& sig, const ParsedParamDecl& d, Param* p) {
    TypeInfo ti = analyze_type(d.type);
    std::string struct_name;
    p->pointee = ti.base;
    p->type = resolve(ti.base, &struct_name);
    p->index = p->position;
    p->is_const = ti.pointee_const;
    const std::string who = describe(sig, *p);
    if (ti.reference)
      fail(p->line, who + " is a reference ('" + p->type_text +
                        "'); a __global__ function takes pointers and values only: pass it by value");
    if (ti.pointers > 1) fail(p->line, who + " is a pointer to a pointer; metalrt binds each tensor as one pointer");
    if (ti.pointers == 1) {
      p->kind = ParamKind::Buffer;
      p->space = AddressSpace::Device;
      return;
    }
    p->kind = ParamKind::Value;
    if (!p->type.known() && p->type.scalar != Scalar::Struct)
      fail(p->line, who + " has type '" + p->type_text +
                        "', which metalrt cannot pass by value; use a C scalar or vector type, a struct "
                        "defined in the source, or a pointer");
    if (p->type.scalar == Scalar::Struct && structs_.count(struct_name) && !structs_.at(struct_name).complete)
      fail(p->line, who + " is struct '" + struct_name + "', whose layout metalrt cannot compute; use plain fields");
    if (p->type.scalar == Scalar::Void) fail(p->line, who + " has type void");
  }

  // ---- function constants (MSL) ----

  void function_constant(const Tokens& d) {
    for (size_t k = 0; k < d.size(); ++k) {
      if (!is(d[k], "[[")) continue;
      size_t end = skip_group(d, k, d.size());
      for (const Attr& a : parse_attrs(d, k, end)) {
        if (a.name != "function_constant") continue;
        Tokens before(d.begin(), d.begin() + k);
        if (before.empty() || before.back().kind != Token::Ident)
          fail(a.line, "a function constant needs a name: `constant T name [[function_constant(i)]];`");
        FunctionConstant fc;
        fc.name = std::string(before.back().text);
        fc.line = before.back().line;
        before.pop_back();
        TypeInfo ti = analyze_type(before);
        if (ti.space != AddressSpace::Constant)
          fail(a.line, "function constant '" + fc.name + "' must be declared in the constant address space: "
                       "`constant " + ti.base + " " + fc.name + " [[function_constant(i)]];`");
        fc.type = resolve(ti.base, nullptr);
        if (!fc.type.known() || fc.type.atomic)
          fail(a.line, "function constant '" + fc.name + "' has type '" + ti.base +
                           "'; function constants are scalars or vectors");
        auto v = eval_int(a.args);
        if (!v || *v < 0 || *v > 65535)
          fail(a.line, "function constant '" + fc.name + "' needs an index from 0 to 65535: [[function_constant(i)]]");
        fc.index = static_cast<int>(*v);
        for (const FunctionConstant& other : constants_)
          if (other.index == fc.index)
            fail(a.line, "function constants '" + other.name + "' and '" + fc.name + "' both use index " +
                             std::to_string(fc.index));
        constants_.push_back(std::move(fc));
        return;
      }
      k = end - 1;
    }
  }

  // ---- structs ----

  // After "struct" at `k`: skips alignas(...) and [[attributes]]; the index of the name when a
  // definition follows ("Name {", "Name : Base {", "Name final {").
  std::optional<size_t> struct_head_name(size_t k) const {
    while (is(tok(k), "alignas") || is(tok(k), "[[") || is(tok(k), "__attribute__"))
      k = skip_group(toks_, is(tok(k), "[[") ? k : k + 1, toks_.size() - 1);
    if (tok(k).kind != Token::Ident) return std::nullopt;
    if (is(tok(k + 1), "{") || is(tok(k + 1), ":") || is(tok(k + 1), "final")) return k;
    return std::nullopt;
  }

  // At "struct Name {" (or "struct Name : Base {"); leaves i_ just past the closing brace.
  void parse_struct_definition(const std::string& name) {
    ++i_;  // struct / class / union
    bool is_union = is(toks_[i_ - 1], "union");
    uint32_t min_align = 1;
    while (is("alignas") || is("[[") || is("__attribute__")) {
      if (is("alignas") && is(tok(i_ + 1), "(")) {
        size_t close = skip_group(toks_, i_ + 1, toks_.size() - 1);
        auto v = eval_int(Tokens(toks_.begin() + i_ + 2, toks_.begin() + close - 1));
        if (v && *v > 0) min_align = static_cast<uint32_t>(*v);
        i_ = close;
      } else {
        i_ = skip_group(toks_, is("[[") ? i_ : i_ + 1, toks_.size() - 1);
      }
    }
    if (toks_[i_].kind == Token::Ident && !is("final")) ++i_;  // the tag
    bool complete = !is_union;  // unions are not laid out (their members overlap)
    if (is("final")) ++i_;
    if (is(":")) {  // a base class: its fields would come first; inheritance is not followed
      complete = false;
      while (!at_end() && !is("{")) ++i_;
    }
    if (!is("{")) return;
    size_t close = skip_group(toks_, i_, toks_.size() - 1) - 1;  // index of '}'
    ++i_;
    StructLayout layout;
    layout.name = name;
    while (i_ < close) {
      if (is(";")) {
        ++i_;
        continue;
      }
      if ((is("public") || is("private") || is("protected")) && is(tok(i_ + 1), ":")) {
        i_ += 2;
        continue;
      }
      if (is("static") || is("using") || is("typedef") || is("template") || is("friend") || is("enum") ||
          is("static_assert") || is("constexpr")) {
        skip_member(close);  // no storage in the struct
        continue;
      }
      if ((is("struct") || is("union")) && (is(tok(i_ + 1), "{") || is(tok(i_ + 2), "{"))) {
        // A nested definition, perhaps with declarators: struct Inner { ... } a, b[2];
        std::string inner = is(tok(i_ + 1), "{") ? name + "::<anonymous>" : std::string(tok(i_ + 1).text);
        parse_struct_definition(inner);
        size_t b = i_;
        while (i_ < close && !is(";")) ++i_;
        Tokens decls(toks_.begin() + b, toks_.begin() + i_);
        const StructLayout& nested = structs_[inner];
        if (decls.empty()) {
          // An anonymous member struct: its fields belong to the enclosing one.
          for (const StructField& f : nested.fields) layout.fields.push_back(f);
          complete &= nested.complete;
        } else {
          complete &= add_declarators(&layout, struct_field(nested), nested.complete, decls);
        }
        continue;
      }
      size_t b = i_;
      bool function = false;
      while (i_ < close && !is(";")) {
        if ((is("alignas") || is("__attribute__")) && is(tok(i_ + 1), "(")) {
          i_ = skip_group(toks_, i_ + 1, close + 1);
          continue;
        }
        if (is("(")) function = true;
        if (is("{")) {
          i_ = skip_group(toks_, i_, close + 1);
          function = true;
          break;
        }
        if (is("[[") || is("[") || is("<")) {
          i_ = std::max(skip_group(toks_, i_, close + 1), i_ + 1);
          continue;
        }
        ++i_;
      }
      Tokens member(toks_.begin() + b, toks_.begin() + i_);
      if (function || member.empty()) continue;  // member functions, constructors
      complete &= add_member(&layout, member);
    }
    i_ = close + 1;
    finish_layout(&layout, complete, min_align);
    structs_[name] = layout;
  }

  void skip_member(size_t close) {
    while (i_ < close && !is(";")) {
      if (is("{") || is("(") || is("[") || is("[[")) {
        bool brace = is("{");
        i_ = skip_group(toks_, i_, close + 1);
        if (brace && !is(";")) return;  // a function body ends the member
        continue;
      }
      ++i_;
    }
  }

  static StructField struct_field(const StructLayout& s) {
    StructField f;
    f.type.scalar = Scalar::Struct;
    f.type.size = s.size;
    f.type.align = s.align;
    f.type.name = s.name;
    f.struct_name = s.name;
    return f;
  }

  // "float4 a, b[2] [[id(0)]] = {...}": one type, then declarators. False if not laid out.
  bool add_member(StructLayout* layout, const Tokens& written) {
    // alignas(N) raises the member's alignment; everything else about it stays.
    Tokens m;
    uint32_t min_align = 0;
    for (size_t k = 0; k < written.size(); ++k) {
      if (is(written[k], "alignas") && k + 1 < written.size() && is(written[k + 1], "(")) {
        size_t close = skip_group(written, k + 1, written.size());
        auto v = eval_int(Tokens(written.begin() + k + 2, written.begin() + close - 1));
        if (!v || *v <= 0) return false;
        min_align = static_cast<uint32_t>(*v);
        k = close - 1;
        continue;
      }
      m.push_back(written[k]);
    }
    // The first declarator name is the last identifier before the first top-level
    // ',', '[', '=', ':', '{' or '[['.
    size_t stop = m.size();
    for (size_t k = 0; k < m.size(); ++k) {
      if (is(m[k], "<")) {
        k = std::max(skip_group(m, k, m.size()), k + 1) - 1;
        continue;
      }
      if (is(m[k], ",") || is(m[k], "[") || is(m[k], "=") || is(m[k], ":") || is(m[k], "[[") || is(m[k], "{")) {
        stop = k;
        break;
      }
    }
    if (stop == 0 || m[stop - 1].kind != Token::Ident) return false;
    Tokens type(m.begin(), m.begin() + (stop - 1));
    Tokens decls(m.begin() + (stop - 1), m.end());
    StructField proto;
    bool complete = field_type(type, &proto);
    proto.type.align = std::max(proto.type.align, min_align);
    return add_declarators(layout, proto, complete, decls) && complete;
  }

  // One field per declarator ("a, b[2][3]"), each a copy of `proto` with its array length.
  bool add_declarators(StructLayout* layout, const StructField& proto, bool complete, const Tokens& decls) {
    for (const auto& [b, e] : split_commas(decls, 0, decls.size())) {
      if (b >= e) continue;
      if (decls[b].kind != Token::Ident) return false;
      StructField f = proto;
      f.name = std::string(decls[b].text);
      uint64_t count = f.array_len ? f.array_len : 1;
      size_t k = b + 1;
      while (k < e && is(decls[k], "[")) {
        size_t close = skip_group(decls, k, e);
        auto v = eval_int(Tokens(decls.begin() + k + 1, decls.begin() + close - 1));
        if (!v || *v <= 0) complete = false;
        else count *= static_cast<uint64_t>(*v);
        k = close;
      }
      if (k < e && is(decls[k], ":")) complete = false;  // a bit-field
      f.array_len = count > 1 || proto.array_len ? static_cast<uint32_t>(count) : 0;
      layout->fields.push_back(std::move(f));
    }
    return complete;
  }

  // The type of a struct field: MSL/CUDA value types (matrices included), metal::array<T, N>,
  // nested structs, pointers (8 bytes on both targets).
  bool field_type(const Tokens& type, StructField* f) {
    TypeInfo ti = analyze_type(type);
    if (ti.pointers) {
      f->type = ValueType{};
      f->type.scalar = Scalar::ULong;
      f->type.size = f->type.align = 8;
      f->type.name = join_tokens(type, 0, type.size());
      return true;
    }
    if (ti.reference) return false;
    std::string base = ti.base;
    for (std::string_view prefix : {"metal::", "::"})
      if (base.compare(0, prefix.size(), prefix) == 0) base.erase(0, prefix.size());
    // array<T, N>
    if (base.compare(0, 6, "array<") == 0 && base.back() == '>') {
      std::string inner = base.substr(6, base.size() - 7);
      size_t comma = inner.rfind(',');
      if (comma == std::string::npos) return false;
      Tokens elem = tokenize_owned(inner.substr(0, comma));
      Tokens len = tokenize_owned(inner.substr(comma + 1));
      auto n = eval_int(len);
      if (!n || *n <= 0 || !field_type(elem, f)) return false;
      f->array_len = (f->array_len ? f->array_len : 1) * static_cast<uint32_t>(*n);
      return true;
    }
    std::string struct_name;
    f->type = resolve(base, &struct_name);
    f->struct_name = struct_name;
    if (f->type.scalar == Scalar::Struct) return structs_.count(struct_name) && structs_.at(struct_name).complete;
    return f->type.known() && f->type.scalar != Scalar::Void;
  }

  static void finish_layout(StructLayout* layout, bool complete, uint32_t min_align) {
    uint32_t offset = 0, align = min_align;
    for (StructField& f : layout->fields) {
      uint32_t a = std::max<uint32_t>(f.type.align, 1);
      offset = (offset + a - 1) / a * a;
      f.offset = offset;
      offset += f.type.size * std::max<uint32_t>(f.array_len, 1);
      align = std::max(align, a);
      if (f.type.size == 0) complete = false;
    }
    layout->align = align;
    layout->size = (offset + align - 1) / align * align;
    layout->complete = complete;
  }

  // ---- integer constants (indices, array lengths, template arguments) ----

  static std::optional<int64_t> eval_int(const Tokens& t) {
    size_t pos = 0;
    auto r = eval_sum(t, pos);
    if (!r || pos != t.size()) return std::nullopt;
    return r;
  }
  static std::optional<int64_t> eval_sum(const Tokens& t, size_t& pos) {
    auto lhs = eval_product(t, pos);
    while (lhs && pos < t.size() && (is(t[pos], "+") || is(t[pos], "-"))) {
      bool plus = is(t[pos++], "+");
      auto rhs = eval_product(t, pos);
      if (!rhs) return std::nullopt;
      lhs = plus ? *lhs + *rhs : *lhs - *rhs;
    }
    return lhs;
  }
  static std::optional<int64_t> eval_product(const Tokens& t, size_t& pos) {
    auto lhs = eval_atom(t, pos);
    while (lhs && pos < t.size() && (is(t[pos], "*") || is(t[pos], "/") || is(t[pos], "%") ||
                                     is(t[pos], "<<") || is(t[pos], ">>"))) {
      std::string_view op = t[pos++].text;
      auto rhs = eval_atom(t, pos);
      if (!rhs) return std::nullopt;
      if ((op == "/" || op == "%") && *rhs == 0) return std::nullopt;
      if (op == "*") lhs = *lhs * *rhs;
      else if (op == "/") lhs = *lhs / *rhs;
      else if (op == "%") lhs = *lhs % *rhs;
      else if (op == "<<") lhs = *lhs << (*rhs & 63);
      else lhs = *lhs >> (*rhs & 63);
    }
    return lhs;
  }
  static std::optional<int64_t> eval_atom(const Tokens& t, size_t& pos) {
    if (pos >= t.size()) return std::nullopt;
    const Token& x = t[pos++];
    if (is(x, "(")) {
      auto v = eval_sum(t, pos);
      if (!v || pos >= t.size() || !is(t[pos], ")")) return std::nullopt;
      ++pos;
      return v;
    }
    if (is(x, "-")) {
      auto v = eval_atom(t, pos);
      return v ? std::optional<int64_t>(-*v) : std::nullopt;
    }
    if (is(x, "+")) return eval_atom(t, pos);
    if (x.kind != Token::Number) return std::nullopt;
    std::string s;
    for (char c : x.text)
      if (c != '\'') s += c;
    while (!s.empty() && std::strchr("uUlL", s.back())) s.pop_back();
    if (s.find('.') != std::string::npos) return std::nullopt;
    try {
      size_t used = 0;
      int64_t v = static_cast<int64_t>(std::stoull(s, &used, 0));
      if (used != s.size()) {
        if (s.size() > 2 && (s[1] == 'b' || s[1] == 'B')) return static_cast<int64_t>(std::stoull(s.substr(2), nullptr, 2));
        return std::nullopt;
      }
      return v;
    } catch (...) {
      return std::nullopt;
    }
  }

  Dialect dialect_;
  std::string filename_;
  Tokens toks_;
  size_t i_ = 0;
  bool extern_c_ = false;
  std::vector<std::string> namespaces_;
  std::map<std::string, Tokens> aliases_;
  std::map<std::string, StructLayout> structs_;
  std::map<std::string, TemplateKernel> templates_;
  std::vector<KernelSignature> kernels_;
  std::vector<FunctionConstant> constants_;
  std::deque<std::string> owned_;  // texts that synthesized tokens point into
};

ParsedSource parse(Dialect dialect, std::string_view source, PreprocessOptions options, Defines predefined,
                   const std::vector<std::string>& name_expressions) {
  for (auto& [name, value] : predefined) options.predefined.emplace(name, value);  // caller's win
  std::string text = preprocess(source, options);
  ParsedSource out = SignatureParser(dialect, options.filename, text).parse(name_expressions);
  out.preprocessed = std::move(text);
  return out;
}

}  // namespace

ParsedSource parse_msl(std::string_view source, const PreprocessOptions& options) {
  return parse(Dialect::MSL, source, options, msl_predefined(), {});
}

ParsedSource parse_cuda(std::string_view source, const PreprocessOptions& options,
                        const std::vector<std::string>& name_expressions) {
  PreprocessOptions cuda = options;
  if (cuda.filename == "kernel.metal") cuda.filename = "kernel.cu";
  std::vector<std::string> headers = cuda_system_headers();
  cuda.system_headers.insert(cuda.system_headers.end(), headers.begin(), headers.end());
  return parse(Dialect::CUDA, source, cuda, cuda_predefined(), name_expressions);
}

}  // namespace metalrt
