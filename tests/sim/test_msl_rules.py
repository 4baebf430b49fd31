"""The negative corpus: C++ that is not MSL. Apple's compiler rejects each snippet, so the sim
must too (a sim that accepted them would certify kernels that fail on a Mac). Each case names
the rule of the Metal Shading Language Specification (3.1) it breaks, and the CompileError must
name that rule, cite the section and point at the offending line."""

import textwrap

import pytest

import metalrt

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"
KERNEL = "\nkernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = f(y[i]); }\n"

# (id, source, line of the violation, words the message must contain)
SNIPPETS = [
    # 2.1 Scalar Data Types: no double, long double, long long
    ("double", "inline float f(float x) { double d = x; return float(d * 2.0); }", 3,
     ["double", "section 2.1"]),
    ("long-double-literal", "inline float f(float x) { return x * 1.5L; }", 3,
     ["long double", "section 2.1"]),
    ("long-long", "inline float f(float x) { long long n = 3; return x + float(n); }", 3,
     ["long long", "section 2.1"]),
    # 1.4.4 Restrictions
    ("recursion", "inline float f(float x) { return x <= 1.0f ? 1.0f : x * f(x - 1.0f); }", 3,
     ["recursi", "section 1.4.4"]),
    ("mutual-recursion", """
inline bool is_odd(uint n);
inline bool is_even(uint n) { return n == 0 ? true : is_odd(n - 1); }
inline bool is_odd(uint n) { return n == 0 ? false : is_even(n - 1); }
inline float f(float x) { return is_even(uint(x)) ? x : -x; }""", 4, ["recursi", "section 1.4.4"]),
    ("new", "inline float f(float x) { thread float* p = new float[4]; p[0] = x; return p[0]; }", 3,
     ["new operator", "section 1.4.4"]),
    ("delete", "inline float f(float x) { thread float* p = &x; delete p; return x; }", 3,
     ["delete operator", "section 1.4.4"]),
    ("malloc", "inline float f(float x) { thread float* p = (thread float*)malloc(16); return x; }", 3,
     ["malloc", "C library", "section 1.4.4"]),
    ("printf", "inline float f(float x) { printf(\"%f\", x); return x; }", 3,
     ["printf", "section 1.4.4"]),
    ("virtual", """
struct Op { virtual float apply(float x) const { return x; } };
inline float f(float x) { Op op; return op.apply(x); }""", 3, ["virtual", "section 1.4.4"]),
    ("throw", "inline float f(float x) { if (x < 0.0f) throw 1; return x; }", 3,
     ["exception", "section 1.4.4"]),
    ("try-catch", "inline float f(float x) { try { return x; } catch (...) { return 0.0f; } }", 3,
     ["exception", "section 1.4.4"]),
    ("dynamic-cast", """
struct A { int a; };
inline float f(float x) { thread A a; thread A* p = dynamic_cast<thread A*>(&a); return x; }""", 4,
     ["dynamic_cast", "section 1.4.4"]),
    ("typeid", "inline float f(float x) { (void)typeid(x); return x; }", 3,
     ["typeid", "section 1.4.4"]),
    ("goto", "inline float f(float x) { if (x > 0.0f) goto done; x = -x; done: return x; }", 3,
     ["goto", "section 1.4.4"]),
    ("register", "inline float f(float x) { register float y = x; return y; }", 3,
     ["register", "section 1.4.4"]),
    ("thread-local", "inline float f(float x) { thread_local float y = 0.0f; return x + y; }", 3,
     ["thread_local", "section 1.4.4"]),
    ("std-namespace", "inline float f(float x) { return std::max(x, 0.0f); }", 3,
     ["standard library", "section 1.4.4"]),
    ("using-namespace-std", "using namespace std;\ninline float f(float x) { return x; }", 3,
     ["standard library", "section 1.4.4"]),
    ("main", "inline float f(float x) { return x; }\nint main() { return 0; }", 4,
     ["main", "section 1.4.4"]),
    # 4 Address Spaces: pointers and references need one, in every function
    ("pointer-parameter", "inline float first(float* p) { return p[0]; }\n"
     "inline float f(float x) { return x; }", 3, ["address space", "section 4"]),
    ("reference-parameter", "inline void twice(float& x) { x *= 2.0f; }\n"
     "inline float f(float x) { return x; }", 3, ["address space", "section 4"]),
    ("pointer-variable", "inline float f(float x) { float* p = &x; return *p; }", 3,
     ["address space", "section 4"]),
    ("pointer-cast", "inline float f(float x) { return *(float*)&x; }", 3,
     ["address space", "section 4"]),
    ("device-variable", "inline float f(float x) { device float y = x; return y; }", 3,
     ["device address space", "section 4"]),
    # 4.2 constant Address Space: program-scope and static variables live there
    ("program-scope-variable", "float scale = 2.0f;\ninline float f(float x) { return x * scale; }", 3,
     ["constant address space", "section 4.2"]),
    ("program-scope-constexpr", "constexpr float kScale = 2.0f;\ninline float f(float x) { return x * kScale; }",
     3, ["constant address space", "section 4.2"]),
    ("static-local", "inline float f(float x) { static float calls = 0.0f; calls += 1.0f; return x + calls; }",
     3, ["static", "section 4.2"]),
    ("write-to-constant", """
inline float f(float x) { return x; }
kernel void w(constant float* c [[buffer(0)]], uint i [[thread_position_in_grid]]) { c[i] = 1.0f; }""", 4,
     ["read-only", "section 4.2"]),
    # 4.4 threadgroup Address Space
    ("threadgroup-initializer", """
inline float f(float x) { return x; }
kernel void t(device float* y [[buffer(0)]], uint i [[thread_position_in_threadgroup]]) {
    threadgroup float tile[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    y[i] = tile[i % 4];
}""", 5, ["initialized", "section 4.4"]),
    ("threadgroup-program-scope", "threadgroup float shared_value;\ninline float f(float x) { return x; }",
     3, ["threadgroup", "section 4.4"]),
    # 6.15 Atomic Functions: atomic_float is device-only and has no min/max
    ("threadgroup-atomic-float", """
inline float f(float x) { return x; }
kernel void t(device float* y [[buffer(0)]], uint i [[thread_position_in_threadgroup]]) {
    threadgroup atomic_float total;
    atomic_fetch_add_explicit(&total, 1.0f, memory_order_relaxed);
}""", 5, ["atomic_float", "device memory", "section 6.15"]),
    ("atomic-float-max", """
inline float f(float x) { return x; }
kernel void t(device atomic_float* m [[buffer(0)]], device const float* x [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    atomic_fetch_max_explicit(m, x[i], memory_order_relaxed);
}""", 6, ["atomic_fetch_max_explicit", "atomic_float", "section 6.15"]),
    # C++14 has no variable-length arrays
    ("variable-length-array", "inline float f(float x) { int n = int(x) + 2; float buf[n]; buf[0] = x; return buf[0]; }",
     3, ["variable", "length", "compile-time constant"]),
]

assert len(SNIPPETS) >= 20


@pytest.mark.parametrize("name,body,line,words", SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_non_msl_is_rejected_naming_the_rule(sim, name, body, line, words):
    source = HEADER + textwrap.dedent(body).lstrip("\n") + (KERNEL if "kernel void" not in body else "")
    if "kernel void" in body and " f(" not in body:
        source += KERNEL
    with pytest.raises(metalrt.CompileError) as info:
        sim.compile(source)
    err = info.value
    text = f"{err}\n{err.log}"
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    assert err.line == line, f"error at line {err.line}, expected {line}:\n{text}"
    assert f"kernel.metal:{line}:" in err.log, err.log


def test_kernel_pointer_parameter_without_address_space_is_rejected(sim):
    # Checked by the signature parser, which every backend shares.
    with pytest.raises(metalrt.CompileError) as info:
        sim.compile(HEADER + "kernel void k(float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {}\n")
    assert "address space" in str(info.value)


def test_includes_other_than_metal_headers_are_rejected(sim):
    with pytest.raises(metalrt.CompileError) as info:
        sim.compile("#include <cmath>\n" + HEADER + KERNEL.replace("f(y[i])", "y[i]"))
    assert "include" in str(info.value) and "cmath" in str(info.value)


def test_overloads_calling_each_other_are_not_recursion(sim):
    """By name, gelu(float4) calling gelu(float) looks recursive; the compiled call graph
    shows it is not, and the sim accepts it."""
    import torch

    lib = sim.compile(HEADER + """
inline float act(float x) { return x > 0.0f ? x : 0.1f * x; }
inline float4 act(float4 v) { return float4(act(v.x), act(v.y), act(v.z), act(v.w)); }
kernel void k(device float4* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = act(y[i]); }
""")
    y = torch.tensor([[1.0, -1.0, 2.0, -2.0]])
    lib.k(y, threads=1)
    assert torch.allclose(y, torch.tensor([[1.0, -0.1, 2.0, -0.2]]))
