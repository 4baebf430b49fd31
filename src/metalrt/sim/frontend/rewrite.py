"""MSL -> C++ against the shim headers, token by token, keeping every token on its line.

What changes (everything else is passed through):
  device T* / constant T* / threadgroup T*  -> ::msim::ptr<T, space> (constant: const T)
  device T& / constant T& / threadgroup T&  -> T& (constant: const T&)
  thread                                    -> removed (thread pointers stay raw)
  threadgroup T name[N];  (in a function)   -> auto& name = ::msim::threadgroup_variable<T[N]>(slot);
  constant T x = ...;  (program scope)      -> static const T x = ...;
  constant T x [[function_constant(i)]];    -> static constexpr T x = <value from constants=>;
  is_function_constant_defined(x)           -> true / false
  float4(...), vec<T,N>(...), T(...) with T a template type parameter,
  (float4)e, static_cast<float4>(e)          -> ::msim::make<...>(...): MSL's constructors and
                                               conversions; clang's own casts between vectors
                                               of equal size are bit casts
  (device T*)e, reinterpret_cast<device T*>(e) -> ::msim::ptr_cast<...>(e)
  1.0, 2e-3                                  -> 1.0f, 2e-3f (MSL has no double)
  1.0h                                       -> 1.0f16
  kernel, [[attributes]], template [[host_name(..)]] kernel void f<T>(...);  -> removed
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field

from .decls import Program, VariableDecl
from .diagnostics import Diagnostic
from .syntax import ADDRESS_SPACES, CV, Source, is_vector_type
from .tokens import IDENT, NUMBER

_SPACE_CLASS = {
    "device": "::msim::device_space",
    "constant": "::msim::constant_space",
    "threadgroup": "::msim::threadgroup_space",
}
_INT_TYPES = {
    "bool": (0, 1), "char": (-(2**7), 2**7 - 1), "uchar": (0, 2**8 - 1), "short": (-(2**15), 2**15 - 1),
    "ushort": (0, 2**16 - 1), "int": (-(2**31), 2**31 - 1), "uint": (0, 2**32 - 1),
    "long": (-(2**63), 2**63 - 1), "ulong": (0, 2**64 - 1), "int8_t": (-(2**7), 2**7 - 1),
    "uint8_t": (0, 2**8 - 1), "int16_t": (-(2**15), 2**15 - 1), "uint16_t": (0, 2**16 - 1),
    "int32_t": (-(2**31), 2**31 - 1), "uint32_t": (0, 2**32 - 1), "int64_t": (-(2**63), 2**63 - 1),
    "uint64_t": (0, 2**64 - 1), "size_t": (0, 2**64 - 1),
}
_FLOAT_TYPES = {"float", "half", "bfloat"}
_RESTRICT = ("restrict", "__restrict", "__restrict__")  # a hint the checked pointer has no use for


@dataclass
class StaticRegion:
    name: str  # qualified C++ name
    label: str  # the user's name, for messages


@dataclass
class FunctionConstant:
    name: str
    type_text: str
    index: int
    value: str | None  # C++ initializer, None when constants= gives none


@dataclass
class Rewritten:
    text: str
    column_map: dict[int, list[tuple[int, int]]]  # line -> [(output column, input column)]
    static_regions: list[StaticRegion] = field(default_factory=list)
    function_constants: list[FunctionConstant] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)


def _round_to(base: str, f: float) -> float | None:
    """f rounded (to nearest even) to float, half or bfloat, as an exactly representable
    Python float; None when it overflows a finite value."""
    if math.isnan(f) or math.isinf(f):
        return f
    try:
        if base == "half":
            return struct.unpack("<e", struct.pack("<e", f))[0]
        single = struct.unpack("<f", struct.pack("<f", f))[0]
    except (OverflowError, struct.error):
        return None
    if base == "bfloat":
        bits = struct.unpack("<I", struct.pack("<f", single))[0]
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
        rounded = struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
        return None if math.isinf(rounded) else rounded
    return single


def _float_literal(x: str) -> str | None:
    """The C++ spelling of an MSL number token, or None when it needs no change."""
    low = x.lower()
    if low.startswith("0x"):
        floating = "p" in low
    else:
        floating = "." in low or "e" in low
    if not floating:
        return None
    if low.endswith("h"):
        return x[:-1] + "f16"
    if low.endswith("f"):
        return None
    return x + "f"


class Rewriter:
    def __init__(self, src: Source, program: Program, constants: dict):
        self.src = src
        self.program = program
        self.constants = constants  # name or index -> Python value
        n = len(src)
        self.out: list[str] = [tok.text for tok in src.toks]
        self.before: list[str] = [""] * n
        self.after: list[str] = [""] * n
        self.bool_vectors: set[tuple[int, str]] = set()  # (function, variable) declared boolN
        self._bool_types: dict[tuple[int, str], int] = {}
        self.done: list[bool] = [False] * n
        self.threadgroup_slots = 0
        self.result = Rewritten(text="", column_map={})
        self.used_constants: set = set()

    # ---- helpers -----------------------------------------------------------------------------

    def replace(self, i: int, j: int, text: str) -> None:
        """Tokens [i, j) become `text` (written where token i was)."""
        self.out[i] = text
        self.done[i] = True
        for k in range(i + 1, j):
            self.out[k] = ""
            self.done[k] = True

    def error(self, i: int, message: str, rule: str = "") -> None:
        tok = self.src.toks[i]
        self.result.errors.append(Diagnostic(tok.line, tok.col, message, rule))

    def type_text(self, i: int, j: int) -> str:
        """The C++ for the type written in tokens[i:j], address spaces and `thread` removed."""
        words = [tok.text for tok in self.src.toks[i:j] if tok.text not in ADDRESS_SPACES]
        return " ".join(words)

    # ---- the passes --------------------------------------------------------------------------

    def run(self) -> Rewritten:
        for start, end in self.program.instantiations:
            self.replace(start, end + 1, "")
        for var in self.program.variables:
            self._program_variable(var)
        self._casts_and_pointers()
        self._threadgroup_declarations()
        self._remaining_tokens()
        self._assemble()
        return self.result

    def _program_variable(self, var: VariableDecl) -> None:
        src, t = self.src, self.src.t
        toks = src.toks
        words = [tok.text for tok in toks[var.start:var.end]]
        if "constant" not in words:
            return
        attr = next((k for k in range(var.start, var.end)
                     if t(k) == "[" and t(k + 1) == "[" and "function_constant" in
                     (tk.text for tk in toks[k:src.match[k]])), None)
        if attr is not None:
            self._function_constant(var, attr)
            return
        qualifiers = set(words)
        first = var.start
        for k in range(var.start, var.end):
            if t(k) == "constant" and not self.done[k]:
                self.out[k] = "" if qualifiers & {"const", "constexpr"} else "const"
                self.done[k] = True
        if "static" not in qualifiers:
            self.before[first] += "static "  # internal linkage, like every other definition here
        if not var.template_params:
            name = self._declarator_name(var)
            if name:
                scope = "::".join(var.scope)
                qualified = f"::{scope}::{name}" if scope else f"::{name}"
                self.result.static_regions.append(StaticRegion(qualified, name))

    def _declarator_name(self, var: VariableDecl) -> str | None:
        src = self.src
        for k in range(var.start, var.end):
            if src.t(k) in ("=", "[", "{", "(") and src.toks[k - 1].kind == IDENT:
                return src.t(k - 1)
        if src.toks[var.end - 1].kind == IDENT:
            return src.t(var.end - 1)
        return None

    def _function_constant(self, var: VariableDecl, attr: int) -> None:
        src, t = self.src, self.src.t
        name_index = attr - 1
        name = t(name_index)
        inside = src.toks[attr + 2:src.match[attr + 1]]
        index = -1
        for k, tok in enumerate(inside):
            if tok.text == "function_constant" and k + 2 < len(inside) and inside[k + 2].kind == NUMBER:
                index = int(inside[k + 2].text.rstrip("uUlL"), 0)
        type_start = var.start
        while t(type_start) in ("static", "constant", "const", "constexpr"):
            type_start += 1
        type_text = self.type_text(type_start, name_index).replace("constant", "").strip()
        value = None
        key = name if name in self.constants else index if index in self.constants else None
        if key is not None:
            self.used_constants.add(key)
            value = self._constant_literal(type_text, self.constants[key], name, var.start)
        fc = FunctionConstant(name, type_text, index, value)
        self.result.function_constants.append(fc)
        if value is None:
            text = (f"static constexpr ::msim::missing_constant<{type_text}> {name}"
                    f"{{\"{name}\", {index}}};")
        else:
            text = f"static constexpr {type_text} {name} = {value};"
        self.replace(var.start, var.end + 1, text)

    def _constant_literal(self, type_text: str, value, name: str, at: int) -> str | None:
        base = type_text.replace("const", "").strip()
        m = re.fullmatch(r"(bool|char|uchar|short|ushort|int|uint|long|ulong|half|bfloat|float)([234])", base)
        if m:
            values = list(value) if isinstance(value, (tuple, list)) else [value] * int(m.group(2))
            if len(values) != int(m.group(2)):
                self.error(at, f"function constant '{name}' is a {base}: constants= gives "
                               f"{len(values)} values for it", "msl-function-constant")
                return None
            parts = [self._scalar_literal(m.group(1), v, name, at) for v in values]
            if any(p is None for p in parts):
                return None
            return f"{base}{{{', '.join(parts)}}}"
        return self._scalar_literal(base, value, name, at)

    def _scalar_literal(self, base: str, value, name: str, at: int) -> str | None:
        if base == "bool":
            if not isinstance(value, (bool, int)) or int(value) not in (0, 1):
                self.error(at, f"function constant '{name}' is a bool: constants= gives {value!r}",
                           "msl-function-constant")
                return None
            return "true" if value else "false"
        if base in _INT_TYPES:
            if isinstance(value, float) or not isinstance(value, int):
                self.error(at, f"function constant '{name}' is a {base}: constants= gives "
                               f"{value!r}, not an integer", "msl-function-constant")
                return None
            lo, hi = _INT_TYPES[base]
            if not lo <= int(value) <= hi:
                self.error(at, f"function constant '{name}' is a {base}: {value} is outside "
                               f"[{lo}, {hi}]", "msl-function-constant")
                return None
            return f"{base}({int(value)}{'ul' if int(value) > 2**63 - 1 else 'l'})"
        if base in _FLOAT_TYPES:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.error(at, f"function constant '{name}' is a {base}: constants= gives "
                               f"{value!r}", "msl-function-constant")
                return None
            exact = _round_to(base, float(value))
            if exact is None:
                self.error(at, f"function constant '{name}' is a {base}: {value!r} is outside "
                               f"its range", "msl-function-constant")
                return None
            if math.isnan(exact):
                return f"{base}(__builtin_nanf(\"\"))"
            if math.isinf(exact):
                return f"{base}({'-' if exact < 0 else ''}__builtin_inff())"
            return f"{base}({exact.hex()}f)"
        self.error(at, f"function constant '{name}' has type {base}, which the sim cannot set "
                       f"from constants=", "msl-function-constant")
        return None

    # ---- pointers, references, casts ---------------------------------------------------------

    def _casts_and_pointers(self) -> None:
        src, t = self.src, self.src.t
        n = len(src)
        i = 0
        while i < n:
            if self.done[i]:
                i += 1
                continue
            x = t(i)
            if x in ("reinterpret_cast", "static_cast", "const_cast") and t(i + 1) == "<":
                self._named_cast(i)
            elif x == "(" and src.is_cast(i):
                self._c_cast(i)
            elif x in ("device", "constant", "threadgroup") and t(i - 1) not in (".", "->", "::"):
                self._address_space(i)
            i += 1

    def _pointer_type(self, i: int, j: int):
        """tokens[i:j] spell `[cv] space T [cv] * [cv]` or `... &`: returns (C++ type, kind) with
        kind '*' or '&', or None when the tokens are another type."""
        words = [tok.text for tok in self.src.toks[i:j]]
        spaces = [w for w in words if w in ("device", "constant", "threadgroup")]
        if not spaces or not words or words[-1] not in ("*", "&") and "*" not in words:
            return None
        if words.count("*") + words.count("&") > 1:
            return None
        kind = "*" if "*" in words else "&"
        at = words.index(kind)
        inner = [w for w in words[:at] if w not in ADDRESS_SPACES]
        after = [w for w in words[at + 1:] if w not in _RESTRICT]
        space = spaces[0]
        if space == "constant" and "const" not in inner:
            inner = ["const"] + inner
        base = " ".join(inner)
        if kind == "&":
            return f"{base} &" + (" " + " ".join(after) if after else ""), "&"
        text = f"::msim::ptr<{base}, {_SPACE_CLASS[space]}>"
        return (text + (" " + " ".join(after) if after else "")), "*"

    def _named_cast(self, i: int) -> None:
        src, t = self.src, self.src.t
        close = src.template_end(i + 1)
        if close < 0 or t(close) != "(":
            return
        target = self._pointer_type(i + 2, close - 1)
        if target and target[1] == "*":
            self.replace(i, close, f"::msim::ptr_cast<{target[0]}>")
        elif t(i) == "static_cast" and self._is_value_type(i + 2, close - 1):
            self.replace(i, close, f"::msim::make<{self.type_text(i + 2, close - 1)}>")

    def _is_value_type(self, i: int, j: int) -> bool:
        """A vector type (or a template type parameter, which may be one) in tokens[i:j]."""
        src = self.src
        words = [tok.text for tok in src.toks[i:j] if tok.text not in ("const", "metal", "::")]
        if len(words) == 1:
            return is_vector_type(words[0]) or words[0] in self.program.template_type_names
        return bool(words) and words[0] == "vec" and words[1] == "<"

    def _c_cast(self, i: int) -> None:
        src = self.src
        close = src.match[i]
        end = src.unary_end(close + 1)
        if end <= close + 1:
            return
        target = self._pointer_type(i + 1, close)
        if target and target[1] == "*":
            self.replace(i, close + 1, f"::msim::ptr_cast<{target[0]}>(")
        elif self._is_value_type(i + 1, close):
            self.replace(i, close + 1, f"::msim::make<{self.type_text(i + 1, close)}>(")
        else:
            return
        self.after[end - 1] += ")"

    def _address_space(self, i: int) -> None:
        src, t = self.src, self.src.t
        start = i
        while t(start - 1) in CV and not self.done[start - 1]:
            start -= 1
        prev = t(start - 1)
        if prev == ")" or prev in CV and t(start - 2) == ")":
            # the address space of `this` in a method: `float get() const device {`
            if src.type_end(i + 1) < 0 or t(i + 1) in ("noexcept", "{", ";", "->", "="):
                self.replace(i, i + 1, "")
                return
        end = src.type_end(i, allow_space=True)
        if end < 0:
            return
        j = end
        while t(j) in ("*", "&") or t(j) in CV or t(j) in _RESTRICT:
            j += 1
        target = self._pointer_type(start, j)
        if target is not None:
            self.replace(start, j, target[0] + " ")
            return
        if t(end) in ("*", "&"):
            self.error(i, "pointers to pointers in MSL address spaces are not supported by the sim",
                       "sim-unsupported")
            return
        if t(i) == "constant":
            # A constant local, or a static member of a struct: read-only data.
            k = i
            while k > 0 and t(k - 1) not in (";", "{", "}", ":"):
                k -= 1
            m = i
            while m < len(src) and t(m) not in (";", "=", "{"):
                m += 1
            words = {tok.text for tok in src.toks[k:m]}
            self.replace(i, i + 1, "" if words & {"const", "constexpr"} else "const")

    def _threadgroup_declarations(self) -> None:
        src, t = self.src, self.src.t
        for i in range(len(src)):
            if t(i) != "threadgroup" or self.done[i] or self.program.function_of[i] < 0:
                continue
            end = src.type_end(i, allow_space=True)
            if end < 0:
                continue
            type_text = self.type_text(i, end)
            k = end
            declarations = []
            while src.toks[k].kind == IDENT:
                name = t(k)
                k += 1
                dims = ""
                while t(k) == "[":
                    close = src.match[k]
                    dims += "[" + " ".join(tok.text for tok in src.toks[k + 1:close]) + "]"
                    k = close + 1
                slot = self.threadgroup_slots
                self.threadgroup_slots += 1
                declarations.append(f"auto& {name} = ::msim::threadgroup_variable<{type_text}{dims}>"
                                    f"({slot}u);")
                if t(k) == ",":
                    k += 1
                    continue
                break
            if t(k) != ";" or not declarations:
                continue  # the rule checker reports initialisers and other shapes
            self.replace(i, k + 1, " ".join(declarations))

    # ---- single tokens -------------------------------------------------------------------------

    def _remaining_tokens(self) -> None:
        src, t = self.src, self.src.t
        toks = src.toks
        n = len(src)
        fc_names = {fc.name: fc for fc in self.result.function_constants}
        for i in range(n):
            if self.done[i]:
                continue
            tok = toks[i]
            x = tok.text
            if tok.kind == NUMBER:
                lit = _float_literal(x)
                if lit is not None:
                    self.out[i] = lit
                continue
            if x == "[" and t(i + 1) == "[" and src.match[i] == src.match[i + 1] + 1:
                self.replace(i, src.match[i] + 1, "")
                continue
            if tok.kind != IDENT:
                continue
            member = t(i - 1) in (".", "->")
            if member:
                continue
            if re.fullmatch(r"bool[234]", x) and toks[i + 1].kind == IDENT and t(i - 1) != "(":
                self._bool_vector_declaration(i)
            elif (toks[i].kind == IDENT and t(i + 1) == "=" and t(i - 1) in (";", "{", "}")
                  and (self.program.function_of[i], x) in self.bool_vectors):
                self._wrap_bool_initializer(i + 2, t(self._bool_type_of(i)))
            if x == "kernel" and (toks[i + 1].kind == IDENT or t(i + 1) == "["):
                self.replace(i, i + 1, "")
            elif x == "thread" and t(i - 1) != "::":
                self.replace(i, i + 1, "")
            elif x == "is_function_constant_defined" and t(i + 1) == "(":
                close = src.match[i + 1]
                name = t(i + 2)
                fc = fc_names.get(name)
                if fc is None or close != i + 3:
                    self.error(i, f"is_function_constant_defined() takes the name of a "
                                  f"[[function_constant]]; '{name}' is not one", "msl-function-constant")
                    continue
                self.replace(i, close + 1, "true" if fc.value is not None else "false")
            elif (is_vector_type(x) and toks[i + 1].kind == IDENT and t(i + 2) == "("
                  and self.program.function_of[i] >= 0 and t(i - 1) not in (".", "->", "::")):
                # `float4 v(i4);` is a declaration whose initialiser is a conversion
                self.out[i + 2] = f"= ::msim::make<{x}>("
                self.done[i + 2] = True
            elif t(i + 1) == "(" and t(i - 1) != "operator" and self._constructs_value(i):
                prefix = i
                if t(i - 1) == "::" and t(i - 2) == "metal":
                    prefix = i - 2
                self.replace(prefix, i + 1, f"::msim::make<{x}>")
            elif x == "vec" and t(i + 1) == "<":
                end = src.template_end(i + 1)
                if end > 0 and t(end) == "(" and t(i - 1) != "operator":
                    prefix = i - 2 if t(i - 1) == "::" and t(i - 2) == "metal" else i
                    self.replace(prefix, end, f"::msim::make<{src.text_of(i, end)}>")

    # `bool4 m = a < b;`: clang's vector comparisons give integer masks, which MSL's boolN takes.
    def _bool_vector_declaration(self, i: int) -> None:
        src = self.src
        function = self.program.function_of[i]
        k = i + 1
        while k < len(src) and src.toks[k].kind == IDENT:
            self.bool_vectors.add((function, src.t(k)))
            self._bool_types[(function, src.t(k))] = i
            if src.t(k + 1) == "=":
                k = self._wrap_bool_initializer(k + 2, src.t(i))
            else:
                k += 1
            if src.t(k) != ",":
                break
            k += 1

    def _bool_type_of(self, i: int) -> int:
        return self._bool_types[(self.program.function_of[i], self.src.t(i))]

    def _wrap_bool_initializer(self, start: int, type_name: str) -> int:
        """Wraps the expression from tokens[start] to the next ',' or ';' in make<boolN>();
        returns the index of that ',' or ';'."""
        src = self.src
        end = start
        while end < len(src) and src.t(end) not in (";", ","):
            if src.t(end) in ("(", "[", "{"):
                end = src.match[end]
            end += 1
        if end > start and src.t(start) != "{":
            self.before[start] = f"::msim::make<{type_name}>(" + self.before[start]
            self.after[end - 1] += ")"
        return end

    def _constructs_value(self, i: int) -> bool:
        x = self.src.t(i)
        if is_vector_type(x):
            return self.src.t(i - 1) != "::" or self.src.t(i - 2) == "metal"
        if x in self.program.template_type_names:
            return self.src.t(i - 1) not in ("::", "~", "typename", "class")
        return False

    # ---- output --------------------------------------------------------------------------------

    def _assemble(self) -> None:
        src = self.src
        text = src.text
        pieces: list[str] = []
        column_map: dict[int, list[tuple[int, int]]] = {}
        pos = 0
        col = 1  # output column of the next character
        for i, tok in enumerate(src.toks):
            gap = text[pos:tok.start]
            pieces.append(gap)
            if "\n" in gap:
                col = len(gap) - gap.rindex("\n")
            else:
                col += len(gap)
            column_map.setdefault(tok.line, []).append((col, tok.col))
            piece = self.before[i] + self.out[i] + self.after[i]
            if tok.kind == "directive" and "\n" not in piece:
                piece = self._directive(piece)
            pieces.append(piece)
            col += len(piece)
            pos = tok.end
        pieces.append(text[pos:])
        self.result.text = "".join(pieces)
        self.result.column_map = column_map

    @staticmethod
    def _directive(text: str) -> str:
        # `#pragma METAL ...` and other Metal pragmas mean nothing to clang; keep `#pragma unroll`.
        # The preprocessor drops #include <metal_stdlib> and kin; if one is still here, the shim
        # header stands in for it.
        words = text.replace("#", " ").split()
        if words[:1] == ["include"] and "metal_" in text:
            return ""
        if words[:1] == ["pragma"] and len(words) > 1 and words[1] in ("METAL", "clang", "once"):
            return ""
        return text


def rewrite(src: Source, program: Program, constants: dict) -> tuple[Rewritten, set]:
    """The translation, and the keys of `constants` it used (the others name no constant)."""
    rewriter = Rewriter(src, program, constants)
    result = rewriter.run()
    return result, rewriter.used_constants
