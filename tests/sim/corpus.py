"""A corpus of MSL kernels written as a Metal programmer writes them, each with the launch that
runs it and the PyTorch computation it must match.

Every case is backend-neutral: it receives a `Target` (tests/sim/conftest.py) whose tensors
live on that backend's device, so the same table runs on the sim and on a Mac. A case is

    @case('''<MSL source>''', constants={...})
    def name(t, lib):
        ...launch lib.<kernel>(...), assert against torch...

Tolerances follow PyTorch's pairs (float32 rtol 1.3e-6 / atol 1e-5, float16 1e-3 / 1e-5) and are
loosened only where a case says why.
"""

from __future__ import annotations

import math
import struct
import textwrap
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class Case:
    name: str
    source: str
    check: Callable
    compile_kwargs: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(source: str, **compile_kwargs):
    def register(fn):
        CASES.append(Case(fn.__name__, textwrap.dedent(source), fn, compile_kwargs))
        return fn

    return register


def close(actual, expected, rtol=1.3e-6, atol=1e-5):
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=rtol, atol=atol)


_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def equal(actual, expected):
    actual, expected = actual.cpu(), expected.cpu()
    if actual.dtype in _UNSIGNED:  # PyTorch compares these only after a widening
        actual, expected = actual.to(torch.int64), expected.to(torch.int64)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"

# ---- elementwise -------------------------------------------------------------------------------


@case(HEADER + """
kernel void vector_add(device const float* a [[buffer(0)]],
                       device const float* b [[buffer(1)]],
                       device float* out [[buffer(2)]],
                       constant uint& n [[buffer(3)]],
                       uint i [[thread_position_in_grid]]) {
    if (i < n) {
        out[i] = a[i] + b[i];
    }
}
""")
def vector_add(t, lib):
    a, b, out = t.randn(1000), t.randn(1000, seed=1), t.zeros(1000)
    lib.vector_add(a, b, out, 1000, threads=1024, group_size=256)
    close(out, a + b)


@case(HEADER + """
kernel void saxpy4(device const float4* x [[buffer(0)]],
                   device const float4* y [[buffer(1)]],
                   device float4* out [[buffer(2)]],
                   constant float& alpha [[buffer(3)]],
                   uint i [[thread_position_in_grid]]) {
    float4 v = x[i];
    out[i] = alpha * v + y[i].wzyx + float4(v.xy, v.zw).yxwz;
}
""")
def saxpy_float4(t, lib):
    x, y, out = t.randn(256, 4), t.randn(256, 4, seed=1), t.zeros(256, 4)
    lib.saxpy4(x, y, out, 0.5, threads=256)
    close(out, 0.5 * x + y.flip(1) + x[:, [1, 0, 3, 2]])


@case(HEADER + """
kernel void half_poly(device const half4* x [[buffer(0)]],
                      device half4* y [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    half4 v = x[i];
    y[i] = v * 1.5h + half4(0.25h) - v * v;
}
""")
def half_elementwise(t, lib):
    # half arithmetic rounds after every operation, as PyTorch's float16 ops do on the CPU.
    x = t.randn(512, 4, dtype=torch.float16)
    y = torch.empty_like(x)
    lib.half_poly(x, y, threads=512)
    xc = x.cpu()
    expected = (xc * torch.tensor(1.5, dtype=torch.float16) + torch.tensor(0.25, dtype=torch.float16)) - xc * xc
    close(y, expected, rtol=1e-3, atol=1e-5)


@case(HEADER + """
kernel void bf16_affine(device const bfloat* x [[buffer(0)]],
                        device bfloat* y [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
    bfloat two = bfloat(2.0f);
    y[i] = x[i] * two + bfloat(0.5f);
}
""")
def bfloat_elementwise(t, lib):
    x = t.randn(1000, dtype=torch.bfloat16)
    y = torch.empty_like(x)
    lib.bf16_affine(x, y, threads=1000)
    xc = x.cpu()
    close(y, xc * torch.tensor(2.0, dtype=torch.bfloat16) + torch.tensor(0.5, dtype=torch.bfloat16),
          rtol=1.6e-2, atol=1e-5)


@case(HEADER + """
inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654;
    return 0.5 * x * (1.0 + precise::tanh(k * (x + 0.044715 * x * x * x)));
}

kernel void activations(device const float* x [[buffer(0)]],
                        device float* relu_out [[buffer(1)]],
                        device float* sigmoid_out [[buffer(2)]],
                        device float* gelu_out [[buffer(3)]],
                        device float* silu_out [[buffer(4)]],
                        uint i [[thread_position_in_grid]]) {
    float v = x[i];
    relu_out[i] = max(v, 0.0f);
    float s = 1.0 / (1.0 + exp(-v));
    sigmoid_out[i] = s;
    gelu_out[i] = gelu_tanh(v);
    silu_out[i] = v / (1.0f + fast::exp(-v));
}
""")
def activations(t, lib):
    x = t.randn(4096) * 3
    outs = [t.zeros(4096) for _ in range(4)]
    lib.activations(x, *outs, threads=4096)
    relu, sig, gelu, silu = outs
    close(relu, torch.relu(x))
    close(sig, torch.sigmoid(x), rtol=1e-5, atol=1e-6)  # libm exp vs PyTorch's: a few ULP
    close(gelu, torch.nn.functional.gelu(x, approximate="tanh"), rtol=1e-5, atol=1e-6)
    close(silu, torch.nn.functional.silu(x), rtol=1e-5, atol=1e-6)


# ---- constructors, conversions, reinterpretation ----------------------------------------------


@case(HEADER + """
kernel void constructors(device const float4* x [[buffer(0)]],
                         device float4* f_out [[buffer(1)]],
                         device int4* i_out [[buffer(2)]],
                         device half4* h_out [[buffer(3)]],
                         device uint2* u_out [[buffer(4)]],
                         uint i [[thread_position_in_grid]]) {
    float4 v = x[i];
    float4 splat = float4(v.x);
    float4 parts = float4(v.zw, v.x, 1.0);
    float4 from_int = float4(int4(3, -2, 7, 0));
    f_out[4 * i + 0] = splat;
    f_out[4 * i + 1] = parts;
    f_out[4 * i + 2] = from_int + float4(float2(1.0, 2.0), float2(3.0));
    f_out[4 * i + 3] = (float4)int4(v * 10.0);
    i_out[i] = int4(v * 10.0);          // conversion, truncating toward zero
    h_out[i] = half4(v);                // round to nearest even
    u_out[i] = uint2(int2(abs(v.xy) * 100.0));
}
""")
def constructors(t, lib):
    x = t.randn(64, 4)
    f_out, i_out = t.zeros(256, 4), t.zeros(64, 4, dtype=torch.int32)
    h_out, u_out = t.zeros(64, 4, dtype=torch.float16), t.zeros(64, 2, dtype=torch.uint32)
    lib.constructors(x, f_out, i_out, h_out, u_out, threads=64)
    f = f_out.cpu().view(64, 4, 4)
    xc = x.cpu()
    close(f[:, 0], xc[:, :1].expand(64, 4))
    close(f[:, 1], torch.stack([xc[:, 2], xc[:, 3], xc[:, 0], torch.ones(64)], 1))
    close(f[:, 2], torch.tensor([4.0, 0.0, 10.0, 3.0]).expand(64, 4))
    close(f[:, 3], torch.trunc(xc * 10))
    equal(i_out, torch.trunc(xc * 10).int())
    equal(h_out, xc.half())
    equal(u_out, torch.trunc(xc[:, :2].abs() * 100).long())


@case(HEADER + """
kernel void reinterpret(device const float* x [[buffer(0)]],
                        device uint* bits [[buffer(1)]],
                        device float* back [[buffer(2)]],
                        device uint* packed [[buffer(3)]],
                        uint i [[thread_position_in_grid]]) {
    uint b = as_type<uint>(x[i]);
    bits[i] = b;
    back[i] = as_type<float>(b ^ 0x80000000u);   // flips the sign bit
    packed[i] = as_type<uint>(half2(x[i], -x[i]));
}
""")
def as_type(t, lib):
    x = t.randn(300)
    bits, back, packed = t.zeros(300, dtype=torch.uint32), t.zeros(300), t.zeros(300, dtype=torch.uint32)
    lib.reinterpret(x, bits, back, packed, threads=300)
    xc = x.cpu()
    equal(bits, xc.view(torch.int32).long() & 0xFFFFFFFF)
    equal(back, -xc)
    halves = torch.stack([xc.half(), (-xc).half()], 1).contiguous().view(torch.int32).view(-1)
    equal(packed, halves.long() & 0xFFFFFFFF)


@case(HEADER + """
kernel void normalize_packed(device const packed_float3* v [[buffer(0)]],
                             device packed_float3* unit [[buffer(1)]],
                             device float* len [[buffer(2)]],
                             uint i [[thread_position_in_grid]]) {
    float3 p = v[i];
    len[i] = length(p);
    unit[i] = normalize(p);
}
""")
def packed_float3(t, lib):
    v = t.randn(100, 3)  # packed_float3 is 12 bytes: a (N, 3) float tensor
    unit, length = t.zeros(100, 3), t.zeros(100)
    lib.normalize_packed(v, unit, length, threads=100)
    vc = v.cpu()
    close(length, vc.norm(dim=1), rtol=1e-5, atol=1e-6)
    close(unit, vc / vc.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-6)


# ---- structs, constant data, function constants -------------------------------------------------


@case(HEADER + """
struct Params {
    float4 scale;
    float bias;
    uint n;
    int2 shift;
};

kernel void affine_struct(device const float4* x [[buffer(0)]],
                          device float4* y [[buffer(1)]],
                          constant Params& p [[buffer(2)]],
                          uint i [[thread_position_in_grid]]) {
    if (i >= p.n) return;
    y[i] = x[i] * p.scale + p.bias + float(p.shift.x - p.shift.y);
}
""")
def struct_in_constant_memory(t, lib):
    x, y = t.randn(40, 4), t.zeros(40, 4)
    params = struct.pack("<4ffI2i", 1.0, 2.0, -1.0, 0.5, 0.25, 33, 7, 2)  # 32 bytes, float4-aligned
    lib.affine_struct(x, y, params, threads=40)
    expected = x.cpu() * torch.tensor([1.0, 2.0, -1.0, 0.5]) + 0.25 + 5.0
    close(y[:33], expected[:33])
    equal(y[33:], torch.zeros(7, 4))


@case(HEADER + """
struct Particle {
    float3 position;   // 16 bytes in MSL
    float mass;
};

kernel void momentum(device const Particle* particles [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
    device const Particle& p = particles[i];
    out[i] = length(p.position) * p.mass + particles[i].position.z;
}
""")
def struct_in_device_memory(t, lib):
    raw = t.randn(50, 8)  # position at 0..2, padding 3, mass 4, padding 5..7 (the struct is 32 bytes)
    out = t.zeros(50)
    lib.momentum(raw, out, threads=50)
    r = raw.cpu()
    close(out, r[:, :3].norm(dim=1) * r[:, 4] + r[:, 2], rtol=1e-5, atol=1e-6)


@case(HEADER + """
constant float kWeights[5] = {0.1, 0.2, 0.4, 0.2, 0.1};
constant int kRadius = 2;

kernel void blur1d(device const float* x [[buffer(0)]],
                   device float* y [[buffer(1)]],
                   constant int& n [[buffer(2)]],
                   uint gid [[thread_position_in_grid]]) {
    int i = int(gid);
    float acc = 0.0;
    for (int k = -kRadius; k <= kRadius; ++k) {
        int j = clamp(i + k, 0, n - 1);
        acc += kWeights[k + kRadius] * x[j];
    }
    y[i] = acc;
}
""")
def program_scope_constants(t, lib):
    x, y = t.randn(200), t.zeros(200)
    lib.blur1d(x, y, 200, threads=200)
    xc = x.cpu()
    padded = torch.cat([xc[:1].repeat(2), xc, xc[-1:].repeat(2)])
    w = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1])
    expected = sum(w[k] * padded[k:k + 200] for k in range(5))
    close(y, expected, rtol=1e-5, atol=1e-6)


@case(HEADER + """
constant bool kUseBias [[function_constant(0)]];
constant float kScale [[function_constant(1)]];
constant int kPower [[function_constant(2)]];
constant float kOffset [[function_constant(3)]];
constant bool kHasOffset = is_function_constant_defined(kOffset);

kernel void specialised(device const float* x [[buffer(0)]],
                        device const float* bias [[buffer(1)]],
                        device float* y [[buffer(2)]],
                        uint i [[thread_position_in_grid]]) {
    float v = x[i];
    float p = 1.0;
    for (int k = 0; k < kPower; ++k) p *= v;
    float r = p * kScale;
    if (kUseBias) r += bias[i];
    if (kHasOffset) r += kOffset;
    y[i] = r;
}
""", constants={"kUseBias": True, 1: 2.5, "kPower": 3})
def function_constants(t, lib):
    x, bias, y = t.randn(128), t.randn(128, seed=3), t.zeros(128)
    lib.specialised(x, bias, y, threads=128)
    close(y, x.cpu() ** 3 * 2.5 + bias.cpu(), rtol=1e-5, atol=1e-6)


@case(HEADER + """
template <typename T>
kernel void scale(device const T* x [[buffer(0)]],
                  device T* y [[buffer(1)]],
                  constant float& alpha [[buffer(2)]],
                  uint i [[thread_position_in_grid]]) {
    y[i] = T(float(x[i]) * alpha);
}

template [[host_name("scale_f32")]] kernel void scale<float>(device const float*, device float*, constant float&, uint);
template [[host_name("scale_f16")]] kernel void scale<half>(device const half*, device half*, constant float&, uint);
""")
def templates_with_host_name(t, lib):
    assert set(lib.kernel_names()) == {"scale_f32", "scale_f16"}
    x32, y32 = t.randn(100), t.zeros(100)
    lib.scale_f32(x32, y32, 3.0, threads=100)
    close(y32, x32 * 3)
    x16 = t.randn(100, dtype=torch.float16)
    y16 = torch.empty_like(x16)
    lib.scale_f16(x16, y16, 3.0, threads=100)
    close(y16, (x16.cpu().float() * 3).half(), rtol=1e-3, atol=1e-5)


# ---- grids and builtins -------------------------------------------------------------------------


@case(HEADER + """
kernel void transpose(device const float* in [[buffer(0)]],
                      device float* out [[buffer(1)]],
                      constant uint2& size [[buffer(2)]],
                      uint2 gid [[thread_position_in_grid]]) {
    if (gid.x >= size.x || gid.y >= size.y) return;
    out[gid.x * size.y + gid.y] = in[gid.y * size.x + gid.x];
}
""")
def grid_2d_transpose(t, lib):
    h, w = 37, 53
    x, y = t.randn(h, w), t.zeros(w, h)
    lib.transpose(x, y, (w, h), threads=(w, h), group_size=(16, 8))
    equal(y, x.t().contiguous())


@case(HEADER + """
kernel void grid3d(device uint* out [[buffer(0)]],
                   uint3 gid [[thread_position_in_grid]],
                   uint3 size [[threads_per_grid]]) {
    uint linear = gid.x + size.x * (gid.y + size.y * gid.z);
    out[linear] = gid.x + 100 * gid.y + 10000 * gid.z;
}
""")
def grid_3d(t, lib):
    x, y, z = 7, 5, 3
    out = t.zeros(z, y, x, dtype=torch.uint32)
    lib.grid3d(out, threads=(x, y, z), group_size=(4, 2, 2))
    zz, yy, xx = torch.meshgrid(torch.arange(z), torch.arange(y), torch.arange(x), indexing="ij")
    equal(out, xx + 100 * yy + 10000 * zz)


_BUILTINS = """
kernel void builtins_{T}(device uint* out [[buffer(0)]],
                         {T}3 grid_pos [[thread_position_in_grid]],
                         {T}3 group_pos [[thread_position_in_threadgroup]],
                         {T}3 group_id [[threadgroup_position_in_grid]],
                         {T}3 group_size [[threads_per_threadgroup]],
                         {T}3 groups [[threadgroups_per_grid]],
                         {T}3 grid_size [[threads_per_grid]],
                         {T} index_in_group [[thread_index_in_threadgroup]],
                         {T} lane [[thread_index_in_simdgroup]],
                         {T} simd_id [[simdgroup_index_in_threadgroup]],
                         {T} simd_width [[threads_per_simdgroup]],
                         {T} simds [[simdgroups_per_threadgroup]]) {{
    uint linear = uint(grid_pos.x) + uint(grid_size.x) * (uint(grid_pos.y) + uint(grid_size.y) * uint(grid_pos.z));
    device uint* o = out + 20 * linear;
    o[0] = grid_pos.x; o[1] = grid_pos.y; o[2] = grid_pos.z;
    o[3] = group_pos.x; o[4] = group_pos.y; o[5] = group_pos.z;
    o[6] = group_id.x; o[7] = group_id.y; o[8] = group_id.z;
    o[9] = group_size.x * 10000 + group_size.y * 100 + group_size.z;
    o[10] = groups.x * 10000 + groups.y * 100 + groups.z;
    o[11] = grid_size.x * 10000 + grid_size.y * 100 + grid_size.z;
    o[12] = index_in_group;
    o[13] = lane;
    o[14] = simd_id;
    o[15] = simd_width;
    o[16] = simds;
    o[17] = 0; o[18] = 0; o[19] = 7;
}}

// The positional builtins also come as 2-vectors and scalars (the leading components).
kernel void narrow_{T}(device uint* out [[buffer(0)]],
                       {T}2 xy [[thread_position_in_grid]],
                       uint3 group [[threadgroup_position_in_grid]],
                       uint3 local [[thread_position_in_threadgroup]],
                       uint3 group_size [[threads_per_threadgroup]],
                       uint3 size [[threads_per_grid]]) {{
    uint z = group.z * group_size.z + local.z;
    out[20 * (xy.x + size.x * (xy.y + size.y * z)) + 17] = xy.x + 1000 * xy.y;
}}

kernel void scalar_{T}(device uint* out [[buffer(0)]],
                       {T} x [[thread_position_in_grid]],
                       uint3 group [[threadgroup_position_in_grid]],
                       uint3 local [[thread_position_in_threadgroup]],
                       uint3 group_size [[threads_per_threadgroup]],
                       uint3 size [[threads_per_grid]]) {{
    uint3 g = group * group_size + local;
    out[20 * (x + size.x * (g.y + size.y * g.z)) + 18] = x;
}}
"""


@case(HEADER + _BUILTINS.format(T="uint") + _BUILTINS.format(T="ushort"))
def builtins_uint_and_ushort(t, lib):
    gx, gy, gz = 16, 6, 2   # 192 threads per group: 6 SIMD-groups
    nx, ny, nz = 2, 2, 3    # groups
    X, Y, Z = gx * nx, gy * ny, gz * nz
    for kernel in ("builtins_uint", "builtins_ushort"):
        out = t.zeros(X * Y * Z * 20, dtype=torch.uint32)
        for name in (kernel, kernel.replace("builtins", "narrow"), kernel.replace("builtins", "scalar")):
            lib[name](out, threads=(X, Y, Z), group_size=(gx, gy, gz))
        got = out.cpu().to(torch.int64).view(Z, Y, X, 20)
        z, y, x = torch.meshgrid(torch.arange(Z), torch.arange(Y), torch.arange(X), indexing="ij")
        lx, ly, lz = x % gx, y % gy, z % gz
        index = lx + gx * (ly + gy * lz)
        expected = torch.stack([
            x, y, z, lx, ly, lz, x // gx, y // gy, z // gz,
            torch.full_like(x, gx * 10000 + gy * 100 + gz),
            torch.full_like(x, nx * 10000 + ny * 100 + nz),
            torch.full_like(x, X * 10000 + Y * 100 + Z),
            index, index % 32, index // 32, torch.full_like(x, 32), torch.full_like(x, 6),
            x + 1000 * y, x, torch.full_like(x, 7),
        ], -1)
        equal(got, expected)


@case(HEADER + """
kernel void mark(device atomic_uint* hits [[buffer(0)]],
                 constant uint& n [[buffer(1)]],
                 uint gid [[thread_position_in_grid]],
                 uint lid [[thread_position_in_threadgroup]],
                 uint size [[threads_per_threadgroup]]) {
    // dispatchThreads: the last threadgroup is partial, and no thread lies outside the grid
    if (gid < n && lid < size) {
        atomic_fetch_add_explicit(&hits[gid], 1u, memory_order_relaxed);
    }
}
""")
def partial_edge_groups(t, lib):
    n = 1000
    hits = t.zeros(n, dtype=torch.uint32)
    lib.mark(hits, n, threads=n, group_size=96)
    equal(hits, torch.ones(n, dtype=torch.int64))


# ---- threadgroup memory and barriers -----------------------------------------------------------


@case(HEADER + """
constant constexpr uint BLOCK = 256;

kernel void softmax_rows(device const float* x [[buffer(0)]],
                         device float* y [[buffer(1)]],
                         constant uint& cols [[buffer(2)]],
                         uint row [[threadgroup_position_in_grid]],
                         uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float scratch[BLOCK];
    device const float* in = x + row * cols;
    device float* out = y + row * cols;

    float m = -INFINITY;
    for (uint c = tid; c < cols; c += BLOCK) m = max(m, in[c]);
    scratch[tid] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = BLOCK / 2; s > 0; s >>= 1) {
        if (tid < s) scratch[tid] = max(scratch[tid], scratch[tid + s]);
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    float row_max = scratch[0];
    threadgroup_barrier(mem_flags::mem_threadgroup);

    float sum = 0.0;
    for (uint c = tid; c < cols; c += BLOCK) sum += exp(in[c] - row_max);
    scratch[tid] = sum;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = BLOCK / 2; s > 0; s >>= 1) {
        if (tid < s) scratch[tid] += scratch[tid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    float inv = 1.0 / scratch[0];
    for (uint c = tid; c < cols; c += BLOCK) out[c] = exp(in[c] - row_max) * inv;
}
""")
def softmax_threadgroup_reduction(t, lib):
    rows, cols = 8, 1000
    x, y = t.randn(rows, cols) * 4, t.zeros(rows, cols)
    lib.softmax_rows(x, y, cols, groups=rows, group_size=256)
    close(y, torch.softmax(x.cpu(), dim=1), rtol=1e-5, atol=1e-7)


@case(HEADER + """
kernel void block_sum(device const float* x [[buffer(0)]],
                      device float* sums [[buffer(1)]],
                      device float* maxes [[buffer(2)]],
                      uint gid [[thread_position_in_grid]],
                      uint group [[threadgroup_position_in_grid]],
                      uint lane [[thread_index_in_simdgroup]],
                      uint simd [[simdgroup_index_in_threadgroup]],
                      uint simds [[simdgroups_per_threadgroup]]) {
    threadgroup float partial_sum[32];
    threadgroup float partial_max[32];
    float v = x[gid];
    float s = simd_sum(v);
    float m = simd_max(v);
    if (lane == 0) {
        partial_sum[simd] = s;
        partial_max[simd] = m;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simd == 0) {
        float a = lane < simds ? partial_sum[lane] : 0.0f;
        float b = lane < simds ? partial_max[lane] : -INFINITY;
        a = simd_sum(a);
        b = simd_max(b);
        if (lane == 0) {
            sums[group] = a;
            maxes[group] = b;
        }
    }
}
""")
def simd_reduction(t, lib):
    groups, size = 16, 512
    x = t.randn(groups * size)
    sums, maxes = t.zeros(groups), t.zeros(groups)
    lib.block_sum(x, sums, maxes, threads=groups * size, group_size=size)
    close(sums, x.cpu().view(groups, size).sum(1), rtol=1e-5, atol=1e-4)
    equal(maxes, x.cpu().view(groups, size).max(1).values)


@case(HEADER + """
kernel void simd_scans(device const int* x [[buffer(0)]],
                       device int* inclusive [[buffer(1)]],
                       device int* exclusive [[buffer(2)]],
                       device float* fsum [[buffer(3)]],
                       uint i [[thread_position_in_grid]]) {
    int v = x[i];
    inclusive[i] = simd_prefix_inclusive_sum(v);
    exclusive[i] = simd_prefix_exclusive_sum(v);
    fsum[i] = simd_prefix_inclusive_sum(float(v) * 0.5f);
}
""")
def simd_prefix_sums(t, lib):
    x = t.randint(-50, 50, 256)
    inc, exc, fs = t.zeros(256, dtype=torch.int32), t.zeros(256, dtype=torch.int32), t.zeros(256)
    lib.simd_scans(x, inc, exc, fs, threads=256, group_size=64)
    per = x.cpu().view(-1, 32)
    cum = per.cumsum(1).int()
    equal(inc, cum.view(-1))
    equal(exc, (cum - per).view(-1))
    close(fs, (per.float() * 0.5).cumsum(1).view(-1))


@case(HEADER + """
kernel void scan_block(device const float* x [[buffer(0)]],
                       device float* y [[buffer(1)]],
                       uint gid [[thread_position_in_grid]],
                       uint tid [[thread_position_in_threadgroup]],
                       uint n [[threads_per_threadgroup]]) {
    threadgroup float buf[2][256];
    uint src = 0;
    buf[src][tid] = x[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint offset = 1; offset < n; offset <<= 1) {
        uint dst = 1 - src;
        float v = buf[src][tid];
        if (tid >= offset) v += buf[src][tid - offset];
        buf[dst][tid] = v;
        src = dst;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    y[gid] = buf[src][tid];
}
""")
def prefix_scan(t, lib):
    x, y = t.randint(-8, 8, 1024).float(), t.zeros(1024)
    lib.scan_block(x, y, threads=1024, group_size=256)
    equal(y, x.cpu().view(4, 256).cumsum(1).view(-1))


@case(HEADER + """
#define TILE 16

kernel void matmul_tiled(device const float* A [[buffer(0)]],
                         device const float* B [[buffer(1)]],
                         device float* C [[buffer(2)]],
                         constant uint3& dims [[buffer(3)]],   // M, N, K
                         uint2 gid [[thread_position_in_grid]],
                         uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float As[TILE][TILE];
    threadgroup float Bs[TILE][TILE];
    uint M = dims.x, N = dims.y, K = dims.z;
    uint row = gid.y, col = gid.x;
    float acc = 0.0f;
    for (uint t = 0; t < K; t += TILE) {
        As[lid.y][lid.x] = (row < M && t + lid.x < K) ? A[row * K + t + lid.x] : 0.0f;
        Bs[lid.y][lid.x] = (col < N && t + lid.y < K) ? B[(t + lid.y) * N + col] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < TILE; ++k) {
            acc += As[lid.y][k] * Bs[k][lid.x];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < M && col < N) C[row * N + col] = acc;
}
""")
def tiled_matmul(t, lib):
    M, N, K = 45, 70, 33
    a, b, c = t.randn(M, K), t.randn(K, N, seed=1), t.zeros(M, N)
    # Whole tiles (dispatchThreadgroups): every tile entry is written before the barrier.
    lib.matmul_tiled(a, b, c, (M, N, K), groups=((N + 15) // 16, (M + 15) // 16), group_size=(16, 16))
    close(c, a.cpu() @ b.cpu(), rtol=1e-5, atol=1e-5)


@case(HEADER + """
kernel void matmul_simdgroup(device const float* A [[buffer(0)]],
                             device const float* B [[buffer(1)]],
                             device float* C [[buffer(2)]],
                             constant uint& K [[buffer(3)]],
                             constant uint& N [[buffer(4)]],
                             uint2 tile [[threadgroup_position_in_grid]]) {
    // One SIMD-group computes one 8x8 tile of C.
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_float8x8 a, b;
    ulong row = tile.y * 8, col = tile.x * 8;
    for (uint k = 0; k < K; k += 8) {
        simdgroup_load(a, A + row * K + k, K);
        simdgroup_load(b, B + ulong(k) * N + col, N);
        simdgroup_multiply_accumulate(acc, a, b, acc);
    }
    simdgroup_store(acc, C + row * N + col, N);
}
""")
def simdgroup_matrix_matmul(t, lib):
    M, N, K = 16, 24, 32
    a, b, c = t.randn(M, K), t.randn(K, N, seed=1), t.zeros(M, N)
    lib.matmul_simdgroup(a, b, c, K, N, groups=(N // 8, M // 8), group_size=32)
    close(c, a.cpu() @ b.cpu(), rtol=1e-5, atol=1e-5)


@case(HEADER + """
kernel void reverse_groups(device const float* x [[buffer(0)]],
                           device float* y [[buffer(1)]],
                           threadgroup float* scratch [[threadgroup(0)]],
                           uint gid [[thread_position_in_grid]],
                           uint tid [[thread_position_in_threadgroup]],
                           uint n [[threads_per_threadgroup]]) {
    scratch[tid] = x[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[gid] = scratch[n - 1 - tid];
}
""")
def dynamic_threadgroup_memory(t, lib):
    x, y = t.randn(512), t.zeros(512)
    lib.reverse_groups(x, y, threads=512, group_size=128, threadgroup_memory={0: 128 * 4})
    equal(y, x.cpu().view(4, 128).flip(1).reshape(-1))


@case(HEADER + """
kernel void layer_norm(device const float4* x [[buffer(0)]],
                       device float4* y [[buffer(1)]],
                       device const float4* gamma [[buffer(2)]],
                       constant uint& cols4 [[buffer(3)]],
                       constant float& eps [[buffer(4)]],
                       uint row [[threadgroup_position_in_grid]],
                       uint tid [[thread_position_in_threadgroup]],
                       uint lane [[thread_index_in_simdgroup]],
                       uint simd [[simdgroup_index_in_threadgroup]],
                       uint size [[threads_per_threadgroup]]) {
    threadgroup float sums[32];
    threadgroup float sq[32];
    device const float4* in = x + row * cols4;
    float s = 0.0f, s2 = 0.0f;
    for (uint c = tid; c < cols4; c += size) {
        float4 v = in[c];
        s += dot(v, float4(1.0f));
        s2 += dot(v, v);
    }
    s = simd_sum(s);
    s2 = simd_sum(s2);
    if (lane == 0) { sums[simd] = s; sq[simd] = s2; }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    uint simds = (size + 31) / 32;
    float total = 0.0f, total2 = 0.0f;
    for (uint k = 0; k < simds; ++k) { total += sums[k]; total2 += sq[k]; }
    float n = float(cols4 * 4);
    float mean = total / n;
    float var = total2 / n - mean * mean;
    float inv = rsqrt(var + eps);
    for (uint c = tid; c < cols4; c += size) {
        y[row * cols4 + c] = (in[c] - mean) * inv * gamma[c];
    }
}
""")
def layernorm_simd(t, lib):
    rows, cols = 6, 512
    x, gamma, y = t.randn(rows, cols), t.rand(cols) + 0.5, t.zeros(rows, cols)
    lib.layer_norm(x, y, gamma, cols // 4, 1e-5, groups=rows, group_size=64)
    expected = torch.nn.functional.layer_norm(x.cpu(), (cols,), gamma.cpu(), eps=1e-5)
    close(y, expected, rtol=1e-4, atol=1e-5)  # E[x^2] - E[x]^2 in float loses a few bits


# ---- atomics ------------------------------------------------------------------------------------


@case(HEADER + """
kernel void histogram(device const uint* values [[buffer(0)]],
                      device atomic_uint* bins [[buffer(1)]],
                      constant uint& n [[buffer(2)]],
                      uint gid [[thread_position_in_grid]],
                      uint tid [[thread_position_in_threadgroup]],
                      uint size [[threads_per_threadgroup]]) {
    threadgroup atomic_uint local[16];
    if (tid < 16) atomic_store_explicit(&local[tid], 0u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < n) atomic_fetch_add_explicit(&local[values[gid] % 16], 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid < 16) {
        uint c = atomic_load_explicit(&local[tid], memory_order_relaxed);
        atomic_fetch_add_explicit(bins + tid, c, memory_order_relaxed);
    }
}
""")
def atomic_histogram(t, lib):
    n = 5000
    values = t.randint(0, 1000, n, dtype=torch.uint32)
    bins = t.zeros(16, dtype=torch.uint32)
    # Whole threadgroups, so that threads 0..15 of every group exist to clear and flush the bins.
    lib.histogram(values, bins, n, groups=(n + 127) // 128, group_size=128)
    equal(bins, torch.bincount(values.cpu().long() % 16, minlength=16))


@case(HEADER + """
kernel void atomic_ops(device const int* x [[buffer(0)]],
                       device atomic_int* stats [[buffer(1)]],
                       device atomic_float* total [[buffer(2)]],
                       device atomic_uint* bits [[buffer(3)]],
                       uint i [[thread_position_in_grid]]) {
    int v = x[i];
    atomic_fetch_max_explicit(&stats[0], v, memory_order_relaxed);
    atomic_fetch_min_explicit(&stats[1], v, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats[2], v, memory_order_relaxed);
    atomic_fetch_sub_explicit(&stats[3], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(total, float(v) * 0.25f, memory_order_relaxed);
    atomic_fetch_or_explicit(&bits[0], 1u << (uint(v) & 31u), memory_order_relaxed);
    atomic_fetch_xor_explicit(&bits[1], uint(v), memory_order_relaxed);
    // a compare-and-swap loop: the largest |v| seen
    uint expected = atomic_load_explicit(&bits[2], memory_order_relaxed);
    uint desired = uint(abs(v));
    while (desired > expected &&
           !atomic_compare_exchange_weak_explicit(&bits[2], &expected, desired,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    atomic_exchange_explicit(&bits[3], 42u, memory_order_relaxed);
}
""")
def atomic_operations(t, lib):
    n = 777
    x = t.randint(-1000, 1000, n)
    stats = t.tensor([-2**31, 2**31 - 1, 0, 0], dtype=torch.int32)
    total, bits = t.zeros(1), t.zeros(4, dtype=torch.uint32)
    lib.atomic_ops(x, stats, total, bits, threads=n, group_size=64)
    xc = x.cpu().long()
    equal(stats, torch.tensor([xc.max(), xc.min(), xc.sum(), -n], dtype=torch.int32))
    close(total, (xc.double() * 0.25).sum().float().reshape(1), rtol=1e-6, atol=1e-2)
    mask, xor = 0, 0
    for v in xc.tolist():
        mask |= 1 << (v & 31)
        xor ^= v & 0xFFFFFFFF
    got = bits.cpu().long().tolist()
    assert got[0] & 0xFFFFFFFF == mask
    assert got[1] & 0xFFFFFFFF == xor
    assert got[2] == int(xc.abs().max())
    assert got[3] == 42


# ---- the standard library -----------------------------------------------------------------------


@case(HEADER + """
kernel void integer_functions(device const int* a [[buffer(0)]],
                              device const uint* b [[buffer(1)]],
                              device int* out [[buffer(2)]],
                              uint i [[thread_position_in_grid]]) {
    int x = a[i];
    uint u = b[i];
    device int* o = out + 16 * i;
    o[0] = clz(u);
    o[1] = ctz(u);
    o[2] = popcount(u);
    o[3] = int(mulhi(u, 0x9E3779B9u));
    o[4] = abs(x);
    o[5] = int(absdiff(x, -7));
    o[6] = int(addsat(uchar(u & 255u), uchar(200)));
    o[7] = int(subsat(short(x), short(30000)));
    o[8] = int(rotate(u, 5u));
    o[9] = int(extract_bits(u, 4u, 8u));
    o[10] = int(insert_bits(u, 0xFu, 8u, 4u));
    o[11] = int(reverse_bits(u));
    o[12] = clamp(x, -100, 100);
    o[13] = min(x, 3) + max(x, -3);
    o[14] = hadd(x, 1000);
    o[15] = x / 7 + x % 7;
}
""")
def integer_functions(t, lib):
    n = 64
    a = t.randint(-2**20, 2**20, n)
    b = t.randint(0, 2**32 - 1, n, dtype=torch.uint32)
    out = t.zeros(n * 16, dtype=torch.int32)
    lib.integer_functions(a, b, out, threads=n)
    got = out.cpu().view(n, 16).tolist()
    u32 = 0xFFFFFFFF
    for row, x, u in zip(got, a.cpu().tolist(), b.cpu().long().tolist()):
        def s32(v):
            v &= u32
            return v - (1 << 32) if v >= 1 << 31 else v
        expected = [
            32 - u.bit_length(), (u & -u).bit_length() - 1 if u else 32, bin(u).count("1"),
            s32((u * 0x9E3779B9) >> 32), abs(x), abs(x + 7), min((u & 255) + 200, 255),
            max(-32768, min(32767, (x if -32768 <= x <= 32767 else ((x + 32768) % 65536) - 32768) - 30000)),
            s32((u << 5) | (u >> 27)), (u >> 4) & 0xFF, s32((u & ~0xF00) | 0xF00),
            s32(int(format(u, "032b")[::-1], 2)), max(-100, min(100, x)), min(x, 3) + max(x, -3),
            (x + 1000) >> 1, int(x / 7) + int(math.fmod(x, 7)),
        ]
        assert row == expected


@case(HEADER + """
kernel void relational(device const float4* x [[buffer(0)]],
                       device float4* picked [[buffer(1)]],
                       device uint* flags [[buffer(2)]],
                       uint i [[thread_position_in_grid]]) {
    float4 v = x[i];
    picked[i] = select(float4(-1.0), v, v > 0.0);
    uint f = 0;
    if (any(isnan(v))) f |= 1u;
    if (any(isinf(v))) f |= 2u;
    if (all(isfinite(v))) f |= 4u;
    if (signbit(v.x)) f |= 8u;
    if (all(v == v)) f |= 16u;
    if (any(v < float4(0.0))) f |= 32u;
    flags[i] = f;
}
""")
def relational_functions(t, lib):
    rows = [[1.0, -2.0, 0.0, 3.0], [float("nan"), 1.0, 2.0, -1.0], [float("inf"), -0.0, 1.0, 1.0],
            [-0.0, 1.0, 2.0, 3.0], [-float("inf"), float("nan"), 5.0, 0.5]]
    x = t.tensor(rows)
    picked, flags = t.zeros(5, 4), t.zeros(5, dtype=torch.uint32)
    lib.relational(x, picked, flags, threads=5)
    xc = x.cpu()
    expected_pick = torch.where(xc > 0, xc, torch.tensor(-1.0))
    equal(picked, expected_pick)
    expected_flags = []
    for r in rows:
        f = 0
        f |= 1 if any(math.isnan(v) for v in r) else 0
        f |= 2 if any(math.isinf(v) for v in r) else 0
        f |= 4 if all(math.isfinite(v) for v in r) else 0
        f |= 8 if math.copysign(1, r[0]) < 0 else 0
        f |= 16 if all(v == v for v in r) else 0
        f |= 32 if any(v < 0 for v in r) else 0
        expected_flags.append(f)
    equal(flags, torch.tensor(expected_flags))


_UNARY = ["exp", "exp2", "log", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "atan",
          "asin", "acos", "sinh", "cosh", "floor", "ceil", "round", "rint", "trunc", "fract", "fabs",
          "sign", "saturate"]


@case(HEADER + "kernel void unary_math(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],\n"
      "                       uint i [[thread_position_in_grid]]) {\n"
      "    float v = x[i];\n    float a = fabs(v) + 0.01f;\n    float s = clamp(v, -0.99f, 0.99f);\n"
      + "".join(
          f"    y[{k} * 1000 + i] = {fn}({'a' if fn in ('log', 'log2', 'log10', 'sqrt', 'rsqrt') else 's' if fn in ('asin', 'acos') else 'v'});\n"
          for k, fn in enumerate(_UNARY))
      + "}\n")
def math_unary(t, lib):
    x = t.randn(1000) * 2
    y = t.zeros(len(_UNARY) * 1000)
    lib.unary_math(x, y, threads=1000)
    v = x.cpu().double()
    a, s = v.abs() + 0.01, v.clamp(-0.99, 0.99)
    refs = {
        "exp": v.exp(), "exp2": torch.exp2(v), "log": a.log(), "log2": a.log2(), "log10": a.log10(),
        "sqrt": a.sqrt(), "rsqrt": a.rsqrt(), "sin": v.sin(), "cos": v.cos(), "tan": v.tan(),
        "tanh": v.tanh(), "atan": v.atan(), "asin": s.asin(), "acos": s.acos(), "sinh": v.sinh(),
        "cosh": v.cosh(), "floor": v.floor(), "ceil": v.ceil(), "round": torch.where(
            v >= 0, (v + 0.5).floor(), (v - 0.5).ceil()), "rint": v.round(), "trunc": v.trunc(),
        "fract": v - v.floor(), "fabs": v.abs(), "sign": v.sign(), "saturate": v.clamp(0, 1),
    }
    got = y.cpu().view(len(_UNARY), 1000)
    for k, fn in enumerate(_UNARY):
        # correctly rounded to a few ULP against a float64 reference
        close(got[k], refs[fn].float(), rtol=4e-7 * 8, atol=1e-7)


@case(HEADER + """
kernel void binary_math(device const float* x [[buffer(0)]],
                        device const float* y [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        uint i [[thread_position_in_grid]]) {
    float a = x[i], b = y[i];
    device float* o = out + 12 * i;
    o[0] = pow(fabs(a) + 0.5f, b);
    o[1] = fmod(a * 10.0f, b);
    o[2] = atan2(a, b);
    o[3] = fmin(a, b);
    o[4] = fmax(a, b);
    o[5] = copysign(a, b);
    o[6] = fma(a, b, 1.0f);
    o[7] = mix(a, b, 0.25f);
    o[8] = clamp(a, -0.5f, 0.5f);
    o[9] = step(0.1f, a);
    o[10] = smoothstep(-1.0f, 1.0f, a);
    o[11] = powr(fabs(b) + 1.0f, 0.5f);
}
""")
def math_binary_ternary(t, lib):
    n = 500
    x, y = t.randn(n), t.randn(n, seed=1)
    out = t.zeros(n * 12)
    lib.binary_math(x, y, out, threads=n)
    a, b = x.cpu().double(), y.cpu().double()
    tt = ((a + 1) / 2).clamp(0, 1)
    refs = [
        torch.pow(a.abs() + 0.5, b), torch.fmod(a.float() * 10, b.float()).double(), torch.atan2(a, b),
        torch.fmin(a, b), torch.fmax(a, b), torch.copysign(a, b), a * b + 1, a + (b - a) * 0.25,
        a.clamp(-0.5, 0.5), (a >= 0.1).double(), tt * tt * (3 - 2 * tt), (b.abs() + 1).sqrt(),
    ]
    got = out.cpu().view(n, 12)
    for k, ref in enumerate(refs):
        close(got[:, k], ref.float(), rtol=1e-5, atol=1e-6)


@case(HEADER + """
kernel void geometry(device const float4* p [[buffer(0)]],
                     device const float4* q [[buffer(1)]],
                     device float4* out [[buffer(2)]],
                     uint i [[thread_position_in_grid]]) {
    float4 a = p[i], b = q[i];
    float3 c = cross(a.xyz, b.xyz);
    out[3 * i + 0] = float4(dot(a, b), length(a), distance(a, b), length_squared(a.xy));
    out[3 * i + 1] = normalize(a);
    out[3 * i + 2] = float4(c, dot(c, a.xyz));
}
""")
def geometric_functions(t, lib):
    n = 100
    p, q = t.randn(n, 4), t.randn(n, 4, seed=1)
    out = t.zeros(n * 3, 4)
    lib.geometry(p, q, out, threads=n)
    a, b = p.cpu().double(), q.cpu().double()
    got = out.cpu().view(n, 3, 4)
    c = torch.linalg.cross(a[:, :3], b[:, :3])
    close(got[:, 0], torch.stack([(a * b).sum(1), a.norm(dim=1), (a - b).norm(dim=1),
                                  (a[:, :2] ** 2).sum(1)], 1).float(), rtol=1e-5, atol=1e-6)
    close(got[:, 1], (a / a.norm(dim=1, keepdim=True)).float(), rtol=1e-5, atol=1e-6)
    close(got[:, 2], torch.cat([c, (c * a[:, :3]).sum(1, keepdim=True)], 1).float(), rtol=1e-5, atol=1e-5)


@case(HEADER + """
kernel void limits(device float* f [[buffer(0)]],
                   device int* n [[buffer(1)]],
                   device half* h [[buffer(2)]]) {
    f[0] = numeric_limits<float>::max();
    f[1] = numeric_limits<float>::infinity();
    f[2] = numeric_limits<float>::epsilon();
    f[3] = M_PI_F;
    f[4] = FLT_MAX;
    f[5] = -INFINITY;
    f[6] = numeric_limits<float>::lowest();
    f[7] = M_SQRT2_F;
    n[0] = numeric_limits<int>::max();
    n[1] = INT_MIN;
    n[2] = int(uint(-1) >> 1);
    n[3] = numeric_limits<ushort>::max();
    h[0] = numeric_limits<half>::max();
    h[1] = HALF_EPSILON;
    h[2] = numeric_limits<half>::infinity();
}
""")
def numeric_limits_and_constants(t, lib):
    f, n, h = t.zeros(8), t.zeros(4, dtype=torch.int32), t.zeros(3, dtype=torch.float16)
    lib.limits(f, n, h, threads=1)
    fi = torch.finfo(torch.float32)
    equal(f, torch.tensor([fi.max, math.inf, fi.eps, math.pi, fi.max, -math.inf, -fi.max, math.sqrt(2)],
                          dtype=torch.float32))
    equal(n, torch.tensor([2**31 - 1, -2**31, 2**31 - 1, 65535], dtype=torch.int32))
    equal(h, torch.tensor([65504.0, 2**-10, math.inf], dtype=torch.float16))


# ---- pointers ----------------------------------------------------------------------------------


@case(HEADER + """
inline void accumulate(thread float& acc, device const float* p, uint count) {
    for (uint k = 0; k < count; ++k) acc += p[k];
}

inline void store_pair(device float* dst, float a, float b) {
    dst[0] = a;
    dst[1] = b;
}

kernel void pointer_casts(device const float* x [[buffer(0)]],
                          device float* out [[buffer(1)]],
                          device float* sums [[buffer(2)]],
                          uint i [[thread_position_in_grid]]) {
    device const float4* x4 = (device const float4*)x;
    device float4* out4 = reinterpret_cast<device float4*>(out);
    out4[i] = x4[i].wzyx;
    float acc = 0.0f;
    accumulate(acc, &x[4 * i], 4);
    device float* row = sums + 2 * i;
    store_pair(&row[0], acc, float(i));
}
""")
def pointer_casts_and_helpers(t, lib):
    x = t.randn(64 * 4)
    out, sums = t.zeros(64 * 4), t.zeros(64 * 2)
    lib.pointer_casts(x, out, sums, threads=64)
    equal(out, x.cpu().view(64, 4).flip(1).reshape(-1))
    close(sums.cpu().view(64, 2)[:, 0], x.cpu().view(64, 4).sum(1))
    equal(sums.cpu().view(64, 2)[:, 1], torch.arange(64).float())


@case(HEADER + """
kernel void small_ints(device const char* c [[buffer(0)]],
                       device const short* s [[buffer(1)]],
                       device const long* l [[buffer(2)]],
                       device uchar* wrapped [[buffer(3)]],
                       device long* wide [[buffer(4)]],
                       device const bool* mask [[buffer(5)]],
                       device ushort* picked [[buffer(6)]],
                       uint i [[thread_position_in_grid]]) {
    wrapped[i] = uchar(c[i]) + uchar(200);            // wraps modulo 256
    wide[i] = l[i] * long(s[i]) + (long(1) << 40);
    picked[i] = mask[i] ? ushort(s[i]) : ushort(7);
}
""")
def small_and_wide_integers(t, lib):
    n = 100
    c = t.randint(-128, 127, n, dtype=torch.int8)
    s = t.randint(-30000, 30000, n, dtype=torch.int16, seed=1)
    l = t.randint(-2**40, 2**40, n, dtype=torch.int64, seed=2)
    mask = t.randint(0, 2, n, dtype=torch.bool, seed=3)
    wrapped, wide = t.zeros(n, dtype=torch.uint8), t.zeros(n, dtype=torch.int64)
    picked = t.zeros(n, dtype=torch.uint16)
    lib.small_ints(c, s, l, wrapped, wide, mask, picked, threads=n)
    equal(wrapped, ((c.cpu().int() & 255) + 200).remainder(256).to(torch.uint8))
    equal(wide, l.cpu() * s.cpu().long() + (1 << 40))
    equal(picked, torch.where(mask.cpu(), s.cpu().long() & 0xFFFF, torch.tensor(7)))


# ---- SIMD-group and quad-group data movement ------------------------------------------------------


@case(HEADER + """
kernel void shuffles(device const float* x [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]],
                     ushort lane [[thread_index_in_simdgroup]]) {
    float v = x[i];
    float tree = v;
    for (ushort offset = 16; offset > 0; offset /= 2) tree += simd_shuffle_down(tree, offset);
    device float* o = out + 6 * i;
    o[0] = simd_broadcast(tree, 0);
    o[1] = simd_shuffle_xor(v, ushort(1));
    o[2] = simd_shuffle(v, ushort((lane + 3) % 32));
    o[3] = quad_sum(v);
    o[4] = quad_shuffle_xor(v, ushort(2));
    o[5] = simd_broadcast_first(v) + (simd_is_first() ? 1.0f : 0.0f);
}
""")
def simd_and_quad_shuffles(t, lib):
    n = 128
    x = t.randint(-20, 20, n).float()
    out = t.zeros(n * 6)
    lib.shuffles(x, out, threads=n, group_size=64)
    v = x.cpu().view(-1, 32)
    got = out.cpu().view(-1, 32, 6)
    lane = torch.arange(32)
    equal(got[..., 0], v.sum(1, keepdim=True).expand(-1, 32))
    equal(got[..., 1], v[:, lane ^ 1])
    equal(got[..., 2], v[:, (lane + 3) % 32])
    equal(got[..., 3], v.view(-1, 8, 4).sum(2, keepdim=True).expand(-1, 8, 4).reshape(-1, 32))
    equal(got[..., 4], v[:, lane ^ 2])
    equal(got[..., 5], v[:, :1].expand(-1, 32) + (lane == 0).float())


@case(HEADER + """
kernel void half_sum(device const half* x [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]],
                     uint group [[threadgroup_position_in_grid]],
                     uint lane [[thread_index_in_simdgroup]]) {
    float s = simd_sum(float(x[i]));
    if (lane == 0) out[i / 32] = s;
}
""")
def half_input_float_accumulation(t, lib):
    x = t.randn(1024, dtype=torch.float16)
    out = t.zeros(32)
    lib.half_sum(x, out, threads=1024, group_size=256)
    close(out, x.cpu().float().view(32, 32).sum(1), rtol=1e-5, atol=1e-5)


@case(HEADER + """
kernel void votes(device const float4* x [[buffer(0)]],
                  device float4* y [[buffer(1)]],
                  device uint* positives [[buffer(2)]],
                  uint i [[thread_position_in_grid]],
                  uint lane [[thread_index_in_simdgroup]]) {
    float4 v = x[i];
    bool4 positive = v > 0.0f;
    bool4 big;
    big = fabs(v) > 1.0f;
    y[i] = select(-v, v, positive) + float4(big);     // |v|, plus 1 where |v| > 1
    simd_vote vote = simd_ballot(positive.x);
    ulong bits = ulong(simd_vote::vote_t(vote));
    if (lane == 0) positives[i / 32] = popcount(uint(bits & 0xffffffffu)) + (all(positive) ? 1000u : 0u);
}
""")
def bool_vectors_and_ballot(t, lib):
    x = t.randn(64, 4)
    y, positives = t.zeros(64, 4), t.zeros(2, dtype=torch.uint32)
    lib.votes(x, y, positives, threads=64, group_size=64)
    xc = x.cpu()
    equal(y, xc.abs() + (xc.abs() > 1).float())
    counts = (xc[:, 0] > 0).view(2, 32).sum(1) + 1000 * (xc > 0).all(1).view(2, 32)[:, 0]
    equal(positives, counts)


@case(HEADER + """
struct Body {
    float3 pos;
    float mass;
    float weight() const device { return mass * 2.0f; }
};

kernel void bodies(device const Body* b [[buffer(0)]],
                   device packed_half4* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    device const Body* me = b + i;
    float s = me->weight() + (b + i)->pos.x;
    out[i] = packed_half4(half4(metal::float4(s, me->mass, metal::length(me->pos), 1.0f)));
}
""")
def struct_methods_arrow_and_packed_half(t, lib):
    raw = t.randn(20, 8)   # float3 pos (16 bytes with padding), float mass, padding: 32 bytes
    out = t.zeros(20, 4, dtype=torch.float16)
    lib.bodies(raw, out, threads=20)
    r = raw.cpu()
    expected = torch.stack([r[:, 4] * 2 + r[:, 0], r[:, 4], r[:, :3].norm(dim=1), torch.ones(20)], 1)
    close(out, expected.half(), rtol=1e-3, atol=1e-5)


@case(HEADER + """
enum class Mode : uint { add = 0, multiply = 1 };
using real = float;

[[kernel]] [[max_total_threads_per_threadgroup(128)]]
void combine(device const real* a [[buffer(0)]],
             device const real* b [[buffer(1)]],
             device real* out [[buffer(2)]],
             constant uint& mode [[buffer(3)]],
             uint i [[thread_position_in_grid]]) {
    constexpr int kUnroll = 4;
    real acc = 0;
    #pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
        acc += Mode(mode) == Mode::add ? a[i] + b[i] : a[i] * b[i];
    }
    out[i] = acc / kUnroll;
}
""")
def attribute_syntax_aliases_and_pragmas(t, lib):
    a, b, out = t.randn(300), t.randn(300, seed=1), t.zeros(300)
    lib.combine(a, b, out, 1, threads=300, group_size=128)
    close(out, a * b)
    lib.combine(a, b, out, 0, threads=300, group_size=128)
    close(out, a + b)


@case(HEADER + """
struct ConvParams {
    uint batch, in_channels, out_channels;
    uint height, width, kernel_size;
    uint out_height, out_width;
};

kernel void conv2d_direct(device const float* input [[buffer(0)]],
                          device const float* weight [[buffer(1)]],
                          device const float* bias [[buffer(2)]],
                          device float* output [[buffer(3)]],
                          constant ConvParams& p [[buffer(4)]],
                          uint3 gid [[thread_position_in_grid]]) {
    uint ox = gid.x, oy = gid.y;
    uint n = gid.z / p.out_channels, oc = gid.z % p.out_channels;
    if (ox >= p.out_width || oy >= p.out_height || n >= p.batch) return;
    float acc = bias[oc];
    for (uint ic = 0; ic < p.in_channels; ++ic) {
        device const float* in_plane = input + (n * p.in_channels + ic) * p.height * p.width;
        device const float* w = weight + (oc * p.in_channels + ic) * p.kernel_size * p.kernel_size;
        for (uint ky = 0; ky < p.kernel_size; ++ky) {
            for (uint kx = 0; kx < p.kernel_size; ++kx) {
                acc += in_plane[(oy + ky) * p.width + ox + kx] * w[ky * p.kernel_size + kx];
            }
        }
    }
    output[((n * p.out_channels + oc) * p.out_height + oy) * p.out_width + ox] = acc;
}
""")
def conv2d(t, lib):
    n, ci, co, h, w, k = 2, 3, 4, 12, 10, 3
    x, wt, b = t.randn(n, ci, h, w), t.randn(co, ci, k, k, seed=1), t.randn(co, seed=2)
    oh, ow = h - k + 1, w - k + 1
    out = t.zeros(n, co, oh, ow)
    params = struct.pack("<8I", n, ci, co, h, w, k, oh, ow)
    lib.conv2d_direct(x, wt, b, out, params, threads=(ow, oh, n * co), group_size=(8, 8, 1))
    close(out, torch.nn.functional.conv2d(x.cpu(), wt.cpu(), b.cpu()), rtol=1e-5, atol=1e-5)


@case(HEADER + """
kernel void maxpool2d(device const half* x [[buffer(0)]],
                      device half* y [[buffer(1)]],
                      device uint* argmax [[buffer(2)]],
                      constant uint2& in_size [[buffer(3)]],     // width, height
                      ushort2 gid [[thread_position_in_threadgroup]],
                      ushort3 group [[threadgroup_position_in_grid]]) {
    uint plane = group.z;   // one threadgroup per plane
    uint2 out_size = in_size / 2;
    if (gid.x >= out_size.x || gid.y >= out_size.y) return;
    device const half* in = x + plane * in_size.x * in_size.y;
    half best = -numeric_limits<half>::infinity();
    uint where = 0;
    for (ushort dy = 0; dy < 2; ++dy) {
        for (ushort dx = 0; dx < 2; ++dx) {
            uint index = (2 * gid.y + dy) * in_size.x + 2 * gid.x + dx;
            half v = in[index];
            if (v > best) { best = v; where = index; }
        }
    }
    uint out = (plane * out_size.y + gid.y) * out_size.x + gid.x;
    y[out] = best;
    argmax[out] = where;
}
""")
def maxpool_half(t, lib):
    planes, h, w = 3, 8, 12
    x = t.randn(planes, h, w, dtype=torch.float16)
    y = t.zeros(planes, h // 2, w // 2, dtype=torch.float16)
    arg = t.zeros(planes, h // 2, w // 2, dtype=torch.uint32)
    lib.maxpool2d(x, y, arg, (w, h), groups=(1, 1, planes), group_size=(w // 2, h // 2, 1))
    values, indices = torch.nn.functional.max_pool2d(x.cpu().float(), 2, return_indices=True)
    equal(y, values.half())
    equal(arg, indices.long())
