#include "core/metal_options.h"

#include <algorithm>
#include <cctype>

#include "core/errors.h"
#include "core/metal_digest.h"

namespace metalrt::metal {
namespace {

// (major, minor) versions of MSL that macOS has shipped, oldest first.
constexpr int kKnownVersions[][2] = {{1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}, {2, 3},
                                     {2, 4}, {3, 0}, {3, 1}, {3, 2}, {4, 0}};

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) s += digits[b >> 4], s += digits[b & 15];
  return s;
}

std::string describe(const FunctionConstant& c) {
  return c.name + " (" + c.type.name + ", index " + std::to_string(c.index) + ")";
}

std::string declared_list(const std::vector<FunctionConstant>& declared) {
  if (declared.empty()) return "the source declares no [[function_constant(i)]]";
  std::string s = "declared: ";
  for (size_t i = 0; i < declared.size(); ++i) s += (i ? ", " : "") + describe(declared[i]);
  return s;
}

}  // namespace

LanguageVersion newest_language_version(const OsVersion& os) {
  if (os.major >= 26) return {4, 0};
  if (os.major >= 15) return {3, 2};
  if (os.major >= 14) return {3, 1};
  if (os.major >= 13) return {3, 0};
  return {2, 4};
}

LanguageVersion parse_language_version(std::string_view text, const OsVersion& os) {
  LanguageVersion newest = newest_language_version(os);
  if (text.empty()) return newest;
  std::string s = lower(text);
  if (s.rfind("metal", 0) == 0) s = s.substr(5);
  std::replace(s.begin(), s.end(), '_', '.');
  LanguageVersion v{-1, -1};
  for (auto& known : kKnownVersions)
    if (s == std::to_string(known[0]) + "." + std::to_string(known[1])) v = {known[0], known[1]};
  if (v.major < 0) {
    std::string all;
    for (auto& k : kKnownVersions) all += (all.empty() ? "" : ", ") + std::to_string(k[0]) + "." + std::to_string(k[1]);
    throw ArgumentError("[metalrt.metal] unknown Metal Shading Language version '" +
                        std::string(text) + "'; known versions: " + all);
  }
  if (v.mtl_value() > newest.mtl_value())
    throw ArgumentError("[metalrt.metal] Metal Shading Language " + v.str() + " needs a newer macOS: "
                        "macOS " + std::to_string(os.major) + "." + std::to_string(os.minor) +
                        " compiles up to " + newest.str() + "; ask for " + newest.str() +
                        " or older, or update macOS");
  return v;
}

MathMode parse_math_mode(std::string_view text) {
  if (text == "safe") return MathMode::Safe;
  if (text == "relaxed") return MathMode::Relaxed;
  if (text == "fast") return MathMode::Fast;
  throw ArgumentError("[metalrt.metal] math='" + std::string(text) +
                      "' is not a math mode; use 'safe' (IEEE, the default), 'relaxed' or 'fast'");
}

std::string_view math_mode_name(MathMode m) {
  switch (m) {
    case MathMode::Safe: return "safe";
    case MathMode::Relaxed: return "relaxed";
    case MathMode::Fast: return "fast";
  }
  return "?";
}

CompileSettings compile_settings(const CompileRequest& request, const OsVersion& os,
                                 bool sdk_has_math_mode) {
  CompileSettings s;
  s.language = parse_language_version(request.language_version, os);
  s.math = parse_math_mode(request.math);
  s.use_math_mode_api = os.at_least(15) && sdk_has_math_mode;
  s.fast_math_enabled = s.math == MathMode::Fast;
  if (!s.use_math_mode_api && s.math == MathMode::Relaxed)
    s.note = std::string("math='relaxed' needs MTLCompileOptions.mathMode (macOS 15, and metalrt "
                         "built with the macOS 15 SDK)") + "; compiled with fast math off, as math='safe'";
  for (const auto& [name, value] : request.defines) {
    if (!is_identifier(name))
      throw ArgumentError("[metalrt.metal] defines: '" + name + "' is not a valid macro name "
                          "(letters, digits and '_', not starting with a digit)");
    if (name == "__METAL_VERSION__" || name.rfind("__METAL_", 0) == 0)
      throw ArgumentError("[metalrt.metal] defines: '" + name + "' is predefined by Metal's "
                          "compiler and cannot be redefined; choose another name");
    if (value.find('\n') != std::string::npos)
      throw ArgumentError("[metalrt.metal] defines: the value of '" + name + "' contains a newline; "
                          "a macro value must be one line");
    s.macros[name] = value;
  }
  s.predefined["__METAL_VERSION__"] = std::to_string(s.language.metal_version_macro());
  if (s.math == MathMode::Fast) s.predefined["__FAST_MATH__"] = "1";
  return s;
}

std::string CompileSettings::canonical() const {
  std::string s = "msl=" + language.str() + ";math=" + std::string(math_mode_name(math)) +
                  ";mathapi=" + (use_math_mode_api ? "mode" : "fastflag") +
                  ";fast=" + (fast_math_enabled ? "1" : "0");
  for (const auto& [name, value] : macros) s += ";D" + name + "=" + hex(value);
  return s;
}

uint32_t data_type_of(const ValueType& type) {
  if (type.packed || type.atomic || type.width < 1 || type.width > 4) return 0;
  DataType base;
  switch (type.scalar) {
    case Scalar::Bool: base = DataType::Bool; break;
    case Scalar::Char: base = DataType::Char; break;
    case Scalar::UChar: base = DataType::UChar; break;
    case Scalar::Short: base = DataType::Short; break;
    case Scalar::UShort: base = DataType::UShort; break;
    case Scalar::Int: base = DataType::Int; break;
    case Scalar::UInt: base = DataType::UInt; break;
    case Scalar::Long: base = DataType::Long; break;
    case Scalar::ULong: base = DataType::ULong; break;
    case Scalar::Half: base = DataType::Half; break;
    case Scalar::BFloat: base = DataType::BFloat; break;
    case Scalar::Float: base = DataType::Float; break;
    default: return 0;
  }
  // Apple lays out each family as scalar, 2-, 3-, 4-vector in consecutive values.
  return uint32_t(base) + type.width - 1;
}

std::vector<ResolvedConstant> resolve_function_constants(
    const std::vector<FunctionConstant>& declared, const std::vector<ConstantRequest>& given) {
  std::vector<ResolvedConstant> out;
  for (const ConstantRequest& req : given) {
    const FunctionConstant* match = nullptr;
    for (const FunctionConstant& c : declared)
      if (req.name.empty() ? c.index == req.index : c.name == req.name) match = &c;
    std::string asked = req.name.empty() ? "index " + std::to_string(req.index) : "'" + req.name + "'";
    if (!match)
      throw ArgumentError("[metalrt.metal] constants: no function constant " + asked + " in the "
                          "source; " + declared_list(declared));
    for (const ResolvedConstant& r : out)
      if (r.index == match->index)
        throw ArgumentError("[metalrt.metal] constants: " + describe(*match) +
                            " is given twice (by name and by index); give it once");
    ResolvedConstant r;
    r.name = match->name;
    r.index = match->index;
    r.type = match->type;
    r.data_type = data_type_of(match->type);
    if (r.data_type == 0)
      throw ArgumentError("[metalrt.metal] constants: " + describe(*match) + " has a type that "
                          "Metal function constants cannot have; use a scalar or vector of bool, "
                          "integer, half, bfloat or float");
    BoundArg packed;
    pack_value(req.value, match->type, "function constant " + describe(*match), &packed);
    r.bytes.assign(static_cast<const char*>(packed.bytes()), packed.size);
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const ResolvedConstant& a, const ResolvedConstant& b) { return a.index < b.index; });
  return out;
}

std::string library_key(std::string_view source, const CompileSettings& settings,
                        const std::vector<ResolvedConstant>& constants,
                        const DeviceIdentity& device) {
  Sha256 h;
  h.field("metalrt-metal-library").field(std::to_string(kCacheFormatVersion));
  h.field(device.str()).field(settings.canonical());
  for (const ResolvedConstant& c : constants)
    h.field(std::to_string(c.index) + ":" + std::to_string(c.data_type) + ":" + hex(c.bytes));
  h.field(source);
  return h.hex();
}

std::string pipeline_key(std::string_view library_key, std::string_view entry) {
  return std::string(library_key) + "/" + std::string(entry);
}

}  // namespace metalrt::metal
