// GPU timing on Metal, and what a failed command buffer means. Two clocks exist:
// - timestamp counters sampled at the compute encoder's start and end
//   (MTLCounterSamplingPointAtStageBoundary, every Apple GPU): the kernel's own execution;
// - the command buffer's GPUStartTime/GPUEndTime (every GPU): the same plus the command
//   buffer's scheduling on the GPU, a few microseconds more.
// The timer uses counters where the device has them and says which it used. It adds up the GPU
// time of metalrt's launches between start() and stop(); host-side gaps between launches are
// not GPU time and are not counted.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace metalrt::metal {

enum class TimingMethod : uint8_t { Counters, CommandBuffer };
std::string_view timing_method_name(TimingMethod m);  // Timer::method(): "metal-gpu-timestamps",
                                                      // "metal-command-buffer"

struct TimingCaps {
  bool stage_boundary_sampling = false;  // supportsCounterSampling(AtStageBoundary)
  bool timestamp_counter_set = false;    // counterSets has MTLCommonCounterSetTimestamp
};

struct TimingChoice {
  TimingMethod method = TimingMethod::CommandBuffer;
  std::string reason;
};

// `request`: METALRT_METAL_TIMER: "" or "auto" (counters where supported), "counters",
// "command-buffer". Asking for counters on a device without them is an Error naming the fix.
TimingChoice choose_timing_method(const TimingCaps& caps, std::string_view request);

// CPU and GPU clocks sampled together (MTLDevice sampleTimestamps:gpuTimestamp:) before and
// after the measured work; the CPU clock is in nanoseconds, the GPU's in its own ticks.
struct ClockPair {
  uint64_t cpu_ns = 0, gpu_ticks = 0;
};

// Nanoseconds per GPU tick from two pairs; 1.0 when the pairs are too close to tell (on Apple
// silicon both clocks count nanoseconds, so that is also the right answer).
double ns_per_gpu_tick(const ClockPair& before, const ClockPair& after);

// MTLCounterErrorValue marks a sample the GPU failed to take; 0 one it never wrote.
inline constexpr uint64_t kCounterErrorValue = ~0ull;
inline bool counter_sample_valid(uint64_t v) { return v != kCounterErrorValue && v != 0; }

// GPU time of the launches completed between a timer's start() and stop(). Counter intervals
// stay in raw ticks until the end, when the clock pairs sampled at start() and stop() give the
// tick length; command-buffer intervals are already in seconds.
class GpuTimeAccumulator {
 public:
  // A command buffer's GPUStartTime/GPUEndTime (seconds). Ignores an empty or inverted interval.
  void add_seconds(double start, double end);
  // A counter sample pair. Returns false (and adds nothing) for an invalid sample, so that the
  // caller falls back to the command buffer's interval.
  bool add_ticks(uint64_t begin, uint64_t end);
  double elapsed_ms(double ns_per_tick) const { return (seconds_ * 1e9 + double(ticks_) * ns_per_tick) * 1e-6; }
  int intervals() const { return intervals_; }
  void reset() { seconds_ = 0, ticks_ = 0, intervals_ = 0; }

 private:
  double seconds_ = 0;
  uint64_t ticks_ = 0;
  int intervals_ = 0;
};

// MTLCommandBufferError codes (MTLCommandBufferErrorDomain).
enum class CommandBufferError : int64_t {
  None = 0, Internal = 1, Timeout = 2, PageFault = 3, AccessRevoked = 4, NotPermitted = 7,
  OutOfMemory = 8, InvalidResource = 9, Memoryless = 10, DeviceRemoved = 11, StackOverflow = 12,
};

// The LaunchError text for a command buffer that ended in error: what the code means for a
// kernel author, Metal's own description, and that the runtime stays usable.
std::string command_buffer_error_message(int64_t code, std::string_view metal_description,
                                         std::string_view kernel);

}  // namespace metalrt::metal
