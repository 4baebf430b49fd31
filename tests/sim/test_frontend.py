"""The front end's translation, read as text: what it rewrites (and what it must leave alone),
the kernel flags the executor schedules by, the line structure clang's messages rely on, and
function constants. Behaviour is tested end to end in test_corpus.py; these pin the pieces."""

import re

import pytest

import metalrt

_C = pytest.importorskip("metalrt._C")
from metalrt.sim import frontend  # noqa: E402

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


def translate(source: str, constants=None):
    return frontend.translate(_C.parse_msl(source), constants=constants)


def user_part(tr) -> str:
    """The translated user source (between the #line 1 and the generated tail)."""
    body = tr.cpp.split('#line 1 "kernel.metal"\n', 1)[1]
    return body.split('\n\n#line 1 "metalrt-sim-generated.cpp"', 1)[0]


def flat(text: str) -> str:
    """Whitespace squeezed, and none inside template brackets: for comparing translations."""
    text = " ".join(text.split())
    return re.sub(r"\s*([<>,(])\s*", r"\1", text)


def one_kernel(body: str, params: str = "device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]"):
    return HEADER + f"kernel void k({params}) {{\n{body}\n}}\n"


def test_floating_literals_are_float_and_half_literals_half():
    out = user_part(translate(one_kernel("y[i] = 1.0 + 2.5e-3 + .5 + 3.f + 0x1p-2 + float(1.5h) + 7 + 0x1e;")))
    assert "1.0f + 2.5e-3f + .5f + 3.f + 0x1p-2f + float(1.5f16) + 7 + 0x1e" in out


def test_vector_constructors_and_conversions_become_msl_conversions():
    out = user_part(translate(one_kernel(
        "float4 v = float4(y[i]); int4 n = int4(v); half2 h = half2(v.xy);\n"
        "float4 w = (float4)n + static_cast<float4>(n) + metal::float4(v.xy, 0.0, 1.0);\n"
        "y[i] = float(w.x) + int(h.x);")))
    assert "::msim::make<float4>(y[i])" in out
    assert "::msim::make<int4>(v)" in out and "::msim::make<half2>(v.xy)" in out
    assert "::msim::make<float4>(n)" in out  # the C-style cast: a conversion, never a bit cast
    assert out.count("::msim::make<float4>(") == 4
    assert "float(w.x) + int(h.x)" in out  # scalar casts stay as written


def test_template_type_parameters_construct_through_make():
    out = user_part(translate(HEADER + """
template <typename T> T twice(T x) { return T(2) * x; }
kernel void k(device float4* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = twice(y[i]); }
"""))
    assert "::msim::make<T>(2)" in out


def test_address_spaces_become_checked_pointers_and_references():
    out = flat(user_part(translate(HEADER + """
struct P { float a; };
inline void put(device float* dst, thread float& acc, threadgroup float* t, constant P& p) { dst[0] = acc + t[0] + p.a; }
kernel void k(device float* y [[buffer(0)]], const device float4* x [[buffer(1)]],
              constant float* c [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    thread float local = c[i];
    device const float4* x2 = (device const float4*)y;
    device float4* y4 = reinterpret_cast<device float4*>(y);
    y4[0] = x2[0] + x[i];
}
""")))
    assert "::msim::ptr<float,::msim::device_space>dst" in out
    assert "float& acc" in out and not re.search(r"\bthread\b", out)
    assert "::msim::ptr<float,::msim::threadgroup_space>t" in out
    assert "const P & p" in out
    assert "::msim::ptr<const float4,::msim::device_space>x" in out
    assert "::msim::ptr<const float,::msim::constant_space>c" in out
    assert "::msim::ptr_cast<::msim::ptr<const float4,::msim::device_space>>(y)" in out
    assert "::msim::ptr_cast<::msim::ptr<float4,::msim::device_space>>(y)" in out


def test_threadgroup_declarations_and_program_scope_constants():
    out = user_part(translate(HEADER + """
constant float kTable[3] = {1.0, 2.0, 3.0};
static constant constexpr const int kN = 4;
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_threadgroup]]) {
    threadgroup float a[16][kN], b[8];
    threadgroup atomic_uint count;
    a[i][0] = kTable[i % 3]; b[0] = 0; atomic_store_explicit(&count, 0u, memory_order_relaxed);
}
"""))
    assert "static const float kTable[3] = {1.0f, 2.0f, 3.0f};" in out
    assert re.search(r"static\s+constexpr const int kN = 4;", out)
    assert "auto& a = ::msim::threadgroup_variable<float[16][kN]>(0u); " \
           "auto& b = ::msim::threadgroup_variable<float[8]>(1u);" in out
    assert "auto& count = ::msim::threadgroup_variable<atomic_uint>(2u);" in out


def test_attributes_kernel_keyword_and_instantiations_are_removed():
    tr = translate(HEADER + """
template <typename T>
[[kernel]] void scale(device T* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] *= T(2); }
template [[host_name("scale_f")]] [[kernel]] void scale<float>(device float*, uint);
""")
    out = user_part(tr)
    assert "[[" not in out and "host_name" not in out and "kernel" not in out
    assert "::scale<float>(" in tr.cpp


def test_each_output_line_comes_from_the_same_input_line():
    source = HEADER + """
struct S { float4 a; };
constant float k[2] = {1.0, 2.0};
kernel void f(device S* s [[buffer(0)]],
              uint i [[thread_position_in_grid]]) {
    threadgroup float t[4];
    t[i % 4] = k[i % 2];
    s[i].a = float4(t[0],
                    1.0, 2.0, 3.0);
}
"""
    out = user_part(translate(source))
    assert out.count("\n") == source.count("\n")
    for src_line, out_line in zip(source.splitlines(), out.splitlines()):
        words = re.findall(r"\b(?:t|k|s|S|i)\b", src_line)
        assert sorted(words) == sorted(re.findall(r"\b(?:t|k|s|S|i)\b", out_line)), (src_line, out_line)


def flags(source: str) -> dict:
    return {k.host_name: k.uses for k in translate(source).kernels}


def test_kernel_flags_follow_the_call_graph():
    uses = flags(HEADER + """
inline float reduce(float v) { return simd_sum(v); }
inline void sync() { threadgroup_barrier(mem_flags::mem_threadgroup); }
inline float middle(float v) { sync(); return reduce(v); }
kernel void plain(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]],
                  uint simd_lane [[thread_index_in_simdgroup]]) { y[i] += float(simd_lane); }
kernel void deep(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = middle(y[i]); }
kernel void atom(device atomic_uint* c [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(c, 1u, memory_order_relaxed);
}
kernel void tg(device float* y [[buffer(0)]], threadgroup float* s [[threadgroup(0)]],
               uint i [[thread_position_in_grid]]) { s[0] = y[i]; }
""")
    assert not any(uses["plain"].astuple())
    assert uses["deep"].barrier and uses["deep"].simd and not uses["deep"].atomics
    assert uses["atom"].atomics and uses["atom"].device_atomics and not uses["atom"].barrier
    assert uses["tg"].threadgroup and not uses["tg"].barrier


def test_function_constants_by_name_and_index():
    source = HEADER + """
constant bool kA [[function_constant(0)]];
constant uint kB [[function_constant(1)]];
constant half kC [[function_constant(2)]];
constant float2 kD [[function_constant(3)]];
constant int kE [[function_constant(4)]];
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    if (is_function_constant_defined(kE)) y[i] = float(kE);
    y[i] += kA ? float(kB) + float(kC) + kD.y : 0.0f;
}
"""
    out = user_part(translate(source, {"kA": True, 1: 7, "kC": 0.1, "kD": (1.0, 2.5)}))
    assert "static constexpr bool kA = true;" in out
    assert "static constexpr uint kB = uint(7l);" in out
    assert "static constexpr half kC = half(0x1.9980000000000p-4f);" in out  # 0.1 rounded to half
    assert "static constexpr float2 kD = float2{float(0x1.0000000000000p+0f), float(0x1.4000000000000p+1f)};" in out
    assert 'static constexpr ::msim::missing_constant<int> kE{"kE", 4};' in out
    assert "if (false) y[i]" in out


@pytest.mark.parametrize("constants,words", [
    ({"kB": -1}, ["kB", "uint", "outside"]),
    ({"kA": 2.5}, ["kA", "bool"]),
    ({"kZ": 1}, ["kZ", "does not declare", "kA (index 0)"]),
])
def test_function_constant_values_are_checked(constants, words):
    source = HEADER + """
constant bool kA [[function_constant(0)]];
constant uint kB [[function_constant(1)]];
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = kA ? float(kB) : 0.0f; }
"""
    with pytest.raises(metalrt.CompileError) as info:
        translate(source, constants)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_overloads_are_only_suspected_recursion():
    tr = translate(HEADER + """
inline float act(float x) { return x; }
inline float2 act(float2 v) { return float2(act(v.x), act(v.y)); }
kernel void k(device float2* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = act(y[i]); }
""")
    assert tr.recursion_suspects == [["act", "act"]]
    from metalrt.sim import compiler

    assert not compiler.call_cycles(compiler.find(), tr.cpp)


def test_methods_with_address_space_qualifiers():
    out = user_part(translate(HEADER + """
struct Acc {
    float v;
    float get() const thread { return v; }
    float twice() const device { return 2.0f * v; }
};
kernel void k(device Acc* a [[buffer(0)]], uint i [[thread_position_in_grid]]) { a[i].v = a[i].twice(); }
"""))
    assert "float get() const  { return v; }" in out
    assert "float twice() const  { return 2.0f * v; }" in out
