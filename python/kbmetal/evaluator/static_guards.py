"""Guards that read the candidate's source before it runs.

They see what a run may never trigger: a fallback to PyTorch that only fires at held-out sizes, a
patch that only applies under a timer. Each finding names the line. The runtime guards (op
recording, the fingerprint, thread checks) remain the ones that catch what actually happened;
these add the intent.

- monkey-patching: assigning to, deleting or `setattr`-ing anything under torch, time, metalrt,
  kbmetal, builtins or sys (through any alias: `import torch.nn.functional as F; F.conv2d = ...`)
  -> fail.
- harness access: importing kbmetal -> fail; frame and heap introspection (`sys._getframe`,
  `inspect.stack`, `gc.get_objects`) and `ctypes` -> flag.
- try/except fallback: an `except` (or `else`) block that calls PyTorch compute (torch.*, F.*,
  tensor methods such as `.matmul`, the `@` operator), the reference `Model`, or
  `super().forward` -> fail.
- lower precision: TF32 and reduced-precision switches -> fail; half/bfloat16 casts in a float32
  problem -> info (the tolerance rule decides; this explains why).
- side threads, processes and streams: threading, multiprocessing, subprocess, os.fork,
  CUDA streams -> flag (the runtime check fails a thread still running after forward).
- hard-coded sizes: integer literals equal to the problem's size constants -> flag when the problem
  has no held-out preset to catch them at run time, else info.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from ..verdict import GuardFinding

_PROTECTED = ("torch", "time", "metalrt", "kbmetal", "builtins", "sys", "importlib")
_PRECISION_SWITCHES = (
    "allow_tf32",
    "allow_fp16_reduced_precision_reduction",
    "allow_bf16_reduced_precision_reduction",
    "set_float32_matmul_precision",
)
_THREAD_MODULES = ("threading", "_thread", "concurrent", "multiprocessing", "subprocess", "asyncio")
_INTROSPECTION = {
    "sys._getframe": "reads the harness's stack frames",
    "inspect.stack": "reads the harness's stack frames",
    "inspect.currentframe": "reads the harness's stack frames",
    "gc.get_objects": "searches the heap for the harness's objects",
    "gc.get_referrers": "searches the heap for the harness's objects",
}
# torch functions that allocate or describe, never compute: harmless in an except block
_TORCH_NON_COMPUTE = {
    "empty", "empty_like", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
    "tensor", "as_tensor", "device", "dtype", "Size", "is_tensor", "no_grad", "inference_mode",
    "get_default_dtype", "manual_seed", "cuda.is_available", "backends.mps.is_available",
}  # fmt: skip
_TENSOR_COMPUTE_METHODS = {
    "matmul", "mm", "bmm", "addmm", "softmax", "log_softmax", "relu", "gelu", "sigmoid", "tanh",
    "exp", "log", "sum", "mean", "max", "min", "cumsum", "conv2d", "norm", "var", "std",
    "argmax", "argmin", "prod", "sqrt", "rsqrt", "clamp", "abs", "pow", "logsumexp",
}  # fmt: skip
_HALF_NAMES = ("float16", "half", "bfloat16")
_INT_TOKEN = re.compile(r"(?<![\w.])(\d+)(?![\w.])")
_COMMON_INTS = {2**k for k in range(11)}  # 1..1024: thread counts, tile sizes, vector widths


class _Aliases(ast.NodeVisitor):
    """Local name -> the module path it stands for, from every import in the file."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.names[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            for alias in node.names:
                self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`F.conv2d` -> "torch.nn.functional.conv2d" when F is that module; None when not a chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id, node.id if node.id == "__builtins__" else None)
    if root is None:
        return None
    if root == "__builtins__":
        root = "builtins"
    return ".".join([root, *reversed(parts)])


def _protected(path: str | None) -> bool:
    return path is not None and path.split(".")[0] in _PROTECTED


def _finding(guard: str, severity: str, message: str, node: ast.AST) -> GuardFinding:
    line = getattr(node, "lineno", None)
    where = f" (line {line})" if line else ""
    return GuardFinding(guard, severity, message + where, {"line": line} if line else {})


def _calls_in(nodes: Iterable[ast.AST]) -> Iterable[ast.AST]:
    for top in nodes:
        yield from ast.walk(top)


def _fallback_reason(block: list[ast.stmt], aliases: dict[str, str]) -> tuple[str, ast.AST] | None:
    for node in _calls_in(block):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            return "the @ operator", node
        if isinstance(node, ast.Name) and node.id == "Model":
            return "the reference Model", node
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        path = _dotted(func, aliases)
        if path and path.startswith("torch."):
            short = path.removeprefix("torch.")
            if short not in _TORCH_NON_COMPUTE and not short.startswith(("cuda.", "backends.")):
                return path, node
        if isinstance(func, ast.Attribute):
            if (
                func.attr == "forward"
                and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "super"
            ):
                return "super().forward", node
            if func.attr in _TENSOR_COMPUTE_METHODS and path is None:
                return f".{func.attr}()", node
    return None


def scan(
    source: str,
    *,
    dtype: str = "float32",
    size_values: dict[str, object] | None = None,
    has_heldout: bool = True,
    filename: str = "<candidate>",
) -> list[GuardFinding]:
    """Findings for one candidate's source. Raises SyntaxError when it does not parse."""
    tree = ast.parse(source, filename=filename)
    collector = _Aliases()
    collector.visit(tree)
    aliases = collector.names
    findings: list[GuardFinding] = []

    for node in ast.walk(tree):
        # imports
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                root = module.split(".")[0]
                if root == "kbmetal":
                    findings.append(
                        _finding("harness-access", "fail", f"imports the harness ({module})", node)
                    )
                elif root == "ctypes":
                    findings.append(
                        _finding("harness-access", "flag", "imports ctypes (raw memory access)", node)
                    )
                elif root in _THREAD_MODULES:
                    findings.append(
                        _finding("side-work", "flag", f"imports {module}: work off the timed thread", node)
                    )
        # assignments and deletions under protected namespaces
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript):
                path = _dotted(target.value, aliases)
                if path == "sys.modules":
                    findings.append(
                        _finding("monkey-patch", "fail", "replaces an entry of sys.modules", node)
                    )
                continue
            if not isinstance(target, ast.Attribute):
                continue
            path = _dotted(target, aliases)
            if not _protected(path):
                continue
            if any(switch in path for switch in _PRECISION_SWITCHES):
                findings.append(
                    _finding("precision", "fail", f"sets {path}: lower precision than asked", node)
                )
            elif path.startswith("torch.backends."):
                findings.append(_finding("monkey-patch", "info", f"sets {path}", node))
            else:
                findings.append(_finding("monkey-patch", "fail", f"patches {path}", node))
        if isinstance(node, ast.Call):
            path = _dotted(node.func, aliases)
            if path in ("builtins.setattr", "setattr") or (
                isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr")
            ):
                if node.args and _protected(_dotted(node.args[0], aliases)):
                    target = _dotted(node.args[0], aliases)
                    if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                        target = f"{target}.{node.args[1].value}"
                    findings.append(_finding("monkey-patch", "fail", f"patches {target} (setattr)", node))
            if path and any(path.endswith(switch) for switch in _PRECISION_SWITCHES):
                findings.append(
                    _finding("precision", "fail", f"calls {path}: lower precision than asked", node)
                )
            if path in _INTROSPECTION:
                findings.append(_finding("harness-access", "flag", f"{path}() {_INTROSPECTION[path]}", node))
            if path in ("os.fork", "os.system", "os.popen", "os.spawnl", "os.posix_spawn"):
                findings.append(_finding("side-work", "flag", f"calls {path}: work in another process", node))
            if path and (path.endswith(".Stream") or path.endswith(".stream")) and "cuda" in path:
                findings.append(_finding("side-work", "flag", f"uses {path}: work on another stream", node))
            if (
                dtype == "float32"
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("half", "bfloat16")
                and not node.args
            ):
                findings.append(
                    _finding("precision", "info", f".{node.func.attr}() in a float32 problem", node)
                )
        if isinstance(node, ast.Attribute) and dtype == "float32":
            path = _dotted(node, aliases)
            if path in {f"torch.{name}" for name in _HALF_NAMES}:
                findings.append(_finding("precision", "info", f"uses {path} in a float32 problem", node))
        if isinstance(node, ast.Try):
            for block in [*(h.body for h in node.handlers), node.orelse]:
                hit = _fallback_reason(block, aliases)
                if hit:
                    what, where = hit
                    findings.append(
                        _finding(
                            "fallback",
                            "fail",
                            f"a try/except falls back to PyTorch: its handler runs {what}",
                            where,
                        )
                    )
                    break

    findings.extend(_hard_coded_sizes(tree, size_values or {}, has_heldout))
    return _dedupe(findings)


def _size_ints(values: dict[str, object]) -> dict[int, str]:
    found: dict[int, str] = {}

    def walk(name: str, value: object) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            found.setdefault(value, name)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(name, item)

    for name, value in values.items():
        walk(name, value)
    return {v: n for v, n in found.items() if v > 16 and v not in _COMMON_INTS}


def _hard_coded_sizes(tree: ast.AST, size_values: dict[str, object], has_heldout: bool) -> list[GuardFinding]:
    sizes = _size_ints(size_values)
    if not sizes:
        return []
    hits: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in sizes:
            hits.setdefault(node.value, node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            # sizes baked into a kernel's source text
            for token in _int_tokens(node.value):
                if token in sizes:
                    hits.setdefault(token, node)
    severity = "info" if has_heldout else "flag"
    return [
        _finding(
            "hard-coded-size",
            severity,
            f"the literal {value} equals the problem's size {sizes[value]}",
            node,
        )
        for value, node in sorted(hits.items())
    ]


def _int_tokens(text: str) -> set[int]:
    return {int(m) for m in _INT_TOKEN.findall(text)}


def _dedupe(findings: list[GuardFinding]) -> list[GuardFinding]:
    seen, unique = set(), []
    for f in findings:
        key = (f.guard, f.severity, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
