"""The one subprocess runner of the benchmarks: run a command, measure its wall time and the
child's peak RSS.

Peak RSS is the kernel's ``ru_maxrss`` of that one child, from ``os.wait4`` on its pid, so
it is the child's own peak, call by call. Two simpler readings are wrong:
``getrusage(RUSAGE_CHILDREN)`` is the maximum over every child waited for so far (a small
measurement after a large one reports the large one's peak), and ``wait4`` on a child this
process spawned itself counts this process's own peak too (Linux records the parent's high
water mark when the forked or vforked child execs; a 400 MB test process made a 10 MB child
read 400 MB). So each command is started by a launcher, a bare interpreter (``-E -S``, a
few MB) that forks and execs it, waits for it with ``wait4``, forwards SIGTERM and SIGINT to
it, and hands back its ``ru_maxrss`` and exit status: the figure is exact up to the
launcher's few MB. stdout and stderr go to temporary files (no pipe can fill up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TAIL = 3000  # characters of stderr kept for error messages
GRAPHSEQ = [sys.executable, "-m", "graphseq"]  # the CLI, in a fresh process


@dataclass
class Measured:
    """One finished child: its command, exit code, wall seconds and peak RSS (MiB)."""

    cmd: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr_tail: str

    def last_json(self) -> dict:
        """The child's last stdout line, parsed (the benchmarks' children print one)."""
        lines = self.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(f"{' '.join(self.cmd)} printed nothing:\n{self.stderr_tail}")
        return json.loads(lines[-1])


def maxrss_mb(ru_maxrss: int) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    return ru_maxrss / 2**20 if sys.platform == "darwin" else ru_maxrss / 1024


LAUNCHER = """
import os, signal, sys
usage_file, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        os.write(2, f"{cmd[0]}: {e}\\n".encode())
        os._exit(127)
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda n, _: os.kill(pid, n))
_, status, usage = os.wait4(pid, 0)
with open(usage_file, "w") as f:
    f.write(f"{usage.ru_maxrss} {status}")
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


class Child:
    """One command running under the launcher (its own process group)."""

    def __init__(
        self,
        cmd: Sequence[str | Path],
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        stdout: IO | int | None = None,
        stderr: IO | int | None = None,
    ) -> None:
        self.cmd = [str(c) for c in cmd]
        fd, self._usage = tempfile.mkstemp(prefix="graphseq-bench-usage-")
        os.close(fd)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-E", "-S", "-c", LAUNCHER, self._usage, *self.cmd],
            stdout=stdout, stderr=stderr, env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        """SIGKILL to the launcher and the command (one process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> tuple[int, float]:
        """Wait (killing both after ``timeout`` s); ``(exit code, peak RSS MiB)`` of the
        command (a code < 0: the signal that ended it)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        finally:
            if self.proc.poll() is None:  # interrupted here: take the command down too
                self.kill()
                self.proc.wait()
        text = Path(self._usage).read_text().split()
        os.unlink(self._usage)
        if len(text) != 2:  # the launcher was killed before the command ended
            return code, 0.0
        return os.waitstatus_to_exitcode(int(text[1])), maxrss_mb(int(text[0]))

    def stop(self, grace: float = 15.0) -> tuple[int, float]:
        """SIGTERM (forwarded to the command), SIGKILL after ``grace`` s; as :meth:`wait`."""
        self.proc.terminate()
        return self.wait(grace)


def run(
    cmd: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> Measured:
    """Run ``cmd`` to completion and measure it.

    Args:
        env: the child's whole environment (default: this process's).
        cwd: its working directory.  timeout: seconds before it is killed (None: no limit).
        check: raise ``RuntimeError`` (command and stderr tail) on a non-zero exit.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = Child(cmd, env, cwd, out, err)
        code, peak = child.wait(timeout)
        wall = time.perf_counter() - child.started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        tail = err.read().decode(errors="replace")[-TAIL:]
    res = Measured(child.cmd, code, wall, peak, stdout, tail)
    if check and code != 0:
        why = f"killed after {timeout:g} s" if timeout and wall >= timeout else f"exit {code}"
        raise RuntimeError(f"{' '.join(child.cmd)} failed ({why}):\n{tail}")
    return res


def threads_env(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with OpenMP/MKL threads set."""
    n = str(threads)
    return {**(os.environ if base is None else base), "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def build(out: Path, fmt: str, source: Path, schema: Path | None = None) -> Path:
    """``graphseq build`` into ``out``, kept when it exists (work directories resume)."""
    if not out.exists():
        cmd = [*GRAPHSEQ, "build", "--format", fmt, "--input", source, "--out", out]
        run([*cmd, "--schema", schema] if schema else cmd)
    return out
