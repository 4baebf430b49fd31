// metalrt.profile()'s native half: the records, the host-wall clock, and the bracket around a
// profiled launch. See profile.h.
#include "bindings/profile.h"

#include <pybind11/stl.h>

#include <chrono>
#include <exception>
#include <stdexcept>

namespace py = pybind11;

namespace metalrt::bindings {

bool g_profile_active = false;

namespace {

// Host wall time around the launch: the sim's launch runs the kernel on the calling thread, so
// this is its whole execution (and, for a test double, the time its launch() took).
class HostWallClock final : public ProfileClock {
 public:
  const char* name() const override { return "host-wall"; }
  bool times(const Kernel&) const override { return true; }
  void begin(Kernel&, const BindPolicy&, LaunchTime* t) override { t->token = now_ns(); }
  void end(Kernel&, LaunchTime* t) override {
    t->ms = double(now_ns() - t->token) / 1e6;
    t->resolved = true;
  }
  void resolve(LaunchTime*) override {}
  void discard(LaunchTime*) override {}

 private:
  static uint64_t now_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  }
};

struct Record {
  std::string kernel;
  std::string backend;
  bool dispatch_threads;
  Dim3 threads, groups, group_size;
  ProfileClock* clock;
  LaunchTime time;
};

HostWallClock g_host_wall;
std::vector<ProfileClock*> g_clocks;  // the backends' clocks, before the host-wall fallback
std::vector<Record> g_records;

ProfileClock* clock_for(const Kernel& kernel) {
  for (ProfileClock* c : g_clocks)
    if (c->times(kernel)) return c;
  return &g_host_wall;
}

py::list dim3(const Dim3& d) { return py::cast(std::vector<uint64_t>{d.x, d.y, d.z}); }

void start() {
  if (g_profile_active)
    throw std::runtime_error(
        "metalrt.profile() is already active: profiles are process-wide and do not nest; end the "
        "outer `with metalrt.profile()` block before starting another");
  g_records.clear();  // stop() took them all
  g_profile_active = true;
}

// Ends the profile and returns its records, resolved. Every record's clock resources go back
// even when resolving one fails (a kernel that faulted makes its events report the fault); the
// first failure is then raised.
py::list stop() {
  if (!g_profile_active) throw std::runtime_error("metalrt.profile(): no profile is active");
  g_profile_active = false;
  std::vector<Record> records = std::move(g_records);
  g_records.clear();
  std::exception_ptr failure;
  for (Record& r : records) {
    if (r.time.resolved) continue;
    if (failure) {
      r.clock->discard(&r.time);
      continue;
    }
    try {
      r.clock->resolve(&r.time);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  py::list out;
  for (const Record& r : records) {
    py::dict d;
    d["kernel"] = r.kernel;
    d["backend"] = r.backend;
    d["threads"] = r.dispatch_threads ? py::object(dim3(r.threads)) : py::object(py::none());
    d["groups"] = dim3(r.groups);
    d["group_size"] = dim3(r.group_size);
    d["gpu_ms"] = r.time.ms;
    d["clock"] = r.clock->name();
    out.append(d);
  }
  return out;
}

}  // namespace

void add_profile_clock(ProfileClock* clock) { g_clocks.push_back(clock); }

LaunchProbe::LaunchProbe(Kernel& kernel, const BindPolicy& policy, const LaunchGeometry& geometry)
    : kernel_(kernel), policy_(policy), geometry_(geometry), clock_(clock_for(kernel)) {
  time_.device = policy.device_index;
  clock_->begin(kernel_, policy_, &time_);
}

LaunchProbe::~LaunchProbe() {
  if (!done_) clock_->discard(&time_);
}

void LaunchProbe::finished() {
  clock_->end(kernel_, &time_);
  done_ = true;
  if (!g_profile_active) {  // stopped from another thread while this launch ran without the GIL
    clock_->discard(&time_);
    return;
  }
  g_records.push_back(Record{kernel_.signature().name, policy_.backend, geometry_.dispatch_threads, geometry_.threads,
                             geometry_.groups, geometry_.group_size, clock_, time_});
}

void bind_profile(py::module_& m) {
  m.def("_profile_start", &start,
        "Starts the process-wide launch profile behind metalrt.profile(). Raises RuntimeError if one is active.");
  m.def("_profile_stop", &stop,
        "Ends the launch profile and returns its records (dicts: kernel, backend, threads, groups, group_size, "
        "gpu_ms, clock), in launch order, with every GPU time read.");
  m.def("_profile_active", [] { return g_profile_active; }, "Whether a launch profile is active.");
}

}  // namespace metalrt::bindings
