"""The MSL and CUDA type tables: sizes and alignment as the specifications give them."""

import pytest

from metalrt import _C


def info(name, dialect="msl"):
    t = _C._type_info(name, dialect)
    assert t is not None, name
    return t["name"], t["size"], t["align"]


@pytest.mark.parametrize(
    "name,size",
    [("bool", 1), ("char", 1), ("uchar", 1), ("short", 2), ("ushort", 2), ("int", 4), ("uint", 4), ("long", 8),
     ("ulong", 8), ("half", 2), ("bfloat", 2), ("float", 4)],
)
def test_scalars(name, size):
    assert info(name) == (name, size, size)


@pytest.mark.parametrize("scalar,size", [("char", 1), ("short", 2), ("half", 2), ("bfloat", 2), ("float", 4),
                                         ("int", 4), ("uint", 4), ("long", 8), ("bool", 1)])
def test_vectors_pad_three_to_four(scalar, size):
    assert info(f"{scalar}2") == (f"{scalar}2", 2 * size, 2 * size)
    assert info(f"{scalar}3") == (f"{scalar}3", 4 * size, 4 * size)
    assert info(f"{scalar}4") == (f"{scalar}4", 4 * size, 4 * size)


def test_packed_vectors_are_unpadded_and_element_aligned():
    assert info("packed_float3") == ("packed_float3", 12, 4)
    assert info("packed_half4") == ("packed_half4", 8, 2)
    assert info("packed_uint2") == ("packed_uint2", 8, 4)
    assert _C._type_info("packed_bool2") is None


def test_spellings_and_aliases():
    assert info("metal::float4") == ("float4", 16, 16)
    assert info("simd_float3") == ("float3", 16, 16)
    assert info("vec<float, 4>") == ("float4", 16, 16)
    assert info("vec< half ,3 >") == ("half3", 8, 8)
    assert info("vec<int, 1>") == ("int", 4, 4)
    assert info("unsigned int") == ("uint", 4, 4)
    assert info("uint32_t") == ("uint", 4, 4)
    assert info("int64_t") == ("long", 8, 8)
    assert info("size_t") == ("ulong", 8, 8)


def test_atomics():
    assert info("atomic_int") == ("atomic_int", 4, 4)
    assert info("atomic_uint") == ("atomic_uint", 4, 4)
    assert info("atomic_float") == ("atomic_float", 4, 4)
    assert info("atomic<uint>") == ("atomic_uint", 4, 4)
    assert info("metal::atomic<int>") == ("atomic_int", 4, 4)
    t = _C._type_info("atomic_uint")
    assert t["atomic"] and t["scalar"] == "uint"
    assert _C._type_info("atomic<half>") is None
    assert _C._type_info("atomic_float4") is None


def test_unknown_names():
    for name in ["Params", "float5", "texture2d<float>", "vec<float, 5>", "quad"]:
        assert _C._type_info(name) is None


def test_cuda_types():
    assert info("float3", "cuda") == ("float3", 12, 4)
    assert info("float4", "cuda") == ("float4", 16, 16)
    assert info("double2", "cuda") == ("double2", 16, 16)
    assert info("uchar3", "cuda") == ("uchar3", 3, 1)
    assert info("__half", "cuda") == ("__half", 2, 2)
    assert info("__half2", "cuda") == ("__half2", 4, 4)
    assert info("__nv_bfloat16", "cuda")[1:] == (2, 2)
    assert info("unsigned long long", "cuda")[1:] == (8, 8)
    assert info("long", "cuda")[1:] == (8, 8)
    assert info("int64_t", "cuda")[1:] == (8, 8)
    assert _C._type_info("half3", "cuda") is None


def test_matrices_are_columns_of_vectors():
    assert info("float4x4") == ("float4x4", 64, 16)
    assert info("float3x3") == ("float3x3", 48, 16)  # float3 columns take 16 bytes each
    assert info("half2x3") == ("half2x3", 16, 8)
    assert info("matrix<float, 2, 4>") == ("float2x4", 32, 16)
    t = _C._type_info("float2x3")
    assert (t["scalar"], t["width"]) == ("float", 3)
    assert _C._type_info("int2x2") is None and _C._type_info("float5x5") is None
