// Where a bound array lives, as Metal needs it: an MTLBuffer and a byte offset into it.
// - MPS tensors: PyTorch's MPS allocator hands out the id<MTLBuffer> itself as the storage's data
//   pointer, so a tensor binds zero-copy as (storage, byte offset of the view). The view must lie
//   inside the buffer and start where Metal allows (reflection's bufferAlignment).
// - Host memory (CPU tensors, NumPy arrays): wrapped without a copy when the view starts on a
//   page boundary (newBufferWithBytesNoCopy needs a page-aligned pointer and a length in whole
//   pages), else copied into a shared buffer and, for a writable parameter, copied back after the
//   kernel ran. Unified memory makes either cheap; only the copy costs bandwidth.
#pragma once
#include <cstdint>
#include <string>

#include "core/signature.h"

namespace metalrt::metal {

struct HostBufferPlan {
  bool zero_copy = false;
  uintptr_t base = 0;      // start of the wrapped range (zero-copy), else unused
  uint64_t length = 0;     // MTLBuffer length: whole pages (zero-copy), else the bytes to copy
  uint64_t offset = 0;     // where the view starts inside that buffer
  bool copy_back = false;  // copy path with a writable parameter: copy the result out afterwards
};

// Metal has no empty buffers; an empty view binds a buffer of this many bytes that it never reads.
inline constexpr uint64_t kMinBufferLength = 16;

HostBufferPlan plan_host_buffer(uintptr_t data, uint64_t nbytes, bool writable, uint64_t page_size);

// Checks that an MPS tensor's view [byte_offset, byte_offset + nbytes) lies inside its MTLBuffer
// and starts on `alignment` bytes (0: no requirement). Throws ArgumentError naming the parameter.
void check_device_view(const Param& param, const std::string& kernel, uint64_t byte_offset,
                       uint64_t nbytes, uint64_t buffer_length, uint64_t alignment);

}  // namespace metalrt::metal
