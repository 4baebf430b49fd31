"""The Metal backend's platform-neutral logic (csrc/core/metal_*), through metalrt._C.metal.

These decisions are what the Objective-C++ backend copies into Metal objects, so they are tested
here on Linux: compile options per macOS, function constants, cache keys, compiler-log rewriting,
dispatch planning, host/MPS buffer arithmetic, the reflection cross-check, binary-archive
validation and timing.
"""

import hashlib
import os

import pytest

from metalrt import _C

metal = _C.metal

SOURCE = """#include <metal_stdlib>
using namespace metal;
constant uint TILE [[function_constant(0)]];
constant bool USE_BIAS [[function_constant(1)]];
constant float SCALE [[function_constant(2)]];
struct Params { float alpha; uint n; float4 shift; };

kernel void scale(device const float* x [[buffer(0)]],
                  device float* y [[buffer(1)]],
                  constant Params& p [[buffer(2)]],
                  threadgroup float* tile [[threadgroup(0)]],
                  uint i [[thread_position_in_grid]]) {
    y[i] = x[i] * p.alpha;
}
"""


def error_text(excinfo) -> str:
    return str(excinfo.value)


# ---- digest -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 1000, 1 << 16])
def test_sha256_matches_hashlib(n):
    data = bytes((i * 131 + 7) & 0xFF for i in range(n))
    assert metal.sha256(data) == hashlib.sha256(data).hexdigest()


# ---- compile settings ---------------------------------------------------------------------------

def test_default_math_is_safe_not_metals_fast_default():
    s = metal.compile_settings(os=(14, 5))
    assert s["math"] == "safe" and s["fast_math_enabled"] is False
    assert s["use_math_mode_api"] is False  # macOS 14 has only fastMathEnabled


def test_fast_math_sets_the_flag_and_predefines_fast_math():
    s = metal.compile_settings(math="fast", os=(14, 0))
    assert s["fast_math_enabled"] is True
    assert s["predefined"]["__FAST_MATH__"] == "1"


def test_math_mode_api_only_on_macos15_with_a_macos15_sdk():
    assert metal.compile_settings(math="relaxed", os=(15, 0))["use_math_mode_api"] is True
    old_sdk = metal.compile_settings(math="relaxed", os=(15, 0), sdk_has_math_mode=False)
    assert old_sdk["use_math_mode_api"] is False
    assert "relaxed" in old_sdk["note"] and "safe" in old_sdk["note"]


def test_relaxed_on_macos14_falls_back_to_safe_and_says_so():
    s = metal.compile_settings(math="relaxed", os=(14, 2))
    assert s["fast_math_enabled"] is False
    assert "macOS 15" in s["note"]


def test_unknown_math_mode_names_the_choices():
    with pytest.raises(Exception) as e:
        metal.compile_settings(math="precise")
    assert "'safe'" in error_text(e) and "'fast'" in error_text(e)


@pytest.mark.parametrize("os_version,expected", [((13, 0), "3.0"), ((14, 6), "3.1"), ((15, 0), "3.2"), ((26, 0), "4.0")])
def test_language_version_defaults_to_the_newest_the_os_compiles(os_version, expected):
    s = metal.compile_settings(os=os_version)
    assert s["language"] == expected
    major, minor = map(int, expected.split("."))
    assert s["language_value"] == (major << 16) + minor
    assert s["predefined"]["__METAL_VERSION__"] == str(major * 100 + minor * 10)


@pytest.mark.parametrize("spelling", ["3.0", "metal3.0", "3_0", "Metal3.0"])
def test_language_version_spellings(spelling):
    assert metal.compile_settings(language_version=spelling, os=(14, 0))["language"] == "3.0"


def test_language_version_newer_than_the_os_names_the_os():
    with pytest.raises(Exception) as e:
        metal.compile_settings(language_version="3.2", os=(14, 4))
    assert "macOS 14.4" in error_text(e) and "3.1" in error_text(e)


def test_unknown_language_version_lists_known_ones():
    with pytest.raises(Exception) as e:
        metal.compile_settings(language_version="9.9")
    assert "3.1" in error_text(e)


def test_defines_become_macros_with_python_values_spelled_for_c():
    s = metal.compile_settings(defines={"N": 4, "FLAG": True, "EMPTY": None, "T": "half"})
    assert s["macros"] == {"N": "4", "FLAG": "1", "EMPTY": "", "T": "half"}


@pytest.mark.parametrize("name,why", [("2N", "valid macro name"), ("A-B", "valid macro name"),
                                      ("__METAL_VERSION__", "predefined")])
def test_bad_define_names_are_refused(name, why):
    with pytest.raises(Exception) as e:
        metal.compile_settings(defines={name: "1"})
    assert why in error_text(e) and name in error_text(e)


def test_define_value_with_newline_is_refused():
    with pytest.raises(Exception) as e:
        metal.compile_settings(defines={"X": "1\n2"})
    assert "newline" in error_text(e)


def test_canonical_options_change_with_everything_that_changes_code():
    base = metal.compile_settings(defines={"N": 1})["canonical"]
    assert metal.compile_settings(defines={"N": 2})["canonical"] != base
    assert metal.compile_settings(math="fast", defines={"N": 1})["canonical"] != base
    assert metal.compile_settings(language_version="3.0", defines={"N": 1})["canonical"] != base
    assert metal.compile_settings(defines=[("N", 1)])["canonical"] == base


# ---- MTLDataType and function constants ---------------------------------------------------------

@pytest.mark.parametrize("name,value", [("float", 3), ("float4", 6), ("half", 16), ("half2", 17),
                                        ("int", 29), ("uint3", 35), ("short", 37), ("ushort4", 44),
                                        ("char", 45), ("uchar2", 50), ("bool", 53), ("long", 81),
                                        ("ulong2", 86), ("bfloat", 121), ("bfloat4", 124)])
def test_data_types_follow_apples_enum(name, value):
    assert metal.data_type_of(name) == value


@pytest.mark.parametrize("name", ["packed_float3", "atomic_int"])
def test_types_without_a_data_type(name):
    assert metal.data_type_of(name) == 0


def test_constants_resolve_by_name_and_index_sorted_by_index():
    out = metal.resolve_constants(SOURCE, {"SCALE": 0.5, 0: 16, "USE_BIAS": True})
    assert [c["name"] for c in out] == ["TILE", "USE_BIAS", "SCALE"]
    tile, bias, scale = out
    assert (tile["data_type"], tile["bytes"]) == (33, (16).to_bytes(4, "little"))
    assert (bias["data_type"], bias["bytes"]) == (53, b"\x01")
    assert scale["data_type"] == 3 and len(scale["bytes"]) == 4


def test_constants_given_as_pairs_like_compile_options():
    assert metal.resolve_constants(SOURCE, [("TILE", 8)]) == metal.resolve_constants(SOURCE, {"TILE": 8})


def test_unknown_constant_lists_the_declared_ones():
    with pytest.raises(Exception) as e:
        metal.resolve_constants(SOURCE, {"TILES": 8})
    msg = error_text(e)
    assert "'TILES'" in msg and "TILE (uint, index 0)" in msg and "USE_BIAS" in msg


def test_unknown_constant_index():
    with pytest.raises(Exception) as e:
        metal.resolve_constants(SOURCE, {7: 1})
    assert "index 7" in error_text(e)


def test_constant_given_twice_is_refused():
    with pytest.raises(Exception) as e:
        metal.resolve_constants(SOURCE, {"TILE": 8, 0: 8})
    assert "twice" in error_text(e)


def test_constant_out_of_range_names_the_constant():
    with pytest.raises(Exception) as e:
        metal.resolve_constants(SOURCE, {"TILE": -1})
    assert "TILE" in error_text(e)


def test_constant_of_a_non_number_is_refused():
    with pytest.raises(Exception) as e:
        metal.resolve_constants(SOURCE, {"TILE": "8"})
    assert "'TILE'" in error_text(e) and "str" in error_text(e)


# ---- cache keys ---------------------------------------------------------------------------------

def test_library_key_is_stable_and_covers_every_input():
    key = metal.library_key(SOURCE, {"TILE": 8})
    assert key == metal.library_key(SOURCE, {"TILE": 8}) and len(key) == 64
    others = {
        metal.library_key(SOURCE + "\n", {"TILE": 8}),
        metal.library_key(SOURCE, {"TILE": 9}),
        metal.library_key(SOURCE, {"TILE": 8}, math="fast"),
        metal.library_key(SOURCE, {"TILE": 8}, defines={"N": 1}),
        metal.library_key(SOURCE, {"TILE": 8}, device_name="Apple M4 Max"),
        metal.library_key(SOURCE, {"TILE": 8}, os_build="Version 15.0 (Build 24A335)"),
        metal.library_key(SOURCE, {"TILE": 8}, architecture="applegpu_g16s"),
    }
    assert key not in others and len(others) == 7


# ---- compiler log -------------------------------------------------------------------------------

BROKEN = "#include <metal_stdlib>\nusing namespace metal;\n\nkernel void k(device float* y [[buffer(0)]],\n              uint i [[thread_position_in_grid]]) {\n    y[i] = z;\n}\n"

METAL_LOG = (
    "Compilation failed: \n\n"
    "program_source:6:12: error: use of undeclared identifier 'z'\n"
    "    y[i] = z;\n"
    "           ^\n"
    "program_source:4:13: warning: unused parameter\n"
    "1 error generated.\n"
)


def test_log_is_rewritten_to_the_users_file_and_lines():
    r = metal.rewrite_compile_log(METAL_LOG, BROKEN, "relu.metal")
    assert r["first_error_line"] == 6
    assert r["text"].startswith("relu.metal:6:12: error: use of undeclared identifier 'z'")
    assert "program_source" not in r["text"] and "Compilation failed" not in r["text"]
    assert "relu.metal:4:13: warning" in r["text"]
    assert (r["errors"], r["warnings"]) == (1, 1)


def test_summary_quotes_the_users_source_line():
    r = metal.rewrite_compile_log(METAL_LOG, BROKEN)
    first, code = r["summary"].splitlines()[:2]
    assert first == "kernel.metal:6:12: error: use of undeclared identifier 'z'"
    assert code.strip() == "6 |     y[i] = z;"


def test_summary_counts_further_errors():
    log = "program_source:2:1: error: a\nprogram_source:3:1: error: b\nprogram_source:4:1: fatal error: c\n"
    r = metal.rewrite_compile_log(log, "a\nb\nc\nd\n")
    assert r["errors"] == 3 and "3 errors" in r["summary"]
    assert [d[:3] for d in r["diagnostics"]] == [(2, 1, "error"), (3, 1, "error"), (4, 1, "fatal error")]


def test_error_without_location():
    r = metal.rewrite_compile_log("error: unsupported language version\n", "")
    assert r["first_error_line"] == 0 and r["summary"] == "kernel.metal: error: unsupported language version"


def test_unrecognised_log_is_kept_verbatim():
    r = metal.rewrite_compile_log("Compilation failed: something odd happened", "")
    assert r["summary"] == "something odd happened" and r["first_error_line"] == 0


def test_empty_log_still_says_something():
    assert "without a message" in metal.rewrite_compile_log("", "")["summary"]


# ---- dispatch ------------------------------------------------------------------------------------

def test_threads_launch_uses_dispatch_threads_with_exact_counts():
    p = metal.plan_dispatch(threads=1000, group_size=256)
    assert p["dispatch"] == "threads" and p["grid"] == (1000, 1, 1) and p["group_size"] == (256, 1, 1)


def test_groups_launch_uses_dispatch_threadgroups():
    p = metal.plan_dispatch(groups=(4, 2), group_size=(16, 16))
    assert p["dispatch"] == "threadgroups" and p["grid"] == (4, 2, 1)


def test_without_nonuniform_threadgroups_an_exact_grid_becomes_threadgroups():
    p = metal.plan_dispatch(threads=(1024, 3), group_size=(32, 1), nonuniform=False)
    assert p["dispatch"] == "threadgroups" and p["grid"] == (32, 3, 1)


def test_without_nonuniform_threadgroups_a_partial_grid_is_refused():
    with pytest.raises(Exception) as e:
        metal.plan_dispatch(threads=1000, group_size=256, nonuniform=False, kernel="relu")
    assert "relu" in error_text(e) and "groups=" in error_text(e)


def test_threadgroup_lengths_round_up_to_16():
    p = metal.plan_dispatch(groups=1, group_size=32, threadgroup_memory={0: 100, 1: 4, 2: 16})
    assert p["threadgroup_lengths"] == [(0, 112), (1, 16), (2, 16)]


def test_threadgroup_memory_over_the_limit_gives_both_numbers():
    with pytest.raises(Exception) as e:
        metal.plan_dispatch(groups=1, group_size=32, threadgroup_memory={0: 32760},
                            static_threadgroup_memory=16, max_threadgroup_memory=32768)
    msg = error_text(e)
    assert "32784" in msg and "32768" in msg and "[[threadgroup(0)]]" in msg


def test_group_above_the_pipelines_maximum_gives_both_numbers():
    with pytest.raises(Exception) as e:
        metal.plan_dispatch(threads=4096, group_size=1024, max_threads_per_group=896, kernel="mm")
    msg = error_text(e)
    assert "1024" in msg and "896" in msg and "'mm'" in msg


def test_grid_above_32_bits_is_refused():
    with pytest.raises(Exception) as e:
        metal.plan_dispatch(groups=1 << 26, group_size=1024)
    assert "2^32-1" in error_text(e)


# ---- buffers ------------------------------------------------------------------------------------

def test_page_aligned_host_memory_is_wrapped_in_whole_pages():
    p = metal.plan_host_buffer(address=16384 * 5, nbytes=1000, writable=True, page_size=16384)
    assert p == {"zero_copy": True, "base": 16384 * 5, "length": 16384, "offset": 0, "copy_back": False}
    assert metal.plan_host_buffer(16384, 16385, True, 16384)["length"] == 32768


def test_unaligned_host_memory_is_copied_and_copied_back_only_when_writable():
    w = metal.plan_host_buffer(address=16384 + 64, nbytes=1000, writable=True, page_size=16384)
    r = metal.plan_host_buffer(address=16384 + 64, nbytes=1000, writable=False, page_size=16384)
    assert (w["zero_copy"], w["length"], w["copy_back"]) == (False, 1000, True)
    assert r["copy_back"] is False


def test_empty_host_view_gets_a_small_buffer_and_no_copy():
    p = metal.plan_host_buffer(address=0, nbytes=0, writable=True, page_size=16384)
    assert p["zero_copy"] is False and p["length"] == 16 and p["copy_back"] is False


def test_device_view_inside_its_buffer_passes():
    metal.check_device_view("x", "device float*", 0, "k", byte_offset=64, nbytes=400, buffer_length=464, alignment=4)


def test_device_view_past_its_buffer_is_refused():
    with pytest.raises(Exception) as e:
        metal.check_device_view("x", "device float*", 0, "k", byte_offset=64, nbytes=404, buffer_length=464)
    assert "'x'" in error_text(e) and "[64, 468)" in error_text(e) and "464" in error_text(e)


def test_misaligned_device_view_is_refused_with_the_fix():
    with pytest.raises(Exception) as e:
        metal.check_device_view("v", "device float4*", 1, "k", byte_offset=4, nbytes=16, buffer_length=64, alignment=16)
    assert "multiple of 16" in error_text(e) and "clone()" in error_text(e)


# ---- reflection cross-check ---------------------------------------------------------------------

AGREEING = [
    dict(kind="buffer", name="x", index=0, data_type=3, data_size=4, alignment=4),
    dict(kind="buffer", name="y", index=1, data_type=3, data_size=4, alignment=4),
    dict(kind="buffer", name="p", index=2, data_type=1, data_size=32, alignment=16),
    dict(kind="threadgroup", name="tile", index=0, data_size=4),
]


def test_reflection_that_agrees_gives_the_alignments():
    r = metal.cross_check_reflection(SOURCE, "scale", AGREEING)
    assert r["ok"] and r["buffer_alignment"] == {0: 4, 1: 4, 2: 16}


def test_struct_size_disagreement_is_a_problem():
    b = [dict(d) for d in AGREEING]
    b[2]["data_size"] = 24
    r = metal.cross_check_reflection(SOURCE, "scale", b)
    assert not r["ok"] and "32 bytes to the parser but 24 bytes to Metal" in r["message"]
    assert "metalrt bug" in r["message"]


def test_element_type_disagreement_is_a_problem():
    b = [dict(d) for d in AGREEING]
    b[0]["data_type"] = 16  # half
    assert "MTLDataType 16" in metal.cross_check_reflection(SOURCE, "scale", b)["message"]


def test_moved_index_and_unknown_buffer_are_problems():
    b = [dict(d) for d in AGREEING]
    b[1]["index"] = 5
    r = metal.cross_check_reflection(SOURCE, "scale", b)
    assert any("buffer(1) for the parser but buffer(5)" in p for p in r["problems"])
    assert any("buffer(5) 'y'" in p for p in r["problems"])


def test_textures_are_refused_clearly():
    b = AGREEING + [dict(kind="texture", name="img", index=0)]
    assert "texture 'img'" in metal.cross_check_reflection(SOURCE, "scale", b)["message"]


def test_arguments_metal_leaves_out_are_not_problems():
    assert metal.cross_check_reflection(SOURCE, "scale", AGREEING[:1])["ok"]


# ---- binary archive -----------------------------------------------------------------------------

def manifest(**kw):
    m = dict(format=metal.CACHE_FORMAT_VERSION, key="k" * 64, device="Apple M2|applegpu_g14g|Version 14.5",
             payload_sha256="", payload_size=0, pipelines=0)
    m.update(kw)
    return m


def test_manifest_round_trip_and_rejects():
    m = manifest(payload_sha256="ab" * 32, payload_size=123, pipelines=2, device='odd "name"\\x')
    assert metal.parse_manifest_json(metal.manifest_json(m)) == m
    assert metal.parse_manifest_json("") is None
    assert metal.parse_manifest_json('{"format": 1}') is None
    assert metal.parse_manifest_json(metal.manifest_json(m)[:-5]) is None


def disk(payload: bytes | None, manifest_text: str | None):
    return dict(payload_exists=payload is not None, manifest_exists=manifest_text is not None,
                manifest_text=manifest_text or "", payload_sha256=hashlib.sha256(payload or b"").hexdigest(),
                payload_size=len(payload or b""))


def test_archive_decisions():
    payload = b"archive bytes"
    good = metal.manifest_json(manifest(payload_sha256=hashlib.sha256(payload).hexdigest(), payload_size=len(payload)))
    expected = manifest()
    assert metal.decide_archive(disk(None, None), expected)[0] == "create"
    assert metal.decide_archive(disk(payload, good), expected)[0] == "load"
    cases = {
        "no manifest": disk(payload, None),
        "missing": disk(None, good),
        "unreadable": disk(payload, "{not json"),
        "do not match": disk(payload[:-1], good),
        "cache format": disk(payload, good.replace(f'"format": {metal.CACHE_FORMAT_VERSION}', '"format": 999')),
        "another library": disk(payload, good.replace("k" * 64, "j" * 64)),
        "built for": disk(payload, good.replace("Version 14.5", "Version 15.0")),
    }
    for reason, state in cases.items():
        action, why = metal.decide_archive(state, expected)
        assert action == "rebuild" and reason in why, (reason, why)


def test_archive_files_publish_inspect_and_corruption(tmp_path):
    files = metal.ArchiveFiles(str(tmp_path), "a" * 64)
    expected = manifest(key="a" * 64)
    assert metal.decide_archive(files.inspect(), expected)[0] == "create"
    tmp = files.temporary_payload()
    assert os.path.dirname(tmp) == files.dir and tmp != files.payload
    with open(tmp, "wb") as f:
        f.write(b"\x00binary archive\xff" * 100)
    assert files.publish(tmp, dict(expected, pipelines=1))
    assert not os.path.exists(tmp)
    state = files.inspect()
    assert metal.decide_archive(state, expected)[0] == "load"
    assert metal.parse_manifest_json(state["manifest_text"])["pipelines"] == 1

    with open(files.payload, "r+b") as f:  # a torn write
        f.truncate(100)
    action, why = metal.decide_archive(files.inspect(), expected)
    assert action == "rebuild" and "truncated or corrupt" in why
    files.remove()
    assert not os.path.exists(files.payload) and not os.path.exists(files.manifest)
    files.remove()  # removing twice is fine


def test_archive_publish_without_the_temporary_fails_softly(tmp_path):
    files = metal.ArchiveFiles(str(tmp_path), "b" * 64)
    assert files.publish(str(tmp_path / "never-written"), manifest()) is False
    assert not os.path.exists(files.manifest)


# ---- timing -------------------------------------------------------------------------------------

def test_timing_prefers_counters_where_the_gpu_has_them():
    assert metal.choose_timing_method(True, True)[0] == "metal-gpu-timestamps"
    name, why = metal.choose_timing_method(False, True)
    assert name == "metal-command-buffer" and "stage boundaries" in why
    assert metal.choose_timing_method(True, False)[0] == "metal-command-buffer"
    assert metal.choose_timing_method(True, True, "command-buffer")[0] == "metal-command-buffer"


def test_forcing_counters_without_them_is_an_error_with_the_fix():
    with pytest.raises(Exception) as e:
        metal.choose_timing_method(False, False, "counters")
    assert "METALRT_METAL_TIMER=command-buffer" in error_text(e)
    with pytest.raises(Exception):
        metal.choose_timing_method(True, True, "wallclock")


def test_tick_length_from_clock_pairs():
    assert metal.ns_per_gpu_tick((0, 0), (24_000_000, 576_000)) == pytest.approx(125 / 3)
    assert metal.ns_per_gpu_tick((0, 0), (10_000_000, 10_000_000)) == 1.0
    assert metal.ns_per_gpu_tick((0, 0), (500, 12)) == 1.0  # too short to tell
    assert metal.ns_per_gpu_tick((5, 5), (5, 5)) == 1.0


def test_accumulator_adds_counter_and_command_buffer_intervals():
    acc = metal.GpuTimeAccumulator()
    assert acc.add_ticks(1000, 3000)
    assert not acc.add_ticks(0, 3000) and not acc.add_ticks(2 ** 64 - 1, 3000) and not acc.add_ticks(5, 4)
    acc.add_seconds(1.0, 1.001)
    acc.add_seconds(2.0, 1.0)  # inverted: ignored
    assert acc.intervals == 2
    assert acc.elapsed_ms(2.0) == pytest.approx(0.004 + 1.0)
    acc.reset()
    assert acc.elapsed_ms() == 0 and acc.intervals == 0


@pytest.mark.parametrize("code,words", [(2, "timeout"), (3, "page fault"), (9, "invalid resource"), (8, "out of memory"), (42, "code 42")])
def test_command_buffer_errors_explain_and_keep_metals_words(code, words):
    msg = metal.command_buffer_error_message(code, "Caused GPU Address Fault Error", "relu")
    assert words in msg and "'relu'" in msg and "Caused GPU Address Fault Error" in msg
    assert "remains usable" in msg


# ---- devices ------------------------------------------------------------------------------------

def test_device_selection_by_name_number_or_default():
    names = ["Apple M2 Max", "AMD Radeon Pro 5500M"]
    assert metal.select_device_index(names, "") == -1
    assert metal.select_device_index(names, "radeon") == 1
    assert metal.select_device_index(names, "1") == 1
    for bad, words in [("Intel", "matches no device"), ("a", "several"), ("7", "no device 7")]:
        with pytest.raises(Exception) as e:
            metal.select_device_index(names, bad)
        assert words in error_text(e) and "0: Apple M2 Max" in error_text(e)


def test_gpu_target_names():
    assert metal.gpu_target(9) == "apple9" and metal.gpu_target(0, True) == "mac2"


@pytest.mark.parametrize("name,gbs", [("Apple M1", 68.25), ("Apple M1 Max", 400), ("Apple M4 Pro", 273),
                                      ("Apple M4 Max", 546), ("Apple M3", 100), ("AMD Radeon Pro", 0)])
def test_peak_bandwidth(name, gbs):
    assert metal.peak_bandwidth_gbs(name) == gbs


def test_linux_build_has_the_logic_but_no_device():
    if metal.HAS_DEVICE_BACKEND:
        pytest.skip("this build has the Metal device backend (macOS)")
    assert not hasattr(metal, "build") and not hasattr(metal, "timer")
