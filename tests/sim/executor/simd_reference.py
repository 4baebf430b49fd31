"""A reference model of MSL's SIMD-group and quad-group functions with active-lane semantics,
for checking the executor against: numpy in, the expected outputs (or the expected error) out.

Threads are numbered by their linear index in the threadgroup; SIMD-group s holds threads
32*s .. 32*s+31, quad-group q threads 4*q .. 4*q+3. A lane is active when it calls the function
(`active[i]`); the last SIMD-group of a threadgroup whose size is not a multiple of 32 has fewer
lanes, and lanes it lacks count as inactive.
"""

from __future__ import annotations

import functools
import operator

import numpy as np


class ReadsInactiveLane(Exception):
    """The function makes a lane read an inactive (or missing) lane: the executor must report it."""


class NonUniformArgument(Exception):
    """A lane index / delta / mask that must be uniform differs: the executor must report it."""


def segments(threads: int, group_size: int, width: int):
    """Global thread indices of each SIMD-group (width 32) or quad-group (width 4), 1-D launches."""
    for start in range(0, threads, group_size):
        count = min(group_size, threads - start)
        for s in range(0, count, width):
            yield list(range(start + s, start + min(s + width, count))), width


REDUCTIONS = {
    "sum": operator.add,
    "product": operator.mul,
    "min": np.minimum,
    "max": np.maximum,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
}


def reduce_op(kind, values, active, threads, group_size, width):
    out = {}
    for seg, _ in segments(threads, group_size, width):
        act = [i for i in seg if active[i]]
        if act:
            total = functools.reduce(REDUCTIONS[kind], [values[i] for i in act])
            out.update({i: total for i in act})
    return out


def scan_op(kind, inclusive, values, active, threads, group_size, width):
    identity = {"sum": 0, "product": 1}[kind]
    combine = REDUCTIONS[kind]
    out = {}
    for seg, _ in segments(threads, group_size, width):
        acc = values.dtype.type(identity)
        for i in seg:
            if not active[i]:
                continue
            if inclusive:
                acc = combine(acc, values[i])
                out[i] = acc
            else:
                out[i] = acc
                acc = combine(acc, values[i])
    return out


UNIFORM = {"broadcast", "up", "down", "rotate_up", "rotate_down", "xor", "fill_up", "fill_down"}


def permute_op(kind, values, fill, active, args, modulo, threads, group_size, width):
    """args[i]: the lane index / delta / mask lane i passes; modulo[i] for the fill variants."""
    out = {}
    for seg, w in segments(threads, group_size, width):
        act = [j for j, i in enumerate(seg) if active[i]]
        if not act:
            continue
        if kind in UNIFORM and len({int(args[seg[j]]) for j in act}) > 1:
            raise NonUniformArgument
        first = act[0]
        for j in act:
            i = seg[j]
            a, m = int(args[i]), int(modulo[i]) or w
            from_fill, own = False, False
            if kind in ("shuffle", "broadcast"):
                src = a
            elif kind == "broadcast_first":
                src = first
            elif kind == "up":
                own, src = j < a, j - a
            elif kind == "down":
                own, src = j + a >= w, j + a
            elif kind == "rotate_up":
                src = (j - a) % w
            elif kind == "rotate_down":
                src = (j + a) % w
            elif kind == "xor":
                src = j ^ a
            elif kind in ("fill_up", "fill_down"):
                base, k = j - j % m, j % m
                if kind == "fill_up":
                    from_fill = k < a
                    src = base + (k - a + m if from_fill else k - a)
                else:
                    from_fill = k + a >= m
                    src = base + (k + a - m if from_fill else k + a)
            else:
                raise ValueError(kind)
            if own:
                out[i] = values[i]
                continue
            if src < 0 or src >= len(seg) or not active[seg[src]]:
                raise ReadsInactiveLane
            out[i] = (fill if from_fill else values)[seg[src]]
    return out


def vote_op(kind, values, active, threads, group_size, width):
    out = {}
    for seg, _ in segments(threads, group_size, width):
        yes = sum(1 << j for j, i in enumerate(seg) if active[i] and values[i])
        on = sum(1 << j for j, i in enumerate(seg) if active[i])
        for j, i in enumerate(seg):
            if not active[i]:
                continue
            out[i] = {
                "ballot": yes,
                "active_mask": on,
                "all": int(yes == on),
                "any": int(yes != 0),
                "is_first": int((on & -on) == 1 << j),
            }[kind]
    return out
