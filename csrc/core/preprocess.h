// A C preprocessor sized for kernel sources: object- and function-like macros (with # and ##),
// #undef, #if/#ifdef/#ifndef/#elif/#else/#endif with integer expressions and defined(),
// #error, line continuations and comments. `#include <metal_stdlib>` and the other metal_*
// headers are dropped (the backends provide them); any other #include is a CompileError,
// since a metalrt source is one self-contained string. #pragma is kept.
//
// Line numbers are preserved: output line N comes from input line N (directives become blank
// lines; a macro call spread over several lines expands on its first line and the rest are
// padded with newlines). So compiler messages about the output point at the user's lines.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace metalrt {

using Defines = std::map<std::string, std::string>;  // NAME -> replacement text ("": defined, empty)

struct PreprocessOptions {
  Defines defines;                     // like -DNAME=VALUE; an empty value defines NAME as empty
  std::string filename = "kernel.metal";  // for messages
  bool keep_comments = false;
  // Predefined macros the target compiler would provide, e.g. __METAL_VERSION__=310 for MSL,
  // __CUDACC__ / __CUDA_ARCH__ for CUDA. Applied before `defines`.
  Defines predefined;
  // Headers the target compiler provides: an #include of one is dropped (its line left blank).
  // A trailing '*' matches a prefix. Any other #include is a CompileError.
  std::vector<std::string> system_headers = {"metal_*", "simd/*"};
};

// What the targets' compilers predefine: __METAL_VERSION__ (310, i.e. MSL 3.1), __METAL_MACOS__,
// __HAVE_BFLOAT__, __cplusplus (MSL is C++14-based); for CUDA (NVRTC) __CUDACC__,
// __CUDACC_RTC__, __CUDA_ARCH__ (800 unless the caller predefines another), __cplusplus.
Defines msl_predefined();
Defines cuda_predefined();
// The CUDA headers NVRTC provides (cuda_fp16.h, cuda_bf16.h, stdint.h, ...), for
// PreprocessOptions::system_headers when preprocessing CUDA.
std::vector<std::string> cuda_system_headers();

// Throws CompileError("<filename>:<line>: ...") on malformed directives, an unterminated
// #if, #error, or a disallowed #include.
std::string preprocess(std::string_view source, const PreprocessOptions& options);

}  // namespace metalrt
