"""Who calls whom, and what each kernel uses.

The graph is by name: a call to `f` reaches every function the source defines as `f` (all
overloads, methods included). That over-approximates, which is what the uses need:
  - kernel flags (barriers, SIMD-group functions, threadgroup memory, atomics) must never miss a
    use, or the executor would run a barrier kernel as a plain loop;
  - recursion found by name is only a suspect (`gelu(float4)` calling `gelu(float)` is not
    recursion); the driver confirms a suspect on the compiled call graph before rejecting.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decls import FunctionDef, Program
from .syntax import Source
from .tokens import IDENT

_NOT_CALLS = frozenset(
    """if for while switch return sizeof alignof decltype static_cast reinterpret_cast
    const_cast dynamic_cast static_assert catch noexcept alignas""".split()
)
_SIMD_TYPES_PREFIXES = ("simd_float", "simd_half", "simd_int", "simd_uint")


@dataclass(frozen=True)
class Uses:
    barrier: bool = False
    simd: bool = False
    threadgroup: bool = False
    atomics: bool = False
    device_atomics: bool = False

    def __or__(self, other: "Uses") -> "Uses":
        return Uses(*(a or b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[bool, ...]:
        return (self.barrier, self.simd, self.threadgroup, self.atomics, self.device_atomics)


def _is_atomic_name(x: str) -> bool:
    return x.startswith("atomic_") or x == "atomic"


def _scan_uses(src: Source, first: int, last: int) -> Uses:
    barrier = simd = threadgroup = atomics = device_atomics = False
    toks = src.toks
    for k in range(first, last + 1):
        tok = toks[k]
        if tok.kind != IDENT:
            continue
        x = tok.text
        if x == "threadgroup_barrier":
            barrier = True
        elif x.startswith(("simd_", "quad_", "simdgroup_")) and not x.startswith(_SIMD_TYPES_PREFIXES):
            # a call (simd_sum(...), simdgroup_load<...>(...)) or a SIMD-group matrix, not a
            # variable such as `uint simd_lane [[thread_index_in_simdgroup]]`
            nxt = toks[k + 1].text if k + 1 < len(toks) else ""
            if nxt in ("(", "<") or x.startswith("simdgroup_float") or x.startswith(
                    ("simdgroup_half", "simdgroup_bfloat", "simdgroup_matrix")):
                simd = True
        elif x == "threadgroup":
            threadgroup = True
        elif _is_atomic_name(x):
            atomics = True
        elif x == "device":
            # device atomic_uint*, device atomic<float>* ...
            end = src.type_end(k, allow_space=True)
            if end > 0 and any(_is_atomic_name(toks[m].text) for m in range(k, end)):
                device_atomics = True
    return Uses(barrier, simd, threadgroup, atomics, device_atomics)


class CallGraph:
    def __init__(self, src: Source, program: Program):
        self.src = src
        self.program = program
        self.by_name: dict[str, list[int]] = {}
        for index, fn in enumerate(program.functions):
            self.by_name.setdefault(fn.name, []).append(index)
        self.callees: list[set[str]] = [self._callees(fn) for fn in program.functions]
        self.own_uses: list[Uses] = [
            _scan_uses(src, fn.params[0], fn.body[1]) for fn in program.functions
        ]

    def _callees(self, fn: FunctionDef) -> set[str]:
        src, t = self.src, self.src.t
        out: set[str] = set()
        open_, close = fn.body
        k = open_
        while k < close:
            tok = src.toks[k]
            if tok.kind == IDENT and tok.text in self.by_name and tok.text not in _NOT_CALLS:
                nxt = k + 1
                if t(nxt) == "<":
                    end = src.template_end(nxt)
                    nxt = end if end > 0 else nxt
                if t(nxt) == "(":
                    out.add(tok.text)
            k += 1
        return out

    def reachable(self, root: int) -> set[int]:
        seen, stack = {root}, [root]
        while stack:
            for name in self.callees[stack.pop()]:
                for j in self.by_name.get(name, ()):
                    if j not in seen:
                        seen.add(j)
                        stack.append(j)
        return seen

    def uses(self, root: int) -> Uses:
        total = Uses()
        for j in self.reachable(root):
            total = total | self.own_uses[j]
        return total

    def recursion_suspects(self) -> list[list[str]]:
        """Cycles in the by-name graph, each as the names along it (first name repeated last)."""
        names = sorted(self.by_name)
        edges = {name: set() for name in names}
        for index, fn in enumerate(self.program.functions):
            edges[fn.name] |= self.callees[index]
        cycles, seen_sets = [], set()
        # Tarjan's strongly connected components over the names.
        index_of, low, on_stack, stack, counter = {}, {}, set(), [], [0]

        def visit(v: str) -> None:
            index_of[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on_stack.add(v)
            for w in sorted(edges[v]):
                if w not in index_of:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index_of[w])
            if low[v] == index_of[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                key = frozenset(component)
                if (len(component) > 1 or v in edges[v]) and key not in seen_sets:
                    seen_sets.add(key)
                    cycles.append(self._cycle_path(sorted(component), edges))

        for name in names:
            if name not in index_of:
                visit(name)
        return cycles

    @staticmethod
    def _cycle_path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
        start = component[0]
        if start in edges[start]:
            return [start, start]
        members = set(component)
        path, seen = [start], {start}
        while True:
            nxt = next((w for w in sorted(edges[path[-1]]) if w in members and w not in seen), None)
            if nxt is None:
                back = next((w for w in sorted(edges[path[-1]]) if w == start), start)
                return path + [back]
            path.append(nxt)
            seen.add(nxt)
