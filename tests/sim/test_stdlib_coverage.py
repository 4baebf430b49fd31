"""Every function of the shim's metal_stdlib, for every type MSL defines it on, compiles, and a
sample of each computes what MSL says. (The corpus checks values in depth for float; this
catches a function missing for half4 or ushort3, say, before a user's kernel does.)"""

import itertools

import pytest
import torch

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"

FLOAT_UNARY = """acos acosh asin asinh atan atanh ceil cos cosh cospi exp exp2 exp10 fabs abs floor fract
    log log2 log10 rint round rsqrt saturate sign sin sinh sinpi sqrt tan tanh tanpi trunc""".split()
FLOAT_BINARY = "atan2 copysign fdim fmax fmin fmod nextafter pow powr step max min".split()
FLOAT_TERNARY = "fma fmax3 fmin3 fmedian3 mix smoothstep clamp min3 max3 median3".split()
INT_UNARY = "abs clz ctz popcount reverse_bits".split()
INT_BINARY = "absdiff addsat subsat hadd rhadd mulhi min max rotate".split()
INT_TERNARY = "clamp madhi madsat min3 max3 median3".split()
FLOATS = ["float", "half", "bfloat"]
INTS = ["char", "uchar", "short", "ushort", "int", "uint", "long", "ulong"]


def typed(base: str) -> list[str]:
    return [base] + [f"{base}{n}" for n in (2, 3, 4)]


def float_calls(T: str) -> str:
    lines = [f"    {{ {T} x = {T}(0.5), y = {T}(0.25), z = {T}(0.75);"]
    idx = "[0]" if T[-1].isdigit() else ""
    lines += [f"      sink += float({fn}(x){idx});" for fn in FLOAT_UNARY]
    lines += [f"      sink += float({fn}(x, y){idx});" for fn in FLOAT_BINARY]
    lines += [f"      sink += float({fn}(x, y, z){idx});" for fn in FLOAT_TERNARY]
    lines += ["      sink += float(all(isfinite(x)) && !any(isnan(x)) && !any(isinf(y)) && any(isnormal(z)) "
              "&& !any(signbit(x)) && all(isordered(x, y)) && !any(isunordered(x, y)));",
              f"      sink += float(select(x, y, x < y){idx});"]
    if T[-1].isdigit():
        lines += ["      sink += float(dot(x, y)) + float(length(x)) + float(distance(x, y)) + float(normalize(x)[0])"
                  " + float(length_squared(x)) + float(reflect(x, y)[0]) + float(faceforward(x, y, z)[0]);"]
        if T.endswith("3"):
            lines += ["      sink += float(cross(x, y)[0]);"]
    lines += ["    }"]
    return "\n".join(lines)


def int_calls(T: str) -> str:
    idx = "[0]" if T[-1].isdigit() else ""
    lines = [f"    {{ {T} x = {T}(5), y = {T}(3), z = {T}(9);"]
    lines += [f"      isink += long({fn}(x){idx});" for fn in INT_UNARY]
    lines += [f"      isink += long({fn}(x, y){idx});" for fn in INT_BINARY]
    lines += [f"      isink += long({fn}(x, y, z){idx});" for fn in INT_TERNARY]
    lines += [f"      isink += long(extract_bits(x, 1u, 2u){idx}) + long(insert_bits(x, y, 1u, 2u){idx});",
              f"      isink += long(select(x, y, x < y){idx});",
              "    }"]
    return "\n".join(lines)


SOURCE = HEADER + "kernel void everything(device float* out [[buffer(0)]], device long* iout [[buffer(1)]]) {\n" \
    "    float sink = 0.0f;\n    long isink = 0;\n" \
    + "\n".join(float_calls(T) for T in itertools.chain(*map(typed, FLOATS))) + "\n" \
    + "\n".join(int_calls(T) for T in itertools.chain(*map(typed, INTS))) + "\n" \
    + "    out[0] = sink;\n    iout[0] = isink;\n}\n"


def test_every_function_compiles_for_every_type(sim):
    lib = sim.compile(SOURCE)
    out, iout = torch.zeros(1), torch.zeros(1, dtype=torch.int64)
    lib.everything(out, iout, threads=1)  # runs: every call resolved to a definition
    assert iout.item() != 0


@pytest.mark.parametrize("expr,expected", [
    ("float(fract(half(-1.25h)))", 0.75),
    ("float(rsqrt(half(4.0h)))", 0.5),
    ("float(sign(-0.0f)) + 10.0f * float(sign(half(-3.0h)))", -10.0),
    ("float(saturate(bfloat(1.5f)))", 1.0),
    ("float(fmedian3(1.0f, 5.0f, 3.0f))", 3.0),
    ("float(step(0.5f, 0.25f)) + float(step(0.5f, 0.5f))", 1.0),
    ("float(clz(uchar(1))) + 100.0f * float(ctz(ushort(0)))", 7 + 1600),
    ("float(popcount(ulong(0xFFFFFFFFFFul)))", 40),
    ("float(addsat(char(100), char(100))) + float(subsat(uchar(3), uchar(5)))", 127),
    ("float(mulhi(int(-2), int(0x40000000)))", -1),
    ("float(rotate(uchar(0x81), uchar(1)))", 3),
    ("float(extract_bits(int(0xF0), 4u, 4u))", -1),
    ("float(absdiff(int(-5), int(7)))", 12),
    ("float(rhadd(uint(1), uint(2))) + 10.0f * float(hadd(uint(1), uint(2)))", 12),
    ("float(as_type<half2>(0x3C003800u).y)", 1.0),
    ("float(madsat(short(200), short(200), short(1)))", 32767),
    ("float(numeric_limits<bfloat>::max() > bfloat(1e38f))", 1.0),
    ("float(isnormal(half(1e-5f))) + 10.0f * float(isnormal(1e-5f))", 10.0),
])
def test_sample_values(sim, expr, expected):
    lib = sim.compile(HEADER + f"kernel void k(device float* out [[buffer(0)]]) {{ out[0] = {expr}; }}\n")
    out = torch.zeros(1)
    lib.k(out, threads=1)
    assert out.item() == pytest.approx(expected), expr


def test_float_to_half_and_bfloat_round_to_nearest_even(sim):
    """Conversions the shim provides itself (bfloat always, half on CPUs without F16C) agree
    with PyTorch's round-to-nearest-even, ties, subnormals, overflow and NaN included."""
    lib = sim.compile(HEADER + """
kernel void narrow(device const float* x [[buffer(0)]], device half* h [[buffer(1)]],
                   device bfloat* b [[buffer(2)]], device float* back [[buffer(3)]],
                   uint i [[thread_position_in_grid]]) {
    h[i] = half(x[i]);
    b[i] = bfloat(x[i]);
    back[i] = float(b[i]) + float(h[i]);
}
""")
    special = [0.0, -0.0, 1.0, 1.0009765625, 1.00048828125, 1.00146484375, 65504.0, 65520.0, 65519.0,
               1e-8, 5.960464477539063e-08, 2.9802322387695312e-08, 2.98023259e-08, 6.1e-05,
               float("inf"), -float("inf"), 3.4e38, 1.00390625, 1.01171875, -2.5e-40]
    bits = torch.randint(0, 2**32, (4000,), generator=torch.Generator().manual_seed(7), dtype=torch.int64)
    random = bits.to(torch.int32).view(torch.float32)
    x = torch.cat([torch.tensor(special), random[torch.isfinite(random)]])
    h, b, back = torch.zeros_like(x, dtype=torch.float16), torch.zeros_like(x, dtype=torch.bfloat16), torch.zeros_like(x)
    lib.narrow(x, h, b, back, threads=x.numel())
    assert torch.equal(h.view(torch.int16), x.half().view(torch.int16))
    assert torch.equal(b.view(torch.int16), x.bfloat16().view(torch.int16))
    nan = torch.tensor([float("nan"), -float("nan")])
    hn, bn, backn = torch.zeros(2, dtype=torch.float16), torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2)
    lib.narrow(nan, hn, bn, backn, threads=2)
    assert torch.isnan(hn.float()).all() and torch.isnan(bn.float()).all() and torch.isnan(backn).all()
