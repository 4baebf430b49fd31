"""The line-preserving C preprocessor (metalrt._C.preprocess)."""

import pytest

from metalrt import CompileError, _C


def pp(source, **kw):
    return _C.preprocess(source, **kw)


def code_lines(text):
    """Non-blank lines, stripped, for comparing expansions."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_output_has_the_same_number_of_lines():
    src = "#define A 1\n#if A\nint x = A;\n#else\nint y;\n#endif\n// c\n/* a\n b */ int z;\n"
    out = pp(src)
    assert out.count("\n") == src.count("\n")
    lines = out.split("\n")
    assert lines[2].strip() == "int x = 1;"
    assert lines[4].strip() == ""  # the #else branch is blank
    assert lines[8].strip() == "int z;"  # code after a multi-line comment keeps its line


def test_no_trailing_newline_is_kept_as_is():
    assert pp("int a;") == "int a;"
    assert pp("int a;\n") == "int a;\n"


def test_lines_without_macros_are_copied_verbatim():
    src = "kernel   void  f(device float* x [[buffer(0)]]) {\tx[0] = 1.0f; }\n"
    assert pp(src) == src


def test_object_like_macro_and_redefinition():
    out = pp("#define N 4\nint a[N];\n#undef N\n#define N 8\nint b[N];\n")
    assert code_lines(out) == ["int a[4];", "int b[8];"]


def test_function_like_macro_with_nested_calls():
    src = "#define MAX(a, b) ((a) > (b) ? (a) : (b))\nint m = MAX(1, MAX(2, 3));\n"
    assert code_lines(pp(src)) == ["int m = ((1) > (((2) > (3) ? (2) : (3))) ? (1) : (((2) > (3) ? (2) : (3))));"]


def test_function_like_name_without_parens_is_not_expanded():
    assert code_lines(pp("#define F(x) x\nint F;\n")) == ["int F;"]


def test_stringize_and_paste():
    src = '#define S(x) #x\n#define CAT(a, b) a##b\nconst char* s = S(a  + "q");\nint CAT(foo, 1) = 2;\n'
    assert code_lines(pp(src)) == ['const char* s = "a + \\"q\\"";', "int foo1 = 2;"]


def test_paste_then_rescan_builds_a_kernel_name():
    src = ("#define KNAME(t) scale_##t\n"
           "#define INST(t) kernel void KNAME(t)(device t* x [[buffer(0)]]) {}\n"
           "INST(float)\n")
    assert code_lines(pp(src)) == ["kernel void scale_float(device float* x [[buffer(0)]]) {}"]


def test_variadic_macros():
    src = ("#define V(fmt, ...) f(fmt, __VA_ARGS__)\n"
           "#define G(fmt, ...) g(fmt, ## __VA_ARGS__)\n"
           "#define O(a, ...) h(a __VA_OPT__(,) __VA_ARGS__)\n"
           "V(1, 2, 3);\nG(1);\nG(1, 2);\nO(1);\nO(1, 2);\n")
    assert code_lines(pp(src)) == ["f(1, 2, 3);", "g(1);", "g(1, 2);", "h(1);", "h(1, 2);"]


def test_recursive_macros_stop_like_a_c_compiler():
    src = "#define foo foo + 1\n#define a b\n#define b a\nint x = foo; int y = a;\n"
    assert code_lines(pp(src)) == ["int x = foo + 1; int y = a;"]


def test_macro_call_over_several_lines_expands_on_its_first_line():
    src = "#define ADD(a, b) (a + b)\nint x = ADD(1,\n  2);\nint y;\n"
    out = pp(src).split("\n")
    assert out[1].strip() == "int x = (1 + 2);"
    assert out[2].strip() == ""
    assert out[3] == "int y;"


def test_macro_name_and_paren_on_different_lines():
    out = pp("#define F(x) [x]\nint a = F\n(3);\nint b;\n").split("\n")
    assert out[1].strip() == "int a = [3];"
    assert out[3] == "int b;"


def test_line_continuations():
    src = "#define LONG(a) \\\n  ((a) * \\\n   2)\nint x = LONG(3);\n"
    out = pp(src).split("\n")
    assert out[3].strip() == "int x = ((3) * 2);"
    assert len(out) == 5


def test_conditionals():
    src = """#define A 2
#if A == 1
one
#elif A == 2 && defined(A) && !defined B
two
#else
other
#endif
#ifdef A
hasA
#endif
#ifndef B
noB
#endif
#if 0
#error not reached
#bogus directive in a skipped block
#endif
"""
    assert code_lines(pp(src)) == ["two", "hasA", "noB"]


@pytest.mark.parametrize(
    "expr,value",
    [
        ("1 + 2 * 3 == 7", True),
        ("(1 << 4) == 16", True),
        ("10 / 3 == 3 && 10 % 3 == 1", True),
        ("-1 < 0", True),
        ("-1 < 0u", False),  # unsigned comparison, as in C
        ("0x10 == 16 && 010 == 8 && 0b101 == 5", True),
        ("1 ? 2 : 0", True),
        ("UNDEFINED_NAME", False),
        ("true", True),
        ("'a' == 97", True),
        ("~0 == -1", True),
        ("!0 && !!5", True),
        ("1'000 == 1000", True),
    ],
)
def test_if_expressions(expr, value):
    out = pp(f"#if {expr}\nyes\n#else\nno\n#endif\n")
    assert code_lines(out) == (["yes"] if value else ["no"])


def test_metal_version_and_has_include_are_predefined():
    src = "#if __METAL_VERSION__ >= 310 && __has_include(<metal_stdlib>) && defined(__HAVE_BFLOAT__)\nok\n#endif\n"
    assert code_lines(pp(src)) == ["ok"]


def test_cuda_predefines():
    src = "#if defined(__CUDACC__) && __CUDA_ARCH__ >= 700\nok\n#endif\n#include <cuda_fp16.h>\n"
    assert code_lines(pp(src, dialect="cuda")) == ["ok"]


def test_defines_option():
    out = pp("int a = N; int b = FLAG; int c = S;\n#if FLAG\nyes\n#endif\n", defines={"N": 5, "FLAG": True, "S": "x + 1"})
    assert code_lines(out) == ["int a = 5; int b = 1; int c = x + 1;", "yes"]


def test_builtin_line_and_file():
    out = pp("\n\nint l = __LINE__; const char* f = __FILE__;\n", filename="my.metal")
    assert code_lines(out) == ['int l = 3; const char* f = "my.metal";']


def test_metal_headers_are_dropped():
    src = "#include <metal_stdlib>\n#include <metal_simdgroup_matrix>\n#include <simd/simd.h>\nusing namespace metal;\n"
    out = pp(src)
    assert out == "\n\n\nusing namespace metal;\n"


def test_other_includes_are_an_error_naming_the_rule():
    with pytest.raises(CompileError) as e:
        pp('int a;\n#include "common.h"\n')
    assert e.value.line == 2
    assert "self-contained" in str(e.value)
    assert "kernel.metal:2" in str(e.value)
    with pytest.raises(CompileError, match="self-contained"):
        pp("#include <stdio.h>\n")


def test_error_directive_reports_its_line_and_text():
    with pytest.raises(CompileError) as e:
        pp("#define X 1\n#if X\n#error X must not be set\n#endif\n", filename="k.metal")
    assert e.value.line == 3
    assert "k.metal:3" in str(e.value)
    assert "X must not be set" in str(e.value)
    assert "X must not be set" in e.value.log


@pytest.mark.parametrize(
    "src,message,line",
    [
        ("#if 1\nint a;\n", "unterminated #if", 1),
        ("#endif\n", "#endif without #if", 1),
        ("#else\n", "#else without #if", 1),
        ("#if 1\n#else\n#else\n#endif\n", "second #else", 3),
        ("#if 1 +\n#endif\n", "ends too early", 1),
        ("#if 1 / 0\n#endif\n", "division by zero", 1),
        ("#if 1.5\n#endif\n", "floating point", 1),
        ("#define F(x) x\nint a = F(1, 2);\n", "takes 1 argument, got 2", 2),
        ("#define F(x) x\nint a = F(1\n", "unterminated argument list", 2),
        ("#define CAT(a, b) a ## b\nint x = CAT(+, /);\n", "does not give a valid token", 2),
        ("#frobnicate\n", "unknown preprocessor directive", 1),
        ("#define\n", "needs a macro name", 1),
        ("#define defined 1\n", "'defined' cannot be used as a macro name", 1),
        ("#define S(x) #y\n S(1)\n", "'#' in macro 'S' must be followed by a parameter", 2),
    ],
)
def test_malformed_input_is_a_compile_error_with_its_line(src, message, line):
    with pytest.raises(CompileError) as e:
        pp(src)
    assert message in str(e.value)
    assert e.value.line == line


def test_comments_are_removed_but_strings_kept():
    src = 'const char* s = "// not a comment /* nor this */"; // gone\nint a; /* gone */ int b;\n'
    assert code_lines(pp(src)) == ['const char* s = "// not a comment /* nor this */";', "int a;   int b;"]


def test_keep_comments():
    src = "int a; // note\n/* block\n   two */ int b;\n"
    out = pp(src, keep_comments=True)
    assert "// note" in out and "/* block" in out
    assert out.count("\n") == src.count("\n")


def test_pragma_is_kept():
    out = pp("#pragma METAL internals : enable\nint a;\n")
    assert out.splitlines()[0] == "#pragma METAL internals : enable"


def test_expansion_does_not_glue_tokens():
    # Without a space, "- -1" would become "--1".
    out = pp("#define NEG -1\nint a = -NEG;\n")
    assert code_lines(out) == ["int a = - -1;"]
