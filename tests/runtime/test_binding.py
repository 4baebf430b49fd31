"""Argument binding: every mismatch is an ArgumentError that names the kernel and the parameter;
nothing is silently reinterpreted."""

import struct

import numpy as np
import pytest
import torch

from metalrt import ArgumentError, _C

SRC = """
struct Inner { half h; float2 v; };
struct Params { uint n; float scale; Inner inner; int taps[2]; };
kernel void scale(const device float* x [[buffer(0)]],
                  device float* y [[buffer(1)]],
                  constant uint& n [[buffer(2)]],
                  uint i [[thread_position_in_grid]]) {}
kernel void vec(device float4* v [[buffer(0)]], constant half& h [[buffer(1)]],
                constant bfloat& b [[buffer(2)]], constant ushort& u [[buffer(3)]],
                constant char& c [[buffer(4)]], constant bool& flag [[buffer(5)]],
                constant uint3& dims [[buffer(6)]], constant packed_float3& p [[buffer(7)]],
                constant long& l [[buffer(8)]], constant ulong& ul [[buffer(9)]]) {}
kernel void params(device float* x [[buffer(0)]], constant Params& p [[buffer(1)]],
                   const device Params* many [[buffer(2)]], constant float* table [[buffer(3)]]) {}
kernel void mat(constant float3x3& m [[buffer(0)]], const device float4x4* many [[buffer(1)]]) {}
kernel void types(device half* h, device bfloat* b, device int* i, device uchar* u8,
                  device bool* flags, device atomic_uint* counts, device void* raw) {}
"""
LIB = _C._RecordingLibrary(_C.parse_msl(SRC))
CUDA_LIB = _C._RecordingLibrary(_C.parse_msl(SRC), memory="cuda", backend="cuda")
HOST_OK = _C._RecordingLibrary(_C.parse_msl(SRC), memory="mps", accept_host_arrays=True, backend="metal")


def bound(kernel, *args, lib=LIB, **kw):
    k = lib.kernel(kernel)
    k(*args, threads=kw.pop("threads", 1), **kw)
    return k.last_launch["args"]


def error(kernel, *args, lib=LIB):
    with pytest.raises(ArgumentError) as e:
        lib.kernel(kernel)(*args, threads=1)
    return str(e.value)


def f32(n=8):
    return torch.zeros(n, dtype=torch.float32)


# ---- what binds ---------------------------------------------------------------------------


def test_tensors_bind_zero_copy_with_their_storage_offset():
    base = torch.arange(16, dtype=torch.float32)
    view = base[4:12]
    args = bound("scale", view, f32(), 8)
    x = args[0]
    assert x["kind"] == "buffer" and x["data"] == view.data_ptr() and x["storage"] == base.data_ptr()
    assert x["byte_offset"] == 16 and x["nbytes"] == 32 and x["memory"] == "cpu"
    assert x["writable"] is False  # const pointee
    assert args[1]["writable"] is True
    assert args[2] == {"param": "n", "index": 2, "kind": "bytes", "bytes": struct.pack("<I", 8)}


def test_numpy_arrays_bind_through_the_buffer_protocol():
    a = np.arange(8, dtype=np.float32)
    args = bound("scale", a, np.zeros(8, np.float32), np.uint32(8))
    assert args[0]["data"] == a.ctypes.data and args[0]["nbytes"] == 32
    assert args[2]["bytes"] == struct.pack("<I", 8)


def test_scalars_vectors_and_their_encodings():
    args = bound("vec", torch.zeros(4, 4), 1.5, 1.0, 65535, -128, True, (1, 2, 3), (1.0, 2.0, 3.0), -(2**63),
                 2**64 - 1)
    by = {a["param"]: a["bytes"] for a in args if a["kind"] == "bytes"}
    assert by["h"] == np.float16(1.5).tobytes()
    assert by["b"] == b"\x80\x3f"  # bfloat16 1.0
    assert by["u"] == struct.pack("<H", 65535)
    assert by["c"] == struct.pack("<b", -128)
    assert by["flag"] == b"\x01"
    assert by["dims"] == struct.pack("<4I", 1, 2, 3, 0)  # uint3 is 16 bytes
    assert by["p"] == struct.pack("<3f", 1, 2, 3)  # packed_float3 is 12
    assert by["l"] == struct.pack("<q", -(2**63))
    assert by["ul"] == struct.pack("<Q", 2**64 - 1)


def test_half_rounds_to_nearest_even():
    for value in [0.1, 1 / 3, 65504.0, 6e-8, -2.0, float("inf"), 2049.0]:
        args = bound("vec", torch.zeros(4, 4), value, 0, 0, 0, False, (0, 0, 0), (0, 0, 0), 0, 0)
        assert args[1]["bytes"] == np.float16(value).tobytes(), value


def test_structs_from_tuples_and_bytes():
    p = (7, 0.5, (1.0, (2.0, 3.0)), (-1, 4))
    args = bound("params", f32(), p, torch.zeros(64, dtype=torch.uint8), b"\x00" * 8)
    packed = args[1]["bytes"]
    layout = LIB.kernel("params").signature.structs["Params"]
    assert layout.size == len(packed) == 32
    assert packed[0:8] == struct.pack("<If", 7, 0.5)
    assert packed[8:10] == np.float16(1.0).tobytes() and packed[16:24] == struct.pack("<2f", 2, 3)
    assert packed[24:32] == struct.pack("<2i", -1, 4)
    raw = bytes(range(32))
    assert bound("params", f32(), raw, torch.zeros(64, dtype=torch.uint8), b"")[1]["bytes"] == raw
    # a constant buffer may take inline bytes (Metal's setBytes)
    assert args[3]["kind"] == "bytes" and args[3]["bytes"] == b"\x00" * 8


def test_dtypes_map_one_to_one():
    args = bound("types", torch.zeros(2, dtype=torch.float16), torch.zeros(2, dtype=torch.bfloat16),
                 torch.zeros(2, dtype=torch.int32), np.zeros(2, np.uint8), torch.zeros(2, dtype=torch.bool),
                 torch.zeros(2, dtype=torch.uint32), torch.zeros(3, dtype=torch.float64))
    assert [a["kind"] for a in args] == ["buffer"] * 7  # void* takes any dtype


def test_host_arrays_where_the_backend_accepts_them():
    assert bound("scale", f32(), f32(), 1, lib=HOST_OK)[0]["memory"] == "cpu"


# ---- what does not bind, and what the error says --------------------------------------------------


def test_wrong_count_names_missing_and_extra():
    assert error("scale", f32()) == "scale(): expected 3 arguments (x, y, n), got 1; missing 'y', 'n'"
    assert error("scale", f32(), f32(), 1, 2, 3) == "scale(): expected 3 arguments (x, y, n), got 5; 2 extra"


@pytest.mark.parametrize(
    "args,message",
    [
        ((torch.zeros(8, dtype=torch.float16), f32(), 8),
         "scale(): parameter 'x' (const device float*, buffer 0) expects a float32 tensor, got float16"),
        ((f32(), np.zeros(8, np.float64), 8), "parameter 'y' (device float*, buffer 1) expects a float32 tensor, got float64"),
        ((f32(), f32(), -1), "parameter 'n' (constant uint&, buffer 2) expects uint in [0, 4294967295], got the int -1"),
        ((f32(), f32(), 2.5), "parameter 'n' (constant uint&, buffer 2) expects an integer (uint), got the float 2.5"),
        ((f32(), f32(), 2**64), "parameter 'n' got the int 18446744073709551616, which does not fit in 64 bits"),
        ((f32(), f32(), None), "parameter 'n' (constant uint&, buffer 2) expects a number (uint), got None"),
        ((f32(), f32(), "8"), "parameter 'n' got an object of type 'str'"),
        ((f32(), f32(), (1, 2)), "parameter 'n' (constant uint&, buffer 2) expects a number (uint), got a tuple of 2"),
        ((f32(16)[::2], f32(), 8), "parameter 'x' (const device float*, buffer 0) got a non-contiguous torch.Tensor"),
        ((1.0, f32(), 8), "parameter 'x' (const device float*, buffer 0) expects a tensor, got the float 1"),
        ((f32(), np.zeros(8, np.float32)[::2], 8), "got a non-contiguous numpy.ndarray"),
        ((f32(), b"1234", 8), "parameter 'y' (device float*, buffer 1) expects a tensor, got 4 bytes"),
        ((f32().to_sparse(), f32(), 8), "a sparse or otherwise non-strided tensor"),
        ((f32(), torch.zeros(8, device="meta"), 8), "a tensor on 'meta'"),
    ],
)
def test_argument_errors_name_the_parameter(args, message):
    assert message in error("scale", *args)


def test_read_only_numpy_array_for_a_writable_pointer():
    ro = np.zeros(8, np.float32)
    ro.setflags(write=False)
    assert "parameter 'y' (device float*, buffer 1) is writable, but the array passed is read-only" in error(
        "scale", f32(), ro, 8)
    assert bound("scale", ro, f32(), 8)[0]["writable"] is False  # fine for a const pointee


def test_device_mismatch():
    msg = error("scale", f32(), f32(), 8, lib=CUDA_LIB)
    assert "parameter 'x' (const device float*, buffer 0) expects a tensor on cuda:0 for the cuda backend" in msg
    assert 'got a torch.Tensor of float32 on cpu; move it with .to("cuda:0")' in msg


VEC_REST = (1.0, 1.0, 1, 1, True, (1, 2, 3), (1, 2, 3), 1, 1)


@pytest.mark.parametrize(
    "position,value,message",
    [
        (0, torch.zeros(8, dtype=torch.float32)[1:5], "which is not a multiple of the 16-byte alignment float4 requires"),
        (0, torch.zeros(2), "got a view of 8 bytes, smaller than one float4 (16 bytes)"),
        (0, torch.zeros(4, 4, dtype=torch.int32), "expects a float32 tensor (float4 elements), got int32"),
        (1, 1e6, "parameter 'h' (constant half&, buffer 1) expects half, but the float 1000000 overflows it (largest finite value 65504)"),
        (2, 1e39, "overflows it (largest finite value 3.3895314e38)"),
        (3, 70000, "parameter 'u' (constant ushort&, buffer 3) expects ushort in [0, 65535], got the int 70000"),
        (4, 128, "expects char in [-128, 127], got the int 128"),
        (5, 2, "parameter 'flag' (constant bool&, buffer 5) expects a bool (True, False, 0 or 1), got the int 2"),
        (6, (1, 2), "parameter 'dims' (constant uint3&, buffer 6) expects a tuple of 3 numbers (uint3), got a tuple of 2"),
        (6, (1, 2, -3), "parameter 'dims' (constant uint3&, buffer 6) element 2 expects uint in [0, 4294967295], got the int -3"),
        (7, 1.0, "expects a tuple of 3 numbers (packed_float3), got the float 1"),
        (8, 2**63, "expects long in [-9223372036854775808, 9223372036854775807], got the int 9223372036854775808"),
        (9, -1, "expects ulong in [0, 18446744073709551615], got the int -1"),
    ],
)
def test_value_errors(position, value, message):
    args = [torch.zeros(4, 4), *VEC_REST]
    args[position] = value
    assert message in error("vec", *args)


@pytest.mark.parametrize(
    "p,message",
    [
        (b"\x00" * 28, "parameter 'p' (constant Params&, buffer 1) expects 32 bytes (struct Params), got 28 bytes"),
        ((1, 2.0, (1.0, (2.0, 3.0))), "expects struct Params as a tuple of 4 fields (n, scale, inner, taps), got a tuple of 3"),
        ((1, 2.0, (1.0, (2.0, 3.0)), (1, 2, 3)), "field 'taps' is an array of 2 int: expects a tuple of 2, got a tuple of 3"),
        ((-1, 2.0, (1.0, (2.0, 3.0)), (1, 2)), "field 'n' expects uint in [0, 4294967295], got the int -1"),
        ((1, 2.0, (1.0, 2.0), (1, 2)), "field 'inner' field 'v' expects a tuple of 2 numbers (float2), got the float 2"),
        (5, "expects struct Params: a tuple of its 4 fields (n, scale, inner, taps) or 32 bytes, got the int 5"),
    ],
)
def test_struct_errors(p, message):
    assert message in error("params", f32(), p, torch.zeros(64, dtype=torch.uint8), b"")


def test_struct_buffer_extent_and_constant_bytes_shape():
    assert "got a view of 16 bytes, smaller than one Params (32 bytes)" in error(
        "params", f32(), b"\x00" * 32, torch.zeros(16, dtype=torch.uint8), b"")
    assert "got 6 bytes, not a whole number of float (4 bytes each)" in error(
        "params", f32(), b"\x00" * 32, torch.zeros(64, dtype=torch.uint8), b"\x00" * 6)


def test_atomic_pointee_wants_the_exact_integer_dtype():
    args = [torch.zeros(2, dtype=torch.float16), torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.int32),
            np.zeros(2, np.uint8), torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.int32), f32()]
    assert "parameter 'counts' (device atomic_uint*, buffer 5) expects a uint32 tensor (atomic_uint elements), got int32" in error(
        "types", *args)


def test_empty_tensors_bind():
    args = bound("scale", torch.zeros(0), torch.zeros(0), 0)
    assert args[0]["nbytes"] == 0


def test_matrices_bind_column_major():
    args = bound("mat", ((1, 2, 3), (4, 5, 6), (7, 8, 9)), torch.zeros(32))
    assert args[0]["bytes"] == struct.pack("<12f", 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0)
    assert "expects float3x3 as a tuple of 3 columns (each float3), or 48 bytes, got a tuple of 2" in error(
        "mat", ((1, 2, 3), (4, 5, 6)), torch.zeros(32))
    assert "column 1 expects a tuple of 3 numbers (float3)" in error("mat", ((1, 2, 3), (4, 5), (7, 8, 9)), torch.zeros(32))
    assert "expects a float32 tensor (float4x4 elements), got float16" in error(
        "mat", b"\x00" * 48, torch.zeros(32, dtype=torch.float16))
    assert "smaller than one float4x4 (64 bytes)" in error("mat", b"\x00" * 48, torch.zeros(8))


def test_numpy_scalars_bind_as_numbers():
    args = bound("vec", torch.zeros(4, 4), np.float16(0.5), np.float32(1.0), np.uint16(7), np.int8(-3), np.bool_(True),
                 (np.uint32(1), 2, np.int64(3)), (np.float64(1), 2, 3), np.int64(-5), np.uint64(2**64 - 1))
    by = {a["param"]: a["bytes"] for a in args if a["kind"] == "bytes"}
    assert by["h"] == np.float16(0.5).tobytes() and by["u"] == struct.pack("<H", 7) and by["flag"] == b"\x01"
    assert by["dims"] == struct.pack("<4I", 1, 2, 3, 0) and by["ul"] == struct.pack("<Q", 2**64 - 1)
    assert "expects ushort in [0, 65535], got the int -1" in error(
        "vec", torch.zeros(4, 4), 1.0, 1.0, np.int32(-1), 1, True, (1, 2, 3), (1, 2, 3), 1, 1)
