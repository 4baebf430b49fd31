// Metal's pipeline reflection (MTLComputePipelineReflection.bindings) knows each argument's
// index, name, data type and size as the compiler laid them out, but not the declaration order
// that metalrt binds by; the shared signature parser knows the order. Both must describe the
// same kernel: a disagreement (a struct the parser sized differently, a buffer it did not see)
// would bind the wrong bytes silently, so it is reported and the kernel refused instead.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/signature.h"

namespace metalrt::metal {

// One entry of MTLComputePipelineReflection.bindings, copied out of Objective-C.
struct ReflectedBinding {
  enum class Kind : uint8_t { Buffer, Threadgroup, Texture, Sampler, Other };
  Kind kind = Kind::Buffer;
  std::string name;
  int index = -1;
  uint32_t data_type = 0;   // MTLBufferBinding.bufferDataType (MTLDataType)
  uint64_t data_size = 0;   // bufferDataSize or threadgroupMemoryDataSize: sizeof(T) for T*
  uint64_t alignment = 0;   // bufferAlignment: what a buffer offset must be a multiple of
  bool used = true;
};

struct ReflectionCheck {
  std::vector<std::string> problems;          // empty when parser and Metal agree
  std::map<int, uint64_t> buffer_alignment;   // buffer index -> required offset alignment
  bool ok() const { return problems.empty(); }
  // "kernel 'k': the signature parser and Metal disagree: ..." (one line per problem).
  std::string message(const std::string& kernel) const;
};

ReflectionCheck cross_check_reflection(const KernelSignature& sig,
                                       const std::map<std::string, StructLayout>& structs,
                                       const std::vector<ReflectedBinding>& bindings);

}  // namespace metalrt::metal
