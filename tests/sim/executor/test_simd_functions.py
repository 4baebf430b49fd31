"""Every SIMD-group and quad-group function against a reference model of MSL's active-lane
semantics (simd_reference.py): full SIMD-groups, divergent calls (only some lanes call), and
partial SIMD-groups (threadgroups whose size is not a multiple of 32, partial edge groups)."""

import zlib

import numpy as np
import pytest

from metalrt.errors import LaunchError

import simd_reference as ref

# name -> (value type, output type, expression over v (value), a (arg), m (modulo))
SIMD_OPS = {
    "sum": ("float", "float", "{p}_sum(v)"),
    "product": ("float", "float", "{p}_product(v)"),
    "min": ("float", "float", "{p}_min(v)"),
    "max": ("float", "float", "{p}_max(v)"),
    "and": ("int", "int", "{p}_and(v)"),
    "or": ("int", "int", "{p}_or(v)"),
    "xor": ("int", "int", "{p}_xor(v)"),
    "prefix_inclusive_sum": ("float", "float", "{p}_prefix_inclusive_sum(v)"),
    "prefix_exclusive_sum": ("float", "float", "{p}_prefix_exclusive_sum(v)"),
    "prefix_inclusive_product": ("float", "float", "{p}_prefix_inclusive_product(v)"),
    "prefix_exclusive_product": ("float", "float", "{p}_prefix_exclusive_product(v)"),
    "shuffle": ("float", "float", "{p}_shuffle(v, a)"),
    "broadcast": ("float", "float", "{p}_broadcast(v, a)"),
    "broadcast_first": ("float", "float", "{p}_broadcast_first(v)"),
    "up": ("float", "float", "{p}_shuffle_up(v, a)"),
    "down": ("float", "float", "{p}_shuffle_down(v, a)"),
    "rotate_up": ("float", "float", "{p}_shuffle_rotate_up(v, a)"),
    "rotate_down": ("float", "float", "{p}_shuffle_rotate_down(v, a)"),
    "xor_shuffle": ("float", "float", "{p}_shuffle_xor(v, a)"),
    "fill_up": ("float", "float", "{p}_shuffle_and_fill_up(v, v + 1000.0f, a)"),
    "fill_down": ("float", "float", "{p}_shuffle_and_fill_down(v, v + 1000.0f, a)"),
    "fill_up_mod": ("float", "float", "{p}_shuffle_and_fill_up(v, v + 1000.0f, a, m)"),
    "fill_down_mod": ("float", "float", "{p}_shuffle_and_fill_down(v, v + 1000.0f, a, m)"),
    "ballot": ("int", "ulong", "(ulong)({p}_vote::vote_t){p}_ballot(v != 0)"),
    "active_mask": ("int", "ulong", "(ulong)({p}_vote::vote_t){p}_active_threads_mask()"),
    "all": ("int", "ulong", "{p}_all(v != 0)"),
    "any": ("int", "ulong", "{p}_any(v != 0)"),
    "is_first": ("int", "ulong", "{p}_is_first()"),
}
GROUPS = {"simd": 32, "quad": 4}
SENTINEL = 12345  # what lanes that do not call the function leave in `out`


def kernel_name(prefix, op):
    return f"{prefix}_{op}"


def build_sources():
    cpp, table, msl = [], [], []
    for prefix in GROUPS:
        for op, (value, out, expr) in SIMD_OPS.items():
            name = kernel_name(prefix, op)
            cpp.append(
                f"static void {name}(msim_thread* t) {{\n"
                f"  const uint g = gid(t);\n"
                f"  const {value} v = at<{value}>(t, 0, g);\n"
                f"  const ushort a = ushort(at<int>(t, 3, g)), m = ushort(at<int>(t, 4, g));\n"
                f"  (void)a; (void)m;\n"
                f"  if (at<int>(t, 2, g)) at<{out}>(t, 1, g) = {out}({expr.format(p=prefix)});\n"
                f"}}")
            table.append(f'{{"{name}", {name}, MSIM_USES_SIMD, 5}}')
            msl_out = "ulong" if out == "ulong" else out
            msl.append(
                f"kernel void {name}(device const {value}* in [[buffer(0)]], device {msl_out}* out [[buffer(1)]],"
                f" device const int* active [[buffer(2)]], device const int* arg [[buffer(3)]],"
                f" device const int* modulo [[buffer(4)]]) {{}}")
    cpp.append("HARNESS_LIBRARY(" + ",\n".join(table) + ")")
    return "\n".join(cpp), "\n".join(msl)


@pytest.fixture(scope="module")
def lib(kernels):
    cpp, msl = build_sources()
    return kernels.load(cpp, msl)


# (threads, group_size, fraction of lanes that call the function)
SCENARIOS = {
    "full": (256, 64, 1.0),
    "divergent": (256, 128, 0.7),
    "partial": (200, 48, 1.0),          # SIMD-groups of 32 and 16 lanes; an 8-thread edge group
    "partial_divergent": (150, 48, 0.6),
}


def inputs(op, threads, group_size, fraction, width, seed):
    rng = np.random.default_rng(seed)
    value, out, _ = SIMD_OPS[op]
    if value == "int":
        values = rng.integers(-1000, 1000, threads).astype(np.int32)
        if op in ("ballot", "all", "any"):
            values = (rng.random(threads) < 0.8).astype(np.int32)
    elif op.endswith("product"):
        values = rng.choice(np.array([-1, 1, 2, 0.5], np.float32), threads)
    else:
        values = rng.integers(-50, 50, threads).astype(np.float32)
    active = (rng.random(threads) < fraction).astype(np.int32)
    modulo = np.zeros(threads, np.int32)
    if op == "shuffle":
        # Each lane reads a random active lane of its own group: always valid.
        args = np.zeros(threads, np.int32)
        for seg, _ in ref.segments(threads, group_size, width):
            live = [j for j, i in enumerate(seg) if active[i]] or [0]
            for i in seg:
                args[i] = rng.choice(live)
    elif op in ("fill_up_mod", "fill_down_mod"):
        m = int(rng.choice([2, 4] if width == 4 else [2, 4, 8, 16, 32]))
        modulo[:] = m
        args = np.full(threads, int(rng.integers(0, m)), np.int32)
    elif op in ("xor_shuffle",):
        args = np.full(threads, int(rng.integers(1, width)), np.int32)
    elif op == "broadcast":
        args = np.full(threads, int(rng.integers(0, width)), np.int32)
    else:
        args = np.full(threads, int(rng.integers(1, width)), np.int32)
    out = np.full(threads, SENTINEL, np.uint64 if out == "ulong" else values.dtype)
    return values, active, args, modulo, out


def expected(op, values, active, args, modulo, threads, group_size, width):
    if op in ("sum", "product", "min", "max", "and", "or", "xor"):
        return ref.reduce_op(op, values, active, threads, group_size, width)
    if op.startswith("prefix_"):
        _, inclusive, kind = op.split("_")
        return ref.scan_op(kind, inclusive == "inclusive", values, active, threads, group_size, width)
    if op in ("ballot", "active_mask", "all", "any", "is_first"):
        return ref.vote_op(op, values, active, threads, group_size, width)
    kind = {"xor_shuffle": "xor", "fill_up_mod": "fill_up", "fill_down_mod": "fill_down"}.get(op, op)
    return ref.permute_op(kind, values, values + np.float32(1000), active, args, modulo, threads, group_size, width)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("prefix", GROUPS)
@pytest.mark.parametrize("op", SIMD_OPS)
def test_against_reference(lib, op, prefix, scenario):
    threads, group_size, fraction = SCENARIOS[scenario]
    width = GROUPS[prefix]
    seed = zlib.crc32(f"{op} {prefix} {scenario}".encode())
    values, active, args, modulo, out = inputs(op, threads, group_size, fraction, width, seed)
    kernel = lib.kernel(kernel_name(prefix, op))
    try:
        want = expected(op, values, active, args, modulo, threads, group_size, width)
    except ref.ReadsInactiveLane:
        with pytest.raises(LaunchError, match=r"reads lane \d+, which is inactive"):
            kernel(values, out, active, args, modulo, threads=threads, group_size=group_size)
        return
    kernel(values, out, active, args, modulo, threads=threads, group_size=group_size)
    want_out = np.full_like(out, SENTINEL)
    for i, v in want.items():
        want_out[i] = v
    np.testing.assert_array_equal(out, want_out, err_msg=f"{prefix}_{op} ({scenario})")


def run(lib, name, values, active, args, threads, group_size, modulo=None, out=None):
    modulo = np.zeros(threads, np.int32) if modulo is None else modulo
    out = np.full(threads, SENTINEL, np.float32) if out is None else out
    lib.kernel(name)(values, out, active, args, modulo, threads=threads, group_size=group_size)
    return out


def test_non_uniform_broadcast_lane(lib):
    n = 64
    args = np.zeros(n, np.int32)
    args[37] = 5  # lane 5 of SIMD-group 1 passes another lane index
    with pytest.raises(LaunchError) as e:
        run(lib, "simd_broadcast", np.arange(n, dtype=np.float32), np.ones(n, np.int32), args, n, 64)
    message = str(e.value)
    assert "kernel 'simd_broadcast', threadgroup (0, 0, 0): SIMD-group 1: simd_broadcast at line" in message
    assert "lane index must be the same for every active thread of the SIMD-group" in message
    assert "lane 0 passes 0 and lane 5 passes 5" in message


def test_non_uniform_delta_in_a_quad(lib):
    n = 8
    args = np.array([1, 1, 1, 2, 1, 1, 1, 1], np.int32)
    with pytest.raises(LaunchError, match="the delta must be the same for every active thread of the quad-group"):
        run(lib, "quad_down", np.arange(n, dtype=np.float32), np.ones(n, np.int32), args, n, 8)


def test_different_deltas_in_different_quads_are_fine(lib):
    n = 8
    args = np.array([1, 1, 1, 1, 2, 2, 2, 2], np.int32)
    out = run(lib, "quad_down", np.arange(n, dtype=np.float32), np.ones(n, np.int32), args, n, 8)
    np.testing.assert_array_equal(out, [1, 2, 3, 3, 6, 7, 6, 7])


def test_shuffle_lane_out_of_range(lib):
    n = 32
    args = np.zeros(n, np.int32)
    args[3] = 40
    with pytest.raises(LaunchError, match="lane 3 asks for SIMD lane 40, which does not exist"):
        run(lib, "simd_shuffle", np.arange(n, dtype=np.float32), np.ones(n, np.int32), args, n, 32)


def test_shuffle_reading_an_exited_lane(lib):
    n = 32
    active = np.ones(n, np.int32)
    active[20:] = 0  # these lanes do not call simd_shuffle_down: they are inactive
    with pytest.raises(LaunchError) as e:
        run(lib, "simd_down", np.arange(n, dtype=np.float32), active, np.full(n, 8, np.int32), n, 32)
    assert "simd_shuffle_down at line" in str(e.value)
    assert "lane 12 reads lane 20, which is inactive" in str(e.value)


def test_bad_modulo(lib):
    n = 32
    with pytest.raises(LaunchError, match="modulo is 3; it must be 2, 4, 8, 16 or 32"):
        run(lib, "simd_fill_down_mod", np.arange(n, dtype=np.float32), np.ones(n, np.int32),
            np.ones(n, np.int32), n, 32, modulo=np.full(n, 3, np.int32))


def test_two_dimensional_groups_number_lanes_by_linear_index(lib):
    # A 16x4 group: the linear index is x + 16 y, so SIMD-group 0 is rows 0 and 1.
    values = np.arange(64, dtype=np.float32)
    out = np.full(64, SENTINEL, np.float32)
    lib.kernel("simd_sum")(values, out, np.ones(64, np.int32), np.zeros(64, np.int32), np.zeros(64, np.int32),
                           threads=64, group_size=64)
    np.testing.assert_array_equal(out[:32], values[:32].sum())
    np.testing.assert_array_equal(out[32:], values[32:].sum())


VECTOR_CPP = r"""
typedef half half4 __attribute__((ext_vector_type(4)));
static void sum_float4(msim_thread* t) { at<float4>(t, 1, gid(t)) = simd_sum(at<float4>(t, 0, gid(t))); }
static void max_half(msim_thread* t) { at<half>(t, 1, gid(t)) = simd_max(at<half>(t, 0, gid(t))); }
static void sum_half4(msim_thread* t) { at<half4>(t, 1, gid(t)) = simd_sum(at<half4>(t, 0, gid(t))); }
static void sum_bfloat(msim_thread* t) { at<bfloat>(t, 1, gid(t)) = simd_sum(at<bfloat>(t, 0, gid(t))); }
static void scan_int2(msim_thread* t) { at<int2>(t, 1, gid(t)) = simd_prefix_exclusive_sum(at<int2>(t, 0, gid(t))); }
static void shuffle_float4(msim_thread* t) { at<float4>(t, 1, gid(t)) = simd_shuffle_xor(at<float4>(t, 0, gid(t)), 1); }

// Lanes loop a different number of times, each iteration calling simd_sum(1): the sum counts
// the lanes still looping. After the loop every lane is back, and the count is the whole group.
#line 50
static void loop_reconverges(msim_thread* t) {
  const uint n = lane(t) % 4;
  float last = 0;
  for (uint k = 0; k < n; ++k) last = simd_sum(1.0f);
  at<float2>(t, 1, gid(t)) = float2{last, simd_sum(1.0f)};
}
HARNESS_LIBRARY(
    {"sum_float4", sum_float4, MSIM_USES_SIMD, 2}, {"max_half", max_half, MSIM_USES_SIMD, 2},
    {"sum_half4", sum_half4, MSIM_USES_SIMD, 2}, {"sum_bfloat", sum_bfloat, MSIM_USES_SIMD, 2},
    {"scan_int2", scan_int2, MSIM_USES_SIMD, 2}, {"shuffle_float4", shuffle_float4, MSIM_USES_SIMD, 2},
    {"loop_reconverges", loop_reconverges, MSIM_USES_SIMD, 2})
"""
VECTOR_MSL = """
kernel void sum_float4(device const float4* in [[buffer(0)]], device float4* out [[buffer(1)]]) {}
kernel void max_half(device const half* in [[buffer(0)]], device half* out [[buffer(1)]]) {}
kernel void sum_half4(device const half4* in [[buffer(0)]], device half4* out [[buffer(1)]]) {}
kernel void sum_bfloat(device const bfloat* in [[buffer(0)]], device bfloat* out [[buffer(1)]]) {}
kernel void scan_int2(device const int2* in [[buffer(0)]], device int2* out [[buffer(1)]]) {}
kernel void shuffle_float4(device const float4* in [[buffer(0)]], device float4* out [[buffer(1)]]) {}
kernel void loop_reconverges(device const float2* in [[buffer(0)]], device float2* out [[buffer(1)]]) {}
"""


@pytest.fixture(scope="module")
def vector_lib(kernels):
    return kernels.load(VECTOR_CPP, VECTOR_MSL)


def test_vector_and_16_bit_values(vector_lib):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(-8, 8, (64, 4)).astype(np.float32))
    out = torch.zeros_like(x)
    vector_lib.kernel("sum_float4")(x, out, threads=64)
    want = x.reshape(2, 32, 4).sum(1, keepdim=True).expand(2, 32, 4).reshape(64, 4)
    torch.testing.assert_close(out, want, rtol=0, atol=0)

    out = torch.zeros_like(x)
    vector_lib.kernel("shuffle_float4")(x, out, threads=64)
    torch.testing.assert_close(out, x.reshape(32, 2, 4).flip(1).reshape(64, 4), rtol=0, atol=0)

    h = torch.from_numpy(rng.standard_normal(64).astype(np.float16))
    out = torch.zeros_like(h)
    vector_lib.kernel("max_half")(h, out, threads=64)
    torch.testing.assert_close(out, h.reshape(2, 32).amax(1).repeat_interleave(32), rtol=0, atol=0)

    h4 = torch.from_numpy(rng.integers(-8, 8, (32, 4)).astype(np.float16))
    out = torch.zeros_like(h4)
    vector_lib.kernel("sum_half4")(h4, out, threads=32)
    torch.testing.assert_close(out, h4.sum(0, keepdim=True).expand(32, 4), rtol=0, atol=0)

    b = torch.arange(32, dtype=torch.bfloat16) % 4
    out = torch.zeros_like(b)
    vector_lib.kernel("sum_bfloat")(b, out, threads=32)
    torch.testing.assert_close(out, torch.full((32,), 48.0, dtype=torch.bfloat16), rtol=0, atol=0)

    i2 = torch.from_numpy(rng.integers(-100, 100, (32, 2)).astype(np.int32))
    out = torch.zeros_like(i2)
    vector_lib.kernel("scan_int2")(i2, out, threads=32)
    torch.testing.assert_close(out, (torch.cumsum(i2, 0) - i2).to(torch.int32), rtol=0, atol=0)


def test_lanes_that_loop_longer_reconverge_after_the_loop(vector_lib):
    out = np.zeros((32, 2), np.float32)
    vector_lib.kernel("loop_reconverges")(np.zeros((32, 2), np.float32), out, threads=32)
    n = np.arange(32) % 4
    # In iteration k the lanes with n > k call simd_sum: their count; lanes with n == 0 never do.
    last = np.where(n > 0, [np.sum(n > k) for k in n - 1], 0)
    np.testing.assert_array_equal(out[:, 0], last)
    np.testing.assert_array_equal(out[:, 1], 32)
