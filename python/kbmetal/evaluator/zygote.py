"""A fork server for candidate processes: torch and the worker imported once, a fresh process forked
for each candidate.

Starting a candidate's process as a fresh interpreter costs the torch import (seconds on a GPU
machine, more when many start at once); forking it from a process that has already imported
torch, the worker and metalrt costs milliseconds, and every candidate still gets a process of its
own, as before. The server never touches a device (no CUDA context survives a fork): each child
makes its device ready after the fork (worker.py `prepare`).

Why not multiprocessing's "forkserver": its server is one per Python process, shared with
whatever else that process runs (on Python 3.14 it is the default start method, so it may already
be running, started with the host's environment and its preloads), and it inherits the
environment of the process that first starts it. The judge can run inside a user's process whose
environment holds API keys. This server is started the way workers were: a fresh interpreter with
the scrubbed environment (sandbox.py), so neither it nor any child ever held a secret.

The sandbox is the one the spawned worker had: each child starts a session of its own (the judge
kills its whole process group), writes stdout and stderr to its log, runs in its work folder, has
no core dumps, and dies with its parent (PR_SET_PDEATHSIG). Its parent is this server, which dies
with the judge (PR_SET_PDEATHSIG again, and the end of the judge's socket): a judge killed with
SIGKILL takes the server and every candidate with it.

Protocol (a SOCK_SEQPACKET socket pair; only the judge holds the other end): each request is one
JSON object with the worker's options and five descriptors, in order: the worker's channel in and
out, its exchange region (or /dev/null), its log, and a status pipe. On the status pipe the server
writes "pid N" once the child is forked, then "exit S" when it has ended (S negative: killed by
signal -S), or "error TEXT" when the fork failed; the judge's `ForkedProcess` reads it as a Popen.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from . import sandbox

# what every candidate's process imports anyway, imported once here (no device is touched)
PRELOAD = ("torch", "kbmetal.evaluator.worker", "kbmetal.problems", "metalrt")
_MAX_REQUEST = 1 << 16
_DESCRIPTORS = 5


def available() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


class ZygoteError(Exception):
    """The fork server could not start a process; the caller falls back to a fresh interpreter."""


# -- the judge's side ---------------------------------------------------------------------------


class ForkedProcess:
    """A child of the fork server, with the part of Popen's interface a session uses. Its pid and
    exit status come over the status pipe; until the server has forked it, `pid` waits."""

    def __init__(self, status_fd: int, requested_at: float):
        self._fd = status_fd
        self._buffer = b""
        self._pid: int | None = None
        self.returncode: int | None = None
        self.error: str | None = None  # the server's own failure, when it could not fork
        self.requested_at = requested_at

    def _read(self, timeout: float | None) -> bool:
        """Read what the server wrote; False when `timeout` passed with nothing new."""
        if self._fd < 0:
            return False
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self._fd, 4096)
        if not chunk:  # the server is gone: so is the child (it dies with the server)
            os.close(self._fd)
            self._fd = -1
            if self.returncode is None:
                self.returncode = -signal.SIGKILL
                self.error = self.error or "the fork server ended"
            return True
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            word, _, value = line.decode("utf-8", "replace").partition(" ")
            if word == "pid":
                self._pid = int(value)
            elif word == "exit":
                self.returncode = int(value)
            elif word == "error":
                self.error, self.returncode = value, 1
        return True

    def _read_until(self, done, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done() and self._fd >= 0:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self._read(left)

    @property
    def pid(self) -> int | None:
        """The child's pid, None until the server has forked it (see `wait_forked`)."""
        if self._pid is None:
            self.poll()
        return self._pid

    def wait_forked(self, timeout: float) -> int | None:
        """The child's pid once forked (the server may still be importing); None: never forked."""
        self._read_until(lambda: self._pid is not None or self.returncode is not None, timeout)
        return self._pid

    def poll(self) -> int | None:
        while self.returncode is None and self._read(0):
            pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._read_until(lambda: self.returncode is not None, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("candidate process", timeout)
        return self.returncode

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Zygote:
    """The judge's fork server: started once per judge process, on first use."""

    def __init__(self, env: dict[str, str]):
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kbmetal.evaluator.zygote", "--socket", str(theirs.fileno()),
             "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            env=env,
            start_new_session=True,  # a Ctrl-C reaches the judge, which ends the server
        )  # fmt: skip
        theirs.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, options: dict[str, Any], fds: list[int]) -> ForkedProcess:
        """A new candidate process running the worker with `options` (worker.main's, less the
        descriptors) on `fds` (channel in, channel out, region or -1, log)."""
        status_r, status_w = os.pipe()
        devnull = None
        if fds[2] < 0:
            devnull = os.open(os.devnull, os.O_RDONLY)
            fds = [fds[0], fds[1], devnull, fds[3]]
        try:
            with self._lock:
                socket.send_fds(self._sock, [json.dumps(options).encode()], [*fds, status_w])
        except OSError as exc:
            os.close(status_r)
            raise ZygoteError(f"the fork server is not answering: {exc}") from None
        finally:
            os.close(status_w)
            if devnull is not None:
                os.close(devnull)
        return ForkedProcess(status_r, time.time())

    def close(self) -> None:
        self._sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_ZYGOTE: Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def shared(env: dict[str, str]) -> Zygote:
    """This process's fork server, started (or restarted, when it has ended) with `env`."""
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or not _ZYGOTE.alive():
            if _ZYGOTE is not None:
                _ZYGOTE.close()
            _ZYGOTE = Zygote(env)
        return _ZYGOTE


def stop_shared() -> None:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is not None:
            _ZYGOTE.close()
            _ZYGOTE = None


# -- the server's side --------------------------------------------------------------------------


def _status(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode() + b"\n")
    except OSError:  # the judge has closed its end: nobody to tell
        pass


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(options: dict[str, Any], fds: list[int], forked_at: float) -> None:
    """In the forked child: the sandbox, then the worker. Never returns."""
    try:
        sandbox.die_with_parent(int(options["parent"]))
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        chan_in, chan_out, region, log, status = fds
        keep = {0, 1, 2, chan_in, chan_out, log} | ({region} if options.get("region") else set())
        # the server's socket, other children's status pipes: nothing of the server stays open
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)
        os.chdir(options["cwd"])
        os.environ.update(options.get("env") or {})
        from . import worker

        argv = ["--fd-in", str(chan_in), "--fd-out", str(chan_out), "--parent", str(options["parent"])]
        if options.get("region"):
            argv += ["--region-fd", str(region)]
        if options.get("backend"):
            argv += ["--backend", options["backend"]]
        worker.main(argv, forked_at=forked_at)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
    os._exit(0)


def serve(sock: socket.socket, parent: int) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children: dict[int, int] = {}  # pid -> status pipe
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            fd = children.pop(pid, None)
            if fd is not None:
                _status(fd, f"exit {_exit_code(status)}")
                os.close(fd)
        if sock not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, _DESCRIPTORS)
        except OSError:
            return
        if not data:  # the judge is gone
            return
        if len(fds) != _DESCRIPTORS:
            for fd in fds:
                os.close(fd)
            continue
        status = fds[-1]
        try:
            options = {**json.loads(data), "parent": os.getpid()}
            pid = os.fork()
        except Exception as exc:  # bad request, or no memory for a process: the judge is told
            _status(status, f"error {type(exc).__name__}: {exc}")
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            _child(options, fds, time.time())
        children[pid] = status
        _status(status, f"pid {pid}")
        for fd in fds[:-1]:  # the child's now: the judge sees its channel close when it ends
            os.close(fd)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="kbmetal.evaluator.zygote")
    parser.add_argument("--socket", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    sandbox.die_with_parent(args.parent)
    sock = socket.socket(fileno=args.socket)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # metalrt not built: the child reports what it lacks when asked
            pass
    serve(sock, args.parent)


if __name__ == "__main__":
    main()
