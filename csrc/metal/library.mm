// Compiling MSL with Metal's compiler, and making pipelines: newLibraryWithSource once per
// compile(), then per kernel, on first use, the function specialised with its constants and a
// compute pipeline state, found in the library's binary archive when a previous process made it.
#include "metal/device.h"

#include <unistd.h>

#include "core/errors.h"
#include "core/metal_compile_log.h"
#include "core/metal_reflection.h"

namespace metalrt::metal {
namespace {

// One library's MTLBinaryArchive and its files. Pipelines missing from it are added and the
// archive republished, so the next process finds them.
class ArchiveSlot {
 public:
  ArchiveSlot(Device& device, const std::string& cache_dir, const std::string& key)
      : device_(device), files_(cache_dir, key) {
    expected_.format = kCacheFormatVersion;
    expected_.key = key;
    expected_.device = device.identity().str();
    open();
  }

  id<MTLBinaryArchive> archive() const { return archive_; }
  bool has_content() const { return loaded_from_disk_ || expected_.pipelines > 0; }

  void add(MTLComputePipelineDescriptor* desc) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!archive_) return;
    NSError* error = nil;
    std::string event;
    bool ok = [archive_ addComputePipelineFunctionsWithDescriptor:desc error:&error];
    if (ok) {
      std::string tmp = files_.temporary_payload();
      ok = [archive_ serializeToURL:[NSURL fileURLWithPath:to_ns(tmp)] error:&error];
      ++expected_.pipelines;
      ok = ok && files_.publish(tmp, expected_);
      if (!ok) ::unlink(tmp.c_str());
    }
    note(ok ? "write: " + files_.payload()
            : "write failed for " + files_.payload() + ": " + (error ? describe(error) : "cannot write the cache directory"),
         ok ? nullptr : &BackendStats::archive_write_failures);
  }

 private:
  void open() {
    ArchiveDecision decision = decide_archive(files_.inspect(), expected_);
    MTLBinaryArchiveDescriptor* desc = [MTLBinaryArchiveDescriptor new];
    NSError* error = nil;
    if (decision.action == ArchiveAction::Load) {
      desc.url = [NSURL fileURLWithPath:to_ns(files_.payload())];
      archive_ = [device_.mtl() newBinaryArchiveWithDescriptor:desc error:&error];
      if (archive_) {
        loaded_from_disk_ = true;
        ArchiveManifest on_disk;
        std::string text;
        if (read_whole_file(files_.manifest(), &text) && parse_manifest_json(text, &on_disk))
          expected_.pipelines = on_disk.pipelines;
        note("load: " + files_.payload(), nullptr);
        return;
      }
      decision = {ArchiveAction::Rebuild, "Metal could not open it: " + describe(error)};
    }
    if (decision.action == ArchiveAction::Rebuild) {
      files_.remove();
      note("rebuild: " + decision.reason, &BackendStats::archives_rebuilt);
    }
    desc.url = nil;
    error = nil;
    archive_ = [device_.mtl() newBinaryArchiveWithDescriptor:desc error:&error];
  }

  void note(const std::string& event, uint64_t BackendStats::*counter) {
    std::lock_guard<std::mutex> lock(device_.stats_mutex());
    device_.stats().last_archive_event = event;
    if (counter) ++(device_.stats().*counter);
  }

  Device& device_;
  ArchiveFiles files_;
  ArchiveManifest expected_;
  id<MTLBinaryArchive> archive_ = nil;
  bool loaded_from_disk_ = false;
  std::mutex mutex_;
};

std::vector<ReflectedBinding> reflected_bindings(MTLComputePipelineReflection* reflection) {
  std::vector<ReflectedBinding> out;
  for (id<MTLBinding> b in reflection.bindings) {
    ReflectedBinding r;
    r.name = to_std(b.name);
    r.index = int(b.index);
    r.used = b.used;
    switch (b.type) {
      case MTLBindingTypeBuffer: {
        id<MTLBufferBinding> buffer = (id<MTLBufferBinding>)b;
        r.kind = ReflectedBinding::Kind::Buffer;
        r.data_type = uint32_t(buffer.bufferDataType);
        r.data_size = buffer.bufferDataSize;
        r.alignment = buffer.bufferAlignment;
        break;
      }
      case MTLBindingTypeThreadgroupMemory: {
        id<MTLThreadgroupBinding> tg = (id<MTLThreadgroupBinding>)b;
        r.kind = ReflectedBinding::Kind::Threadgroup;
        r.data_size = tg.threadgroupMemoryDataSize;
        r.alignment = tg.threadgroupMemoryAlignment;
        break;
      }
      case MTLBindingTypeTexture: r.kind = ReflectedBinding::Kind::Texture; break;
      case MTLBindingTypeSampler: r.kind = ReflectedBinding::Kind::Sampler; break;
      default: r.kind = ReflectedBinding::Kind::Other; break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

void set_math(MTLCompileOptions* options, const CompileSettings& settings) {
#if defined(__MAC_15_0) && __MAC_OS_X_VERSION_MAX_ALLOWED >= __MAC_15_0
  if (@available(macOS 15.0, *)) {
    options.mathMode = settings.math == MathMode::Fast      ? MTLMathModeFast
                       : settings.math == MathMode::Relaxed ? MTLMathModeRelaxed
                                                            : MTLMathModeSafe;
    return;
  }
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
#endif
  options.fastMathEnabled = settings.fast_math_enabled;
#if defined(__MAC_15_0) && __MAC_OS_X_VERSION_MAX_ALLOWED >= __MAC_15_0
#pragma clang diagnostic pop
#endif
}

constexpr bool kSdkHasMathMode =
#if defined(__MAC_15_0) && __MAC_OS_X_VERSION_MAX_ALLOWED >= __MAC_15_0
    true;
#else
    false;
#endif

class MetalLibrary : public Library {
 public:
  MetalLibrary(Device& device, id<MTLLibrary> library, ParsedSource parsed,
               std::vector<ResolvedConstant> constants, std::string key,
               std::unique_ptr<ArchiveSlot> archive)
      : device_(device), library_(library), parsed_(std::move(parsed)),
        constants_(std::move(constants)), key_(std::move(key)), archive_(std::move(archive)) {
    structs_ = parsed_.structs;
  }

  std::vector<std::string> kernel_names() const override {
    std::vector<std::string> names;
    for (const KernelSignature& k : parsed_.kernels) names.push_back(k.name);
    return names;
  }

  std::shared_ptr<Kernel> kernel(const std::string& name) override {
    const KernelSignature* sig = nullptr;
    for (const KernelSignature& k : parsed_.kernels)
      if (k.name == name) sig = &k;
    if (!sig) throw_unknown_kernel(name, kernel_names());
    std::string pkey = pipeline_key(key_, name);
    bool built = false;
    std::shared_ptr<Pipeline> pipeline = device_.pipelines().get_or_build(pkey, [&] {
      built = true;
      return make_pipeline(*sig);
    });
    if (!built) {
      std::lock_guard<std::mutex> lock(device_.stats_mutex());
      ++device_.stats().pipeline_cache_hits;
    }
    return std::make_shared<MetalKernel>(*sig, std::move(pipeline), device_);
  }

 private:
  std::shared_ptr<Pipeline> make_pipeline(const KernelSignature& sig) {
    std::string error_text, log;
    std::shared_ptr<Pipeline> pipeline;
    bool from_archive = false;
    @autoreleasepool {
      NSError* error = nil;
      id<MTLFunction> function = nil;
      if (parsed_.function_constants.empty()) {
        function = [library_ newFunctionWithName:to_ns(sig.name)];
      } else {
        MTLFunctionConstantValues* values = [MTLFunctionConstantValues new];
        for (const ResolvedConstant& c : constants_)
          [values setConstantValue:c.bytes.data() type:MTLDataType(c.data_type) atIndex:NSUInteger(c.index)];
        function = [library_ newFunctionWithName:to_ns(sig.name) constantValues:values error:&error];
      }
      if (!function) {
        log = describe(error);
        error_text = "kernel '" + sig.name + "': Metal could not make its function" +
                     (log.empty() ? std::string(" (the library has no function of that name)") : ": " + log);
        if (!parsed_.function_constants.empty())
          error_text += ". Function constants are given with compile(..., constants={'NAME': value})";
      } else {
        MTLComputePipelineDescriptor* desc = [MTLComputePipelineDescriptor new];
        desc.computeFunction = function;
        desc.label = to_ns("metalrt:" + sig.name);
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
        // Asks for reflection; the macOS 15 SDK renames the flag, the value is the same.
        const MTLPipelineOption reflect = MTLPipelineOptionArgumentInfo | MTLPipelineOptionBufferTypeInfo;
#pragma clang diagnostic pop
        MTLAutoreleasedComputePipelineReflection reflection = nil;
        id<MTLComputePipelineState> state = nil;
        if (archive_ && archive_->has_content()) {
          desc.binaryArchives = @[ archive_->archive() ];
          state = [device_.mtl() newComputePipelineStateWithDescriptor:desc
                                                               options:reflect | MTLPipelineOptionFailOnBinaryArchiveMiss
                                                            reflection:&reflection
                                                                 error:&error];
          from_archive = state != nil;
        } else if (archive_ && archive_->archive()) {
          desc.binaryArchives = @[ archive_->archive() ];
        }
        if (!state) {
          error = nil;
          state = [device_.mtl() newComputePipelineStateWithDescriptor:desc
                                                               options:reflect
                                                            reflection:&reflection
                                                                 error:&error];
        }
        if (!state) {
          log = describe(error);
          error_text = "kernel '" + sig.name + "': Metal could not make its compute pipeline: " + log;
        } else {
          if (archive_ && !from_archive) archive_->add(desc);
          ReflectionCheck check = cross_check_reflection(sig, parsed_.structs, reflected_bindings(reflection));
          if (!check.ok()) {
            error_text = check.message(sig.name).substr(std::string("[metalrt.metal] ").size());
          } else {
            pipeline = std::make_shared<Pipeline>();
            pipeline->state = state;
            pipeline->from_archive = from_archive;
            pipeline->buffer_alignment = check.buffer_alignment;
            pipeline->limits.max_threads_per_group = uint32_t(state.maxTotalThreadsPerThreadgroup);
            pipeline->limits.simd_width = uint32_t(state.threadExecutionWidth);
            pipeline->limits.max_threadgroup_memory = device_.info().max_threadgroup_memory;
            pipeline->limits.static_threadgroup_memory = state.staticThreadgroupMemoryLength;
            for (uint64_t& g : pipeline->limits.max_grid) g = UINT32_MAX;
            pipeline->dispatch.nonuniform_threadgroups = device_.nonuniform_threadgroups();
            pipeline->dispatch.max_threads_per_group = pipeline->limits.max_threads_per_group;
            pipeline->dispatch.max_threadgroup_memory = pipeline->limits.max_threadgroup_memory;
            pipeline->dispatch.static_threadgroup_memory = pipeline->limits.static_threadgroup_memory;
          }
        }
      }
    }
    if (!pipeline) throw CompileError("[metalrt.metal] " + error_text, log, sig.line);
    std::lock_guard<std::mutex> lock(device_.stats_mutex());
    ++device_.stats().pipelines_created;
    ++(from_archive ? device_.stats().archive_hits : device_.stats().archive_misses);
    return pipeline;
  }

  Device& device_;
  id<MTLLibrary> library_;
  ParsedSource parsed_;
  std::vector<ResolvedConstant> constants_;
  std::string key_;
  std::unique_ptr<ArchiveSlot> archive_;
};

}  // namespace

std::shared_ptr<Library> build(const std::string& source, const BuildOptions& options) {
  Device& device = Device::get();
  CompileSettings settings = compile_settings(options.compile, device.os(), kSdkHasMathMode);

  // Metal's compiler first: on a broken source its diagnostics are the authority.
  id<MTLLibrary> library = nil;
  std::string failure;
  @autoreleasepool {
    MTLCompileOptions* co = [MTLCompileOptions new];
    co.languageVersion = MTLLanguageVersion(settings.language.mtl_value());
    set_math(co, settings);
    NSMutableDictionary<NSString*, NSObject*>* macros = [NSMutableDictionary dictionary];
    for (const auto& [name, value] : settings.macros) macros[to_ns(name)] = to_ns(value);
    co.preprocessorMacros = macros;
    NSError* error = nil;
    library = [device.mtl() newLibraryWithSource:to_ns(source) options:co error:&error];
    if (!library) failure = error ? describe(error) : "Metal's compiler returned no library and no log";
  }
  if (!library) {
    CompileLog log = rewrite_compile_log(failure, source, options.filename);
    throw CompileError("[metalrt.metal] " + log.summary, log.text, log.first_error_line);
  }
  {
    std::lock_guard<std::mutex> lock(device.stats_mutex());
    ++device.stats().libraries_compiled;
  }

  // Then the shared parser, for declaration order, structs and function constants.
  PreprocessOptions pp;
  pp.defines = settings.macros;
  pp.predefined = settings.predefined;
  pp.filename = options.filename;
  ParsedSource parsed = parse_msl(source, pp);
  std::vector<ResolvedConstant> constants =
      resolve_function_constants(parsed.function_constants, options.constants);
  std::string key = library_key(source, settings, constants, device.identity());

  std::unique_ptr<ArchiveSlot> archive;
  if (!options.cache_dir.empty()) archive = std::make_unique<ArchiveSlot>(device, options.cache_dir, key);
  return std::make_shared<MetalLibrary>(device, library, std::move(parsed), std::move(constants),
                                        std::move(key), std::move(archive));
}

}  // namespace metalrt::metal
