#include "core/metal_timing.h"

#include "core/errors.h"

namespace metalrt::metal {

std::string_view timing_method_name(TimingMethod m) {
  return m == TimingMethod::Counters ? "metal-gpu-timestamps" : "metal-command-buffer";
}

TimingChoice choose_timing_method(const TimingCaps& caps, std::string_view request) {
  bool counters = caps.stage_boundary_sampling && caps.timestamp_counter_set;
  std::string missing = !caps.stage_boundary_sampling
                            ? "this GPU cannot sample counters at stage boundaries"
                            : "this GPU has no timestamp counter set";
  if (request == "command-buffer")
    return {TimingMethod::CommandBuffer, "METALRT_METAL_TIMER=command-buffer"};
  if (request == "counters") {
    if (!counters)
      throw Error("[metalrt.metal] METALRT_METAL_TIMER=counters, but " + missing +
                  "; unset it or use METALRT_METAL_TIMER=command-buffer");
    return {TimingMethod::Counters, "METALRT_METAL_TIMER=counters"};
  }
  if (!request.empty() && request != "auto")
    throw Error("[metalrt.metal] METALRT_METAL_TIMER='" + std::string(request) +
                "' is not a timing method; use auto, counters or command-buffer");
  if (counters) return {TimingMethod::Counters, "timestamp counters at stage boundaries"};
  return {TimingMethod::CommandBuffer, missing + "; using the command buffer's GPU start and end"};
}

double ns_per_gpu_tick(const ClockPair& before, const ClockPair& after) {
  if (after.gpu_ticks <= before.gpu_ticks || after.cpu_ns <= before.cpu_ns) return 1.0;
  uint64_t gpu = after.gpu_ticks - before.gpu_ticks, cpu = after.cpu_ns - before.cpu_ns;
  // Too short a span makes the ratio noise; below 1 ms, trust the nanosecond tick instead.
  if (cpu < 1000000) return 1.0;
  return double(cpu) / double(gpu);
}

void GpuTimeAccumulator::add_seconds(double start, double end) {
  if (!(end > start) || start <= 0) return;
  seconds_ += end - start;
  ++intervals_;
}

bool GpuTimeAccumulator::add_ticks(uint64_t begin, uint64_t end) {
  if (!counter_sample_valid(begin) || !counter_sample_valid(end) || end < begin) return false;
  ticks_ += end - begin;
  ++intervals_;
  return true;
}

std::string command_buffer_error_message(int64_t code, std::string_view metal_description,
                                         std::string_view kernel) {
  std::string what;
  switch (CommandBufferError(code)) {
    case CommandBufferError::Timeout:
      what = "the GPU stopped the kernel for running too long (timeout): look for a loop that "
             "never ends, or split the work over several launches";
      break;
    case CommandBufferError::PageFault:
      what = "the kernel accessed memory outside its buffers (page fault): check the index "
             "arithmetic against the buffer sizes and the bounds check for partial threadgroups";
      break;
    case CommandBufferError::InvalidResource:
      what = "a buffer the kernel used was invalid (invalid resource): a tensor freed or resized "
             "while the kernel ran";
      break;
    case CommandBufferError::OutOfMemory:
      what = "the GPU ran out of memory";
      break;
    case CommandBufferError::AccessRevoked:
    case CommandBufferError::NotPermitted:
      what = "the system revoked this process's GPU access (too many faults in a row, or the "
             "process is in the background)";
      break;
    case CommandBufferError::DeviceRemoved:
      what = "the GPU was removed from the system";
      break;
    case CommandBufferError::StackOverflow:
      what = "the kernel overflowed its call stack";
      break;
    default:
      what = "the command buffer failed (Metal error code " + std::to_string(code) + ")";
  }
  std::string msg = "[metalrt.metal] kernel '" + std::string(kernel) + "': " + what;
  if (!metal_description.empty()) msg += ". Metal says: " + std::string(metal_description);
  msg += ". The outputs of this launch are undefined; the runtime remains usable.";
  return msg;
}

}  // namespace metalrt::metal
