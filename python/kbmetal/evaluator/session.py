"""The judge's handle on one candidate process: spawn, ask with a deadline, watch memory, kill.

Every request has a time limit; while it waits, the judge polls the worker's resident memory and
kills it the moment it passes the limit. Whatever ends a worker early (a deadline, the memory
limit, a segfault, `os._exit`, garbage on the channel) becomes a `WorkerFault` with the reason,
which the judge turns into a verdict with the log's tail.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from . import sandbox
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


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerSession:
    def __init__(self, config: SessionConfig | None = None):
        self.config = config or SessionConfig()
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-"))
        self.log_path = self.workdir / "worker.log"
        self.proc: subprocess.Popen | None = None
        self.chan: Channel | None = None
        self.peak_memory = 0
        self.ready = False
        self.pid: int | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> WorkerSession:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        env_extra = {"PYTHONPATH": os.pathsep.join(_import_roots()), "PYTHONUNBUFFERED": "1"}
        if self.config.threads:
            env_extra["KBMETAL_WORKER_THREADS"] = str(self.config.threads)
            env_extra["OMP_NUM_THREADS"] = str(self.config.threads)
        env = sandbox.scrubbed_environment(extra=env_extra)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kbmetal.evaluator.worker",
                    "--fd-in",
                    str(to_worker_r),
                    "--fd-out",
                    str(from_worker_w),
                    "--workdir",
                    str(self.workdir),
                    "--parent",
                    str(os.getpid()),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(to_worker_r, from_worker_w),
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self.pid = self.proc.pid
        self.chan = Channel(from_worker_r, to_worker_w)
        return self

    def wait_ready(self) -> None:
        if self.ready:
            return
        message = self._receive(self.config.startup_timeout, "start-up")
        if message.get("event") != "ready":
            self.kill()
            raise WorkerFault("guard", f"the worker's first message was not 'ready': {str(message)[:200]}")
        self.ready = True

    def request(self, message: dict[str, Any], timeout: float, stage: str) -> dict[str, Any]:
        self.wait_ready()
        try:
            self.chan.send(message)
        except ChannelClosed:
            raise self._death(stage) from None
        return self._receive(timeout, stage)

    def close(self) -> None:
        """Ask the worker to leave, then make sure it and anything it started are gone."""
        if self.proc is not None and self.proc.poll() is None and self.ready:
            try:
                self.chan.send({"op": "exit"})
                reply = self.chan.recv(timeout=5.0, on_tick=self._watch_memory)
                if reply and isinstance(reply.get("maxrss"), int):
                    self.peak_memory = max(self.peak_memory, reply["maxrss"])
            except (ChannelClosed, ProtocolError, WorkerFault, OSError):
                pass
        self.kill()
        if self.chan is not None:
            self.chan.close()
            self.chan = None

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        if self.proc is None:
            return
        self._watch_memory(check_limit=False)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: children go too
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    # -- waiting ----------------------------------------------------------------------------

    def _watch_memory(self, check_limit: bool = True) -> None:
        if self.proc is None:
            return
        usage = sandbox.memory_of(self.proc.pid)
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
