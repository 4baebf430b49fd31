"""Compile errors point at the user's source: the line and column of the mistake, the user's own
text in the snippet, MSL's spelling of types, and never a line of the generated C++."""

import pytest

import metalrt

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


def compile_error(sim, source: str) -> metalrt.CompileError:
    with pytest.raises(metalrt.CompileError) as info:
        sim.compile(source)
    return info.value


def assert_user_terms(err):
    text = f"{err}\n{err.log}"
    for generated in ("msim", "_Float16", "__bf16", "metalrt-sim-generated", "ext_vector_type"):
        assert generated not in text, f"{generated!r} leaked into:\n{text}"


def test_undeclared_identifier_points_at_its_line_and_column(sim):
    err = compile_error(sim, HEADER + """
kernel void k(device float* y [[buffer(0)]],
              uint i [[thread_position_in_grid]]) {
    float v = y[i];
    y[i] = v + undefined_thing;
}
""")
    assert err.line == 7
    assert "undefined_thing" in str(err)
    assert "kernel.metal:7:16: error:" in err.log
    assert "    y[i] = v + undefined_thing;" in err.log  # the user's line, not the translation
    assert_user_terms(err)


def test_column_counts_the_users_characters_not_the_translation(sim):
    # `device float*` becomes a much longer C++ type; the caret must not move
    err = compile_error(sim, HEADER + """
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = nope; }
""")
    line = "kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = nope; }"
    assert f"kernel.metal:4:{line.index('nope') + 1}:" in err.log, err.log
    assert_user_terms(err)


def test_error_inside_a_helper_function(sim):
    err = compile_error(sim, HEADER + """
inline float4 scale(float4 v, float s) {
    return v * s + missing;
}
kernel void k(device float4* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = scale(y[i], 2.0f); }
""")
    assert err.line == 5 and "missing" in str(err)
    assert_user_terms(err)


def test_error_from_the_shim_lands_on_the_users_call(sim):
    # as_type between types of different sizes fails inside the shim's template; the error is
    # reported where the user wrote it, with the rule.
    err = compile_error(sim, HEADER + """
kernel void k(device const half* x [[buffer(0)]], device uint* y [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
    y[i] = as_type<uint>(x[i]);
}
""")
    assert err.line == 6, err.log
    assert "as_type" in str(err) and "sizeof" in str(err)
    assert_user_terms(err)


def test_vector_constructor_with_too_few_elements(sim):
    err = compile_error(sim, HEADER + """
kernel void k(device float4* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    y[i] = float4(1.0, 2.0);
}
""")
    assert err.line == 5
    assert "exactly as many elements" in str(err)
    assert_user_terms(err)


def test_type_names_read_as_msl(sim):
    err = compile_error(sim, HEADER + """
kernel void k(device half* y [[buffer(0)]], device float* z [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    threadgroup float* p = y;
}
""")
    assert err.line == 5
    assert "device half" in err.log and "threadgroup float" in err.log, err.log
    assert_user_terms(err)


def test_every_rule_violation_is_listed(sim):
    err = compile_error(sim, HEADER + """
inline float f(float x) { double d = x; return float(d); }
inline float g(float x) { goto out; out: return x; }
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = f(g(y[i])); }
""")
    assert err.line == 4
    assert "kernel.metal:4:" in err.log and "kernel.metal:5:" in err.log
    assert "and 1 more" in str(err)


def test_a_declared_but_undefined_function(sim):
    err = compile_error(sim, HEADER + """
float helper(float x);
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = helper(y[i]); }
""")
    assert err.line == 4 and "helper(float)" in str(err) and "never defined" in str(err)
    assert "/tmp" not in err.log and ".o:" not in err.log


def test_the_snippet_is_the_line_as_written_and_as_expanded(sim):
    err = compile_error(sim, HEADER + """
#define SCALE(x) ((x) * oops)
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = SCALE(y[i]); }
""")
    assert err.line == 5
    assert "y[i] = SCALE(y[i]);" in err.log            # what the user wrote
    assert "after macro expansion:" in err.log and "((y[i]) * oops)" in err.log
