#include "cuda/compiler.h"

#include <algorithm>
#include <memory>

#include "core/errors.h"
#include "cuda/api.h"

namespace metalrt::cuda {
namespace {

// ---- the built-in stand-ins for headers NVRTC does not ship ------------------------------------
// Types follow the LP64 data model of Linux, as NVRTC's own built-in types do.

constexpr const char* kStdint = R"(#pragma once
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef long intptr_t;
typedef unsigned long uintptr_t;
typedef long intmax_t;
typedef unsigned long uintmax_t;
#define INT8_MIN (-128)
#define INT16_MIN (-32767 - 1)
#define INT32_MIN (-2147483647 - 1)
#define INT64_MIN (-9223372036854775807L - 1)
#define INT8_MAX 127
#define INT16_MAX 32767
#define INT32_MAX 2147483647
#define INT64_MAX 9223372036854775807L
#define UINT8_MAX 255
#define UINT16_MAX 65535
#define UINT32_MAX 4294967295U
#define UINT64_MAX 18446744073709551615UL
#define SIZE_MAX UINT64_MAX
)";

constexpr const char* kCstdint = R"(#pragma once
#include <stdint.h>
namespace std {
using ::int8_t; using ::int16_t; using ::int32_t; using ::int64_t;
using ::uint8_t; using ::uint16_t; using ::uint32_t; using ::uint64_t;
using ::intptr_t; using ::uintptr_t; using ::intmax_t; using ::uintmax_t;
}
)";

constexpr const char* kStddef = R"(#pragma once
typedef decltype(sizeof(0)) size_t;
typedef decltype((char*)0 - (char*)0) ptrdiff_t;
#ifndef NULL
#define NULL 0
#endif
#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
)";

constexpr const char* kCstddef = R"(#pragma once
#include <stddef.h>
namespace std { using ::size_t; using ::ptrdiff_t; }
)";

constexpr const char* kLimits = R"(#pragma once
#define CHAR_BIT 8
#define SCHAR_MIN (-128)
#define SCHAR_MAX 127
#define UCHAR_MAX 255
#define CHAR_MIN SCHAR_MIN
#define CHAR_MAX SCHAR_MAX
#define SHRT_MIN (-32767 - 1)
#define SHRT_MAX 32767
#define USHRT_MAX 65535
#define INT_MIN (-2147483647 - 1)
#define INT_MAX 2147483647
#define UINT_MAX 4294967295U
#define LONG_MIN (-9223372036854775807L - 1)
#define LONG_MAX 9223372036854775807L
#define ULONG_MAX 18446744073709551615UL
#define LLONG_MIN (-9223372036854775807LL - 1)
#define LLONG_MAX 9223372036854775807LL
#define ULLONG_MAX 18446744073709551615ULL
)";

constexpr const char* kFloat = R"(#pragma once
#define FLT_RADIX 2
#define FLT_MANT_DIG 24
#define DBL_MANT_DIG 53
#define FLT_DIG 6
#define DBL_DIG 15
#define FLT_MIN_EXP (-125)
#define DBL_MIN_EXP (-1021)
#define FLT_MAX_EXP 128
#define DBL_MAX_EXP 1024
#define FLT_MAX 3.40282346638528859812e+38F
#define DBL_MAX 1.79769313486231570815e+308
#define FLT_MIN 1.17549435082228750797e-38F
#define DBL_MIN 2.22507385850720138309e-308
#define FLT_EPSILON 1.19209289550781250000e-7F
#define DBL_EPSILON 2.22044604925031308085e-16
#define FLT_TRUE_MIN 1.40129846432481707092e-45F
)";

// NVRTC declares the math functions itself (expf, sqrtf, fmaxf, and the float overloads of
// exp, max, ...); these add the macros <math.h> defines and the std:: names kernels reach for.
constexpr const char* kMath = R"(#pragma once
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#ifndef HUGE_VALF
#define HUGE_VALF __int_as_float(0x7f800000)
#endif
#ifndef HUGE_VAL
#define HUGE_VAL __longlong_as_double(0x7ff0000000000000LL)
#endif
#define M_E 2.7182818284590452354
#define M_LOG2E 1.4426950408889634074
#define M_LOG10E 0.43429448190325182765
#define M_LN2 0.69314718055994530942
#define M_LN10 2.30258509299404568402
#define M_PI 3.14159265358979323846
#define M_PI_2 1.57079632679489661923
#define M_PI_4 0.78539816339744830962
#define M_1_PI 0.31830988618379067154
#define M_2_PI 0.63661977236758134308
#define M_2_SQRTPI 1.12837916709551257390
#define M_SQRT2 1.41421356237309504880
#define M_SQRT1_2 0.70710678118654752440
)";

constexpr const char* kCmath = R"(#pragma once
#include <math.h>
namespace std {
using ::abs; using ::fabs; using ::fabsf; using ::exp; using ::expf; using ::exp2; using ::exp2f;
using ::expm1; using ::expm1f; using ::log; using ::logf; using ::log2; using ::log2f; using ::log10;
using ::log10f; using ::log1p; using ::log1pf; using ::pow; using ::powf; using ::sqrt; using ::sqrtf;
using ::cbrt; using ::cbrtf; using ::sin; using ::sinf; using ::cos; using ::cosf; using ::tan; using ::tanf;
using ::asin; using ::asinf; using ::acos; using ::acosf; using ::atan; using ::atanf; using ::atan2;
using ::atan2f; using ::sinh; using ::sinhf; using ::cosh; using ::coshf; using ::tanh; using ::tanhf;
using ::erf; using ::erff; using ::erfc; using ::erfcf; using ::floor; using ::floorf; using ::ceil;
using ::ceilf; using ::round; using ::roundf; using ::trunc; using ::truncf; using ::fmod; using ::fmodf;
using ::fmin; using ::fminf; using ::fmax; using ::fmaxf; using ::fma; using ::fmaf; using ::min;
using ::max; using ::isnan; using ::isinf; using ::isfinite; using ::copysign; using ::copysignf;
using ::hypot; using ::hypotf; using ::lgamma; using ::lgammaf; using ::tgamma; using ::tgammaf;
}
)";

// Host-side CUDA headers: under NVRTC everything they would give a kernel (threadIdx, the vector
// types, the intrinsics) is built in, and their host parts do not compile.
constexpr const char* kHostOnly = "#pragma once\n";

std::string nvrtc_error(const NvrtcApi& api, nvrtcResult r) {
  const char* text = api.nvrtcGetErrorString(r);
  return text ? text : "NVRTC error " + std::to_string(r);
}

// Owns an nvrtcProgram for the length of one compile.
struct Program {
  const NvrtcApi& api;
  nvrtcProgram handle = nullptr;
  explicit Program(const NvrtcApi& a) : api(a) {}
  ~Program() {
    if (handle) api.nvrtcDestroyProgram(&handle);
  }
  std::string log() const {
    size_t size = 0;
    if (api.nvrtcGetProgramLogSize(handle, &size) != NVRTC_SUCCESS || size <= 1) return {};
    std::string text(size, '\0');
    api.nvrtcGetProgramLog(handle, text.data());
    text.resize(size - 1);  // the NUL
    return text;
  }
};

std::string source_line(const std::string& source, int line) {
  size_t start = 0;
  for (int n = 1; n < line && start != std::string::npos; ++n) {
    start = source.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  if (start == std::string::npos || start >= source.size()) return {};
  size_t end = source.find('\n', start);
  std::string text = source.substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t first = text.find_first_not_of(" \t");
  return first == std::string::npos ? std::string() : text.substr(first);
}

}  // namespace

const std::map<std::string, std::string>& builtin_headers() {
  static const std::map<std::string, std::string> headers = {
      {"stdint.h", kStdint},         {"cstdint", kCstdint},   {"stddef.h", kStddef},
      {"cstddef", kCstddef},         {"limits.h", kLimits},   {"climits", kLimits},
      {"float.h", kFloat},           {"cfloat", kFloat},      {"math.h", kMath},
      {"cmath", kCmath},             {"cuda_runtime.h", kHostOnly}, {"cuda_runtime_api.h", kHostOnly},
      {"cuda.h", kHostOnly},         {"device_launch_parameters.h", kHostOnly},
  };
  return headers;
}

std::pair<int, std::string> first_error(const std::string& log, const std::string& filename) {
  // NVRTC writes "<file>(<line>): error: <text>" (and "catastrophic error" for fatal ones).
  size_t pos = 0;
  while (pos < log.size()) {
    size_t end = log.find('\n', pos);
    std::string line = log.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? log.size() : end + 1;
    size_t err = line.find(" error");
    if (err == std::string::npos) continue;
    std::string prefix = filename + "(";
    if (line.compare(0, prefix.size(), prefix) == 0) {
      size_t close = line.find(')', prefix.size());
      if (close != std::string::npos) {
        int n = std::atoi(line.substr(prefix.size(), close - prefix.size()).c_str());
        size_t colon = line.find(':', close);
        std::string text = colon == std::string::npos ? line : line.substr(colon + 1);
        size_t first = text.find_first_not_of(' ');
        return {n, first == std::string::npos ? text : text.substr(first)};
      }
    }
    return {0, line};  // the first error is in a header (or has no location)
  }
  return {0, {}};
}

Target choose_target(int device_arch) {
  const NvrtcApi& api = nvrtc_api();
  int count = 0;
  api.nvrtcGetNumSupportedArchs(&count);
  std::vector<int> archs(size_t(std::max(count, 0)));
  if (count > 0) api.nvrtcGetSupportedArchs(archs.data());
  Target t;
  if (std::find(archs.begin(), archs.end(), device_arch) != archs.end()) {
    t.arch = device_arch;
    t.cubin = true;
    return t;
  }
  int best = 0;
  for (int a : archs)
    if (a <= device_arch && a > best) best = a;
  const LoadedLibrary& lib = nvrtc_library();
  std::string version = std::to_string(lib.version / 1000) + "." + std::to_string(lib.version % 1000 / 10);
  if (!best)
    throw BackendUnavailable("[metalrt.cuda] NVRTC " + version + " (" + lib.path + ") cannot compile for sm_" +
                             std::to_string(device_arch) + ": its oldest architecture is sm_" +
                             std::to_string(archs.empty() ? 0 : archs.front()) +
                             "; install an older NVRTC (pip install nvidia-cuda-nvrtc-cu12) and point "
                             "METALRT_NVRTC at it");
  t.arch = best;
  t.cubin = false;
  return t;
}

CompiledImage compile(const CompileRequest& request) {
  const NvrtcApi& api = nvrtc_api();
  Program program(api);

  std::vector<const char*> header_texts, header_names;
  for (const auto& [name, text] : builtin_headers()) {
    header_names.push_back(name.c_str());
    header_texts.push_back(text.c_str());
  }
  nvrtcResult r = api.nvrtcCreateProgram(&program.handle, request.source.c_str(), request.filename.c_str(),
                                         int(header_texts.size()), header_texts.data(), header_names.data());
  if (r != NVRTC_SUCCESS)
    throw CompileError("[metalrt.cuda] NVRTC could not take the source: " + nvrtc_error(api, r));
  for (const std::string& expr : request.name_expressions) {
    r = api.nvrtcAddNameExpression(program.handle, expr.c_str());
    if (r != NVRTC_SUCCESS)
      throw CompileError("[metalrt.cuda] NVRTC rejected the name expression '" + expr + "': " + nvrtc_error(api, r));
  }

  std::vector<std::string> options = request.options;
  options.push_back(request.target.flag());
  std::vector<const char*> argv;
  for (const std::string& o : options) argv.push_back(o.c_str());

  r = api.nvrtcCompileProgram(program.handle, int(argv.size()), argv.data());
  std::string log = program.log();
  if (r != NVRTC_SUCCESS) {
    if (r != NVRTC_ERROR_COMPILATION) {
      std::string all;
      for (const std::string& o : options) all += (all.empty() ? "" : " ") + o;
      throw CompileError("[metalrt.cuda] NVRTC failed (" + nvrtc_error(api, r) + ") with options: " + all +
                             (log.empty() ? "" : "\n" + log),
                         log);
    }
    auto [line, text] = first_error(log, request.filename);
    std::string where = line ? request.filename + ":" + std::to_string(line) + ": " : std::string();
    std::string code = line ? source_line(request.source, line) : std::string();
    throw CompileError("[metalrt.cuda] NVRTC could not compile " + request.filename + ": " + where +
                           (text.empty() ? "see the log" : text) + (code.empty() ? "" : "\n    " + code),
                       log, line);
  }

  CompiledImage out;
  out.cubin = request.target.cubin;
  out.log = log;
  size_t size = 0;
  if (out.cubin) {
    api.nvrtcGetCUBINSize(program.handle, &size);
    out.image.resize(size);
    r = api.nvrtcGetCUBIN(program.handle, out.image.data());
  } else {
    api.nvrtcGetPTXSize(program.handle, &size);  // includes the NUL the loader needs
    out.image.resize(size);
    r = api.nvrtcGetPTX(program.handle, out.image.data());
  }
  if (r != NVRTC_SUCCESS || out.image.empty())
    throw CompileError("[metalrt.cuda] NVRTC compiled the source but returned no " +
                       std::string(out.cubin ? "cubin" : "PTX") + ": " + nvrtc_error(api, r));
  for (const std::string& expr : request.name_expressions) {
    const char* lowered = nullptr;
    r = api.nvrtcGetLoweredName(program.handle, expr.c_str(), &lowered);
    if (r != NVRTC_SUCCESS || !lowered)
      throw CompileError("[metalrt.cuda] NVRTC has no symbol for '" + expr + "' (" + nvrtc_error(api, r) +
                         "); is it a __global__ function (or an instantiation of a __global__ template)?");
    out.lowered[expr] = lowered;
  }
  return out;
}

}  // namespace metalrt::cuda
