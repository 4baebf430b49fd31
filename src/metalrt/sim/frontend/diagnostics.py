"""Compile errors in the user's terms: rule violations found by the front end, and clang's log
rewritten so that every location, snippet and type name is the user's MSL, never the C++ the
front end generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPEC = "Metal Shading Language Specification 3.1"
GENERATED_FILE = "metalrt-sim-generated.cpp"


@dataclass(frozen=True)
class Diagnostic:
    line: int
    col: int
    message: str
    rule: str = ""  # short id of the MSL rule, e.g. "msl-double"


class SourceLines:
    """The user's lines for snippets: as written, and after preprocessing (same numbering;
    columns count in the preprocessed line, which differs where a macro was expanded)."""

    def __init__(self, preprocessed: str, original: str | None = None):
        self.pre = preprocessed.splitlines()
        self.raw = original.splitlines() if original is not None else self.pre

    def snippet(self, line: int, col: int) -> str:
        if not 1 <= line <= len(self.pre):
            return ""
        pre = self.pre[line - 1].expandtabs(1)
        raw = self.raw[line - 1].expandtabs(1) if line <= len(self.raw) else pre
        caret = " " * max(col - 1, 0) + "^"
        if raw.strip() == pre.strip():
            return f"{line:5d} | {raw}\n      | {caret}\n"
        return (f"{line:5d} | {raw}\n      | after macro expansion:\n      | {pre}\n"
                f"      | {caret}\n")


def format_log(diagnostics: list[Diagnostic], lines: SourceLines, filename: str) -> str:
    out = []
    for d in diagnostics:
        tag = f" [{d.rule}]" if d.rule else ""
        out.append(f"{filename}:{d.line}:{d.col}: error: {d.message}{tag}\n")
        out.append(lines.snippet(d.line, d.col))
    return "".join(out)


def make_compile_error(diagnostics: list[Diagnostic], lines: SourceLines, filename: str):
    """metalrt.CompileError for the front end's own findings (the first one summarised)."""
    from metalrt.errors import CompileError

    first = diagnostics[0]
    more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
    summary = f"{filename}:{first.line}: {first.message}{more}"
    return CompileError(summary, format_log(diagnostics, lines, filename), first.line)


# ---- clang's log -------------------------------------------------------------------------

# How the shim's C++ types read in MSL, for messages about them.
_NS = r"(?:(?:::)?msim::)?"
_ARG = r"([^<>]*(?:<[^<>]*>[^<>]*)?)"
_TYPE_SPELLINGS = [
    (re.compile(_NS + r"ptr<const " + _ARG + ", " + _NS + r"constant_space>"), r"constant \1*"),
    (re.compile(_NS + r"ptr<" + _ARG + ", " + _NS + r"constant_space>"), r"constant \1*"),
    (re.compile(_NS + r"ptr<" + _ARG + ", " + _NS + r"device_space>"), r"device \1*"),
    (re.compile(_NS + r"ptr<" + _ARG + ", " + _NS + r"threadgroup_space>"), r"threadgroup \1*"),
    (re.compile(_NS + r"make<" + _ARG + ">"), r"\1"),
    (re.compile(_NS + r"threadgroup_variable<([^<>]*)>\(\d+u?\)"), r"threadgroup \1"),
    (re.compile(r"_Float16"), "half"),
    (re.compile(r"__bf16"), "bfloat"),
    (re.compile(r"(\w+) __attribute__\(\(ext_vector_type\((\d)\)\)\)"), r"\1\2"),
    (re.compile(r"(?:::)?msim::"), ""),
    (re.compile(r"static assertion failed(?: due to requirement '.*?')?: "), ""),
]

# clang messages that break an MSL rule, with the rule they break.
_RULE_NOTES = [
    (re.compile(r"variable length arrays? .*(?:extension|not permitted)|variable-length array", re.I),
     "MSL is C++14, which has no variable-length arrays: an array's size must be a compile-time "
     f"constant ({SPEC}, section 1.4 Metal and C++14)"),
    (re.compile(r"cannot assign to (?:return value|variable).*const|read-only variable|"
                r"assignment of read-only", re.I),
     f"memory in the constant address space is read-only ({SPEC}, section 4.2 constant Address "
     "Space); write through a device pointer instead"),
]

_LOCATION_RE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<kind>[a-z ]+): (?P<msg>.*)$")


def _undefined_references(log: str) -> list[str]:
    names = re.findall(r"undefined (?:reference to|symbol:) [`']?([^`'\n]+?)'?$", log, re.M)
    return list(dict.fromkeys(spell_msl(n.strip()) for n in names))


def spell_msl(text: str) -> str:
    for pattern, repl in _TYPE_SPELLINGS:
        text = pattern.sub(repl, text)
    return text


def rewrite_clang_log(log: str, lines: SourceLines, filename: str, column_map) -> tuple[str, int, str]:
    """clang's output -> (log in the user's terms, first error line in the user's source or 0,
    one-line summary). Locations in the shim headers or generated code are kept only as notes;
    each error is shown at the nearest location in the user's file (clang's "in instantiation
    of ... required from here" chain ends there)."""
    out: list[str] = []
    first_line, summary = 0, ""
    pending_error: str | None = None  # an error in a header, waiting for its user location
    for raw in log.splitlines():
        m = _LOCATION_RE.match(raw)
        if not m:
            continue  # clang's own snippets show generated code; we print the user's
        file, line, col = m["file"], int(m["line"]), int(m["col"])
        kind, msg = m["kind"], spell_msl(m["msg"])
        in_user = file == filename
        if in_user:
            col = column_map(line, col)
        if kind in ("error", "fatal error"):
            note = next((text for pattern, text in _RULE_NOTES if pattern.search(msg)), "")
            if note:
                msg = f"{msg}: {note}"
            if in_user:
                out.append(f"{filename}:{line}:{col}: error: {msg}\n{lines.snippet(line, col)}")
                if not first_line:
                    first_line, summary = line, f"{filename}:{line}: {msg}"
                pending_error = None
            else:
                pending_error = msg
        elif in_user and pending_error is not None:
            out.append(f"{filename}:{line}:{col}: error: {pending_error}\n"
                       f"{lines.snippet(line, col)}")
            if not first_line:
                first_line, summary = line, f"{filename}:{line}: {pending_error}"
            pending_error = None
        elif in_user and kind == "note" and out:
            out.append(f"{filename}:{line}:{col}: note: {msg}\n{lines.snippet(line, col)}")
    if pending_error is not None:
        out.append(f"{filename}: error: {pending_error}\n")
        if not summary:
            summary = f"{filename}: {pending_error}"
    if not out:
        undefined = _undefined_references(log)
        for name in undefined:
            bare = name.split("(", 1)[0].rsplit("::", 1)[-1]
            line = next((k for k, text in enumerate(lines.pre, 1)
                         if re.search(rf"\b{re.escape(bare)}\s*\(", text)), 0)
            msg = (f"function '{name}' is declared and called but never defined: a metalrt source is "
                   f"self-contained, so define it (or remove the call)")
            out.append(f"{filename}:{line}: error: {msg}\n{lines.snippet(line, 1)}")
            if not first_line:
                first_line, summary = line, f"{filename}:{line}: {msg}"
    if not out:
        # Nothing located in the user's file (a crash, say): keep clang's words.
        text = spell_msl(log.strip())
        out.append(text + "\n")
        summary = summary or text.splitlines()[0] if text else "the host compiler failed"
    return "".join(out), first_line, summary
