"""Judging candidates: the worker process, guards, correctness, timing, baselines.

    from kbmetal.evaluator import evaluate, Judge, EvalOptions
    verdict = evaluate("L1-019", source, backend="sim")

`Judge` keeps a pre-started worker between candidates; `evaluate` is the one-shot form. The
names load lazily, so that light modules of this package (sandbox, channel) import without torch.

Who does what. The judge (judge.py) never imports the candidate: it computes the reference
(reference.py), writes each trial's inputs to files, asks the worker (worker.py, a fresh
interpreter per candidate, session.py) to run them, reads the outputs back (tensorio.py: raw
bytes, never pickle) and compares them (tolerance.py). Only the judge's verdict counts; only
the process that started the run writes the store.

The guards, and how each is enforced (each has a cheating candidate in tests/kbmetal):

| guard | how |
| --- | --- |
| no-kernel | metalrt's native launch counter (`metalrt._C.launch_count`, a reference taken before the candidate loads) must move in every forward and in the timed runs |
| torch-ops | a TorchDispatchMode records every ATen op of forward; in strict mode (default) a heavy op (matmul, conv, softmax, norm, reduction, scan, pool, attention, loss, rnn, sort) or any compute op the reference itself runs fails; partial mode reports them and the share of time in kernels |
| stale memory | fresh allocations are filled with NaN during trials (torch's deterministic fill); the reference never runs in the candidate's process, so no reference output is ever there to be found |
| caching | trial 2 rewrites the same input tensors in place, trial 3 does so without moving their version counter; the timed runs refill inputs with new values every run and the output after them is checked |
| mutated-input | the inputs after forward are read back and compared bit for bit with what was sent |
| output | structure, shape, dtype and device must match; an output sharing storage with an input fails |
| side-work | Python threads not present before the candidate loaded, OS threads started in forward and still alive after it, and child processes fail; the source scan flags threading/multiprocessing/streams; CUDA timing charges work left on other streams |
| monkey-patch | a fingerprint of torch, torch.Tensor, torch.nn.functional, nn.Module, time, metalrt and the harness's own modules (attribute identities, code objects, sys.modules) checked after import, every trial and timing; the source scan fails assignments, setattr and deletions under those names |
| precision | TF32/reduced-precision/default-dtype switches are part of the fingerprint and the source scan; the tolerance rule fails results computed in a lower precision (half for float32 is 50x past the floor) |
| fallback | the source scan fails a try/except (or else) block that runs PyTorch compute, `Model`, `super().forward` or `@` |
| hard-coded shapes | a trial at the problem's `heldout` sizes with a fresh ModelNew; without such a preset, integer literals equal to size constants are flagged |
| timer | the timings reported from inside must fit the judge's wall-clock envelope around the timing request |
| timing-output | after the timed runs the inputs are restored and the output checked against the reference |
| speed-of-light | a time below the roofline bound (compulsory bytes over the device's peak bandwidth) is flagged for a human |
| harness-access | importing kbmetal fails; frame/heap introspection and ctypes are flagged; writing to the harness's channel ends the candidate |
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Judge": "judge",
    "evaluate": "judge",
    "EvalOptions": "options",
    "DeviceTiming": "timing",
    "register_timing": "timing",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
