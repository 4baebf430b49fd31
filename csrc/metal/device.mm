// The process's Metal device: chosen once, described once (DeviceInfo, cache identity, timing
// method), with one command queue that every launch goes through.
#include "metal/device.h"

#include <cstdlib>

#include "core/errors.h"
#include "core/metal_device.h"

namespace metalrt::metal {

// core/metal_options.h and core/metal_timing.h restate Apple's numbers so Linux can test the
// logic that uses them; these keep the two in step.
static_assert(uint32_t(DataType::Float) == MTLDataTypeFloat && uint32_t(DataType::Half) == MTLDataTypeHalf &&
              uint32_t(DataType::Int) == MTLDataTypeInt && uint32_t(DataType::UInt) == MTLDataTypeUInt &&
              uint32_t(DataType::Short) == MTLDataTypeShort && uint32_t(DataType::UShort) == MTLDataTypeUShort &&
              uint32_t(DataType::Char) == MTLDataTypeChar && uint32_t(DataType::UChar) == MTLDataTypeUChar &&
              uint32_t(DataType::Bool) == MTLDataTypeBool && uint32_t(DataType::Long) == MTLDataTypeLong &&
              uint32_t(DataType::ULong) == MTLDataTypeULong && uint32_t(DataType::BFloat) == MTLDataTypeBFloat &&
              uint32_t(DataType::Struct) == MTLDataTypeStruct && MTLDataTypeFloat4 == MTLDataTypeFloat + 3 &&
              MTLDataTypeBFloat4 == MTLDataTypeBFloat + 3,
              "metal_options.h DataType drifted from MTLDataType");
static_assert(int64_t(CommandBufferError::Timeout) == MTLCommandBufferErrorTimeout &&
              int64_t(CommandBufferError::PageFault) == MTLCommandBufferErrorPageFault &&
              int64_t(CommandBufferError::InvalidResource) == MTLCommandBufferErrorInvalidResource &&
              int64_t(CommandBufferError::OutOfMemory) == MTLCommandBufferErrorOutOfMemory &&
              int64_t(CommandBufferError::StackOverflow) == MTLCommandBufferErrorStackOverflow,
              "metal_timing.h CommandBufferError drifted from MTLCommandBufferError");
static_assert(kCounterErrorValue == MTLCounterErrorValue, "MTLCounterErrorValue drifted");

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

NSArray<id<MTLDevice>>* all_devices() { return MTLCopyAllDevices(); }

id<MTLDevice> choose_device() {
  std::string request = env("METALRT_METAL_DEVICE");
  if (request.empty()) return MTLCreateSystemDefaultDevice();
  NSArray<id<MTLDevice>>* devices = all_devices();
  std::vector<std::string> names;
  for (id<MTLDevice> d in devices) names.push_back(to_std(d.name));
  int index = select_device_index(names, request);
  return index < 0 ? MTLCreateSystemDefaultDevice() : devices[NSUInteger(index)];
}

bool has_timestamp_counter_set(id<MTLDevice> device) {
  for (id<MTLCounterSet> set in device.counterSets)
    if ([set.name isEqualToString:MTLCommonCounterSetTimestamp]) return true;
  return false;
}

id<MTLCounterSet> timestamp_counter_set(id<MTLDevice> device) {
  for (id<MTLCounterSet> set in device.counterSets)
    if ([set.name isEqualToString:MTLCommonCounterSetTimestamp]) return set;
  return nil;
}

// Device construction is attempted once; its failure is remembered and repeated.
struct Singleton {
  std::unique_ptr<Device> device;
  std::string error;
};

}  // namespace

Device::Device(id<MTLDevice> device) : device_(device) {
  queue_ = [device_ newCommandQueue];
  if (!queue_) throw BackendUnavailable("[metalrt.metal] " + to_std(device_.name) + ": could not create a command queue");

  NSOperatingSystemVersion v = [NSProcessInfo processInfo].operatingSystemVersion;
  os_ = {int(v.majorVersion), int(v.minorVersion)};

  int apple = 0;
  for (int n = 12; n >= 1 && apple == 0; --n)
    if ([device_ supportsFamily:MTLGPUFamily(int(MTLGPUFamilyApple1) + n - 1)]) apple = n;
  bool mac2 = [device_ supportsFamily:MTLGPUFamilyMac2];
  nonuniform_ = apple >= 4 || mac2;

  info_.backend = "metal";
  info_.name = to_std(device_.name);
  info_.target = gpu_target(apple, mac2);
  info_.index = 0;
  info_.max_threads_per_group = uint32_t(device_.maxThreadsPerThreadgroup.width);
  info_.simd_width = 32;  // every Apple GPU; the pipeline's threadExecutionWidth is authoritative
  info_.max_threadgroup_memory = device_.maxThreadgroupMemoryLength;
  info_.memory_bytes = device_.recommendedMaxWorkingSetSize;
  info_.unified_memory = device_.hasUnifiedMemory;
  info_.peak_bandwidth_gbs = peak_bandwidth_gbs(info_.name);

  identity_.name = info_.name;
  if (@available(macOS 14.0, *)) identity_.architecture = to_std(device_.architecture.name);
  identity_.os_build = to_std([NSProcessInfo processInfo].operatingSystemVersionString);

  TimingCaps caps;
  caps.stage_boundary_sampling = [device_ supportsCounterSampling:MTLCounterSamplingPointAtStageBoundary];
  caps.timestamp_counter_set = has_timestamp_counter_set(device_);
  timing_ = choose_timing_method(caps, env("METALRT_METAL_TIMER"));
  if (timing_.method == TimingMethod::Counters) {
    MTLCounterSampleBufferDescriptor* desc = [MTLCounterSampleBufferDescriptor new];
    desc.counterSet = timestamp_counter_set(device_);
    desc.storageMode = MTLStorageModeShared;
    desc.sampleCount = 2;
    desc.label = @"metalrt timer";
    NSError* error = nil;
    sample_buffer_ = [device_ newCounterSampleBufferWithDescriptor:desc error:&error];
    if (!sample_buffer_)
      timing_ = {TimingMethod::CommandBuffer,
                 "the timestamp sample buffer could not be created (" + describe(error) +
                     "); using the command buffer's GPU start and end"};
  }
}

Device& Device::get() {
  static Singleton* singleton = [] {
    auto* s = new Singleton;  // never destroyed: Metal objects must outlive Python's shutdown
    @autoreleasepool {
      try {
        id<MTLDevice> d = choose_device();
        if (!d)
          s->error = "[metalrt.metal] no Metal device: MTLCreateSystemDefaultDevice() returned nil "
                     "(a Mac without a GPU, or a virtual machine without Metal); use the 'sim' backend";
        else
          s->device.reset(new Device(d));
      } catch (const std::exception& e) {
        s->error = e.what();
      }
    }
    return s;
  }();
  if (!singleton->device) throw BackendUnavailable(singleton->error);
  return *singleton->device;
}

void Device::external_sync() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    fn = external_sync_;
  }
  if (fn) fn();
}

void Device::set_external_sync(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(sync_mutex_);
  external_sync_ = std::move(fn);
}

bool Device::timers_running() {
  std::lock_guard<std::mutex> lock(timers_mutex_);
  return !timers_.empty();
}

id<MTLCounterSampleBuffer> Device::sample_buffer_for_launch() {
  return timing_.method == TimingMethod::Counters && timers_running() ? sample_buffer_ : nil;
}

void Device::add_timer(MetalTimer* t) {
  std::lock_guard<std::mutex> lock(timers_mutex_);
  timers_.push_back(t);
}

void Device::remove_timer(MetalTimer* t) {
  std::lock_guard<std::mutex> lock(timers_mutex_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it)
    if (*it == t) {
      timers_.erase(it);
      return;
    }
}

void Device::record(const LaunchTiming& timing) {
  std::lock_guard<std::mutex> lock(timers_mutex_);
  for (MetalTimer* t : timers_) t->record(timing);
}

ClockPair Device::sample_clocks() {
  MTLTimestamp cpu = 0, gpu = 0;
  [device_ sampleTimestamps:&cpu gpuTimestamp:&gpu];
  return {uint64_t(cpu), uint64_t(gpu)};
}

// ---- metal_backend.h ----

std::string unavailable_reason() {
  try {
    Device::get();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::vector<std::string> device_names() {
  std::vector<std::string> names;
  @autoreleasepool {
    for (id<MTLDevice> d in all_devices()) names.push_back(to_std(d.name));
  }
  return names;
}

DeviceInfo device_info() { return Device::get().info(); }
DeviceIdentity device_identity() { return Device::get().identity(); }
OsVersion os_version() { return Device::get().os(); }
std::string timing_method() { return std::string(timing_method_name(Device::get().timing().method)); }

void synchronize() {
  // Every launch holds this mutex until its command buffer has completed, so once it is free
  // nothing of metalrt's is still running on the GPU.
  std::lock_guard<std::mutex> lock(Device::get().launch_mutex());
}

void set_external_sync(std::function<void()> fn) { Device::get().set_external_sync(std::move(fn)); }

BackendStats stats() {
  Device& d = Device::get();
  std::lock_guard<std::mutex> lock(d.stats_mutex());
  return d.stats();
}

void clear_pipeline_cache() { Device::get().pipelines().clear(); }

}  // namespace metalrt::metal
