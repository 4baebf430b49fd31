"""The sim's MSL front end: checks the rules of MSL that clang would not, and translates the
source into one C++ translation unit against the shim headers (src/metalrt/sim/include).

    translation = translate(parsed, constants={"N": 4})
    translation.cpp                  # what the host compiler builds into the kernel library
    translation.clang_log_to_user()  # clang's log in the user's terms

`parsed` is what metalrt._C.parse_msl returns (the preprocessed source and the kernel
signatures); the front end reads its `preprocessed` text and `kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .callgraph import CallGraph, Uses
from .decls import scan_declarations
from .diagnostics import Diagnostic, SourceLines, make_compile_error, rewrite_clang_log
from .entries import KernelInfo, ParamInfo, UnsupportedBuiltin, generate
from .rewrite import rewrite
from .rules import check_rules
from .syntax import Source
from .tokens import TokenizeError

SHIM_HEADER = "msl_shim.h"

__all__ = ["Translation", "translate", "kernel_infos"]


@dataclass
class Translation:
    cpp: str
    source: str  # the preprocessed MSL the C++ was made from (same line numbers as the user's)
    filename: str
    kernels: list[KernelInfo]
    column_map: dict[int, list[tuple[int, int]]]
    recursion_suspects: list[list[str]] = field(default_factory=list)
    lines: SourceLines | None = None

    def user_column(self, line: int, col: int) -> int:
        anchors = self.column_map.get(line)
        if not anchors:
            return col
        best = anchors[0]
        for out_col, in_col in anchors:
            if out_col <= col:
                best = (out_col, in_col)
            else:
                break
        return best[1]

    def clang_log_to_user(self, log: str) -> tuple[str, int, str]:
        """clang's log -> (log in the user's terms, first error line, one-line summary)."""
        return rewrite_clang_log(log, self.lines, self.filename, self.user_column)

    def compile_error(self, log: str):
        """metalrt.CompileError from clang's log."""
        from metalrt.errors import CompileError

        user_log, line, summary = self.clang_log_to_user(log)
        return CompileError(summary, user_log, line)

    def recursion_error(self, cycle: list[str]):
        """The CompileError for a confirmed recursion through the functions in `cycle`."""
        from .rules import RESTRICTIONS

        path = " -> ".join(cycle)
        what = (f"function '{cycle[0]}' calls itself" if len(cycle) == 2 and cycle[0] == cycle[1]
                else f"functions call each other in a cycle ({path})")
        src = Source(self.source)
        program = scan_declarations(src)
        fn = next((f for f in program.functions if f.name == cycle[0]), None)
        tok = src.toks[fn.name_index] if fn else src.toks[0]
        diag = Diagnostic(tok.line, tok.col,
                          f"recursion: {what}; recursive function calls are not available in "
                          f"Metal ({RESTRICTIONS})", "msl-recursion")
        return make_compile_error([diag], self.lines, self.filename)


def _kind_name(value) -> str:
    """ParamKind as KernelInfo spells it ("Buffer", "Builtin", ...), from a str or an enum."""
    name = getattr(value, "name", None)
    text = name if isinstance(name, str) else str(value).rsplit(".", 1)[-1]
    return text[:1].upper() + text[1:].lower()


def kernel_infos(parsed) -> list[KernelInfo]:
    """KernelInfo for each kernel of a metalrt._C.ParsedSource (or any object shaped like it)."""
    out = []
    for sig in parsed.kernels:
        params = [ParamInfo(p.name, _kind_name(p.kind), getattr(p, "builtin", "") or "",
                            int(p.position), getattr(p, "condition", "") or "")
                  for p in sig.params]
        out.append(KernelInfo(sig.name, sig.function or sig.name, list(sig.template_args or []),
                              int(sig.line), params))
    return out


def _normalize_constants(constants) -> dict:
    if not constants:
        return {}
    items = constants.items() if isinstance(constants, dict) else constants
    return {key: value for key, value in items}


def translate(parsed, *, constants=None, filename: str = "kernel.metal",
              original: str | None = None) -> Translation:
    """Checks the rules and translates; raises metalrt.CompileError naming the rule and line.
    `original` is the source as the user wrote it (before preprocessing), for error snippets."""
    source = parsed.preprocessed
    lines = SourceLines(source, original)
    constants = _normalize_constants(constants)
    try:
        src = Source(source)
    except TokenizeError as e:
        raise make_compile_error([Diagnostic(e.line, e.col, str(e))], lines, filename) from None
    program = scan_declarations(src)

    problems = check_rules(src, program)
    if problems:
        raise make_compile_error(problems, lines, filename)

    kernels = kernel_infos(parsed)
    if not kernels:
        raise make_compile_error(
            [Diagnostic(1, 1, "the source defines no kernel: declare one as `kernel void name(...)` "
                              "(or instantiate a template kernel with [[host_name(\"name\")]])")],
            lines, filename)
    graph = CallGraph(src, program)
    definitions = {f.name: index for index, f in enumerate(program.functions) if f.is_kernel}
    for k in kernels:
        index = definitions.get(k.function)
        if index is None:
            index = next((i for i, f in enumerate(program.functions) if f.name == k.function), None)
        if index is None:
            k.uses = Uses(True, True, True, True, True)  # not found: assume it uses everything
            continue
        k.scope = program.functions[index].scope
        k.uses = graph.uses(index)
        if any(p.kind == "Threadgroup" for p in k.params):
            k.uses = k.uses | Uses(threadgroup=True)

    rewritten, used = rewrite(src, program, constants)
    unknown = [key for key in constants if key not in used]
    problems = list(rewritten.errors)
    if unknown:
        declared = ", ".join(f"{fc.name} (index {fc.index})" for fc in rewritten.function_constants)
        problems.append(Diagnostic(
            1, 1, f"constants= sets {', '.join(repr(k) for k in unknown)}, which the source does "
                  f"not declare as [[function_constant(i)]] (it declares: {declared or 'none'})",
            "msl-function-constant"))
    if problems:
        raise make_compile_error(problems, lines, filename)
    try:
        tail = generate(kernels, rewritten.static_regions, rewritten.function_constants, filename)
    except UnsupportedBuiltin as e:
        raise make_compile_error([Diagnostic(e.kernel.line, 1, str(e), "sim-unsupported")],
                                 lines, filename) from None
    cpp = f'#include "{SHIM_HEADER}"\n#line 1 "{filename}"\n{rewritten.text}\n{tail}'
    return Translation(cpp, source, filename, kernels, rewritten.column_map,
                       graph.recursion_suspects(), lines)
