"""Launch geometry and limits, checked before anything is encoded."""

import numpy as np
import pytest

from metalrt import LaunchError, _C

SRC = """
kernel void k(device float* x [[buffer(0)]], uint3 gid [[thread_position_in_grid]]) {}
kernel void tg(device float* x [[buffer(0)]], threadgroup float* a [[threadgroup(0)]],
               threadgroup float* b [[threadgroup(1)]], uint i [[thread_position_in_grid]]) {}
[[kernel, max_total_threads_per_threadgroup(128)]]
void small(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {}
"""


def library(**limits):
    lim = _C.KernelLimits()
    for k, v in limits.items():
        setattr(lim, k, v)
    return _C._RecordingLibrary(_C.parse_msl(SRC), limits=lim)


X = np.zeros(16, np.float32)


def launch(kernel_name="k", lib=None, **kw):
    k = (lib or library()).kernel(kernel_name)
    args = (X,)
    k(*args, **kw)
    return k.last_launch


def test_threads_1d_default_group_is_256_or_the_threads_rounded_up_to_the_simd_width():
    big = launch(threads=1000)
    assert big["dispatch_threads"] and big["threads"] == (1000, 1, 1)
    assert big["group_size"] == (256, 1, 1) and big["groups"] == (4, 1, 1)
    small = launch(threads=40)
    assert small["group_size"] == (64, 1, 1) and small["groups"] == (1, 1, 1)


def test_threads_2d_and_3d_defaults():
    two = launch(threads=(100, 30))
    assert two["group_size"] == (16, 16, 1) and two["groups"] == (7, 2, 1) and two["threads"] == (100, 30, 1)
    three = launch(threads=(9, 9, 9))
    assert three["group_size"] == (8, 8, 4) and three["groups"] == (2, 2, 3)


def test_defaults_shrink_to_the_pipeline_limit():
    lib = library(max_threads_per_group=64)
    assert launch(lib=lib, threads=1000)["group_size"] == (64, 1, 1)
    assert launch(lib=lib, threads=(64, 64))["group_size"] == (8, 8, 1)
    assert launch(lib=lib, threads=(8, 8, 8))["group_size"] == (4, 4, 4)


def test_groups_dispatch():
    g = launch(groups=(3, 2), group_size=(32, 4))
    assert not g["dispatch_threads"]
    assert g["groups"] == (3, 2, 1) and g["group_size"] == (32, 4, 1) and g["threads"] == (96, 8, 1)


def test_explicit_group_size_and_list_spelling():
    g = launch(threads=[10, 10, 10], group_size=[2, 5, 10])
    assert g["groups"] == (5, 2, 1)


def test_group_above_the_limit_gives_both_numbers():
    with pytest.raises(LaunchError) as e:
        launch(threads=(64, 64), group_size=(32, 64))
    msg = str(e.value)
    assert "group_size (32, 64) = 2048 threads" in msg and "maximum of 1024" in msg and "'k'" in msg


def test_max_total_threads_attribute_lowers_the_limit():
    with pytest.raises(LaunchError, match="maximum of 128"):
        launch("small", threads=1024, group_size=256)
    assert launch("small", threads=1024)["group_size"] == (128, 1, 1)


@pytest.mark.parametrize(
    "kw,message",
    [
        ({}, "needs threads="),
        ({"threads": 4, "groups": 1}, "not both"),
        ({"threads": 0}, "zero dimension"),
        ({"threads": (4, 0)}, "threads=(4, 0) has a zero dimension"),
        ({"threads": 4, "group_size": (0, 1)}, "group_size=(0, 1) has a zero dimension"),
        ({"threads": -1}, "non-negative"),
        ({"threads": (1, 2, 3, 4)}, "1 to 3 ints"),
        ({"threads": 2.5}, "non-negative integers"),
        ({"threads": 1 << 33}, "2^32 - 1 threads along x"),
        ({"groups": (1, 70000)}, "exceed the device's limit of 65535"),
    ],
)
def test_bad_geometry(kw, message):
    with pytest.raises(LaunchError, match=message.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")):
        launch(**kw)


def test_threadgroup_memory_binds_by_index_and_is_checked_against_the_limit():
    lib = library()
    k = lib.kernel("tg")
    k(X, threads=64, threadgroup_memory={1: 256, 0: 1024})
    tg = [a for a in k.last_launch["args"] if a["kind"] == "threadgroup"]
    assert [(a["param"], a["index"], a["threadgroup_bytes"]) for a in tg] == [("a", 0, 1024), ("b", 1, 256)]
    with pytest.raises(LaunchError, match="threadgroup_memory=\\{1: nbytes\\}"):
        k(X, threads=64, threadgroup_memory={0: 16})
    with pytest.raises(LaunchError, match="no \\[\\[threadgroup\\(5\\)\\]\\] parameter"):
        k(X, threads=64, threadgroup_memory={0: 16, 1: 16, 5: 16})
    with pytest.raises(LaunchError, match="40000 bytes exceeds the limit of 32768"):
        k(X, threads=64, threadgroup_memory={0: 20000, 1: 20000})
    with pytest.raises(LaunchError, match="dict"):
        k(X, threads=64, threadgroup_memory=[16, 16])


def test_static_threadgroup_memory_counts_against_the_limit():
    lib = library(static_threadgroup_memory=30000)
    with pytest.raises(LaunchError, match=r"\(30000 declared in the kernel \+ 4096 requested\)"):
        lib.kernel("tg")(X, threads=64, threadgroup_memory={0: 2048, 1: 2048})


def test_unknown_keyword():
    with pytest.raises(TypeError, match="unexpected keyword argument 'thread'"):
        library().kernel("k")(X, thread=4)


def test_launch_count_counts_checked_launches_only():
    k = library().kernel("k")
    before = _C.launch_count()
    k(X, threads=4)
    k(X, threads=4)
    with pytest.raises(LaunchError):
        k(X, threads=0)
    assert _C.launch_count() - before == 2
    assert k.launches == 2
