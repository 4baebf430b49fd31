// metalrt.profile(): per-kernel GPU time of every launch made while a profile is active, on any
// backend, each measured by the clock its backend offers:
//   cuda   a pair of CUDA events recorded on the launch's stream around cuLaunchKernel, read when
//          the profile ends (the launch stays asynchronous while profiled)
//   metal  GPUEndTime - GPUStartTime of the launch's command buffer (launches are synchronous)
//   other  host wall time around the launch (the sim runs a launch to completion on the CPU)
// Off, a launch pays one test of a plain bool (the GIL is held there, so no atomic is needed).
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"

namespace metalrt::bindings {

// One launch's time as a clock keeps it between begin() and the profile's end.
struct LaunchTime {
  uint64_t token = 0;    // the clock's own (a start time, an event pair's index)
  int device = 0;        // the kernel's device index
  double ms = 0;
  bool resolved = false; // `ms` is final
};

// How one backend times a launch. Clocks are registered once, at import, and live as long as the
// process. All calls happen on a Python thread with the GIL held.
class ProfileClock {
 public:
  virtual ~ProfileClock() = default;
  virtual const char* name() const = 0;  // the record's "clock"
  virtual bool times(const Kernel& kernel) const = 0;
  virtual void begin(Kernel& kernel, const BindPolicy& policy, LaunchTime* t) = 0;
  virtual void end(Kernel& kernel, LaunchTime* t) = 0;  // may resolve at once
  virtual void resolve(LaunchTime* t) = 0;              // at the profile's end; may wait for the GPU
  virtual void discard(LaunchTime* t) = 0;              // the launch threw: give back what begin took
};

// The CUDA and Metal bindings register their clocks; kernels no clock times get host wall time.
void add_profile_clock(ProfileClock* clock);

extern bool g_profile_active;
inline bool profiling() { return g_profile_active; }

// Brackets one launch while a profile is active: begun before kernel.launch(), finished after it.
// A launch that throws is not finished, and leaves no record.
class LaunchProbe {
 public:
  LaunchProbe(Kernel& kernel, const BindPolicy& policy, const LaunchGeometry& geometry);
  ~LaunchProbe();
  LaunchProbe(const LaunchProbe&) = delete;
  LaunchProbe& operator=(const LaunchProbe&) = delete;
  void finished();

 private:
  Kernel& kernel_;
  const BindPolicy& policy_;
  const LaunchGeometry& geometry_;
  ProfileClock* clock_;
  LaunchTime time_;
  bool done_ = false;
};

// _C._profile_start / _C._profile_stop and their docs.
void bind_profile(pybind11::module_& m);

}  // namespace metalrt::bindings
