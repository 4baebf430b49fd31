// What a metalrt.compile() call means for Metal's compiler, decided without Metal so Linux can
// test it: the MTLCompileOptions settings (language version, math mode, preprocessor macros) for
// the running macOS, the function constants resolved against the ones the source declares, and
// the keys under which the results are cached (in memory and in the binary archive on disk).
// The .mm files only copy these decisions into Objective-C objects.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/binding.h"
#include "core/preprocess.h"
#include "core/signature.h"

namespace metalrt::metal {

// Bumped whenever what we store on disk (archives, manifests) or what enters a key changes.
inline constexpr int kCacheFormatVersion = 1;

struct OsVersion {
  int major = 14, minor = 0;
  bool at_least(int ma, int mi = 0) const { return major > ma || (major == ma && minor >= mi); }
};

// MSL version, e.g. 3.1. Its MTLLanguageVersion value is (major << 16) + minor.
struct LanguageVersion {
  int major = 0, minor = 0;
  uint64_t mtl_value() const { return (uint64_t(major) << 16) + uint64_t(minor); }
  int metal_version_macro() const { return major * 100 + minor * 10; }  // __METAL_VERSION__
  std::string str() const { return std::to_string(major) + "." + std::to_string(minor); }
};

// The newest MSL version a macOS release compiles (13: 3.0, 14: 3.1, 15: 3.2, 26: 4.0).
LanguageVersion newest_language_version(const OsVersion& os);

// Parses "3.1", "metal3.1" or "3_1". Empty means `newest_language_version(os)`. Throws
// ArgumentError for an unknown version or one newer than this macOS compiles.
LanguageVersion parse_language_version(std::string_view text, const OsVersion& os);

// Floating-point semantics. Metal's own default is fast math; metalrt's is "safe", so that a
// kernel is judged with IEEE behaviour (NaN, infinities, no reassociation) unless it asks.
enum class MathMode : uint8_t { Safe, Relaxed, Fast };
MathMode parse_math_mode(std::string_view text);  // "safe" | "relaxed" | "fast"; else ArgumentError
std::string_view math_mode_name(MathMode m);

struct CompileRequest {
  std::string math = "safe";
  std::string language_version;  // "" = the newest this macOS compiles
  Defines defines;               // NAME -> value; preprocessorMacros
};

// MTLCompileOptions as they will be set on this macOS.
struct CompileSettings {
  LanguageVersion language;
  MathMode math = MathMode::Safe;
  // macOS 15 added MTLCompileOptions.mathMode (safe/relaxed/fast) and deprecated
  // fastMathEnabled. Before it only fast on/off exists, and "relaxed" falls back to safe.
  bool use_math_mode_api = false;
  bool fast_math_enabled = false;
  Defines macros;       // preprocessorMacros, validated
  Defines predefined;   // what Metal's compiler predefines (__METAL_VERSION__), for our parser
  std::string note;     // a fallback the user should know about, "" if none

  // One line holding everything above that changes the compiled code; enters the cache keys.
  std::string canonical() const;
};

// Throws ArgumentError for an unknown math mode or language version, or a malformed define
// (a name that is not an identifier, a reserved name, a value with a newline).
// `sdk_has_math_mode`: the backend was built against a macOS 15+ SDK; a build against an older
// SDK can only set fastMathEnabled, even on macOS 15.
CompileSettings compile_settings(const CompileRequest& request, const OsVersion& os,
                                 bool sdk_has_math_mode = true);

// MTLDataType values for the types function constants can have (the .mm static_asserts each one
// against Apple's enum, so a drift fails to build).
enum class DataType : uint32_t {
  None = 0, Struct = 1, Float = 3, Half = 16, Int = 29, UInt = 33, Short = 37, UShort = 41,
  Char = 45, UChar = 49, Bool = 53, Long = 81, ULong = 85, BFloat = 121,
};
// The MTLDataType of a scalar or vector (float3 -> MTLDataTypeFloat3). Returns 0 (None) for
// types Metal has no data type for (packed vectors, atomics, double, structs).
uint32_t data_type_of(const ValueType& type);

// One entry of compile(constants=...): keyed by the constant's name or its function_constant
// index, as the caller wrote it.
struct ConstantRequest {
  std::string name;  // empty when given by index
  int index = -1;
  ArgValue value;
};

struct ResolvedConstant {
  std::string name;
  int index = -1;
  ValueType type;
  uint32_t data_type = 0;       // MTLDataType
  std::string bytes;            // the value, packed in MSL layout
};

// Matches each request with a [[function_constant(i)]] the source declares, and packs its value
// with the declared type's range checks. Throws ArgumentError naming the constant for an unknown
// name or index (listing the declared ones), a constant given twice, or a value that does not fit.
// Sorted by index. Declared constants that are not given stay undefined, as Metal allows (the
// kernel tests them with is_function_constant_defined).
std::vector<ResolvedConstant> resolve_function_constants(
    const std::vector<FunctionConstant>& declared, const std::vector<ConstantRequest>& given);

// Identity of a device for cache keys: the same GPU model under the same OS build shares entries.
struct DeviceIdentity {
  std::string name;          // "Apple M3 Max"
  std::string architecture;  // MTLArchitecture.name, "applegpu_g15s" ("" before macOS 14)
  std::string os_build;      // "Version 14.5 (Build 23F79)": the compiler ships with the OS
  std::string str() const { return name + "|" + architecture + "|" + os_build; }
};

// SHA-256 over (format version, device, settings, constants, source): names one compiled
// library, and its binary archive on disk.
std::string library_key(std::string_view source, const CompileSettings& settings,
                        const std::vector<ResolvedConstant>& constants,
                        const DeviceIdentity& device);

// The in-memory pipeline cache key: the library key plus the entry point.
std::string pipeline_key(std::string_view library_key, std::string_view entry);

}  // namespace metalrt::metal
