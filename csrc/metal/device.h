// Objective-C++ internals of the Metal backend, shared by its .mm files only (the bindings see
// metal_backend.h). One Device per process: the MTLDevice, one command queue, the pipeline
// cache, the counter sample buffer and the timers that are running.
#pragma once
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/keyed_cache.h"
#include "core/metal_archive.h"
#include "core/metal_dispatch.h"
#include "core/metal_options.h"
#include "core/metal_timing.h"
#include "metal/metal_backend.h"

namespace metalrt::metal {

class MetalTimer;

// A compute pipeline and what launches need to know about it.
struct Pipeline {
  id<MTLComputePipelineState> state = nil;
  KernelLimits limits;
  DispatchLimits dispatch;
  std::map<int, uint64_t> buffer_alignment;  // from reflection: offset alignment per buffer index
  bool from_archive = false;
};

// What one finished launch took on the GPU.
struct LaunchTiming {
  double gpu_start = 0, gpu_end = 0;         // command buffer, seconds
  uint64_t counter_begin = 0, counter_end = 0;  // encoder timestamps, GPU ticks (0: not sampled)
};

class Device {
 public:
  static Device& get();  // throws BackendUnavailable when the machine has no Metal device

  id<MTLDevice> mtl() const { return device_; }
  id<MTLCommandQueue> queue() const { return queue_; }
  const DeviceInfo& info() const { return info_; }
  const DeviceIdentity& identity() const { return identity_; }
  const OsVersion& os() const { return os_; }
  const TimingChoice& timing() const { return timing_; }
  bool nonuniform_threadgroups() const { return nonuniform_; }

  KeyedCache<std::string, Pipeline>& pipelines() { return pipelines_; }

  // Launches are serialised: each waits for its command buffer, so there is never more than one
  // in flight, and the counter sample buffer can be reused.
  std::mutex& launch_mutex() { return launch_mutex_; }

  // Drains PyTorch's MPS stream before a launch that reads or writes MPS tensors.
  void external_sync();
  void set_external_sync(std::function<void()> fn);

  // The two-sample timestamp buffer for a launch while a counter timer runs; nil otherwise.
  id<MTLCounterSampleBuffer> sample_buffer_for_launch();
  bool timers_running();
  void add_timer(MetalTimer* t);
  void remove_timer(MetalTimer* t);
  void record(const LaunchTiming& timing);
  ClockPair sample_clocks();

  BackendStats& stats() { return stats_; }  // guarded by stats_mutex()
  std::mutex& stats_mutex() { return stats_mutex_; }

 private:
  Device(id<MTLDevice> device);

  id<MTLDevice> device_ = nil;
  id<MTLCommandQueue> queue_ = nil;
  id<MTLCounterSampleBuffer> sample_buffer_ = nil;
  DeviceInfo info_;
  DeviceIdentity identity_;
  OsVersion os_;
  TimingChoice timing_;
  bool nonuniform_ = true;
  KeyedCache<std::string, Pipeline> pipelines_;
  std::mutex launch_mutex_;
  std::mutex timers_mutex_;
  std::vector<MetalTimer*> timers_;
  std::mutex sync_mutex_;
  std::function<void()> external_sync_;
  std::mutex stats_mutex_;
  BackendStats stats_;
};

class MetalTimer : public Timer {
 public:
  explicit MetalTimer(Device& device) : device_(device) {}
  ~MetalTimer() override;
  void start() override;
  void stop() override;
  double elapsed_ms() override;
  std::string method() const override;
  void record(const LaunchTiming& timing);  // called by Device for each launch while running

 private:
  Device& device_;
  std::mutex mutex_;
  bool running_ = false, stopped_ = false;
  GpuTimeAccumulator total_;
  ClockPair clocks_start_, clocks_stop_;
};

// NSString <-> std::string; nil and empty map to "".
inline std::string to_std(NSString* s) { return s ? std::string(s.UTF8String ?: "") : std::string(); }
inline NSString* to_ns(const std::string& s) {
  return [[NSString alloc] initWithBytes:s.data() length:s.size() encoding:NSUTF8StringEncoding] ?: @"";
}
inline std::string describe(NSError* e) { return e ? to_std(e.localizedDescription) : std::string(); }

}  // namespace metalrt::metal

namespace metalrt::metal {

class MetalKernel : public Kernel {
 public:
  MetalKernel(KernelSignature sig, std::shared_ptr<Pipeline> pipeline, Device& device)
      : Kernel(std::move(sig)), pipeline_(std::move(pipeline)), device_(device) {}
  KernelLimits limits() const override { return pipeline_->limits; }
  BindPolicy bind_policy() const override;
  // Each launch waits for its command buffer (see kernel.mm), so the bindings release the GIL.
  bool synchronous_launch() const override { return true; }
  void launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) override;

 private:
  std::shared_ptr<Pipeline> pipeline_;
  Device& device_;
};

}  // namespace metalrt::metal
