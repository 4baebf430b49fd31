"""A C++ tokenizer for preprocessed MSL, and the bracket structure the other passes walk.

Tokens keep their byte offsets, so the rewriter can put the source back together with the
original whitespace (and so the original line structure) between them: every output line comes
from the same input line, which keeps clang's line numbers pointing into the user's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENT, NUMBER, STRING, CHAR, PUNCT, DIRECTIVE = "ident", "number", "string", "char", "punct", "directive"

_PUNCTUATORS = sorted(
    """... <<= >>= ->* :: -> ++ -- << >> <= >= == != && || += -= *= /= %= &= |= ^= ## .*
    { } [ ] ( ) ; : , . ? ~ ! + - * / % ^ & | = < > #""".split(),
    key=len,
    reverse=True,
)

_TOKEN_RE = re.compile(
    r"""
    (?P<directive>^[ \t]*\#[^\n]*)
  | (?P<ws>[ \t\r\f\v]+|\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>\.?\d(?:[eEpP][+-]|['\w.])*)
  | (?P<string>(?:u8|u|U|L)?"(?:\\.|[^"\\\n])*")
  | (?P<char>(?:u8|u|U|L)?'(?:\\.|[^'\\\n])+')
  | (?P<punct>"""
    + "|".join(re.escape(p) for p in _PUNCTUATORS)
    + r""")
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    start: int  # byte offset of the first character in the source
    end: int
    line: int  # 1-based
    col: int  # 1-based


class TokenizeError(Exception):
    """Malformed source: an unknown character, an unterminated literal or comment."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.line, self.col = line, col


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, line_start, n = 0, 1, 0, len(source)
    match = _TOKEN_RE.match
    while pos < n:
        m = match(source, pos)
        if m is None:
            ch = source[pos]
            what = "an unterminated comment" if source.startswith("/*", pos) else (
                "an unterminated literal" if ch in "'\"" else f"an unexpected character {ch!r}")
            raise TokenizeError(f"{what}", line, pos - line_start + 1)
        kind, text, end = m.lastgroup, m.group(), m.end()
        if kind not in ("ws", "comment"):
            tokens.append(Token(kind, text, pos, end, line, pos - line_start + 1))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = pos + text.rindex("\n") + 1
        pos = end
    return tokens


def match_brackets(tokens: list[Token]) -> list[int]:
    """match[i] is the index of the bracket that closes (or opens) tokens[i]; -1 elsewhere."""
    match = [-1] * len(tokens)
    stack: list[int] = []
    for i, tok in enumerate(tokens):
        if tok.kind != PUNCT:
            continue
        if tok.text in _OPENERS:
            stack.append(i)
        elif tok.text in _CLOSERS:
            if not stack or tokens[stack[-1]].text != _CLOSERS[tok.text]:
                raise TokenizeError(f"'{tok.text}' does not close anything", tok.line, tok.col)
            j = stack.pop()
            match[i], match[j] = j, i
    if stack:
        tok = tokens[stack[-1]]
        raise TokenizeError(f"'{tok.text}' is never closed", tok.line, tok.col)
    return match
