// The process-wide pool of worker threads that run the sim's threadgroups: one per core by
// default. A launch hands out its groups in increasing order from a shared counter, so
// threadgroups run in parallel and each runs whole on one worker (a group's fibers never
// migrate between OS threads, which the kernel library's thread-local state relies on).
// Launches from several Python threads run one at a time.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sim/launch_plan.h"

namespace metalrt::sim {

class GroupRunner;

// When the race check (a second run in another thread order, see sim_kernel.cpp) runs.
enum class RaceCheck : uint8_t {
  Auto,  // kernels that use threadgroup memory and no atomics
  Off,
  On,    // every launch
};
std::string race_check_name(RaceCheck r);  // "auto", "0", "1"
// Parses "auto", "0" or "1"; throws std::invalid_argument naming `what` otherwise.
RaceCheck parse_race_check(const std::string& value, const std::string& what);

struct ExecutorOptions {
  uint32_t workers = 0;      // worker threads; 0 means one per available core
  RaceCheck race_check = RaceCheck::Auto;
  uint32_t stack_kib = 56;   // usable stack of each GPU thread's fiber (plus a guard page)

  // From METALRT_SIM_WORKERS, METALRT_SIM_RACECHECK and METALRT_SIM_STACK_KIB where set.
  // Throws std::invalid_argument for a malformed value, naming the variable.
  static ExecutorOptions from_environment();
  // Throws std::invalid_argument for an out-of-range value.
  void validate() const;
};

struct RunResult {
  std::optional<GroupFailure> failure;  // of the lowest-numbered failing group
  uint64_t static_threadgroup_bytes = 0;  // the most any group allocated
};

class Executor {
 public:
  static Executor& instance();

  ExecutorOptions options() const;
  void set_options(const ExecutorOptions& options);  // validated; applies from the next launch
  uint32_t worker_count() const;                     // what `workers` resolves to

  // Runs every threadgroup of `plan` and waits for all of them. After a failure no further
  // groups start; groups already running finish.
  RunResult run(const LaunchPlan& plan);

  // Wall-clock nanoseconds spent inside launches since the process started (sim timers take
  // differences of it).
  uint64_t launch_nanoseconds() const { return launch_ns_.load(std::memory_order_relaxed); }
  void add_launch_nanoseconds(uint64_t ns) { launch_ns_.fetch_add(ns, std::memory_order_relaxed); }

 private:
  struct Worker;

  explicit Executor(const ExecutorOptions& options);
  ~Executor() = delete;  // lives until the process ends: workers may still wait on its state
  static void on_fork_child();

  void ensure_workers();  // under launch_mutex_
  void stop_workers();
  void worker_main(Worker* worker);
  void run_groups(Worker* worker, const LaunchPlan& plan);

  mutable std::mutex options_mutex_;
  ExecutorOptions options_;

  std::mutex launch_mutex_;  // one launch at a time
  std::vector<std::unique_ptr<Worker>> workers_;
  uint32_t workers_stack_kib_ = 0;

  // The launch in flight, handed to the workers under mutex_.
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t epoch_ = 0;
  bool stopping_ = false;
  uint32_t busy_ = 0;
  const LaunchPlan* plan_ = nullptr;
  uint64_t total_groups_ = 0;
  std::atomic<uint64_t> next_group_{0};
  std::atomic<bool> abort_{false};
  std::mutex failure_mutex_;
  std::optional<GroupFailure> failure_;

  std::atomic<uint64_t> launch_ns_{0};
};

}  // namespace metalrt::sim
