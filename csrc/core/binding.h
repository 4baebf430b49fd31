// Argument binding: the caller's values (tensors, NumPy arrays, numbers, tuples, bytes), in
// call order, checked against a kernel's signature and turned into what a backend encodes:
// buffers (pointer + offset + extent) and inline bytes (scalars, vectors, structs, packed with
// MSL's sizes and alignment). Backend-neutral: the bindings build ArgValues from Python objects,
// backends consume BoundArgs. Every mismatch is an ArgumentError that names the kernel and the
// parameter; nothing is ever silently reinterpreted.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/launch.h"
#include "core/signature.h"

namespace metalrt {

enum class MemoryKind : uint8_t { Host, CUDA, MPS };
std::string_view memory_kind_name(MemoryKind m);  // "cpu", "cuda", "mps"

// One argument as the caller gave it.
struct ArgValue {
  enum class Kind : uint8_t { Array, Int, Float, Bool, Tuple, Bytes, None } kind = Kind::None;

  // Array (torch tensor or buffer-protocol object):
  void* data = nullptr;          // first element of the view
  void* storage = nullptr;       // start of the underlying allocation (MPS: the id<MTLBuffer>)
  uint64_t byte_offset = 0;      // data - storage, in bytes
  uint64_t nbytes = 0;           // extent of the view in bytes (numel * itemsize)
  Scalar dtype = Scalar::Opaque;
  MemoryKind memory = MemoryKind::Host;
  int device_index = 0;
  bool contiguous = true;
  bool readonly = false;         // e.g. a read-only NumPy array
  std::string origin;            // "torch.Tensor", "numpy.ndarray": for messages

  // Numbers:
  int64_t i = 0;
  uint64_t u = 0;                // for Python ints above INT64_MAX
  bool is_unsigned_big = false;
  double f = 0;
  bool b = false;

  // Tuple elements (numbers) and Bytes:
  std::vector<ArgValue> items;
  std::string bytes;
};

// What the backend accepts.
struct BindPolicy {
  MemoryKind memory = MemoryKind::Host;  // arrays must live here...
  int device_index = 0;                  // ...on this device
  bool accept_host_arrays = false;       // Metal: CPU arrays are accepted (copied if needed)
  std::string backend = "sim";           // for messages
  // CUDA has no [[threadgroup(i)]] parameters: threadgroup_memory={0: n} is the kernel's dynamic
  // shared memory instead, and bind_threadgroup_memory() leaves it to the backend.
  bool threadgroup_params = true;
};

struct BoundArg {
  enum class Kind : uint8_t { Buffer, Bytes, Threadgroup } kind = Kind::Bytes;
  const Param* param = nullptr;
  int index = -1;               // MSL buffer / threadgroup index; CUDA position

  // Buffer:
  void* data = nullptr;
  void* storage = nullptr;
  uint64_t byte_offset = 0;
  uint64_t nbytes = 0;
  MemoryKind memory = MemoryKind::Host;
  bool writable = true;

  // Bytes: the packed value (MSL layout, or the CUDA C type's layout), 16-byte aligned.
  alignas(16) unsigned char inline_bytes[64] = {};
  std::string heap_bytes;        // used instead when the value is larger than 64 bytes
  uint32_t size = 0;
  const void* bytes() const {
    return size <= sizeof(inline_bytes) ? static_cast<const void*>(inline_bytes) : heap_bytes.data();
  }

  // Threadgroup: the byte length requested for [[threadgroup(index)]].
  uint64_t threadgroup_bytes = 0;
};

// Binds `args` (call order) to `sig`. `structs` resolves struct pointees and struct references.
// Throws ArgumentError with messages like:
//   "scale(): parameter 'y' (device float*, buffer 1) expects a float32 tensor, got float16"
//   "scale(): expected 3 arguments (x, y, n), got 2; missing 'n'"
std::vector<BoundArg> bind_arguments(const KernelSignature& sig,
                                     const std::map<std::string, StructLayout>& structs,
                                     const std::vector<ArgValue>& args,
                                     const BindPolicy& policy);

// Packs a number / tuple / bytes into the bytes of `type` (range-checked). Exposed for tests.
// `what` starts every error message, e.g. "scale(): parameter 'n' (constant uint&, buffer 2)".
void pack_value(const ArgValue& v, const ValueType& type, const std::string& what, BoundArg* out);

// The same with user structs: a struct takes a tuple of its fields in declaration order (arrays
// and nested structs as nested tuples), or bytes of exactly its size.
void pack_value(const ArgValue& v, const ValueType& type, const std::map<std::string, StructLayout>& structs,
                const std::string& what, BoundArg* out);

// Appends one Threadgroup BoundArg per [[threadgroup(i)]] parameter of `sig`, sized from
// geometry.threadgroup_memory (after resolve_launch). Throws LaunchError, naming the parameter,
// when a declared index has no size or a size is given for an index the kernel does not declare.
// Does nothing when !policy.threadgroup_params (CUDA).
void bind_threadgroup_memory(const KernelSignature& sig, const LaunchGeometry& geometry, const BindPolicy& policy,
                             std::vector<BoundArg>* args);

// The torch-style dtype name of a scalar ("float32", "float16", "bfloat16", "int32", "uint8",
// "bool"), as argument errors spell it.
std::string_view dtype_name(Scalar s);

}  // namespace metalrt
