"""The rules of MSL that clang, compiling our C++, would not enforce but Apple's compiler does.

A sim that accepted non-MSL would certify kernels that fail on a Mac, so each rule here is a
CompileError naming the rule and the section of the Metal Shading Language Specification (3.1)
it comes from. Rules clang does enforce on the translation (variable-length arrays, writes to
constant memory, atomics MSL does not define) get their rule named in diagnostics.py instead.
"""

from __future__ import annotations

from .decls import Program
from .diagnostics import SPEC, Diagnostic
from .syntax import ADDRESS_SPACES, CV, Source, is_builtin_type
from .tokens import IDENT, NUMBER

RESTRICTIONS = f"{SPEC}, section 1.4.4 Restrictions"
_SCALARS = f"{SPEC}, section 2.1 Scalar Data Types"
_ADDRESS_SPACES = f"{SPEC}, section 4 Address Spaces"
_CONSTANT_SPACE = f"{SPEC}, section 4.2 constant Address Space"
_THREADGROUP_SPACE = f"{SPEC}, section 4.4 threadgroup Address Space"
_ATOMICS = f"{SPEC}, section 6.15 Atomic Functions"

# keyword -> (rule id, message)
_FORBIDDEN_KEYWORDS = {
    "virtual": ("msl-virtual", f"virtual functions are not available in Metal ({RESTRICTIONS})"),
    "throw": ("msl-exceptions", f"exception handling (throw) is not available in Metal ({RESTRICTIONS})"),
    "try": ("msl-exceptions", f"exception handling (try/catch) is not available in Metal ({RESTRICTIONS})"),
    "catch": ("msl-exceptions", f"exception handling (try/catch) is not available in Metal ({RESTRICTIONS})"),
    "dynamic_cast": ("msl-dynamic-cast", f"dynamic_cast is not available in Metal ({RESTRICTIONS})"),
    "typeid": ("msl-typeid", f"type identification (typeid) is not available in Metal ({RESTRICTIONS})"),
    "goto": ("msl-goto", f"the goto statement is not available in Metal ({RESTRICTIONS})"),
    "register": ("msl-register", f"the register storage class is not available in Metal ({RESTRICTIONS})"),
    "thread_local": ("msl-thread-local",
                     f"the thread_local storage class is not available in Metal ({RESTRICTIONS})"),
    "new": ("msl-new-delete",
            f"the new operator is not available in Metal: there is no dynamic memory on the GPU "
            f"({RESTRICTIONS}); use a fixed-size thread or threadgroup array"),
    "asm": ("msl-asm", "inline assembly is not part of MSL"),
    "__asm__": ("msl-asm", "inline assembly is not part of MSL"),
}

_C_LIBRARY = {
    "malloc", "calloc", "realloc", "free", "aligned_alloc", "printf", "fprintf", "sprintf",
    "snprintf", "puts", "putchar", "exit", "abort", "assert",
}

_DOUBLE = (f"MSL has no double type: Metal does not support the double, long double, long long "
           f"and unsigned long long data types ({_SCALARS}); use float")


class RuleChecker:
    def __init__(self, src: Source, program: Program):
        self.src = src
        self.program = program
        self.found: list[Diagnostic] = []

    def at(self, i: int, rule: str, message: str) -> None:
        tok = self.src.toks[i]
        self.found.append(Diagnostic(tok.line, tok.col, message, rule))

    def run(self) -> list[Diagnostic]:
        self._tokens()
        self._program_scope()
        self._functions()
        self.found.sort(key=lambda d: (d.line, d.col))
        return self.found

    # ---- rules that need one token or two --------------------------------------------------

    def _tokens(self) -> None:
        src, t = self.src, self.src.t
        defined = {fn.name for fn in self.program.functions}
        for i, tok in enumerate(src.toks):
            x = tok.text
            member = t(i - 1) in (".", "->")
            if tok.kind == NUMBER:
                self._number(i)
                continue
            if tok.kind != IDENT or member:
                continue
            if x == "double":
                if t(i - 1) == "long":
                    continue  # reported at `long`
                self.at(i, "msl-double", _DOUBLE)
            elif x == "long" and t(i + 1) == "double":
                self.at(i, "msl-double", _DOUBLE.replace("no double type", "no long double type"))
            elif x == "long" and t(i + 1) == "long" and t(i - 1) != "long":
                self.at(i, "msl-long-long", _DOUBLE.replace("no double type", "no long long type")
                        .replace("use float", "use long (64 bits in MSL)"))
            elif x == "delete" and t(i - 1) != "=":
                self.at(i, "msl-new-delete",
                        f"the delete operator is not available in Metal ({RESTRICTIONS})")
            elif x in _FORBIDDEN_KEYWORDS and not (x == "new" and t(i - 1) == "operator"):
                rule, message = _FORBIDDEN_KEYWORDS[x]
                self.at(i, rule, message)
            elif x == "std" and t(i + 1) == "::" or x == "std" and t(i - 1) == "namespace":
                self.at(i, "msl-stdlib",
                        f"the C++ standard library must not be used in Metal ({RESTRICTIONS}); "
                        f"metal_stdlib provides the math, integer and SIMD-group functions (use "
                        f"metal:: or `using namespace metal;`)")
            elif x in _C_LIBRARY and t(i + 1) == "(" and x not in defined:
                self.at(i, "msl-c-library",
                        f"{x}() is from the C library, which MSL does not have ({RESTRICTIONS}: "
                        f"no standard library, no dynamic memory)")
            elif x in ("vertex", "fragment") and src.toks[i + 1].kind == IDENT:
                self.at(i, "sim-compute-only",
                        f"{x} functions are not supported: the sim runs compute kernels only")

    def _number(self, i: int) -> None:
        x = self.src.t(i).lower()
        if x.startswith("0x"):
            floating = "p" in x
        else:
            floating = "." in x or "e" in x
        if floating and x.endswith("l"):
            self.at(i, "msl-double",
                    f"{self.src.t(i)} is a long double literal: {_DOUBLE} "
                    f"(write {self.src.t(i)[:-1]}f)")

    # ---- declarations at program scope ------------------------------------------------------

    def _program_scope(self) -> None:
        src = self.src
        for var in self.program.variables:
            words = [tok.text for tok in src.toks[var.start:var.end]]
            if "constant" in words:
                continue
            first = var.start
            while src.t(first) in ("static", "inline", "extern") and first < var.end:
                first += 1
            if "threadgroup" in words:
                self.at(first, "msl-threadgroup-scope",
                        f"threadgroup variables are declared in a kernel function, not at program "
                        f"scope ({_THREADGROUP_SPACE})")
            else:
                self.at(first, "msl-program-scope",
                        f"program scope variable must reside in constant address space: declare it "
                        f"`constant` ({_CONSTANT_SPACE})")

    # ---- function parameters and bodies -----------------------------------------------------

    def _functions(self) -> None:
        for fn in self.program.functions:
            self._parameters(fn)
            self._body(fn)
        if any(fn.name == "main" for fn in self.program.functions):
            fn = next(fn for fn in self.program.functions if fn.name == "main")
            self.at(fn.name_index, "msl-main",
                    f"a Metal function cannot be named main ({RESTRICTIONS})")

    def _concrete_type(self, name: str) -> bool:
        """A type whose pointer needs an address space: not a template parameter, which may
        carry its own."""
        if name in self.program.template_type_names:
            return False
        return is_builtin_type(name) or name in self.src.type_names

    def _parameters(self, fn) -> None:
        src = self.src
        open_, close = fn.params
        start = open_ + 1
        k = start
        while k <= close:
            x = src.t(k)
            if x in ("(", "[") and k != close:
                k = src.match[k] + 1
                continue
            if x == "<":
                end = src.template_end(k)
                if end > 0:
                    k = end
                    continue
            if x == "," or k == close:
                self._pointer_without_space(start, k, "parameter")
                start = k + 1
            k += 1

    def _pointer_without_space(self, start: int, end: int, what: str) -> None:
        """tokens[start:end] declare one parameter or variable: a `*` or `&` in its type needs an
        address space."""
        src = self.src
        spaces = False
        base = ""
        k = start
        while k < end:
            x = src.t(k)
            if x in ADDRESS_SPACES:
                spaces = True
            elif x == "<":
                e = src.template_end(k)
                k = e if e > 0 else k + 1
                continue
            elif x in ("[", "("):
                return
            elif x in ("*", "&"):
                if not spaces and base and self._concrete_type(base):
                    kind = "pointer" if x == "*" else "reference"
                    self.at(k, "msl-address-space",
                            f"{kind} type must have explicit address space qualifier: a {kind} "
                            f"{what} needs device, constant, threadgroup or thread "
                            f"({_ADDRESS_SPACES})")
                return
            elif x == "=":
                return
            elif src.toks[k].kind == IDENT and x not in CV and not base:
                base = x
            k += 1

    def _body(self, fn) -> None:
        src, t = self.src, self.src.t
        open_, close = fn.body
        k = open_ + 1
        while k < close:
            x = t(k)
            prev = t(k - 1)
            statement_start = prev in ("{", ";", "}") or (prev == "(" and t(k - 2) == "for")
            if statement_start and x == "static":
                end = self._statement_end(k, close)
                words = {tok.text for tok in src.toks[k:end]}
                if not words & {"constant", "constexpr"}:
                    self.at(k, "msl-static-local",
                            f"a static variable in a function lives for the whole program, and "
                            f"program scope variables must reside in the constant address space "
                            f"({_CONSTANT_SPACE})")
            elif statement_start and (x in CV or self._concrete_type(x)) and x not in ADDRESS_SPACES:
                end = self._statement_end(k, close)
                self._pointer_without_space(k, end, "variable")
            elif x == "threadgroup" and statement_start:
                self._threadgroup_declaration(k, close)
            elif x == "device" and statement_start:
                end = src.type_end(k, allow_space=True)
                if end > 0 and t(end) not in ("*", "&"):
                    self.at(k, "msl-device-variable",
                            f"a variable cannot live in the device address space: device memory "
                            f"is reached through pointers and references to kernel buffers "
                            f"({_ADDRESS_SPACES})")
            elif x == "(" and src.is_cast(k):
                self._cast(k)
            k += 1

    def _statement_end(self, k: int, limit: int) -> int:
        src = self.src
        while k < limit and src.t(k) not in (";", "{", "}"):
            if src.t(k) in ("(", "["):
                k = src.match[k]
            k += 1
        return k

    def _threadgroup_declaration(self, k: int, close: int) -> None:
        src, t = self.src, self.src.t
        end = src.type_end(k, allow_space=True)
        if end < 0 or t(end) in ("*", "&"):
            return
        words = [tok.text for tok in src.toks[k:end]]
        if "atomic_float" in words or ("atomic" in words and "float" in words):
            self.at(k, "msl-atomic-float-threadgroup",
                    f"atomic_float exists in device memory only; threadgroup memory has no float "
                    f"atomics ({_ATOMICS}): use a threadgroup atomic_uint with "
                    f"atomic_compare_exchange_weak_explicit, or a device atomic_float")
        stmt_end = self._statement_end(k, close)
        depth = 0
        for m in range(end, stmt_end):
            x = t(m)
            if x in ("[", "("):
                depth += 1
            elif x in ("]", ")"):
                depth -= 1
            elif x == "=" and depth == 0 or x == "{":
                self.at(m, "msl-threadgroup-init",
                        f"a threadgroup variable cannot be initialized where it is declared "
                        f"({_THREADGROUP_SPACE}): assign it after the declaration, then "
                        f"threadgroup_barrier")
                return

    def _cast(self, k: int) -> None:
        src = self.src
        close = src.match[k]
        words = [tok.text for tok in src.toks[k + 1:close]]
        if "threadgroup" in words and ("atomic_float" in words or
                                       ("atomic" in words and "float" in words)):
            self.at(k, "msl-atomic-float-threadgroup",
                    f"atomic_float exists in device memory only ({_ATOMICS})")
        self._pointer_without_space(k + 1, close, "cast")


def check_rules(src: Source, program: Program) -> list[Diagnostic]:
    return RuleChecker(src, program).run()
