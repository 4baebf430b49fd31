// metalrt.timer() on CUDA: two events recorded on the current stream, so the interval covers
// exactly the work enqueued on it between start() and stop(), as the GPU ran it.
#include "core/errors.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"

namespace metalrt::cuda {
namespace {

class CudaTimer final : public Timer {
 public:
  explicit CudaTimer(Device& device) : device_(device) {
    const DriverApi& api = device_.api();
    device_.make_current();
    device_.check(api.cuEventCreate(&start_, CU_EVENT_DEFAULT), "creating a timing event");
    device_.check(api.cuEventCreate(&stop_, CU_EVENT_DEFAULT), "creating a timing event");
  }
  ~CudaTimer() override {
    const DriverApi& api = device_.api();
    if (start_) api.cuEventDestroy(start_);
    if (stop_) api.cuEventDestroy(stop_);
  }

  void start() override {
    device_.make_current();
    device_.check(device_.api().cuEventRecord(start_, device_.current_stream()), "recording the timer's start");
    started_ = true;
    stopped_ = false;
  }

  void stop() override {
    if (!started_) throw Error("[metalrt.cuda] timer.stop() called before timer.start()");
    device_.make_current();
    device_.check(device_.api().cuEventRecord(stop_, device_.current_stream()), "recording the timer's stop");
    stopped_ = true;
  }

  double elapsed_ms() override {
    if (!stopped_) throw Error("[metalrt.cuda] timer.elapsed_ms() called before timer.stop()");
    const DriverApi& api = device_.api();
    device_.make_current();
    device_.check(api.cuEventSynchronize(stop_), "waiting for the timed work");
    float ms = 0;
    device_.check(api.cuEventElapsedTime(&ms, start_, stop_), "reading the timer");
    return double(ms);
  }

  std::string method() const override { return "cuda-events"; }

 private:
  Device& device_;
  CUevent start_ = nullptr, stop_ = nullptr;
  bool started_ = false, stopped_ = false;
};

}  // namespace

std::shared_ptr<Timer> make_timer(int ordinal) { return std::make_shared<CudaTimer>(Device::get(ordinal)); }

}  // namespace metalrt::cuda
