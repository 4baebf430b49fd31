#include "sim/kernel.h"

#include <dlfcn.h>

#include <chrono>

#include "core/errors.h"
#include "sim/executor.h"
#include "sim/group_runner.h"
#include "sim/order_check.h"

namespace metalrt::sim {

namespace {

constexpr uint8_t kFirstPoison = 0xff;   // NaN in every float type, -1 in every integer
constexpr uint8_t kSecondPoison = 0x7f;  // large finite floats (NaN in half), large integers

uint64_t round16(uint64_t n) { return (n + 15) / 16 * 16; }

uint32_t to_u32(uint64_t v, const std::string& what, const std::string& kernel) {
  if (v > UINT32_MAX)
    throw LaunchError("[metalrt.sim] kernel '" + kernel + "': " + what + " " + std::to_string(v) +
                      " does not fit the 32 bits Metal gives it");
  return uint32_t(v);
}

}  // namespace

LoadedLibrary::~LoadedLibrary() {
  if (handle) dlclose(handle);
}

SimKernel::SimKernel(KernelSignature signature, std::shared_ptr<const LoadedLibrary> library,
                     const msim_kernel_desc* desc)
    : Kernel(std::move(signature)), library_(std::move(library)), desc_(desc) {}

KernelLimits SimKernel::limits() const {
  KernelLimits l;
  l.max_threads_per_group = MSIM_MAX_THREADS_PER_GROUP;
  l.simd_width = MSIM_SIMD_WIDTH;
  l.max_threadgroup_memory = MSIM_MAX_THREADGROUP_MEMORY;
  l.static_threadgroup_memory = static_threadgroup_bytes_.load(std::memory_order_relaxed);
  for (uint64_t& g : l.max_grid) g = UINT32_MAX;  // Metal's grids are 32-bit in every dimension
  return l;
}

BindPolicy SimKernel::bind_policy() const {
  BindPolicy p;
  p.memory = MemoryKind::Host;
  p.device_index = 0;
  p.accept_host_arrays = true;
  p.backend = "sim";
  return p;
}

std::string SimKernel::name_prefix() const { return "[metalrt.sim] kernel '" + signature().name + "'"; }

void SimKernel::build_plan(const std::vector<BoundArg>& args, const LaunchGeometry& geometry,
                           LaunchPlan* plan) const {
  const KernelSignature& sig = signature();
  const std::string& name = sig.name;
  plan->kernel = desc_;
  plan->set_current = library_->set_current;
  plan->kernel_name = name;
  plan->uses_fibers = (desc_->flags & (MSIM_USES_BARRIER | MSIM_USES_SIMD)) != 0;

  // Regions by declaration position; builtins stay UNUSED.
  plan->args.assign(desc_->nparams, msim_region{});
  std::vector<bool> bound(desc_->nparams, false);
  for (const BoundArg& a : args) {
    const Param& p = *a.param;
    if (p.position < 0 || uint32_t(p.position) >= desc_->nparams)
      throw LaunchError(name_prefix() + ": parameter '" + p.name + "' has position " +
                        std::to_string(p.position) + ", but the compiled kernel takes " +
                        std::to_string(desc_->nparams) + " parameters (a bug in the sim)");
    msim_region& r = plan->args[size_t(p.position)];
    switch (a.kind) {
      case BoundArg::Kind::Buffer:
        r = msim_region{static_cast<unsigned char*>(a.data), a.nbytes, MSIM_ARG_BUFFER,
                        uint32_t(a.writable && !p.is_const && p.space != AddressSpace::Constant)};
        break;
      case BoundArg::Kind::Bytes:
        r = msim_region{static_cast<unsigned char*>(const_cast<void*>(a.bytes())), a.size, MSIM_ARG_BYTES, 0};
        break;
      case BoundArg::Kind::Threadgroup:
        continue;  // sized below, with the geometry
    }
    bound[size_t(p.position)] = true;
  }

  // [[threadgroup(i)]] parameters: the size comes from threadgroup_memory={i: bytes}.
  for (const Param& p : sig.params) {
    if (p.kind != ParamKind::Threadgroup) continue;
    uint64_t bytes = 0;
    if (auto it = geometry.threadgroup_memory.find(p.index); it != geometry.threadgroup_memory.end()) {
      bytes = it->second;
    } else {
      for (const BoundArg& a : args)
        if (a.param == &p && a.kind == BoundArg::Kind::Threadgroup) bytes = a.threadgroup_bytes;
    }
    if (bytes == 0)
      throw LaunchError(name_prefix() + ": parameter '" + p.name + "' is [[threadgroup(" +
                        std::to_string(p.index) + ")]] memory, but the launch gives it no size; pass "
                        "threadgroup_memory={" + std::to_string(p.index) + ": nbytes}");
    plan->threadgroup_params.push_back({uint32_t(p.position), bytes});
    plan->dynamic_threadgroup_bytes += round16(bytes);
    bound[size_t(p.position)] = true;
  }
  const uint64_t known_static = static_threadgroup_bytes_.load(std::memory_order_relaxed);
  if (plan->dynamic_threadgroup_bytes + known_static > MSIM_MAX_THREADGROUP_MEMORY)
    throw LaunchError(name_prefix() + ": threadgroup memory exceeds the limit of " +
                      std::to_string(MSIM_MAX_THREADGROUP_MEMORY) + " bytes per threadgroup: " +
                      std::to_string(plan->dynamic_threadgroup_bytes) +
                      " bytes of [[threadgroup(i)]] memory (threadgroup_memory=, each rounded up to 16)" +
                      (known_static ? " plus " + std::to_string(known_static) +
                                          " bytes of threadgroup variables declared in the kernel"
                                    : std::string()));
  for (const Param& p : sig.params)
    if (p.kind != ParamKind::Builtin && !bound[size_t(p.position)])
      throw LaunchError(name_prefix() + ": no argument was bound to parameter '" + p.name +
                        "' (a bug in argument binding)");

  // Geometry.
  const Dim3& gs = geometry.group_size;
  if (gs.count() > MSIM_MAX_THREADS_PER_GROUP)
    throw LaunchError(name_prefix() + ": group_size (" + std::to_string(gs.x) + ", " + std::to_string(gs.y) +
                      ", " + std::to_string(gs.z) + ") = " + std::to_string(gs.count()) +
                      " threads exceeds the maximum of " + std::to_string(MSIM_MAX_THREADS_PER_GROUP) +
                      " threads per threadgroup");
  msim_launch& abi = plan->abi;
  abi.rt = runtime_table();
  abi.args = plan->args.data();
  abi.nargs = desc_->nparams;
  abi.constants = nullptr;
  const uint64_t groups[3] = {geometry.groups.x, geometry.groups.y, geometry.groups.z};
  const uint64_t size[3] = {gs.x, gs.y, gs.z};
  const uint64_t threads[3] = {geometry.threads.x, geometry.threads.y, geometry.threads.z};
  for (int d = 0; d < 3; ++d) {
    abi.threadgroups_per_grid[d] = to_u32(groups[d], "threadgroups per grid", name);
    abi.dispatch_threads_per_threadgroup[d] = to_u32(size[d], "group size", name);
    const uint64_t total = geometry.dispatch_threads ? threads[d] : groups[d] * size[d];
    abi.threads_per_grid[d] = to_u32(total, "threads per grid", name);
    if (total > groups[d] * size[d] || (groups[d] && total <= (groups[d] - 1) * size[d]))
      throw LaunchError(name_prefix() + ": inconsistent launch geometry in dimension " + std::to_string(d) +
                        ": " + std::to_string(total) + " threads in " + std::to_string(groups[d]) +
                        " groups of " + std::to_string(size[d]) + " (a bug in resolve_launch)");
  }
}

void SimKernel::run_pass(const LaunchPlan& plan, const char* note) {
  RunResult result = Executor::instance().run(plan);
  uint64_t known = static_threadgroup_bytes_.load(std::memory_order_relaxed);
  while (result.static_threadgroup_bytes > known &&
         !static_threadgroup_bytes_.compare_exchange_weak(known, result.static_threadgroup_bytes)) {
  }
  if (result.failure) throw LaunchError("[metalrt.sim] " + result.failure->message + note);
}

void SimKernel::launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) {
  Executor& executor = Executor::instance();  // a malformed METALRT_SIM_* variable throws here
  // The sim's timers measure the wall-clock time spent inside launches, failed ones included.
  struct AddTime {
    Executor& executor;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~AddTime() {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
      executor.add_launch_nanoseconds(uint64_t(ns.count()));
    }
  } add_time{executor};

  LaunchPlan plan;
  build_plan(args, geometry, &plan);
  if (plan.group_count() == 0) return;

  // The race check. Kernels with atomics are left out of "auto": their results may depend on
  // thread order legitimately (float accumulation order, slots handed out by a counter).
  const RaceCheck mode = executor.options().race_check;
  const uint32_t flags = desc_->flags;
  const bool uses_threadgroup = (flags & MSIM_USES_THREADGROUP) || !plan.threadgroup_params.empty();
  const bool uses_atomics = flags & (MSIM_USES_ATOMICS | MSIM_USES_DEVICE_ATOMICS);
  bool check = mode == RaceCheck::On || (mode == RaceCheck::Auto && uses_threadgroup && !uses_atomics);
  std::vector<OrderCheck::Buffer> outputs;
  if (check) {
    for (const BoundArg& a : args) {
      const msim_region& r = plan.args[size_t(a.param->position)];
      if (r.kind == MSIM_ARG_BUFFER && r.writable && r.size)
        outputs.push_back({a.param->name, r.data, r.size, a.param->type});
    }
    check = !outputs.empty();
  }
  if (!check) {
    run_pass(plan, "");
    return;
  }

  OrderCheck order_check(std::move(outputs));
  plan.order = ThreadOrder::Forward;
  plan.poison = kFirstPoison;
  run_pass(plan, "");
  order_check.keep_first_run();
  plan.order = ThreadOrder::Reverse;
  plan.poison = kSecondPoison;
  run_pass(plan,
           " [this failure happened only in the race check's second run, with each threadgroup's "
           "threads in reverse order: the kernel's behaviour depends on thread order, which points "
           "to a race on threadgroup memory or a read of threadgroup memory no thread wrote]");
  if (auto difference = order_check.compare())
    throw LaunchError(name_prefix() + ": " + *difference);
}

}  // namespace metalrt::sim
