"""The declarations at namespace and class scope: functions (with their bodies), kernels,
program-scope variables, explicit template instantiations, and the names the source declares
as types. The rule checks, the rewriter and the entry generator all read this map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .syntax import ADDRESS_SPACES, CV, Source
from .tokens import DIRECTIVE, IDENT, STRING


@dataclass
class FunctionDef:
    name: str
    name_index: int  # token index of the name
    params: tuple[int, int]  # indices of '(' and ')'
    body: tuple[int, int]  # indices of '{' and '}'
    start: int  # first token of the declaration (the `template` of a template, if any)
    scope: tuple[str, ...]  # enclosing namespaces and classes
    is_kernel: bool
    in_class: bool
    template_params: tuple[str, ...]


@dataclass
class VariableDecl:
    """A declaration of variables at namespace scope (MSL allows only `constant` ones)."""

    start: int
    end: int  # index of the ';'
    scope: tuple[str, ...]
    template_params: tuple[str, ...]


@dataclass
class Program:
    functions: list[FunctionDef] = field(default_factory=list)
    variables: list[VariableDecl] = field(default_factory=list)
    instantiations: list[tuple[int, int]] = field(default_factory=list)  # [template, ';']
    function_of: list[int] = field(default_factory=list)  # token -> index of enclosing body, -1
    template_type_names: set[str] = field(default_factory=set)  # `typename T` parameters

    def kernels(self) -> list[FunctionDef]:
        return [f for f in self.functions if f.is_kernel]


_SKIP_QUALIFIERS = frozenset(CV + ADDRESS_SPACES + ("noexcept", "override", "final", "&", "&&"))


class DeclarationScanner:
    def __init__(self, src: Source):
        self.src = src
        self.program = Program(function_of=[-1] * len(src))

    def run(self) -> Program:
        self._scope(0, len(self.src), (), in_class=False)
        for index, fn in enumerate(self.program.functions):
            open_, close = fn.body
            for k in range(open_, close + 1):
                self.program.function_of[k] = index
        return self.program

    # ---- scopes ------------------------------------------------------------------------------

    def _scope(self, i: int, end: int, scope: tuple[str, ...], in_class: bool) -> None:
        src, t = self.src, self.src.t
        while i < end:
            x = t(i)
            tok = src.toks[i]
            if x == ";" or tok.kind == DIRECTIVE:
                i += 1
            elif x == "namespace":
                j = i + 1
                names = []
                while src.toks[j].kind == IDENT or t(j) == "::":
                    if src.toks[j].kind == IDENT:
                        names.append(t(j))
                    j += 1
                if t(j) == "{":
                    self._scope(j + 1, src.match[j], scope + tuple(names), in_class=False)
                    i = src.match[j] + 1
                else:  # namespace alias
                    i = self._statement_end(j) + 1
            elif x == "extern" and src.toks[i + 1].kind == STRING and t(i + 2) == "{":
                self._scope(i + 3, src.match[i + 2], scope, in_class=False)
                i = src.match[i + 2] + 1
            elif x in ("public", "private", "protected") and t(i + 1) == ":":
                i += 2
            elif x == "template" and t(i + 1) == "<":
                close = src.template_end(i + 1)
                params = self._template_params(i + 2, close - 1)
                type_params = {p for p, is_type in params if is_type}
                src.type_names.update(type_params)
                self.program.template_type_names.update(type_params)
                i = self._declaration(close, scope, in_class, start=i,
                                      template_params=tuple(p for p, _ in params))
            elif x == "template":
                j = self._statement_end(i)
                self.program.instantiations.append((i, j))
                i = j + 1
            elif x in ("using", "typedef"):
                j = self._statement_end(i)
                self._note_alias(i, j)
                i = j + 1
            elif x in ("static_assert", "friend"):
                i = self._statement_end(i) + 1
            else:
                i = self._declaration(i, scope, in_class, start=i, template_params=())

    def _statement_end(self, i: int) -> int:
        src = self.src
        while i < len(src) and src.t(i) != ";":
            if src.t(i) in ("(", "[", "{"):
                i = src.match[i]
            i += 1
        return i

    def _template_params(self, i: int, close: int) -> list[tuple[str, bool]]:
        """(name, is_type) for each parameter of a template parameter list tokens[i:close]."""
        src, out = self.src, []
        start = i
        depth = 0
        while i <= close:
            x = src.t(i) if i < close else ","
            if x in ("(", "["):
                i = src.match[i] + 1
                continue
            if x == "<":
                depth += 1
            elif x == ">":
                depth -= 1
            elif x == "," and depth == 0:
                toks = [src.toks[k] for k in range(start, i)]
                eq = next((k for k, tk in enumerate(toks) if tk.text == "="), len(toks))
                head = toks[:eq]
                names = [tk.text for tk in head if tk.kind == IDENT]
                if len(names) > 1:  # an unnamed parameter has only its kind
                    out.append((names[-1], head[0].text in ("typename", "class")))
                start = i + 1
            i += 1
        return out

    def _note_alias(self, i: int, j: int) -> None:
        src = self.src
        if src.t(i) == "using":
            if src.toks[i + 1].kind == IDENT and src.t(i + 2) == "=":
                src.type_names.add(src.t(i + 1))
        else:
            k = j - 1
            while k > i and src.t(k) == "]":
                k = src.match[k] - 1
            if src.toks[k].kind == IDENT:
                src.type_names.add(src.t(k))

    # ---- one declaration ---------------------------------------------------------------------

    def _declaration(self, i: int, scope, in_class: bool, start: int, template_params) -> int:
        """Reads the declaration at tokens[i], records it; returns the index after it."""
        src, t = self.src, self.src.t
        n = len(src)
        is_kernel = False
        j = i
        seen_assign = False
        while j < n:
            x = t(j)
            if x == "[" and t(j + 1) == "[":
                if "kernel" in (tk.text for tk in src.toks[j + 2:src.match[j]]):
                    is_kernel = True
                j = src.match[j] + 1
                continue
            if x == "kernel" and not seen_assign:
                is_kernel = True
            if x in ("struct", "class", "union", "enum") and not seen_assign:
                end = self._class(j, scope)
                if end is not None:
                    return end
            if x == "=":
                seen_assign = True
            if x == "operator" and not seen_assign:
                open_ = j + 3 if t(j + 1) == "(" else j + 1
                while open_ < n and t(open_) != "(":
                    open_ += 1
                name = "operator" + "".join(tk.text for tk in src.toks[j + 1:open_])
                fn_end = self._function(j, open_, scope, in_class, start, template_params,
                                        is_kernel, name=name)
                if fn_end is not None:
                    return fn_end
                j = src.match[open_] + 1
                continue
            if x == "(" and not seen_assign:
                name_index = j - 1
                if src.toks[name_index].kind == IDENT and t(name_index) not in ADDRESS_SPACES:
                    fn_end = self._function(name_index, j, scope, in_class, start, template_params,
                                            is_kernel)
                    if fn_end is not None:
                        return fn_end
                j = src.match[j] + 1
                continue
            if x in ("(", "["):
                j = src.match[j] + 1
                continue
            if x == "{":
                j = src.match[j] + 1
                continue
            if x == ";":
                if not in_class:
                    self.program.variables.append(VariableDecl(i, j, scope, template_params))
                return j + 1
            if x == "}":  # stray close: let the caller's bound stop us
                return j
            j += 1
        return j

    def _class(self, j: int, scope) -> int | None:
        """struct/class/union/enum at tokens[j]: records the type (and the methods of a class
        body); returns the index after the declaration, or None when it is only an elaborated
        type specifier inside a declaration (`struct S s;`)."""
        src, t = self.src, self.src.t
        k = j + 1
        if t(k) in ("class", "struct"):  # enum class
            k += 1
        while t(k) == "[" and t(k + 1) == "[":
            k = src.match[k] + 1
        name = t(k) if src.toks[k].kind == IDENT else ""
        if name:
            src.type_names.add(name)
            k += 1
            if t(k) == "<":  # partial specialisation
                k = src.template_end(k)
        while k < len(src) and t(k) not in ("{", ";", "(", "="):
            if t(k) == "<":
                end = src.template_end(k)
                k = end if end > 0 else k + 1
                continue
            k += 1
        if t(k) == "{":
            close = src.match[k]
            if t(j) != "enum":
                self._scope(k + 1, close, scope + ((name or "<anonymous>"),), in_class=True)
            end = self._statement_end(close + 1)
            return end + 1
        if t(k) == ";" and k == j + 2:
            return k + 1  # forward declaration
        return None

    def _function(self, name_index, open_, scope, in_class, start, template_params, is_kernel,
                  name=None):
        src, t = self.src, self.src.t
        close = src.match[open_]
        k = close + 1
        while True:
            x = t(k)
            if x in _SKIP_QUALIFIERS:
                if x == "noexcept" and t(k + 1) == "(":
                    k = src.match[k + 1] + 1
                else:
                    k += 1
            elif x == "[" and t(k + 1) == "[":
                k = src.match[k] + 1
            elif x == "->":
                k += 1
                end = src.type_end(k, allow_space=True)
                k = end if end > 0 else k
                while t(k) in ("*", "&") or t(k) in CV:
                    k += 1
            else:
                break
        if t(k) == ":" and in_class or t(k) == ":" and t(name_index - 2) == "::":
            # constructor initialiser list: the body follows a ')' or '}'
            while k < len(src) and not (t(k) == "{" and t(k - 1) in (")", "}")):
                if t(k) in ("(", "[") or (t(k) == "{" and src.toks[k - 1].kind == IDENT):
                    k = src.match[k]
                k += 1
        if t(k) == "{":
            body = (k, src.match[k])
            self.program.functions.append(FunctionDef(
                name=name or t(name_index), name_index=name_index, params=(open_, close), body=body,
                start=start, scope=scope, is_kernel=is_kernel, in_class=in_class,
                template_params=template_params))
            return body[1] + 1
        if t(k) == ";" or t(k) == "=" and t(k + 1) in ("0", "default", "delete"):
            return self._statement_end(k) + 1  # prototype
        return None


def scan_declarations(src: Source) -> Program:
    return DeclarationScanner(src).run()
