// The floor for launch overhead: cuLaunchKernel in a C++ loop, nothing else. Built and run by
// benchmarks/cuda_runtime.py on the GPU machine:
//
//   g++ -O2 -std=c++17 cuda_launch_floor.cpp -o floor -ldl
//   ./floor IMAGE SYMBOL N BATCHES BATCH     -> {"median_us": ..., ...} on stdout
//
// IMAGE is a cubin holding SYMBOL(const float*, const float*, float*, int); the loop launches it
// exactly as metalrt's benchmark does (same grid, same arguments, the legacy default stream) and
// times batches of BATCH launches with the host clock, synchronising between batches (untimed)
// so the queue never fills. The driver API is declared here and opened with dlopen, so no CUDA
// toolkit is needed to build it (values from cuda.h).
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUdeviceptr = unsigned long long;

#define DECLARE(name, ...) using name##_t = CUresult (*)(__VA_ARGS__); name##_t name;
DECLARE(cuInit, unsigned)
DECLARE(cuDeviceGet, CUdevice*, int)
DECLARE(cuDevicePrimaryCtxRetain, CUcontext*, CUdevice)
DECLARE(cuCtxSetCurrent, CUcontext)
DECLARE(cuCtxSynchronize)
DECLARE(cuModuleLoadData, CUmodule*, const void*)
DECLARE(cuModuleGetFunction, CUfunction*, CUmodule, const char*)
DECLARE(cuMemAlloc_v2, CUdeviceptr*, size_t)
DECLARE(cuLaunchKernel, CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
        void**, void**)

static void check(CUresult r, const char* what) {
  if (r != 0) {
    std::fprintf(stderr, "%s failed: CUDA error %d\n", what, r);
    std::exit(1);
  }
}

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s IMAGE SYMBOL N BATCHES BATCH\n", argv[0]);
    return 2;
  }
  const int n = std::atoi(argv[3]), batches = std::atoi(argv[4]), batch = std::atoi(argv[5]);
  void* lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib) {
    std::fprintf(stderr, "libcuda.so.1: %s\n", dlerror());
    return 1;
  }
#define LOAD(name) name = reinterpret_cast<name##_t>(dlsym(lib, #name))
  LOAD(cuInit); LOAD(cuDeviceGet); LOAD(cuDevicePrimaryCtxRetain); LOAD(cuCtxSetCurrent); LOAD(cuCtxSynchronize);
  LOAD(cuModuleLoadData); LOAD(cuModuleGetFunction); LOAD(cuMemAlloc_v2); LOAD(cuLaunchKernel);

  std::ifstream file(argv[1], std::ios::binary);
  std::string image((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  CUdevice dev;
  CUcontext ctx;
  CUmodule module;
  CUfunction f;
  check(cuInit(0), "cuInit");
  check(cuDeviceGet(&dev, 0), "cuDeviceGet");
  check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  check(cuModuleLoadData(&module, image.data()), "cuModuleLoadData");
  check(cuModuleGetFunction(&f, module, argv[2]), "cuModuleGetFunction");
  CUdeviceptr a, b, c;
  check(cuMemAlloc_v2(&a, n * sizeof(float)), "cuMemAlloc");
  check(cuMemAlloc_v2(&b, n * sizeof(float)), "cuMemAlloc");
  check(cuMemAlloc_v2(&c, n * sizeof(float)), "cuMemAlloc");
  int count = n;
  void* params[] = {&a, &b, &c, &count};
  const unsigned group = 256, groups = (n + group - 1) / group;

  for (int i = 0; i < 1000; ++i) check(cuLaunchKernel(f, groups, 1, 1, group, 1, 1, 0, nullptr, params, nullptr), "warm-up");
  check(cuCtxSynchronize(), "cuCtxSynchronize");
  std::vector<double> per_launch_us;
  for (int k = 0; k < batches; ++k) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < batch; ++i) cuLaunchKernel(f, groups, 1, 1, group, 1, 1, 0, nullptr, params, nullptr);
    auto t1 = std::chrono::steady_clock::now();
    check(cuCtxSynchronize(), "cuCtxSynchronize");
    per_launch_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / batch);
  }
  std::sort(per_launch_us.begin(), per_launch_us.end());
  std::printf("{\"median_us\": %.4f, \"min_us\": %.4f, \"launches\": %d}\n", per_launch_us[per_launch_us.size() / 2],
              per_launch_us.front(), batches * batch);
  return 0;
}
