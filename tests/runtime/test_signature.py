"""The shared signature parser: parse_msl and parse_cuda."""

import pytest

from metalrt import CompileError, _C

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


def parse(body, **kw):
    return _C.parse_msl(HEADER + body, **kw)


def only_kernel(body, **kw):
    parsed = parse(body, **kw)
    assert len(parsed.kernels) == 1, parsed
    return parsed.kernels[0]


def describe(sig):
    return [(p.name, p.kind, p.type, p.address_space, p.index, p.is_const, p.builtin) for p in sig.params]


# ---- kernels as Metal programmers write them ---------------------------------------------------


def test_elementwise_kernel():
    sig = only_kernel("""
kernel void relu(const device float* x [[buffer(0)]],
                 device float* y [[buffer(1)]],
                 constant uint& n [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
  if (i < n) y[i] = max(x[i], 0.0f);
}""")
    assert sig.name == sig.function == "relu"
    assert sig.dialect == "msl"
    assert sig.line == 4
    assert describe(sig) == [
        ("x", "buffer", "float", "device", 0, True, ""),
        ("y", "buffer", "float", "device", 1, False, ""),
        ("n", "reference", "uint", "constant", 2, True, ""),
        ("i", "builtin", "uint", "", -1, False, "thread_position_in_grid"),
    ]
    assert [p.name for p in sig.arguments] == ["x", "y", "n"]
    assert sig.params[0].type_text == "const device float*"
    assert sig.params[0].dtype == "float32"
    assert [p.line for p in sig.params] == [4, 5, 6, 7]


def test_buffers_bind_in_declaration_order_not_index_order():
    sig = only_kernel("""
kernel void k(device half4* out [[buffer(3)]], const device half4* a [[buffer(0)]],
              constant float& s [[buffer(1)]], uint2 gid [[thread_position_in_grid]]) {}""")
    assert [(p.name, p.index) for p in sig.arguments] == [("out", 3), ("a", 0), ("s", 1)]
    assert sig.params[0].type == "half4" and sig.params[0].size == 8 and sig.params[0].dtype == "float16"


def test_attribute_spellings_and_qualifier_positions():
    sig = only_kernel("""
[[kernel]] void k(device const float *a [[ buffer(0) ]],
                  float const device* b [[buffer(1)]],
                  device float * const c [[buffer(2)]],
                  metal::float4 constant& d [[buffer(3)]],
                  const uint3 tid [[thread_position_in_grid]]) {}""")
    assert [(p.name, p.is_const, p.type) for p in sig.params] == [
        ("a", True, "float"),
        ("b", True, "float"),
        ("c", False, "float"),  # a const pointer to writable floats
        ("d", True, "float4"),
        ("tid", True, "uint3"),
    ]


def test_implicit_buffer_indices_take_the_first_free_slot():
    sig = only_kernel("""
kernel void k(device float* a, device float* b [[buffer(0)]], device float* c,
              threadgroup float* t, uint i [[thread_position_in_grid]]) {}""")
    assert [(p.name, p.index) for p in sig.params[:4]] == [("a", 1), ("b", 0), ("c", 2), ("t", 0)]


@pytest.mark.parametrize(
    "builtin,types",
    [
        ("thread_position_in_grid", ["uint", "ushort", "uint2", "uint3", "ushort2", "ushort3"]),
        ("thread_position_in_threadgroup", ["uint", "ushort", "uint2", "uint3", "ushort2", "ushort3"]),
        ("threadgroup_position_in_grid", ["uint", "uint2", "uint3", "ushort3"]),
        ("threads_per_threadgroup", ["uint", "uint2", "uint3", "ushort2"]),
        ("threadgroups_per_grid", ["uint", "uint3", "ushort"]),
        ("threads_per_grid", ["uint", "uint3", "ushort2"]),
        ("dispatch_threads_per_threadgroup", ["uint", "uint3"]),
        ("thread_index_in_threadgroup", ["uint", "ushort"]),
        ("thread_index_in_simdgroup", ["uint", "ushort"]),
        ("simdgroup_index_in_threadgroup", ["uint", "ushort"]),
        ("threads_per_simdgroup", ["uint", "ushort"]),
        ("simdgroups_per_threadgroup", ["uint", "ushort"]),
        ("thread_execution_width", ["uint", "ushort"]),
        ("thread_index_in_quadgroup", ["uint", "ushort"]),
        ("quadgroup_index_in_threadgroup", ["uint", "ushort"]),
        ("quadgroups_per_threadgroup", ["uint", "ushort"]),
        ("dispatch_simdgroups_per_threadgroup", ["uint"]),
        ("dispatch_quadgroups_per_threadgroup", ["ushort"]),
    ],
)
def test_every_builtin_in_every_type_msl_allows(builtin, types):
    for t in types:
        sig = only_kernel(f"kernel void k(device float* x [[buffer(0)]], {t} v [[{builtin}]]) {{}}")
        assert sig.params[1].kind == "builtin" and sig.params[1].builtin == builtin and sig.params[1].type == t
        assert [p.name for p in sig.arguments] == ["x"]


@pytest.mark.parametrize(
    "decl,allowed",
    [
        ("float v [[thread_position_in_grid]]", "uint, uint2, uint3, ushort, ushort2 or ushort3"),
        ("int v [[thread_position_in_grid]]", "uint, uint2"),
        ("uint4 v [[threads_per_grid]]", "uint, uint2"),
        ("uint2 v [[thread_index_in_simdgroup]]", "uint or ushort"),
        ("ulong v [[thread_index_in_threadgroup]]", "uint or ushort"),
    ],
)
def test_builtin_with_a_wrong_type_is_rejected(decl, allowed):
    with pytest.raises(CompileError) as e:
        parse(f"kernel void k(device float* x [[buffer(0)]],\n  {decl}) {{}}")
    assert allowed in str(e.value)
    assert "'v'" in str(e.value)
    assert e.value.line == 4


def test_struct_layouts_follow_msl_alignment():
    parsed = parse("""
struct Inner { half h; float3 v; };
struct Params {
  uint n;            // 0
  float scale;       // 4
  float4 bias;       // 16
  packed_float3 p;   // 32 (12 bytes, align 4)
  float3 q;          // 48 (16 bytes)
  Inner inner;       // 64: align 16, size 32
  ushort tiles[3];   // 96
  bool flag;         // 102
  float2x2 m;        // 104: two float2 columns
  metal::array<int, 2> arr; // 120
  void helper() {}   // no storage
  static constant int K = 3;
};
kernel void k(constant Params& p [[buffer(0)]], uint i [[thread_position_in_grid]]) {}""")
    inner = parsed.structs["Inner"]
    assert (inner.size, inner.align) == (32, 16)
    assert [(f.name, f.offset) for f in inner.fields] == [("h", 0), ("v", 16)]
    params = parsed.structs["Params"]
    assert params.complete
    offsets = {f.name: f.offset for f in params.fields}
    assert offsets == {"n": 0, "scale": 4, "bias": 16, "p": 32, "q": 48, "inner": 64, "tiles": 96, "flag": 102,
                       "m": 104, "arr": 120}
    assert (params.size, params.align) == (128, 16)
    tiles = next(f for f in params.fields if f.name == "tiles")
    assert (tiles.type, tiles.array_len) == ("ushort", 3)
    sig = parsed.kernels[0]
    assert sig.params[0].kind == "reference" and sig.params[0].type == "Params"
    assert sig.params[0].size == 128 and sig.params[0].align == 16
    assert set(sig.structs) == {"Params", "Inner"}  # what binding needs travels with the kernel


def test_alignas_on_structs_and_fields():
    parsed = parse("""
struct alignas(16) A { float x; };
struct B { char c; alignas(8) float f; A a; };
kernel void k(constant B& b [[buffer(0)]]) {}""")
    assert (parsed.structs["A"].size, parsed.structs["A"].align) == (16, 16)
    b = parsed.structs["B"]
    assert [(f.name, f.offset) for f in b.fields] == [("c", 0), ("f", 8), ("a", 16)]
    assert (b.size, b.align) == (32, 16)


def test_typedef_struct_and_aliases():
    parsed = parse("""
typedef struct { float a; int b; } Pair;
typedef half real_t;
using index_t = uint;
kernel void k(device real_t* x [[buffer(0)]], constant Pair& p [[buffer(1)]],
              constant index_t& n [[buffer(2)]], index_t i [[thread_position_in_grid]]) {}""")
    assert parsed.structs["Pair"].size == 8
    sig = parsed.kernels[0]
    assert [(p.name, p.type, p.dtype) for p in sig.params] == [
        ("x", "half", "float16"), ("p", "Pair", None), ("n", "uint", "uint32"), ("i", "uint", "uint32")]


def test_function_constants():
    parsed = parse("""
constant bool has_bias [[function_constant(0)]];
constant int block = 32;
constant uint tile [[function_constant(3)]];
constant float2 scale [[function_constant(1)]];
constant bool no_bias = !has_bias;
kernel void k(device float* x [[buffer(0)]], device float* b [[buffer(1), function_constant(has_bias)]],
              uint i [[thread_position_in_grid]]) {}""")
    assert [(c.name, c.type, c.index, c.line) for c in parsed.function_constants] == [
        ("has_bias", "bool", 0, 4), ("tile", "uint", 3, 6), ("scale", "float2", 1, 7)]
    assert parsed.kernels[0].params[1].condition == "has_bias"


def test_mlx_style_template_instantiations():
    parsed = parse("""
template <typename T, int N_READS = 4>
[[kernel]] void copy_v(device const T* src [[buffer(0)]],
                       device T* dst [[buffer(1)]],
                       constant uint& size [[buffer(2)]],
                       uint index [[thread_position_in_grid]]) {
  for (int i = 0; i < N_READS; ++i) dst[index * N_READS + i] = src[index * N_READS + i];
}

#define instantiate_kernel(name, func, ...) \\
  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;

instantiate_kernel("copy_float32", copy_v, float)
instantiate_kernel("copy_float16", copy_v, half, 8)

#define instantiate_copy(tname, type) \\
  template [[host_name("copy_b" #tname)]] [[kernel]] void copy_v<type>( \\
      device const type* src [[buffer(0)]], device type* dst [[buffer(1)]], \\
      constant uint& size [[buffer(2)]], uint index [[thread_position_in_grid]]);
instantiate_copy(bf16, bfloat)

template [[host_name("copy_int32")]] kernel void copy_v<int>(device const int*, device int*, constant uint&, uint);
""")
    assert [k.name for k in parsed.kernels] == ["copy_float32", "copy_float16", "copy_bbf16", "copy_int32"]
    assert all(k.function == "copy_v" for k in parsed.kernels)
    assert [k.template_args for k in parsed.kernels] == [["float", "4"], ["half", "8"], ["bfloat", "4"], ["int", "4"]]
    f16 = parsed.kernels[1]
    assert [(p.name, p.type, p.dtype, p.index) for p in f16.params] == [
        ("src", "half", "float16", 0), ("dst", "half", "float16", 1), ("size", "uint", "uint32", 2),
        ("index", "uint", "uint32", -1)]
    assert f16.params[0].type_text == "device const half*"
    i32 = parsed.kernels[3]  # no attributes in the instantiation: the template's parameters, substituted
    assert [(p.name, p.type, p.kind) for p in i32.params] == [
        ("src", "int", "buffer"), ("dst", "int", "buffer"), ("size", "uint", "reference"), ("index", "uint", "builtin")]


def test_vec_and_template_types_in_signatures():
    parsed = parse("""
template <typename T, int W>
kernel void k(device vec<T, W>* x [[buffer(0)]], device atomic<uint>* c [[buffer(1)]],
              device atomic_int* d [[buffer(2)]], uint i [[thread_position_in_grid]]) {}
template [[host_name("k4")]] kernel decltype(k<float, 4>) k<float, 4>;
template [[host_name("k3")]] kernel decltype(k<half, 3>) k<half, 3>;
""")
    k4, k3 = parsed.kernels
    assert (k4.params[0].type, k4.params[0].size, k4.params[0].align) == ("float4", 16, 16)
    assert (k3.params[0].type, k3.params[0].size) == ("half3", 8)
    assert (k4.params[1].type, k4.params[1].dtype) == ("atomic_uint", "uint32")
    assert k4.params[2].type == "atomic_int"


def test_kernel_attributes_host_name_and_max_threads():
    parsed = parse("""
[[kernel, max_total_threads_per_threadgroup(256)]]
void f(device float* x [[buffer(0)]]) {}
[[host_name("renamed")]] kernel void g(device float* x [[buffer(0)]]) {}
""")
    f, g = parsed.kernels
    assert f.max_threads_per_group == 256
    assert (g.name, g.function) == ("renamed", "g")


def test_helpers_prototypes_and_namespaces_are_not_kernels():
    parsed = parse("""
inline float sq(float x) { return x * x; }
kernel void later(device float* x [[buffer(0)]]);
namespace ops {
struct Add { static float apply(float a, float b) { return a + b; } };
kernel void inside(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = sq(x[i]); }
}
constant float table[3] = {1.0f, 2.0f, 3.0f};
kernel void later(device float* x [[buffer(0)]]) { x[0] = table[0]; }
""")
    assert [(k.name, k.function) for k in parsed.kernels] == [("inside", "ops::inside"), ("later", "later")]


def test_gnu_attributes_and_a_stray_brace_do_not_hide_kernels():
    parsed = parse("""
__attribute__((always_inline)) kernel void f(device float* x [[buffer(0)]]) {}
}
kernel void g(device float* y [[buffer(0)]]) {}""")
    assert [k.name for k in parsed.kernels] == ["f", "g"]


def test_threadgroup_parameters():
    sig = only_kernel("""
kernel void reduce(const device float* x [[buffer(0)]], device float* out [[buffer(1)]],
                   threadgroup float* shared [[threadgroup(0)]], threadgroup float4* more [[threadgroup(2)]],
                   uint lid [[thread_position_in_threadgroup]]) {}""")
    tg = [p for p in sig.params if p.kind == "threadgroup"]
    assert [(p.name, p.index, p.address_space) for p in tg] == [("shared", 0, "threadgroup"), ("more", 2, "threadgroup")]
    assert [p.name for p in sig.arguments] == ["x", "out"]


def test_defines_reach_the_parser():
    sig = only_kernel("kernel void k(device T* x [[buffer(IDX)]]) {}", defines={"T": "half", "IDX": 7})
    assert (sig.params[0].type, sig.params[0].index) == ("half", 7)


# ---- what MSL forbids in a kernel signature ------------------------------------------------------


@pytest.mark.parametrize(
    "params,message",
    [
        ("float* x", "without an address space"),
        ("const float& x", "without an address space"),
        ("thread float* x", "kernel arguments must be in device, constant or threadgroup memory"),
        ("float n", "passed by value without a builtin attribute"),
        ("uint n [[buffer(0)]]", "passed by value without a builtin attribute"),
        ("device float* a [[buffer(1)]], device float* b [[buffer(1)]]", "both use [[buffer(1)]]"),
        ("device float* a [[buffer(31)]]", "indices 0 to 30"),
        ("threadgroup float* a [[threadgroup(40)]]", "indices 0 to 30"),
        ("texture2d<float, access::read> t [[texture(0)]]", "binds buffers only"),
        ("texture2d<float> t", "binds buffers only"),
        ("sampler s [[sampler(0)]]", "binds buffers only"),
        ("device float* x [[texture(0)]]", "binds buffers only"),
        ("device float** x [[buffer(0)]]", "pointer to a pointer"),
        ("device float* x [[buffer(0), frobnicate]]", "unknown attribute [[frobnicate]]"),
        ("device float* x [[thread_position_in_grid]]", "must be passed by value"),
        ("threadgroup float* t [[buffer(0)]]", "use [[threadgroup(i)]], not [[buffer(i)]]"),
        ("device float* t [[threadgroup(0)]]", "use [[buffer(i)]]"),
        ("uint a [[thread_position_in_grid, thread_index_in_threadgroup]]", "two builtin attributes"),
        ("device float* x [[buffer(n)]]", "needs an integer constant index"),
        ("float4 v [[stage_in]]", "stage-in"),
    ],
)
def test_rejections_name_the_line_and_the_rule(params, message):
    src = "kernel void bad(\n" + params + ") {}\n"
    with pytest.raises(CompileError) as e:
        parse(src)
    assert message in str(e.value)
    assert e.value.line == 4
    assert "kernel.metal:4" in str(e.value)
    assert "kernel.metal:4: error:" in e.value.log


def test_more_rejections():
    with pytest.raises(CompileError, match="must return void"):
        parse("kernel float f(device float* x [[buffer(0)]]) { return 0; }")
    with pytest.raises(CompileError, match="two kernels are named 'f'"):
        parse("kernel void f(device float* x) {}\n[[host_name(\"f\")]] kernel void g(device float* x) {}")
    with pytest.raises(CompileError, match="needs \\[\\[host_name"):
        parse("template <typename T> kernel void f(device T* x) {}\ntemplate kernel void f<float>(device float*);")
    with pytest.raises(CompileError, match="no template kernel 'g'"):
        parse("template [[host_name(\"x\")]] kernel void g<float>(device float*);")
    with pytest.raises(CompileError, match="needs a value for template parameter 'U'"):
        parse("template <typename T, typename U> kernel void f(device T* x) {}\n"
              "template [[host_name(\"x\")]] kernel decltype(f<float>) f<float>;")
    with pytest.raises(CompileError, match="constant address space"):
        parse("bool flag [[function_constant(0)]];")
    with pytest.raises(CompileError, match="both use index 0"):
        parse("constant bool a [[function_constant(0)]];\nconstant bool b [[function_constant(0)]];")


def test_filename_in_messages():
    with pytest.raises(CompileError) as e:
        _C.parse_msl("kernel void f(float* x) {}", filename="relu.metal")
    assert str(e.value).startswith("relu.metal:1:")


def test_preprocessed_text_keeps_lines():
    src = HEADER + "#define N 4\nkernel void f(device float* x [[buffer(0)]]) { x[0] = N; }\n"
    parsed = _C.parse_msl(src)
    assert parsed.preprocessed.count("\n") == src.count("\n")
    assert parsed.preprocessed.splitlines()[3] == "kernel void f(device float* x [[buffer(0)]]) { x[0] = 4; }"


# ---- CUDA ----------------------------------------------------------------------------------------


def test_cuda_extern_c_kernels():
    parsed = _C.parse_cuda("""
#include <cuda_fp16.h>
struct Params { int n; float scale; };
extern "C" __global__ void __launch_bounds__(256) scale(const float* __restrict__ x, float* y, int n,
                                                         __half h, Params p, float4 v) {}
extern "C" {
__global__ void other(double* d, unsigned long long n) {}
}
__device__ float helper(float x) { return x; }
""")
    scale, other = parsed.kernels
    assert parsed.dialect == "cuda" and scale.dialect == "cuda"
    assert scale.max_threads_per_group == 256 and scale.name_expression == ""
    assert [(p.name, p.kind, p.type, p.is_const, p.index) for p in scale.params] == [
        ("x", "buffer", "float", True, 0), ("y", "buffer", "float", False, 1), ("n", "value", "int", False, 2),
        ("h", "value", "__half", False, 3), ("p", "value", "Params", False, 4), ("v", "value", "float4", False, 5)]
    assert [p.name for p in scale.arguments] == ["x", "y", "n", "h", "p", "v"]
    assert [(p.type, p.size) for p in other.params] == [("double", 8), ("unsigned long long", 8)]


def test_cuda_templates_through_name_expressions():
    src = """
template <typename T, int BLOCK = 128>
__global__ void scale(T* x, T s, int n) {}
__global__ void plain(float* x) {}
"""
    src += "template __global__ void scale<double>(double*, double, int);\n"  # not a kernel by itself
    parsed = _C.parse_cuda(src, name_expressions=["scale<float>", "scale<__half, 64>"])
    names = [(k.name, k.name_expression, k.template_args) for k in parsed.kernels]
    assert names == [("plain", "plain", []), ("scale<float>", "scale<float>", ["float", "128"]),
                     ("scale<__half, 64>", "scale<__half, 64>", ["__half", "64"])]
    half = parsed.kernel("scale<__half, 64>")
    assert [(p.name, p.type) for p in half.params] == [("x", "__half"), ("s", "__half"), ("n", "int")]
    with pytest.raises(CompileError, match="names no __global__ template"):
        _C.parse_cuda(src, name_expressions=["nothere<float>"])


def test_cuda_rejections():
    with pytest.raises(CompileError, match="takes pointers and values only"):
        _C.parse_cuda('extern "C" __global__ void f(const float& x) {}')
    with pytest.raises(CompileError, match="cannot pass by value"):
        _C.parse_cuda('extern "C" __global__ void f(Unknown u) {}')
