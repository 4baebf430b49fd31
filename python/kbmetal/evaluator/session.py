"""The judge's handle on one candidate process: start, ask with a deadline, watch memory, kill.

A process is forked from the judge's fork server (zygote.py: torch and the worker imported once)
or, where there is none or `SessionConfig.fork_server` is off, spawned as a fresh interpreter;
the sandbox is the same either way, and every candidate gets a process of its own.

Every request has a time limit; while it waits, the judge polls the worker's resident memory and
kills it the moment it passes the limit. Whatever ends a worker early (a deadline, the memory
limit, a segfault, `os._exit`, garbage on the channel) becomes a `WorkerFault` with the reason,
which the judge turns into a verdict with the log's tail.

A session owns its worker's exchange regions (exchange.py): the host region is created with the
process and passed to it; a CUDA region the judge attaches later is freed only once the process
is gone. `Reaper` does that ending (kill, reap, free, remove the folder) on a thread of its own,
so the next candidate does not wait for the last one's process to tear its device context down.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import sandbox, zygote
from .channel import Channel, ChannelClosed, ProtocolError

_LOG_TAIL = 4000


_WORKDIR_PREFIX = "kbmetal-eval-"


def sweep_stale_workdirs() -> int:
    """Remove the work folders of judges that died without cleaning up (killed with SIGKILL);
    each folder's name carries its judge's pid. Returns how many were removed."""
    removed = 0
    root = pathlib.Path(tempfile.gettempdir())
    for folder in root.glob(f"{_WORKDIR_PREFIX}*-*"):
        pid_text = folder.name[len(_WORKDIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # its judge is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


class WorkerFault(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "timeout", "crash", "memory", "guard" (protocol abuse)
        self.message = message


@dataclass
class SessionConfig:
    memory_limit_bytes: int | None = 8 << 30
    startup_timeout: float = 120.0
    threads: int | None = None
    # fork the process from the judge's fork server (zygote.py) where there is one; False: a
    # fresh interpreter, which imports torch itself
    fork_server: bool = True


def _import_roots() -> list[str]:
    """Folders that make kbmetal (and metalrt, when present) importable in a fresh interpreter."""
    roots = [str(pathlib.Path(__file__).resolve().parents[2])]
    try:
        import metalrt

        roots.append(str(pathlib.Path(metalrt.__file__).resolve().parents[1]))
    except ImportError:
        pass
    extra = os.environ.get("PYTHONPATH", "")
    roots += [p for p in extra.split(os.pathsep) if p]
    return list(dict.fromkeys(roots))


def _base_environment() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(_import_roots()), "PYTHONUNBUFFERED": "1"}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerSession:
    def __init__(self, config: SessionConfig | None = None, backend: str | None = None):
        """`backend`: what the worker makes ready while it starts ("auto": the best present;
        None: nothing until the first request)."""
        self.config = config or SessionConfig()
        self.backend = backend
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-"))
        self.log_path = self.workdir / "worker.log"
        self.proc: subprocess.Popen | zygote.ForkedProcess | None = None
        self.chan: Channel | None = None
        self.peak_memory = 0
        self.ready = False
        self.host_region: Any = None  # exchange.HostRegion
        self._left = False
        self.regions: list[Any] = []  # regions attached later (CUDA), freed after the process
        self.started_at: float | None = None  # wall clock, as the worker's start-up marks
        # seconds from `start` to the worker's own marks (empty until it is ready): forked from
        # the fork server ("fork"), or a fresh interpreter running and torch imported
        # ("interpreter", "torch"); then its device ready ("ready")
        self.startup: dict[str, float] = {}
        self.launch = ""  # "fork" (from the fork server) or "spawn" (a fresh interpreter)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> WorkerSession:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        threads = {}
        if self.config.threads:
            threads = {"KBMETAL_WORKER_THREADS": str(self.config.threads), "OMP_NUM_THREADS": str(self.config.threads)}
        server = None
        if self.config.fork_server and zygote.available():
            # started before this process imports torch (exchange.py), so that the two overlap
            server = zygote.shared(sandbox.scrubbed_environment(extra=_base_environment()))
        from .exchange import (
            HostRegion,  # torch: imported by the judge, not by this module
        )

        self.host_region = HostRegion(self.workdir)
        self.started_at = time.time()
        try:
            if server is not None:
                try:
                    self._fork(server, to_worker_r, from_worker_w, threads)
                except zygote.ZygoteError:
                    self._spawn(to_worker_r, from_worker_w, threads)
            else:
                self._spawn(to_worker_r, from_worker_w, threads)
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self.chan = Channel(from_worker_r, to_worker_w)
        return self

    def _fork(self, server: zygote.Zygote, fd_in: int, fd_out: int, env: dict[str, str]) -> None:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            options = {"cwd": str(self.workdir), "env": env, "region": True, "backend": self.backend}
            self.proc = server.fork(options, [fd_in, fd_out, self.host_region.fd, log])
        finally:
            os.close(log)
        self.launch = "fork"

    def _spawn(self, fd_in: int, fd_out: int, env: dict[str, str]) -> None:
        env = sandbox.scrubbed_environment(extra={**_base_environment(), **env})
        command = [
            sys.executable, "-m", "kbmetal.evaluator.worker",
            "--fd-in", str(fd_in),
            "--fd-out", str(fd_out),
            "--parent", str(os.getpid()),
            "--region-fd", str(self.host_region.fd),
        ]  # fmt: skip
        if self.backend:
            command += ["--backend", self.backend]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd_in, fd_out, self.host_region.fd),
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.launch = "spawn"

    @property
    def pid(self) -> int | None:
        """The process's pid (a forked one's once the fork server has forked it)."""
        if isinstance(self.proc, zygote.ForkedProcess):
            return self.proc.wait_forked(self.config.startup_timeout)
        return self.proc.pid if self.proc is not None else None

    def wait_ready(self) -> None:
        if self.ready:
            return
        message = self._receive(self.config.startup_timeout, "start-up")
        if message.get("event") != "ready":
            self.kill()
            raise WorkerFault("guard", f"the worker's first message was not 'ready': {str(message)[:200]}")
        self.ready = True
        marks = message.get("startup")
        if isinstance(marks, dict) and self.started_at is not None:
            self.startup = {
                name: max(0.0, float(marks[name]) - self.started_at)
                for name in ("fork", "interpreter", "torch", "ready")
                if isinstance(marks.get(name), (int, float))
            }

    @property
    def device_bytes(self) -> int:
        """Device memory of the judge's that this session holds (its CUDA exchange regions)."""
        return sum(int(getattr(r, "size", 0)) for r in self.regions if getattr(r, "buffer", None) is not None)

    def request(self, message: dict[str, Any], timeout: float, stage: str) -> dict[str, Any]:
        self.wait_ready()
        try:
            self.chan.send(message)
        except ChannelClosed:
            raise self._death(stage) from None
        return self._receive(timeout, stage)

    def leave(self) -> None:
        """Ask the worker to leave (its last word carries its peak memory); it may still be
        exiting when this returns."""
        if self._left:
            return
        self._left = True
        if self.proc is not None and self.proc.poll() is None and self.ready and self.chan is not None:
            try:
                self.chan.send({"op": "exit"})
                reply = self.chan.recv(timeout=5.0, on_tick=self._watch_memory)
                if reply and isinstance(reply.get("maxrss"), int):
                    self.peak_memory = max(self.peak_memory, reply["maxrss"])
            except (ChannelClosed, ProtocolError, WorkerFault, OSError):
                pass

    def close(self) -> None:
        """Ask the worker to leave, then make sure it and anything it started are gone."""
        self.leave()
        self.kill()
        if self.chan is not None:
            self.chan.close()
            self.chan = None

    def discard(self) -> None:
        """End the worker, then free its regions (never before: the worker may have them open)
        and remove its folder."""
        self.close()
        for region in [*self.regions, self.host_region]:
            if region is not None:
                try:
                    region.close()
                except Exception:  # a device in trouble: the judge's next candidate will say so
                    pass
        self.regions.clear()
        self.host_region = None
        if isinstance(self.proc, zygote.ForkedProcess):
            self.proc.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        if self.proc is None:
            return
        self._watch_memory(check_limit=False)
        pid = self.pid
        if pid is not None and self.proc.poll() is None:
            try:
                os.killpg(pid, signal.SIGKILL)  # its own session: children go too
            except (ProcessLookupError, PermissionError):
                try:  # forked a moment ago: not yet the leader of a session of its own
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    # -- waiting ----------------------------------------------------------------------------

    def _watch_memory(self, check_limit: bool = True) -> None:
        pid = self.proc.pid if self.proc is not None else None  # a forked one's: once known
        if pid is None:
            return
        usage = sandbox.memory_of(pid)
        if usage is None:
            return
        rss, peak = usage
        self.peak_memory = max(self.peak_memory, peak)
        limit = self.config.memory_limit_bytes
        if check_limit and limit and rss > limit:
            self.kill()
            raise WorkerFault(
                "memory",
                f"the candidate's process used {rss / 2**20:.0f} MiB, over its limit of "
                f"{limit / 2**20:.0f} MiB (raise it with memory_limit_mb / --memory-limit)",
            )

    def _receive(self, timeout: float, stage: str) -> dict[str, Any]:
        try:
            message = self.chan.recv(timeout=timeout, on_tick=self._watch_memory)
        except ChannelClosed:
            raise self._death(stage) from None
        except ProtocolError as exc:
            self.kill()
            raise WorkerFault(
                "guard", f"the candidate's process wrote to the harness channel: {exc}"
            ) from None
        if message is None:
            self.kill()
            raise WorkerFault("timeout", f"{stage} ran past its limit of {timeout:g} s")
        if isinstance(message.get("maxrss"), int):
            self.peak_memory = max(self.peak_memory, message["maxrss"])
        return message

    def _death(self, stage: str) -> WorkerFault:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return WorkerFault("crash", f"the candidate's process closed the channel during {stage}")
        server_error = getattr(self.proc, "error", None)
        if server_error:
            return WorkerFault("crash", f"the candidate's process could not run ({server_error}) during {stage}")
        if code < 0:
            name = _signal_name(-code)
            what = {
                "SIGSEGV": "a segmentation fault",
                "SIGBUS": "a bus error",
                "SIGABRT": "an abort",
                "SIGKILL": "SIGKILL (out of memory?)",
                "SIGFPE": "a floating-point exception",
                "SIGILL": "an illegal instruction",
            }.get(name, name)
            return WorkerFault("crash", f"the candidate's process died of {what} during {stage}")
        return WorkerFault("crash", f"the candidate's process exited with status {code} during {stage}")

    # -- output -----------------------------------------------------------------------------

    def log_tail(self, limit: int = _LOG_TAIL) -> str:
        try:
            size = self.log_path.stat().st_size
            with open(self.log_path, "rb") as f:
                f.seek(max(0, size - limit))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        if size > limit:
            text = "..." + text[text.find("\n") + 1 :] if "\n" in text else text
        return text


class Reaper:
    """Discards finished sessions on threads of their own, off the judge's path."""

    def __init__(self) -> None:
        self._pending: list[tuple[threading.Thread, WorkerSession]] = []

    def discard(self, session: WorkerSession) -> None:
        self._prune()
        thread = threading.Thread(target=session.discard, name="kbmetal-reaper", daemon=True)
        thread.start()
        self._pending.append((thread, session))

    def _prune(self) -> None:
        self._pending = [(t, s) for t, s in self._pending if t.is_alive()]

    @property
    def device_bytes(self) -> int:
        """Device memory still held by sessions on their way out (freed once their process is)."""
        self._prune()
        return sum(s.device_bytes for _, s in self._pending)

    def join(self) -> None:
        """Wait until every session handed over is gone."""
        for thread, _ in self._pending:
            thread.join()
        self._pending.clear()
