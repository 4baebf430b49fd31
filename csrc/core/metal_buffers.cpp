#include "core/metal_buffers.h"

#include <algorithm>

#include "core/errors.h"

namespace metalrt::metal {
namespace {

std::string describe(const Param& p, const std::string& kernel) {
  return "[metalrt.metal] " + kernel + "(): parameter '" + p.name + "' (" + p.type_text +
         ", buffer " + std::to_string(p.index) + ")";
}

}  // namespace

HostBufferPlan plan_host_buffer(uintptr_t data, uint64_t nbytes, bool writable, uint64_t page_size) {
  HostBufferPlan plan;
  if (nbytes > 0 && page_size > 0 && data % page_size == 0) {
    plan.zero_copy = true;
    plan.base = data;
    plan.length = (nbytes + page_size - 1) / page_size * page_size;
    return plan;
  }
  plan.length = std::max(nbytes, kMinBufferLength);
  plan.copy_back = writable && nbytes > 0;
  return plan;
}

void check_device_view(const Param& param, const std::string& kernel, uint64_t byte_offset,
                       uint64_t nbytes, uint64_t buffer_length, uint64_t alignment) {
  if (byte_offset > buffer_length || nbytes > buffer_length - byte_offset)
    throw ArgumentError(describe(param, kernel) + ": the tensor's bytes [" + std::to_string(byte_offset) +
                        ", " + std::to_string(byte_offset + nbytes) + ") reach past its MTLBuffer of " +
                        std::to_string(buffer_length) + " bytes; its storage is smaller than its "
                        "shape says. Pass a tensor that owns its memory (x.contiguous() or x.clone())");
  if (alignment > 1 && byte_offset % alignment != 0)
    throw ArgumentError(describe(param, kernel) + ": Metal needs the buffer offset to be a multiple of " +
                        std::to_string(alignment) + " bytes, but this view starts at byte " +
                        std::to_string(byte_offset) + " of its storage; pass x.clone(), which starts at 0");
}

}  // namespace metalrt::metal
