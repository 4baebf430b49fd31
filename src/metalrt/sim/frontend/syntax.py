"""Reading C++ structure off the token list: types, template argument lists, unary expressions.

The front end does not build a syntax tree. It needs to know a handful of shapes (an address
space followed by a type and `*`, a C-style cast and its operand, a declaration's declarators),
and each helper here recognises one of them from a token index and says where it ends.
"""

from __future__ import annotations

import re

from .tokens import IDENT, NUMBER, PUNCT, STRING, CHAR, Token, match_brackets, tokenize

ADDRESS_SPACES = ("device", "constant", "threadgroup", "thread")
CV = ("const", "volatile")

SCALAR_TYPES = frozenset(
    """bool char uchar short ushort int uint long ulong half bfloat float void size_t ptrdiff_t
    int8_t uint8_t int16_t uint16_t int32_t uint32_t int64_t uint64_t float16_t bfloat16_t
    float32_t unsigned signed double""".split()
)
_VECTOR_RE = re.compile(
    r"(?:packed_)?(?:bool|char|uchar|short|ushort|int|uint|long|ulong|half|bfloat|float)[234]"
    r"|simd_(?:float|half|int|uint)[234]"
)
OTHER_TYPES = frozenset(
    """atomic_int atomic_uint atomic_bool atomic_ulong atomic_float atomic simdgroup_matrix
    simdgroup_float8x8 simdgroup_half8x8 simdgroup_bfloat8x8 simd_vote quad_vote vec
    memory_order mem_flags""".split()
)

KEYWORDS = frozenset(
    """alignas alignof asm auto break case catch class const const_cast constexpr continue
    decltype default delete do dynamic_cast else enum explicit export extern false for friend
    goto if inline mutable namespace new noexcept nullptr operator private protected public
    register reinterpret_cast return sizeof static static_assert static_cast struct switch
    template this thread_local throw true try typedef typeid typename union using virtual
    volatile while kernel""".split()
)


def is_vector_type(name: str) -> bool:
    return _VECTOR_RE.fullmatch(name) is not None


def is_builtin_type(name: str) -> bool:
    return name in SCALAR_TYPES or name in OTHER_TYPES or is_vector_type(name)


class Source:
    """A token list with bracket matching and the small parsers the passes share."""

    def __init__(self, text: str):
        self.text = text
        self.toks: list[Token] = tokenize(text)
        self.match = match_brackets(self.toks)
        # Names the source declares as types (structs, typedefs, template type parameters);
        # filled in by the declaration scanner.
        self.type_names: set[str] = set()

    def __len__(self) -> int:
        return len(self.toks)

    def t(self, i: int) -> str:
        return self.toks[i].text if 0 <= i < len(self.toks) else ""

    def is_type_name(self, name: str) -> bool:
        return is_builtin_type(name) or name in self.type_names

    # ---- template argument lists -------------------------------------------------------------

    def template_end(self, i: int) -> int:
        """tokens[i] is '<' opening a template argument list: the index after its '>'.

        Returns -1 when no '>' closes it before a ';', '{' or an unbalanced ')' (so it was a
        less-than). A '>>' closes two levels.
        """
        depth, j, n = 0, i, len(self.toks)
        while j < n:
            tok = self.toks[j]
            if tok.kind == PUNCT:
                x = tok.text
                if x == "<":
                    depth += 1
                elif x == ">":
                    depth -= 1
                elif x == ">>":
                    depth -= 2
                elif x in ("(", "["):
                    j = self.match[j]
                elif x in (";", "{", "}", ")", "]", "&&", "||"):
                    return -1
                if depth <= 0:
                    return j + 1 if depth == 0 else -1
            j += 1
        return -1

    # ---- types ---------------------------------------------------------------------------------

    def type_end(self, i: int, allow_space: bool = False) -> int:
        """The index after a type written from tokens[i] (cv-qualifiers, a possibly qualified
        and templated name, multi-word builtins like `unsigned int`), or -1 if none starts
        there. With allow_space, address-space keywords may appear among the qualifiers."""
        j, n, seen_name = i, len(self.toks), False
        quals = CV + ADDRESS_SPACES if allow_space else CV
        while j < n:
            x = self.t(j)
            if x in quals:
                j += 1
                continue
            if seen_name:
                break
            if x in ("typename", "struct", "class", "enum", "union"):
                j += 1
                continue
            if x in ("unsigned", "signed", "long", "short") and self.toks[j].kind == IDENT:
                # unsigned int, long long, short int, unsigned ...
                while self.t(j) in ("unsigned", "signed", "long", "short", "int", "char"):
                    j += 1
                seen_name = True
                continue
            if x == "::" or self.toks[j].kind == IDENT and x not in KEYWORDS or x in ("decltype",):
                if x == "decltype":
                    if self.t(j + 1) != "(":
                        return -1
                    j = self.match[j + 1] + 1
                    seen_name = True
                    continue
                if x == "::":
                    j += 1
                    if self.toks[j].kind != IDENT:
                        return -1
                j += 1
                if self.t(j) == "<":
                    end = self.template_end(j)
                    if end < 0:
                        return -1
                    j = end
                while self.t(j) == "::" and j + 1 < n and self.toks[j + 1].kind == IDENT:
                    j += 2
                    if self.t(j) == "<":
                        end = self.template_end(j)
                        if end < 0:
                            return -1
                        j = end
                seen_name = True
                continue
            break
        return j if seen_name else -1

    def text_of(self, i: int, j: int) -> str:
        """The source text of tokens[i:j], one space between tokens."""
        return " ".join(tok.text for tok in self.toks[i:j])

    # ---- expressions ---------------------------------------------------------------------------

    def unary_end(self, i: int) -> int:
        """The index after the unary expression (the operand of a cast) starting at tokens[i]."""
        n = len(self.toks)
        j = i
        while j < n and self.t(j) in ("-", "+", "!", "~", "*", "&", "++", "--"):
            j += 1
        if j >= n:
            return j
        x, kind = self.t(j), self.toks[j].kind
        if x == "(":
            if self.is_cast(j):
                return self.unary_end(self.match[j] + 1)  # a nested C-style cast
            j = self.match[j] + 1
        elif x in ("sizeof", "alignof"):
            j += 1
            if self.t(j) == "(":
                return self.match[j] + 1
            return self.unary_end(j)
        elif kind in (IDENT, NUMBER, STRING, CHAR) or x == "::":
            if x == "::":
                j += 1
            j += 1
            while self.t(j) == "::" and j + 1 < n:
                j += 2
            if self.t(j) == "<" and self.is_type_name(self.t(j - 1)):
                end = self.template_end(j)
                if end > 0:
                    j = end
        else:
            return j
        while j < n:
            x = self.t(j)
            if x in ("(", "["):
                j = self.match[j] + 1
            elif x in (".", "->") and j + 1 < n:
                j += 2
            elif x in ("++", "--"):
                j += 1
            else:
                break
        return j

    def is_cast(self, i: int) -> bool:
        """tokens[i] is '(': whether it opens a C-style cast `(type)`, `(device T*)`..."""
        close = self.match[i]
        end = self.type_end(i + 1, allow_space=True)
        if end < 0:
            return False
        names = [tok.text for tok in self.toks[i + 1:end] if tok.kind == IDENT]
        if not any(self.is_type_name(x) or x in ADDRESS_SPACES for x in names):
            return False
        j = end
        while self.t(j) in ("*", "&") or self.t(j) in CV or self.t(j) in ADDRESS_SPACES:
            j += 1
        return j == close


__all__ = [
    "ADDRESS_SPACES",
    "CV",
    "KEYWORDS",
    "SCALAR_TYPES",
    "Source",
    "is_builtin_type",
    "is_vector_type",
    "match_brackets",
]
