"""What a GPU hides and the sim reports: every LaunchError of issue 2, each through the public API
(metalrt.compile + a launch), each asserting that the message names the cause. After each error
the process is alive and the next launch works."""


import pytest
import torch

import metalrt

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


def launch_error(fn) -> str:
    with pytest.raises(metalrt.LaunchError) as info:
        fn()
    return str(info.value)


@pytest.fixture(scope="module")
def healthy(request):
    """A kernel that must keep working after every error."""
    lib = metalrt.compile(HEADER + """
kernel void iota(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = float(i); }
""", backend="sim")

    def check():
        y = torch.zeros(100)
        lib.iota(y, threads=100)
        assert torch.equal(y, torch.arange(100).float())

    return check


def test_divergent_threadgroup_barrier(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint tid [[thread_position_in_threadgroup]]) {
    if (tid < 16) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    y[tid] = 1.0f;
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(64), threads=64, group_size=64))
    assert "threadgroup_barrier at line 6" in message and "returned while other threads" in message, message
    healthy()


def test_divergent_simdgroup_barrier(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint lane [[thread_index_in_simdgroup]]) {
    if (lane < 8) {
        simdgroup_barrier(mem_flags::mem_none);
    }
    y[lane] = 1.0f;
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(32), threads=32, group_size=32))
    assert "simdgroup_barrier" in message and "divergent" in message, message
    healthy()


def test_divergent_simdgroup_matrix(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
              uint lane [[thread_index_in_simdgroup]]) {
    simdgroup_float8x8 m;
    if (lane < 16) {
        simdgroup_load(m, x, 8);
        simdgroup_store(m, y, 8);
    }
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(64), torch.zeros(64), threads=32, group_size=32))
    assert "simdgroup_load" in message and "divergent" in message, message
    healthy()


def test_non_uniform_broadcast_lane(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
              ushort lane [[thread_index_in_simdgroup]]) {
    y[lane] = simd_broadcast(x[lane], ushort(lane % 2));
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(32), torch.zeros(32), threads=32, group_size=32))
    assert "simd_broadcast at line 6" in message and "must be the same" in message, message
    healthy()


def test_group_size_above_the_limit(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = 1.0f; }
""")
    message = launch_error(lambda: lib.k(torch.zeros(4096), threads=4096, group_size=2048))
    assert "2048" in message and "1024" in message, message
    healthy()


def test_static_threadgroup_memory_above_32k(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float big[9000];   // 36000 bytes
    big[tid] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[tid] = big[tid];
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(64), threads=64, group_size=64))
    assert "threadgroup memory" in message and "32768" in message, message
    healthy()


def test_dynamic_threadgroup_memory_above_32k(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], threadgroup float* scratch [[threadgroup(0)]],
              uint tid [[thread_position_in_threadgroup]]) {
    scratch[tid] = 1.0f;
    y[tid] = scratch[tid];
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(64), threads=64, group_size=64,
                                         threadgroup_memory={0: 40000}))
    assert "40000" in message and "32768" in message, message
    healthy()


OOB = HEADER + """
kernel void read_past(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    y[i] = x[i + 1];
}
kernel void write_past(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    y[i + 2] = 7.0f;
}
"""


def test_out_of_bounds_read_names_buffer_index_and_size(sim, healthy):
    lib = sim.compile(OOB)
    message = launch_error(lambda: lib.read_past(torch.zeros(100), torch.zeros(100), threads=100))
    assert "'x'" in message and "element 100" in message and "400 bytes" in message, message
    healthy()


def test_out_of_bounds_write_never_lands_outside(sim, healthy):
    lib = sim.compile(OOB)
    storage = torch.zeros(200)
    y = storage[:100]            # the buffer; storage[100:] is memory right after it
    message = launch_error(lambda: lib.write_past(y, threads=100))
    assert "'y'" in message and "element 100" in message and "400 bytes" in message, message
    assert torch.equal(storage[100:], torch.zeros(100)), "a write landed outside the buffer"
    healthy()
    # and the same kernel works in bounds afterwards
    y2 = torch.zeros(102)
    lib.write_past(y2, threads=100)
    assert torch.equal(y2[2:], torch.full((100,), 7.0))


def test_race_on_threadgroup_memory(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void shift(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                  uint gid [[thread_position_in_grid]], uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float tile[64];
    tile[tid] = x[gid];
    // missing threadgroup_barrier: the read below races with the neighbour's write
    y[gid] = tile[(tid + 1) % 64];
}
""")
    message = launch_error(lambda: lib.shift(torch.randn(128), torch.zeros(128), threads=128,
                                             group_size=64))
    assert "order" in message and "race" in message and "'y'" in message, message
    healthy()


def test_integer_division_by_zero_names_the_line(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const int* x [[buffer(0)]], device int* y [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    y[i] = 100 / x[i];
}
""")
    x = torch.tensor([1, 2, 0, 4], dtype=torch.int32)
    message = launch_error(lambda: lib.k(x, torch.zeros(4, dtype=torch.int32), threads=4))
    assert "division by zero at kernel.metal:6" in message, message
    healthy()


def test_thread_array_index_out_of_bounds_names_the_line(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const int* x [[buffer(0)]], device float* y [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    float window[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    y[i] = window[x[i]];
}
""")
    x = torch.tensor([0, 3, 4], dtype=torch.int32)
    message = launch_error(lambda: lib.k(x, torch.zeros(3), threads=3))
    assert "index 4 is out of bounds" in message and "float[4]" in message, message
    assert "kernel.metal:7" in message, message
    healthy()


def test_stack_overflow(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const int* x [[buffer(0)]], device float* y [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    float big[200000];              // 800 KB of thread memory: far more than a GPU thread has
    for (int k = 0; k < 200000; ++k) big[k] = float(k + x[i]);
    y[i] = big[x[i]];
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(2, dtype=torch.int32), torch.zeros(2), threads=2))
    assert "stack" in message.lower(), message
    healthy()


def test_unset_function_constant_is_an_error_when_used(sim, healthy):
    source = HEADER + """
constant int kTimes [[function_constant(0)]];
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    y[i] = float(kTimes);
}
"""
    lib = sim.compile(source)
    message = launch_error(lambda: lib.k(torch.zeros(4), threads=4))
    assert "kTimes" in message and "constants=" in message, message
    y = torch.zeros(4)
    sim.compile(source, constants={"kTimes": 3}).k(y, threads=4)
    assert torch.equal(y, torch.full((4,), 3.0))
    healthy()


def test_threadgroup_array_index_out_of_bounds_names_the_line(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint tid [[thread_position_in_threadgroup]]) {
    threadgroup float tile[32];
    tile[tid] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[tid] = tile[31 - tid];
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(64), threads=64, group_size=64))
    assert "index 32 is out of bounds" in message and "float[32]" in message, message
    assert "kernel.metal:6" in message, message
    healthy()


def test_null_and_unbound_pointers(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    device float* p = nullptr;
    if (i == 1) p = y;
    p[0] = 1.0f;
}
""")
    message = launch_error(lambda: lib.k(torch.zeros(4), threads=4))
    assert "null" in message, message
    healthy()


def test_shift_by_the_bit_width_names_the_line(sim, healthy):
    lib = sim.compile(HEADER + """
kernel void k(device const uint* s [[buffer(0)]], device uint* y [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    y[i] = 1u << s[i];
}
""")
    s = torch.tensor([0, 31, 32], dtype=torch.uint32)
    message = launch_error(lambda: lib.k(s, torch.zeros(3, dtype=torch.uint32), threads=3))
    assert "shift by 32" in message and "32-bit" in message and "kernel.metal:6" in message, message
    healthy()
