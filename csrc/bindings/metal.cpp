// metalrt._C.metal: the Metal backend's Python face. Its platform-neutral logic (compile
// settings, log rewriting, dispatch planning, buffers, reflection checks, archive decisions,
// timing) is bound on every platform, so Linux tests it; the device itself only where the .mm
// files are compiled in (METALRT_WITH_METAL, Apple).
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>

#include "bindings/backends.h"
#include "bindings/profile.h"
#include "core/errors.h"
#include "core/metal_archive.h"
#include "core/metal_buffers.h"
#include "core/metal_compile_log.h"
#include "core/metal_device.h"
#include "core/metal_digest.h"
#include "core/metal_dispatch.h"
#include "core/metal_options.h"
#include "core/metal_reflection.h"
#include "core/metal_timing.h"
#include "core/signature.h"
#if METALRT_WITH_METAL
#include "metal/metal_backend.h"
#endif

namespace py = pybind11;

#if METALRT_WITH_METAL
constexpr bool kHasDeviceBackend = true;
#else
constexpr bool kHasDeviceBackend = false;
#endif

namespace metalrt::bindings {
namespace {

using namespace metalrt::metal;

// A function constant's value: bool, int, float, or a tuple/list of them (vectors).
ArgValue constant_value(py::handle v, const std::string& what) {
  ArgValue a;
  if (py::isinstance<py::bool_>(v)) {
    a.kind = ArgValue::Kind::Bool;
    a.b = v.cast<bool>();
  } else if (py::isinstance<py::int_>(v)) {
    a.kind = ArgValue::Kind::Int;
    try {
      a.i = v.cast<int64_t>();
    } catch (const py::cast_error&) {
      a.u = v.cast<uint64_t>();  // above INT64_MAX (throws for anything larger still)
      a.is_unsigned_big = true;
    }
  } else if (py::isinstance<py::float_>(v)) {
    a.kind = ArgValue::Kind::Float;
    a.f = v.cast<double>();
  } else if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    a.kind = ArgValue::Kind::Tuple;
    for (py::handle item : v) a.items.push_back(constant_value(item, what));
  } else {
    throw ArgumentError("[metalrt.metal] constants: the value of " + what + " is a " +
                        std::string(py::str(py::type::of(v).attr("__name__"))) +
                        "; give a bool, an int, a float, or a tuple of them for a vector");
  }
  return a;
}

// {name_or_index: value} or an iterable of (name_or_index, value) pairs.
std::vector<ConstantRequest> constant_requests(py::handle constants) {
  std::vector<ConstantRequest> out;
  if (constants.is_none()) return out;
  py::iterable items = py::isinstance<py::dict>(constants)
                           ? py::iterable(constants.attr("items")())
                           : py::reinterpret_borrow<py::iterable>(constants);
  for (py::handle pair : items) {
    py::tuple kv = py::reinterpret_borrow<py::object>(pair).cast<py::tuple>();
    if (kv.size() != 2) throw ArgumentError("[metalrt.metal] constants: expected (name, value) pairs");
    ConstantRequest r;
    if (py::isinstance<py::str>(kv[0])) r.name = kv[0].cast<std::string>();
    else if (py::isinstance<py::int_>(kv[0])) r.index = kv[0].cast<int>();
    else throw ArgumentError("[metalrt.metal] constants: a key must be the constant's name (str) or its "
                             "[[function_constant(i)]] index (int)");
    r.value = constant_value(kv[1], r.name.empty() ? "index " + std::to_string(r.index) : "'" + r.name + "'");
    out.push_back(std::move(r));
  }
  return out;
}

// {NAME: value} or pairs; None -> "" (defined, empty), bools -> "1"/"0", others -> str().
Defines defines_from(py::handle defines) {
  Defines out;
  if (defines.is_none()) return out;
  py::iterable items = py::isinstance<py::dict>(defines)
                           ? py::iterable(defines.attr("items")())
                           : py::reinterpret_borrow<py::iterable>(defines);
  for (py::handle pair : items) {
    py::tuple kv = py::reinterpret_borrow<py::object>(pair).cast<py::tuple>();
    if (kv.size() != 2) throw ArgumentError("[metalrt.metal] defines: expected (name, value) pairs");
    py::handle v = kv[1];
    std::string value = v.is_none() ? "" : py::isinstance<py::bool_>(v) ? (v.cast<bool>() ? "1" : "0")
                                                                       : std::string(py::str(v));
    out[std::string(py::str(kv[0]))] = value;
  }
  return out;
}

CompileRequest compile_request(const std::string& math, const std::string& language_version,
                               py::handle defines) {
  CompileRequest r;
  r.math = math;
  r.language_version = language_version;
  r.defines = defines_from(defines);
  return r;
}

ParsedSource parse(const std::string& source, const CompileSettings& settings) {
  PreprocessOptions pp;
  pp.predefined = msl_predefined();
  for (const auto& [k, v] : settings.predefined) pp.predefined[k] = v;
  pp.defines = settings.macros;
  return parse_msl(source, pp);
}

py::dict settings_dict(const CompileSettings& s) {
  py::dict d;
  d["language"] = s.language.str();
  d["language_value"] = s.language.mtl_value();
  d["metal_version"] = s.language.metal_version_macro();
  d["math"] = std::string(math_mode_name(s.math));
  d["use_math_mode_api"] = s.use_math_mode_api;
  d["fast_math_enabled"] = s.fast_math_enabled;
  d["macros"] = s.macros;
  d["predefined"] = s.predefined;
  d["note"] = s.note;
  d["canonical"] = s.canonical();
  return d;
}

Dim3 dim3(py::handle v, const char* what) {
  if (py::isinstance<py::int_>(v)) return {v.cast<uint64_t>(), 1, 1};
  std::vector<uint64_t> xs = v.cast<std::vector<uint64_t>>();
  if (xs.empty() || xs.size() > 3) throw LaunchError(std::string(what) + " must have 1 to 3 dimensions");
  Dim3 d;
  d.x = xs[0];
  if (xs.size() > 1) d.y = xs[1];
  if (xs.size() > 2) d.z = xs[2];
  return d;
}

py::tuple tuple3(const Dim3& d) { return py::make_tuple(d.x, d.y, d.z); }

ArchiveManifest manifest_from(const py::dict& d) {
  ArchiveManifest m;
  if (d.contains("format")) m.format = d["format"].cast<int>();
  if (d.contains("key")) m.key = d["key"].cast<std::string>();
  if (d.contains("device")) m.device = d["device"].cast<std::string>();
  if (d.contains("payload_sha256")) m.payload_sha256 = d["payload_sha256"].cast<std::string>();
  if (d.contains("payload_size")) m.payload_size = d["payload_size"].cast<uint64_t>();
  if (d.contains("pipelines")) m.pipelines = d["pipelines"].cast<int>();
  return m;
}

py::dict manifest_dict(const ArchiveManifest& m) {
  py::dict d;
  d["format"] = m.format;
  d["key"] = m.key;
  d["device"] = m.device;
  d["payload_sha256"] = m.payload_sha256;
  d["payload_size"] = m.payload_size;
  d["pipelines"] = m.pipelines;
  return d;
}

py::dict on_disk_dict(const ArchiveOnDisk& a) {
  py::dict d;
  d["payload_exists"] = a.payload_exists;
  d["manifest_exists"] = a.manifest_exists;
  d["manifest_text"] = a.manifest_text;
  d["payload_sha256"] = a.payload_sha256;
  d["payload_size"] = a.payload_size;
  return d;
}

ArchiveOnDisk on_disk_from(const py::dict& d) {
  ArchiveOnDisk a;
  if (d.contains("payload_exists")) a.payload_exists = d["payload_exists"].cast<bool>();
  if (d.contains("manifest_exists")) a.manifest_exists = d["manifest_exists"].cast<bool>();
  if (d.contains("manifest_text")) a.manifest_text = d["manifest_text"].cast<std::string>();
  if (d.contains("payload_sha256")) a.payload_sha256 = d["payload_sha256"].cast<std::string>();
  if (d.contains("payload_size")) a.payload_size = d["payload_size"].cast<uint64_t>();
  return a;
}

ReflectedBinding::Kind binding_kind(const std::string& s) {
  if (s == "buffer") return ReflectedBinding::Kind::Buffer;
  if (s == "threadgroup") return ReflectedBinding::Kind::Threadgroup;
  if (s == "texture") return ReflectedBinding::Kind::Texture;
  if (s == "sampler") return ReflectedBinding::Kind::Sampler;
  return ReflectedBinding::Kind::Other;
}

void bind_logic(py::module_& m) {
  m.attr("CACHE_FORMAT_VERSION") = kCacheFormatVersion;

  m.def("sha256", [](py::bytes data) { return sha256_hex(std::string(data)); }, py::arg("data"),
        "SHA-256 hex digest (the digest the Metal cache keys and archive manifests use).");

  m.def("newest_language_version",
        [](int major, int minor) { return newest_language_version({major, minor}).str(); },
        py::arg("os_major"), py::arg("os_minor") = 0);

  m.def("compile_settings",
        [](const std::string& math, const std::string& language_version, py::object defines,
           std::pair<int, int> os, bool sdk_has_math_mode) {
          return settings_dict(compile_settings(compile_request(math, language_version, defines),
                                                {os.first, os.second}, sdk_has_math_mode));
        },
        py::arg("math") = "safe", py::arg("language_version") = "", py::arg("defines") = py::none(),
        py::arg("os") = std::make_pair(14, 0), py::arg("sdk_has_math_mode") = true,
        "The MTLCompileOptions a compile() call maps to on a given macOS.");

  m.def("data_type_of",
        [](const std::string& type_name) {
          ValueType t;
          if (!lookup_msl_type(type_name, &t)) throw ArgumentError("not an MSL value type: " + type_name);
          return data_type_of(t);
        },
        py::arg("type_name"), "The MTLDataType value of an MSL scalar or vector type (0: none).");

  m.def("resolve_constants",
        [](const std::string& source, py::object constants, py::object defines, std::pair<int, int> os) {
          CompileSettings s = compile_settings(compile_request("safe", "", defines), {os.first, os.second});
          ParsedSource parsed = parse(source, s);
          py::list out;
          for (const ResolvedConstant& c : resolve_function_constants(parsed.function_constants,
                                                                      constant_requests(constants))) {
            py::dict d;
            d["name"] = c.name;
            d["index"] = c.index;
            d["type"] = c.type.name;
            d["data_type"] = c.data_type;
            d["bytes"] = py::bytes(c.bytes);
            out.append(d);
          }
          return out;
        },
        py::arg("source"), py::arg("constants"), py::arg("defines") = py::none(),
        py::arg("os") = std::make_pair(14, 0),
        "Function constants of compile(constants=...) matched against the source's declarations.");

  m.def("library_key",
        [](const std::string& source, py::object constants, const std::string& math,
           const std::string& language_version, py::object defines, const std::string& device_name,
           const std::string& architecture, const std::string& os_build, std::pair<int, int> os) {
          CompileSettings s = compile_settings(compile_request(math, language_version, defines),
                                               {os.first, os.second});
          ParsedSource parsed = parse(source, s);
          auto resolved = resolve_function_constants(parsed.function_constants, constant_requests(constants));
          return library_key(source, s, resolved, {device_name, architecture, os_build});
        },
        py::arg("source"), py::arg("constants") = py::none(), py::arg("math") = "safe",
        py::arg("language_version") = "", py::arg("defines") = py::none(),
        py::arg("device_name") = "Apple M2", py::arg("architecture") = "applegpu_g14g",
        py::arg("os_build") = "Version 14.5 (Build 23F79)", py::arg("os") = std::make_pair(14, 0),
        "The cache key of a compiled library (the name of its binary archive).");

  m.def("rewrite_compile_log",
        [](const std::string& raw, const std::string& source, const std::string& filename) {
          CompileLog log = rewrite_compile_log(raw, source, filename);
          py::dict d;
          d["text"] = log.text;
          d["summary"] = log.summary;
          d["first_error_line"] = log.first_error_line;
          d["errors"] = log.error_count();
          d["warnings"] = log.warning_count();
          py::list diags;
          for (const Diagnostic& x : log.diagnostics)
            diags.append(py::make_tuple(x.line, x.column, x.severity, x.message));
          d["diagnostics"] = diags;
          return d;
        },
        py::arg("raw"), py::arg("source"), py::arg("filename") = "kernel.metal");

  m.def("plan_dispatch",
        [](py::object threads, py::object groups, py::object group_size, std::map<int, uint64_t> tg,
           bool nonuniform, uint32_t max_threads, uint64_t max_tg_memory, uint64_t static_tg_memory,
           const std::string& kernel) {
          LaunchGeometry g;
          g.group_size = dim3(group_size, "group_size");
          g.dispatch_threads = !threads.is_none();
          if (g.dispatch_threads) {
            g.threads = dim3(threads, "threads");
            g.groups = {(g.threads.x + g.group_size.x - 1) / g.group_size.x,
                        (g.threads.y + g.group_size.y - 1) / g.group_size.y,
                        (g.threads.z + g.group_size.z - 1) / g.group_size.z};
          } else {
            g.groups = dim3(groups, "groups");
          }
          DispatchLimits limits{nonuniform, max_threads, max_tg_memory, static_tg_memory};
          DispatchPlan p = plan_dispatch(g, tg, limits, kernel);
          py::dict d;
          d["dispatch"] = p.dispatch_threads ? "threads" : "threadgroups";
          d["grid"] = tuple3(p.grid);
          d["group_size"] = tuple3(p.group_size);
          d["threadgroup_lengths"] = p.threadgroup_lengths;
          return d;
        },
        py::arg("threads") = py::none(), py::arg("groups") = py::none(), py::arg("group_size"),
        py::arg("threadgroup_memory") = std::map<int, uint64_t>{}, py::arg("nonuniform") = true,
        py::arg("max_threads_per_group") = 1024, py::arg("max_threadgroup_memory") = 32768,
        py::arg("static_threadgroup_memory") = 0, py::arg("kernel") = "k",
        "How a resolved launch is encoded: dispatchThreads or dispatchThreadgroups.");

  m.def("plan_host_buffer",
        [](uintptr_t address, uint64_t nbytes, bool writable, uint64_t page_size) {
          HostBufferPlan p = plan_host_buffer(address, nbytes, writable, page_size);
          py::dict d;
          d["zero_copy"] = p.zero_copy;
          d["base"] = p.base;
          d["length"] = p.length;
          d["offset"] = p.offset;
          d["copy_back"] = p.copy_back;
          return d;
        },
        py::arg("address"), py::arg("nbytes"), py::arg("writable"), py::arg("page_size") = 16384);

  m.def("check_device_view",
        [](const std::string& name, const std::string& type_text, int index, const std::string& kernel,
           uint64_t byte_offset, uint64_t nbytes, uint64_t buffer_length, uint64_t alignment) {
          Param p;
          p.name = name, p.type_text = type_text, p.index = index;
          check_device_view(p, kernel, byte_offset, nbytes, buffer_length, alignment);
        },
        py::arg("name"), py::arg("type_text"), py::arg("index"), py::arg("kernel"),
        py::arg("byte_offset"), py::arg("nbytes"), py::arg("buffer_length"), py::arg("alignment") = 0);

  m.def("cross_check_reflection",
        [](const std::string& source, const std::string& kernel, const py::list& bindings, py::object defines) {
          CompileSettings s = compile_settings(compile_request("safe", "", defines), {14, 0});
          ParsedSource parsed = parse(source, s);
          const KernelSignature* sig = nullptr;
          for (const KernelSignature& k : parsed.kernels)
            if (k.name == kernel) sig = &k;
          if (!sig) throw ArgumentError("no kernel '" + kernel + "' in the source");
          std::vector<ReflectedBinding> rb;
          for (py::handle h : bindings) {
            py::dict b = py::reinterpret_borrow<py::dict>(h);
            ReflectedBinding r;
            r.kind = binding_kind(b.contains("kind") ? b["kind"].cast<std::string>() : "buffer");
            r.name = b.contains("name") ? b["name"].cast<std::string>() : "";
            r.index = b["index"].cast<int>();
            if (b.contains("data_type")) r.data_type = b["data_type"].cast<uint32_t>();
            if (b.contains("data_size")) r.data_size = b["data_size"].cast<uint64_t>();
            if (b.contains("alignment")) r.alignment = b["alignment"].cast<uint64_t>();
            rb.push_back(std::move(r));
          }
          ReflectionCheck c = cross_check_reflection(*sig, parsed.structs, rb);
          py::dict d;
          d["ok"] = c.ok();
          d["problems"] = c.problems;
          d["buffer_alignment"] = c.buffer_alignment;
          d["message"] = c.ok() ? std::string() : c.message(kernel);
          return d;
        },
        py::arg("source"), py::arg("kernel"), py::arg("bindings"), py::arg("defines") = py::none(),
        "Compares the parser's signature of `kernel` with (synthetic) pipeline reflection.");

  m.def("manifest_json", [](const py::dict& d) { return manifest_json(manifest_from(d)); });
  m.def("parse_manifest_json", [](const std::string& text) -> py::object {
    ArchiveManifest m;
    if (!parse_manifest_json(text, &m)) return py::none();
    return manifest_dict(m);
  });
  m.def("decide_archive",
        [](const py::dict& on_disk, const py::dict& expected) {
          ArchiveDecision d = decide_archive(on_disk_from(on_disk), manifest_from(expected));
          return py::make_tuple(std::string(archive_action_name(d.action)), d.reason);
        },
        py::arg("on_disk"), py::arg("expected"));

  py::class_<ArchiveFiles>(m, "ArchiveFiles", "The files of one library's binary archive under cache_dir/metal/.")
      .def(py::init<const std::string&, const std::string&>(), py::arg("cache_dir"), py::arg("key"))
      .def_property_readonly("dir", &ArchiveFiles::dir)
      .def_property_readonly("payload", &ArchiveFiles::payload)
      .def_property_readonly("manifest", &ArchiveFiles::manifest)
      .def("inspect", [](const ArchiveFiles& f) { return on_disk_dict(f.inspect()); })
      .def("remove", &ArchiveFiles::remove)
      .def("temporary_payload", &ArchiveFiles::temporary_payload)
      .def("publish", [](const ArchiveFiles& f, const std::string& tmp, const py::dict& manifest) {
        return f.publish(tmp, manifest_from(manifest));
      });

  m.def("choose_timing_method",
        [](bool stage_boundary, bool timestamp_set, const std::string& request) {
          TimingChoice c = choose_timing_method({stage_boundary, timestamp_set}, request);
          return py::make_tuple(std::string(timing_method_name(c.method)), c.reason);
        },
        py::arg("stage_boundary_sampling"), py::arg("timestamp_counter_set"), py::arg("request") = "");
  m.def("ns_per_gpu_tick",
        [](std::pair<uint64_t, uint64_t> before, std::pair<uint64_t, uint64_t> after) {
          return ns_per_gpu_tick({before.first, before.second}, {after.first, after.second});
        },
        py::arg("before"), py::arg("after"), "Clock pairs are (cpu_ns, gpu_ticks).");
  py::class_<GpuTimeAccumulator>(m, "GpuTimeAccumulator")
      .def(py::init<>())
      .def("add_seconds", &GpuTimeAccumulator::add_seconds)
      .def("add_ticks", &GpuTimeAccumulator::add_ticks)
      .def("elapsed_ms", &GpuTimeAccumulator::elapsed_ms, py::arg("ns_per_tick") = 1.0)
      .def_property_readonly("intervals", &GpuTimeAccumulator::intervals)
      .def("reset", &GpuTimeAccumulator::reset);
  m.def("command_buffer_error_message", &command_buffer_error_message, py::arg("code"),
        py::arg("description"), py::arg("kernel"));

  m.def("select_device_index", &select_device_index, py::arg("names"), py::arg("request"));
  m.def("gpu_target", &gpu_target, py::arg("apple_family"), py::arg("mac2") = false);
  m.def("peak_bandwidth_gbs", &peak_bandwidth_gbs, py::arg("device_name"));
}

#if METALRT_WITH_METAL
// metalrt.profile() on Metal: a launch waits for its command buffer (kernel.mm), so its GPU time
// is known when launch() returns; nothing is left to resolve at the profile's end.
class CommandBufferClock final : public ProfileClock {
 public:
  const char* name() const override { return "metal-command-buffer"; }
  bool times(const Kernel& kernel) const override { return metal::is_metal_kernel(kernel); }
  void begin(Kernel&, const BindPolicy&, LaunchTime*) override {}
  void end(Kernel&, LaunchTime* t) override {
    t->ms = metal::last_launch_gpu_ms();
    t->resolved = true;
  }
  void resolve(LaunchTime*) override {}
  void discard(LaunchTime*) override {}
};

void bind_device(py::module_& m) {
  add_profile_clock(new CommandBufferClock());  // lives as long as the process
  m.def("unavailable_reason", [] { return metal::unavailable_reason(); });
  m.def("device_names", [] { return metal::device_names(); });
  m.def("device_info", [] { return metal::device_info(); }, "The device as a metalrt._C.DeviceInfo.");
  m.def("identity", [] {
    DeviceIdentity id = metal::device_identity();
    OsVersion os = metal::os_version();
    py::dict d;
    d["name"] = id.name;
    d["architecture"] = id.architecture;
    d["os_build"] = id.os_build;
    d["os"] = py::make_tuple(os.major, os.minor);
    d["compiler_id"] = "metal:" + id.str();
    return d;
  });
  m.def("timing_method", [] { return metal::timing_method(); });
  m.def("build",
        [](const std::string& source, py::object defines, py::object constants, const std::string& math,
           const std::string& language_version, const std::string& cache_dir, const std::string& filename) {
          BuildOptions o;
          o.compile = compile_request(math, language_version, defines);
          o.constants = constant_requests(constants);
          o.cache_dir = cache_dir;
          o.filename = filename;
          return metal::build(source, o);  // compiles with the GIL held: Metal's compiler is quick
        },
        py::arg("source"), py::arg("defines") = py::none(), py::arg("constants") = py::none(),
        py::arg("math") = "safe", py::arg("language_version") = "", py::arg("cache_dir") = "",
        py::arg("filename") = "kernel.metal");
  m.def("synchronize", [] {
    py::gil_scoped_release release;
    metal::synchronize();
  });
  m.def("timer", [] { return metal::make_timer(); });
  m.def("set_external_sync", [](py::object fn) {
    if (fn.is_none()) return metal::set_external_sync(nullptr);
    // Held for the life of the process (the device is never destroyed), like the module itself.
    auto* held = new py::object(std::move(fn));
    metal::set_external_sync([held] {
      py::gil_scoped_acquire gil;
      (*held)();
    });
  }, py::arg("fn"), "Called before a launch that binds an MPS tensor (torch.mps.synchronize).");
  m.def("stats", [] {
    BackendStats s = metal::stats();
    py::dict d;
    d["libraries_compiled"] = s.libraries_compiled;
    d["pipelines_created"] = s.pipelines_created;
    d["pipeline_cache_hits"] = s.pipeline_cache_hits;
    d["archive_hits"] = s.archive_hits;
    d["archive_misses"] = s.archive_misses;
    d["archives_rebuilt"] = s.archives_rebuilt;
    d["archive_write_failures"] = s.archive_write_failures;
    d["last_archive_event"] = s.last_archive_event;
    return d;
  });
  m.def("clear_pipeline_cache", [] { metal::clear_pipeline_cache(); });
}
#endif

}  // namespace

void bind_metal(py::module_& m) {
  py::module_ metal = m.def_submodule("metal", "The Metal backend: its neutral logic, and the device on Apple");
  metal.attr("HAS_DEVICE_BACKEND") = kHasDeviceBackend;
  bind_logic(metal);
#if METALRT_WITH_METAL
  bind_device(metal);
#endif
}

}  // namespace metalrt::bindings
