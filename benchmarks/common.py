"""Shared helpers of the benchmark parts: paths, statistics, subprocesses with their own peak RSS, sizes."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DATA = ROOT.parent / "shared" / "data"  # ../shared/data beside the checkout (CI has the same folder)
WORK = BENCH / "work"
RESULTS = BENCH / "results"
PY = sys.executable
CLI = str(Path(PY).parent / "papertide")
WORKER = str(BENCH / "worker.py")

# A wide console when the output is a file or a pipe (make bench | tee), so tables do not wrap.
console = Console(width=None if sys.stdout.isatty() else 150)


class BenchError(Exception):
    """The benchmark cannot run (missing data, a failed step); printed as one line."""


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def data_path(*parts: str) -> Path:
    p = DATA.joinpath(*parts)
    if not p.exists():
        raise BenchError(
            f"missing {p}: the benchmarks read the shared data folder ../shared/data beside the checkout "
            f"(expected at {DATA}; see its README.md)"
        )
    return p


def arxiv_cs_files(n: int | None = None) -> list[Path]:
    files = sorted(data_path("arxiv-cs").glob("arxiv-cs-2025-2026-part*.jsonl.gz"))
    if not files:
        raise BenchError(f"no arxiv-cs-2025-2026-part*.jsonl.gz files in {DATA / 'arxiv-cs'}")
    return files[:n] if n else files


# -- statistics -------------------------------------------------------------------------------------
def median(xs: Sequence[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=float))) if len(xs) else float("nan")


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    return {
        "n": len(a),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def dir_bytes(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    if not p.exists():
        return 0
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def db_bytes(db: Path) -> int:
    return sum(Path(str(db) + s).stat().st_size for s in ("", "-wal", "-shm") if Path(str(db) + s).exists())


def mb(n: float) -> float:
    return round(n / 1e6, 1)


# -- subprocesses -----------------------------------------------------------------------------------
def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak RSS (VmHWM) of a live process, in MB.

    Not ru_maxrss: on Linux a child's ru_maxrss also counts the parent's RSS at the time it was forked
    (exec folds the old address space's high-water mark in), so every process started by a bench that
    has loaded a model would report at least the model's size.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class ProcResult:
    returncode: int
    wall_s: float
    maxrss_mb: float  # peak RSS of the child itself (VmHWM, polled every 0.05 s while it runs)
    stdout: str
    stderr: str
    killed: bool = False
    samples: list = field(default_factory=list)

    def json(self) -> dict:
        """The last line of stdout parsed as JSON (the worker's answer)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        if self.returncode != 0 or not lines:
            raise BenchError(f"subprocess failed (exit {self.returncode}): {self.stderr.strip()[-2000:]}")
        return json.loads(lines[-1])


def run_proc(
    cmd: Sequence[str], env: dict[str, str] | None = None, poll: Callable[[float], bool] | None = None,
    interval: float = 1.0, timeout: float | None = None,
) -> ProcResult:
    """Run a command, measuring its wall time and peak RSS (VmHWM, see vm_hwm_mb).

    `poll(elapsed_s)` is called every `interval` seconds while it runs; returning True SIGKILLs it.
    Output goes to temp files, so a chatty child never blocks on a full pipe.
    """
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=full_env, cwd=ROOT)
        killed = False
        next_poll = t0 + interval
        hwm = 0.0
        while True:
            hwm = max(hwm, vm_hwm_mb(p.pid) or 0.0)
            pid, status, _ = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if timeout is not None and now - t0 > timeout:
                os.kill(p.pid, signal.SIGKILL)
                killed = True
                _, status, _ = os.wait4(p.pid, 0)
                break
            if poll is not None and now >= next_poll:
                next_poll = now + interval
                if poll(now - t0):
                    os.kill(p.pid, signal.SIGKILL)
                    killed = True
                    _, status, _ = os.wait4(p.pid, 0)
                    break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        out.seek(0)
        err.seek(0)
        return ProcResult(
            p.returncode, wall, hwm, out.read().decode(errors="replace"),
            err.read().decode(errors="replace"), killed,
        )


def worker(*args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> tuple[dict, ProcResult]:
    """Run one measurement in benchmarks/worker.py (a fresh process) and return its JSON answer."""
    r = run_proc([PY, WORKER, *args], env=env, timeout=timeout)
    return r.json(), r


def git_commit() -> str | None:
    try:
        def git(*a: str) -> str:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

        return git("rev-parse", "--short", "HEAD") + ("+dirty-src" if git("status", "--porcelain", "--", "src") else "")
    except OSError:
        return None
