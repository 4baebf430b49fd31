"""The host C++ compiler that builds translated MSL into kernel libraries.

Which compiler: $METALRT_CXX if set (a command line, e.g. "clang++-19" or
"python -m ziglang c++"); else the newest clang++-NN (NN >= 17) or clang++ >= 17 on PATH; else
the clang inside the `ziglang` package. Older clang is refused: Debian's plain clang is 14,
which computes _Float16 arithmetic in float without saying so, and the sim would then certify
half kernels that round differently on the GPU. The version is checked once per process.

How it compiles (and why):
  -std=c++17 -O2                      the shim needs C++17 (if constexpr, fold expressions)
  -ffp-contract=off                   every float operation rounds on its own, so results do not
                                      depend on which compiler fused what. Metal's default (fast
                                      math) may fuse a*b+c; tolerances cover that one rounding.
  -Xclang -ffloat16-excess-precision=none   half (and bfloat) arithmetic rounds after each
  -Xclang -fbfloat16-excess-precision=none  operation, as the GPU's 16-bit ALUs do
  -flax-vector-conversions=none       no implicit bit casts between vectors of equal size
  -fno-strict-aliasing                kernels reinterpret buffers ((device float4*)p) freely
  -fwrapv                             signed integer overflow wraps, as GPU integer units do
                                      (for C++ it is undefined, and -O2 would exploit that)
  -fsanitize=array-bounds,integer-divide-by-zero,shift-exponent -fno-sanitize-recover=all
                                      thread/threadgroup array indices, integer division and
                                      shift amounts are checked (in the user's code: the shim
                                      headers are on include/sanitize_ignore.txt); the shim's
                                      handlers end the launch with a LaunchError naming the line
  -fvisibility=hidden                 a library exports its two ABI functions only
  -fstack-clash-protection            a frame larger than a fiber stack's guard page probes it
                                      page by page, so an overflow faults on the guard instead of
                                      writing into the neighbouring fiber's stack
  -mf16c -mavx2 -mfma (x86-64 CPUs that have them)  half conversions in hardware; exact results
  -Wl,-z,defs                         an undefined symbol is a build error, not a dlopen failure
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

MIN_CLANG = 17
INCLUDE_DIR = Path(__file__).resolve().parent / "include"

_INSTALL_HINT = (
    "The MSL simulator compiles kernels with clang 17 or newer. Install one with "
    "`apt-get install clang-19` (Debian/Ubuntu), or `pip install ziglang` (a clang inside a "
    "Python package), or point METALRT_CXX at a clang++ >= 17."
)


class CompilerNotFound(Exception):
    """No usable host compiler; the message says what was tried and how to install one."""


@dataclass(frozen=True)
class HostCompiler:
    command: tuple[str, ...]  # argv prefix
    version: tuple[int, int, int]
    kind: str  # "clang" | "zig"

    @property
    def id(self) -> str:
        """Enters every cache key: a different compiler never reuses another's libraries."""
        return f"{self.kind}-{'.'.join(map(str, self.version))}:{' '.join(self.command)}"

    def base_flags(self) -> list[str]:
        flags = [
            "-std=c++17", "-O2", "-fPIC", "-fno-exceptions", "-fno-rtti", "-fno-math-errno",
            "-fno-threadsafe-statics", "-fno-strict-aliasing", "-fvisibility=hidden", "-fstack-clash-protection",
            "-ffp-contract=off", "-Xclang", "-ffloat16-excess-precision=none",
            "-Xclang", "-fbfloat16-excess-precision=none", "-flax-vector-conversions=none",
            "-fwrapv", "-fsanitize=array-bounds,integer-divide-by-zero,shift-exponent",
            "-fno-sanitize-recover=all", f"-fsanitize-ignorelist={INCLUDE_DIR / 'sanitize_ignore.txt'}",
            "-Werror=vla-cxx-extension" if self.version >= (18, 0, 0) else "-Werror=vla-extension",
            "-Wno-unknown-pragmas", "-Wno-unused-value", "-Wno-unused-command-line-argument",
            "-fno-caret-diagnostics", "-fno-color-diagnostics", "-fdiagnostics-absolute-paths",
            "-ferror-limit=50",
        ]
        flags += _cpu_flags()
        if self.kind == "zig":
            flags += ["-target", f"{_zig_arch()}-linux-gnu", "-nostdlib++"]
        return flags


def _zig_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def _cpu_flags() -> list[str]:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    have = set(m.group(1).split()) if m else set()
    return [f"-m{name}" for name in ("f16c", "avx2", "fma") if name in have]


def _stamp(command: tuple[str, ...]) -> str | None:
    """What identifies the compiler binary on disk (path, size, modification time), so that its
    version, once asked, need not be asked again until the binary changes."""
    try:
        if len(command) > 2 and command[1:3] == ("-m", "ziglang"):
            import importlib.util

            spec = importlib.util.find_spec("ziglang")
            target = Path(spec.origin).parent / "zig" if spec and spec.origin else None
        else:
            target = Path(shutil.which(command[0]) or command[0]).resolve()
        st = target.stat()
    except (OSError, ImportError, ValueError, AttributeError):
        return None
    return f"{target}:{st.st_size}:{st.st_mtime_ns}"


def _versions_file() -> Path | None:
    try:
        from ..cache import cache_dir

        return cache_dir() / "sim" / "compilers.json"
    except OSError:
        return None


def _version_of(command: tuple[str, ...]) -> tuple[int, int, int] | None:
    """clang's version, asked with --version once per binary (remembered in the cache dir: a
    new process then skips the ~50 ms of running the compiler)."""
    stamp, path = _stamp(command), _versions_file()
    known: dict = {}
    if stamp and path:
        try:
            known = json.loads(path.read_text())
            if stamp in known:
                return tuple(known[stamp])
        except (OSError, ValueError, TypeError):
            known = {}
    version = _ask_version(command)
    if version is not None and stamp and path:
        known[stamp] = list(version)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, path)
        except OSError:
            pass
    return version


def _ask_version(command: tuple[str, ...]) -> tuple[int, int, int] | None:
    try:
        proc = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"clang version (\d+)\.(\d+)(?:\.(\d+))?", proc.stdout + proc.stderr)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _candidates() -> list[tuple[tuple[str, ...], str, str]]:
    """(command, kind, where it came from) in order of preference."""
    found = []
    for nn in range(40, MIN_CLANG - 1, -1):
        path = shutil.which(f"clang++-{nn}")
        if path:
            found.append(((path,), "clang", f"clang++-{nn} on PATH"))
    path = shutil.which("clang++")
    if path:
        found.append(((path,), "clang", "clang++ on PATH"))
    try:
        import importlib.util

        if importlib.util.find_spec("ziglang") is not None:
            found.append(((sys.executable, "-m", "ziglang", "c++"), "zig", "the ziglang package"))
    except (ImportError, ValueError):
        pass
    return found


_lock = threading.Lock()
_found: dict[str, HostCompiler | str] = {}  # $METALRT_CXX -> the compiler, or why there is none


def find() -> HostCompiler:
    """The host compiler, found and version-checked once per process (and per value of
    $METALRT_CXX)."""
    override = os.environ.get("METALRT_CXX", "").strip()
    with _lock:
        result = _found.get(override)
        if result is None:
            try:
                result = _search(override)
            except CompilerNotFound as e:
                result = str(e)
            _found[override] = result
    if isinstance(result, str):
        raise CompilerNotFound(result)
    return result


def _search(override: str) -> HostCompiler:
    if override:
        command = tuple(shlex.split(override))
        kind = "zig" if "ziglang" in override or Path(command[0]).name.startswith("zig") else "clang"
        if kind == "zig" and "c++" not in command:
            command += ("c++",)
        version = _version_of(command)
        if version is None:
            raise CompilerNotFound(f"[metalrt.sim] METALRT_CXX={override!r} did not run as a clang "
                                   f"(`{' '.join(command)} --version` printed no clang version). "
                                   + _INSTALL_HINT)
        if version[0] < MIN_CLANG:
            raise CompilerNotFound(f"[metalrt.sim] METALRT_CXX={override!r} is clang "
                                   f"{version[0]}.{version[1]}, older than {MIN_CLANG}. "
                                   + _INSTALL_HINT)
        return HostCompiler(command, version, kind)
    tried = []
    for command, kind, where in _candidates():
        version = _version_of(command)
        if version is None:
            tried.append(f"{where} (no version)")
            continue
        if version[0] < MIN_CLANG:
            tried.append(f"{where} (clang {version[0]}: too old, it computes half in float)")
            continue
        return HostCompiler(command, version, kind)
    looked = "; ".join(tried) if tried else "no clang++-NN, clang++ or ziglang found"
    raise CompilerNotFound(f"[metalrt.sim] no usable C++ compiler (looked at: {looked}). "
                           + _INSTALL_HINT)


def unavailable_reason() -> str | None:
    try:
        find()
    except CompilerNotFound as e:
        return str(e)
    return None


def compile_library(compiler: HostCompiler, cpp: str, output: Path) -> tuple[bool, str]:
    """Builds `cpp` into the shared object `output`. Returns (ok, compiler log)."""
    with tempfile.TemporaryDirectory(prefix="metalrt-sim-") as tmp:
        source = Path(tmp) / "kernel.cpp"
        source.write_text(cpp)
        argv = [*compiler.command, *compiler.base_flags(), "-shared", "-I", str(INCLUDE_DIR),
                str(source), "-o", str(output), "-Wl,-z,defs", "-lm"]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
    return proc.returncode == 0, proc.stderr + proc.stdout


def call_cycles(compiler: HostCompiler, cpp: str) -> bool:
    """Whether the compiled program really has a call cycle (recursion), judged on the LLVM IR
    of the translation: one node per function after overload resolution and template
    instantiation, which the front end's by-name call graph cannot tell apart."""
    with tempfile.TemporaryDirectory(prefix="metalrt-sim-") as tmp:
        source = Path(tmp) / "kernel.cpp"
        source.write_text(cpp)
        flags = [f for f in compiler.base_flags() if f != "-O2"]
        argv = [*compiler.command, *flags, "-O0", "-S", "-emit-llvm", "-I", str(INCLUDE_DIR),
                str(source), "-o", "-"]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
    if proc.returncode != 0:
        return False  # the source does not compile: the build that follows reports why
    return _has_cycle(proc.stdout)


_DEFINE_RE = re.compile(r"^define [^@]*@(\"[^\"]+\"|[\w.$]+)\(")
_CALL_RE = re.compile(r"\b(?:call|invoke)\b[^@]*@(\"[^\"]+\"|[\w.$]+)\(")


def _is_shim(name: str) -> bool:
    return "4msim" in name or name.startswith(("__ubsan", "msim_"))


def _has_cycle(ir: str) -> bool:
    """A cycle among the user's functions (the shim's own are left out)."""
    edges: dict[str, set[str]] = {}
    current = None
    for line in ir.splitlines():
        m = _DEFINE_RE.match(line)
        if m:
            current = None if _is_shim(m.group(1)) else m.group(1)
            if current is not None:
                edges.setdefault(current, set())
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is not None:
            for callee in _CALL_RE.findall(line):
                edges[current].add(callee)
    color: dict[str, int] = {}
    for root in edges:
        if root in color:
            continue
        stack = [(root, iter(sorted(edges[root])))]
        color[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                color[node] = 2
                stack.pop()
            elif child in edges:
                state = color.get(child, 0)
                if state == 1:
                    return True
                if state == 0:
                    color[child] = 1
                    stack.append((child, iter(sorted(edges[child]))))
    return False
