// Kernel signatures, parsed once from source by the one parser every backend shares, so all
// backends bind arguments and report argument errors the same way. Metal's reflection gives
// buffer indices and types but not declaration order; the order comes from here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/preprocess.h"
#include "core/types.h"

namespace metalrt {

enum class AddressSpace : uint8_t { None, Device, Constant, Thread, Threadgroup };
std::string_view address_space_name(AddressSpace a);

enum class Dialect : uint8_t { MSL, CUDA };

// How a parameter is passed.
enum class ParamKind : uint8_t {
  Buffer,       // pointer to device/constant memory: binds a tensor (or bytes for constant)
  Reference,    // `constant T& x` / `device T& x`: binds a Python number, tuple, or bytes
  Value,        // by value (CUDA scalars and structs; not allowed for MSL buffers)
  Builtin,      // [[thread_position_in_grid]] and kin: supplied by the launch, never an argument
  Threadgroup,  // `threadgroup T* x [[threadgroup(i)]]`: sized by threadgroup_memory={i: bytes}
};

// Field of a user struct, for StructLayout.
struct StructField {
  std::string name;
  ValueType type;           // Struct for nested structs (see `struct_name`)
  std::string struct_name;  // for nested structs
  uint32_t array_len = 0;   // 0 = not an array
  uint32_t offset = 0;
};

struct StructLayout {
  std::string name;
  std::vector<StructField> fields;
  uint32_t size = 0, align = 0;
  bool complete = false;  // false when a field's type could not be laid out; size is then unknown
};

struct Param {
  std::string name;
  std::string type_text;     // as written, e.g. "const device float4*"
  std::string pointee;       // element type name without qualifiers: "float4", "Params"
  ValueType type;            // the element (pointee / referenced / value) type
  AddressSpace space = AddressSpace::None;
  ParamKind kind = ParamKind::Buffer;
  bool is_const = false;     // read-only (const-qualified pointee, or the constant space)
  int index = -1;            // [[buffer(i)]] / [[threadgroup(i)]]; for CUDA the position
  std::string builtin;       // for Builtin params: the attribute, e.g. "thread_position_in_grid"
  int position = 0;          // position in the declaration (0-based, builtins included)
  int line = 0;              // line in the user's source
  std::string condition;     // MSL [[function_constant(name)]] on the parameter: it exists only
                             // when that constant is true ("" when unconditional)
};

struct KernelSignature {
  Dialect dialect = Dialect::MSL;
  std::string name;          // host name: what `lib.NAME` uses (the [[host_name]] for templates)
  std::string function;      // the C++ function name ("matmul" for host name "matmul_f32")
  std::vector<std::string> template_args;  // for template instantiations, e.g. {"float", "16"}
  std::vector<Param> params; // declaration order, builtins included
  int line = 0;
  // [[max_total_threads_per_threadgroup(N)]] (MSL) / __launch_bounds__(N) (CUDA); 0 if absent.
  uint32_t max_threads_per_group = 0;
  // CUDA: the C++ name NVRTC must resolve (nvrtcAddNameExpression / nvrtcGetLoweredName) for
  // kernels that are not extern "C": a template instantiation such as "scale<float>", or the
  // plain name of a C++-mangled kernel. Empty for extern "C" kernels and for MSL.
  std::string name_expression;
  // Layouts of the structs its parameters use (nested ones included), so that a Kernel built
  // from this signature alone can bind struct arguments.
  std::map<std::string, StructLayout> structs;

  // Parameters the caller passes, in call order: every non-Builtin, non-Threadgroup param.
  std::vector<const Param*> arguments() const;
};

struct FunctionConstant {
  std::string name;
  ValueType type;
  int index = -1;   // [[function_constant(i)]]
  int line = 0;
};

struct ParsedSource {
  Dialect dialect = Dialect::MSL;
  std::string preprocessed;   // same line numbering as the input (see preprocess.h)
  std::vector<KernelSignature> kernels;
  std::vector<FunctionConstant> function_constants;
  std::map<std::string, StructLayout> structs;
};

// MSL: finds `kernel`/`[[kernel]]` functions, template kernels instantiated with
// `template [[host_name("...")]] kernel void f<T>(...);`, program-scope function constants and
// struct layouts. Preprocesses first (with __METAL_VERSION__ predefined). Throws CompileError
// naming the line and the rule for what MSL forbids in a kernel signature (a pointer parameter
// without an address space, a buffer passed by value, an unknown attribute, a duplicate index).
ParsedSource parse_msl(std::string_view source, const PreprocessOptions& options);

// CUDA: finds `extern "C" __global__` functions (and `__global__` templates, which need name
// expressions: the caller lists the instantiations it wants, e.g. "scale<float>").
ParsedSource parse_cuda(std::string_view source, const PreprocessOptions& options,
                        const std::vector<std::string>& name_expressions = {});

}  // namespace metalrt
