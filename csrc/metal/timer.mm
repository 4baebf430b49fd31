// metalrt.timer() on Metal: the GPU time of metalrt's launches between start() and stop(), from
// timestamp counters at the encoder's boundaries where the GPU samples them, else from each
// command buffer's GPUStartTime/GPUEndTime. Launches are waited for as they go, so stop() has
// nothing left to wait for.
#include "metal/device.h"

#include "core/errors.h"

namespace metalrt::metal {

MetalTimer::~MetalTimer() {
  if (running_) device_.remove_timer(this);
}

void MetalTimer::start() {
  if (running_) device_.remove_timer(this);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    total_.reset();
    running_ = true;
    stopped_ = false;
    clocks_start_ = device_.sample_clocks();
  }
  device_.add_timer(this);
}

void MetalTimer::stop() {
  if (!running_) throw Error("[metalrt.metal] timer.stop() without start(); use `with metalrt.timer() as t:`");
  device_.remove_timer(this);
  std::lock_guard<std::mutex> lock(mutex_);
  clocks_stop_ = device_.sample_clocks();
  running_ = false;
  stopped_ = true;
}

double MetalTimer::elapsed_ms() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!stopped_)
    throw Error("[metalrt.metal] timer: elapsed time asked before stop(); read it after the "
                "`with metalrt.timer() as t:` block");
  return total_.elapsed_ms(ns_per_gpu_tick(clocks_start_, clocks_stop_));
}

std::string MetalTimer::method() const { return std::string(timing_method_name(device_.timing().method)); }

void MetalTimer::record(const LaunchTiming& timing) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (timing.counter_begin && total_.add_ticks(timing.counter_begin, timing.counter_end)) return;
  total_.add_seconds(timing.gpu_start, timing.gpu_end);
}

std::shared_ptr<Timer> make_timer() { return std::make_shared<MetalTimer>(Device::get()); }

}  // namespace metalrt::metal
