// One launch: arguments into buffers, one compute encoder, one command buffer, waited for.
//
// metalrt has its own command queue, separate from PyTorch's MPS stream, and nothing orders two
// queues but explicit synchronisation. So a launch that binds an MPS tensor first drains
// PyTorch's stream (the external sync: its writes to our inputs are complete), and every launch
// waits for its own command buffer (our writes are complete before PyTorch's next op reads them).
// Waiting also makes host arrays safe to wrap without copying, and lets a failed command buffer
// be reported as this launch's LaunchError.
#include "metal/device.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/errors.h"
#include "core/metal_buffers.h"

namespace metalrt::metal {
namespace {

// setBytes is limited to 4 KiB; larger values go through a temporary buffer.
constexpr uint32_t kMaxInlineBytes = 4096;

struct CopyBack {
  id<MTLBuffer> buffer;
  void* dest;
  uint64_t nbytes;
};

uint64_t page_size() {
  static const uint64_t size = uint64_t(::getpagesize());
  return size;
}

MTLSize mtl_size(const Dim3& d) { return MTLSizeMake(NSUInteger(d.x), NSUInteger(d.y), NSUInteger(d.z)); }

// Per thread: the bindings release the GIL during a launch, so another thread's launch may
// complete between this thread's launch and its read.
thread_local double t_last_gpu_ms = 0;

}  // namespace

bool is_metal_kernel(const Kernel& kernel) { return dynamic_cast<const MetalKernel*>(&kernel) != nullptr; }

double last_launch_gpu_ms() { return t_last_gpu_ms; }

BindPolicy MetalKernel::bind_policy() const {
  BindPolicy p;
  p.memory = MemoryKind::MPS;
  p.device_index = 0;
  p.accept_host_arrays = true;
  p.backend = "metal";
  return p;
}

void MetalKernel::launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) {
  const std::string& name = signature().name;

  // Everything that can be refused is checked before anything is encoded.
  std::map<int, uint64_t> threadgroup_bytes = geometry.threadgroup_memory;
  bool touches_mps = false;
  for (const BoundArg& a : args) {
    if (a.kind == BoundArg::Kind::Threadgroup)
      threadgroup_bytes[a.index] = std::max(threadgroup_bytes[a.index], a.threadgroup_bytes);
    if (a.kind != BoundArg::Kind::Buffer || a.memory != MemoryKind::MPS) continue;
    touches_mps = true;
    if (a.storage && a.param) {
      id<MTLBuffer> buffer = (__bridge id<MTLBuffer>)a.storage;
      auto align = pipeline_->buffer_alignment.find(a.index);
      check_device_view(*a.param, name, a.byte_offset, a.nbytes, buffer.length,
                        align == pipeline_->buffer_alignment.end() ? 0 : align->second);
    }
  }
  DispatchPlan plan = plan_dispatch(geometry, threadgroup_bytes, pipeline_->dispatch, name);

  if (touches_mps) device_.external_sync();  // before the lock: it may need Python's GIL

  std::lock_guard<std::mutex> lock(device_.launch_mutex());
  std::string failure;
  @autoreleasepool {
    id<MTLDevice> mtl = device_.mtl();
    MTLCommandBufferDescriptor* cbd = [MTLCommandBufferDescriptor new];
    cbd.retainedReferences = YES;
    cbd.errorOptions = MTLCommandBufferErrorOptionEncoderExecutionStatus;
    id<MTLCommandBuffer> cb = [device_.queue() commandBufferWithDescriptor:cbd];
    cb.label = to_ns("metalrt:" + name);

    id<MTLCounterSampleBuffer> samples = device_.sample_buffer_for_launch();
    id<MTLComputeCommandEncoder> encoder = nil;
    if (samples) {
      MTLComputePassDescriptor* pass = [MTLComputePassDescriptor computePassDescriptor];
      pass.dispatchType = MTLDispatchTypeSerial;
      pass.sampleBufferAttachments[0].sampleBuffer = samples;
      pass.sampleBufferAttachments[0].startOfEncoderSampleIndex = 0;
      pass.sampleBufferAttachments[0].endOfEncoderSampleIndex = 1;
      encoder = [cb computeCommandEncoderWithDescriptor:pass];
    } else {
      encoder = [cb computeCommandEncoder];
    }
    [encoder setComputePipelineState:pipeline_->state];

    std::vector<CopyBack> copies;
    for (const BoundArg& a : args) {
      const NSUInteger index = NSUInteger(a.index);
      switch (a.kind) {
        case BoundArg::Kind::Buffer: {
          if (a.memory == MemoryKind::MPS && a.storage) {
            [encoder setBuffer:(__bridge id<MTLBuffer>)a.storage offset:a.byte_offset atIndex:index];
            break;
          }
          // Host memory, or an empty MPS tensor (PyTorch gives it no MTLBuffer).
          HostBufferPlan hp = plan_host_buffer(reinterpret_cast<uintptr_t>(a.data),
                                               a.memory == MemoryKind::MPS ? 0 : a.nbytes,
                                               a.writable, page_size());
          id<MTLBuffer> buffer = nil;
          if (hp.zero_copy)
            buffer = [mtl newBufferWithBytesNoCopy:reinterpret_cast<void*>(hp.base) length:hp.length
                                           options:MTLResourceStorageModeShared deallocator:nil];
          if (!buffer) {  // not page-aligned, or Metal declined to wrap it: copy
            hp.zero_copy = false;
            hp.offset = 0;
            hp.copy_back = a.writable && a.nbytes > 0 && a.memory != MemoryKind::MPS;
            bool copy_in = a.nbytes > 0 && a.data && a.memory != MemoryKind::MPS;
            buffer = copy_in ? [mtl newBufferWithBytes:a.data length:a.nbytes options:MTLResourceStorageModeShared]
                             : [mtl newBufferWithLength:std::max<uint64_t>(a.nbytes, kMinBufferLength)
                                                options:MTLResourceStorageModeShared];
          }
          if (!buffer) {
            failure = "[metalrt.metal] kernel '" + name + "': could not allocate a " +
                      std::to_string(a.nbytes) + "-byte buffer for parameter '" +
                      (a.param ? a.param->name : std::to_string(a.index)) + "' (out of memory?)";
            break;
          }
          [encoder setBuffer:buffer offset:hp.offset atIndex:index];
          if (hp.copy_back) copies.push_back({buffer, a.data, a.nbytes});
          break;
        }
        case BoundArg::Kind::Bytes:
          if (a.size <= kMaxInlineBytes) {
            [encoder setBytes:a.bytes() length:a.size atIndex:index];
          } else {
            id<MTLBuffer> buffer = [mtl newBufferWithBytes:a.bytes() length:a.size
                                                   options:MTLResourceStorageModeShared];
            [encoder setBuffer:buffer offset:0 atIndex:index];
          }
          break;
        case BoundArg::Kind::Threadgroup:
          break;  // lengths come from the plan below
      }
      if (!failure.empty()) break;
    }
    if (failure.empty()) {
      for (const auto& [index, length] : plan.threadgroup_lengths)
        [encoder setThreadgroupMemoryLength:NSUInteger(length) atIndex:NSUInteger(index)];
      if (plan.dispatch_threads)
        [encoder dispatchThreads:mtl_size(plan.grid) threadsPerThreadgroup:mtl_size(plan.group_size)];
      else
        [encoder dispatchThreadgroups:mtl_size(plan.grid) threadsPerThreadgroup:mtl_size(plan.group_size)];
    }
    [encoder endEncoding];  // an encoder must be ended even when nothing is committed

    if (failure.empty()) {
      [cb commit];
      [cb waitUntilCompleted];
      if (cb.status == MTLCommandBufferStatusError || cb.error) {
        NSError* e = cb.error;
        failure = command_buffer_error_message(e ? int64_t(e.code) : 1, describe(e), name);
      } else {
        for (const CopyBack& c : copies) std::memcpy(c.dest, c.buffer.contents, c.nbytes);
        t_last_gpu_ms = (cb.GPUEndTime - cb.GPUStartTime) * 1e3;  // CFTimeInterval: seconds
        if (device_.timers_running()) {
          LaunchTiming timing;
          timing.gpu_start = cb.GPUStartTime;
          timing.gpu_end = cb.GPUEndTime;
          if (samples) {
            NSData* data = [samples resolveCounterRange:NSMakeRange(0, 2)];
            if (data && data.length >= 2 * sizeof(MTLCounterResultTimestamp)) {
              const auto* ts = static_cast<const MTLCounterResultTimestamp*>(data.bytes);
              timing.counter_begin = ts[0].timestamp;
              timing.counter_end = ts[1].timestamp;
            }
          }
          device_.record(timing);
        }
      }
    }
  }
  if (!failure.empty()) throw LaunchError(failure);
}

}  // namespace metalrt::metal
