"""Shared benchmark plumbing: machine description, timing, peak memory, synthetic inputs, results."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import multiprocessing
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CACHE_DIR = RESULTS_DIR / "tmp"  # generated inputs (git-ignored)
LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "keras", "tensorflow", "tensorflow-cpu", "matplotlib")


# ---------------------------------------------------------------- machine and provenance

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    """GPU names from nvidia-smi (never imports TensorFlow); empty where there is none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "platform": platform.platform(),
        # other work on a shared machine skews timings: the load when the result was written says how much
        "load_average_1_5_15m": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


_COMMAND: list[str] | None = None


def set_command(args: list[str]) -> None:
    """Record the benchmark's arguments (bench.__main__.main calls this)."""
    global _COMMAND
    _COMMAND = ["python", "-m", "bench", *args]


def command_line() -> str:
    """The command as a user would retype it (`python -m bench ...`)."""
    return shlex.join(_COMMAND if _COMMAND is not None else sys.argv)


# ---------------------------------------------------------------- measuring

def rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2
    except (OSError, ValueError):
        return peak_rss_mib()


def stage_peak_reset() -> bool:
    """Reset this process's peak RSS (VmHWM) so :func:`stage_peak_mib` gives the peak since; False where the
    kernel does not allow it (then the figure is the peak since the process started)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def stage_peak_mib() -> float:
    """Peak RSS (VmHWM) in MiB since the last :func:`stage_peak_reset` (or the process start)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakSampler:
    """Samples RSS in a thread; `.peak` is the highest RSS (MiB) seen while the block ran."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start = self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> "PeakSampler":
        self.start = self.peak = rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> "Stopwatch":
        self.seconds = 0.0
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0


def _child(fn: Callable[..., dict], args: tuple, queue: "multiprocessing.Queue") -> None:
    try:
        # sampled, not ru_maxrss: Linux carries the parent's peak RSS across fork+exec into the child's
        with PeakSampler() as mem:
            out = fn(*args)
        out.setdefault("peak_rss_mib", round(mem.peak, 1))
        out.setdefault("base_rss_mib", round(mem.start, 1))
        queue.put(("ok", out))
    except BaseException as exc:  # reported to the parent, which raises
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_isolated(fn: Callable[..., dict], *args: Any, isolate: bool = True) -> dict:
    """Run `fn(*args) -> dict` in a fresh spawned process so its peak memory is its own.

    Adds `peak_rss_mib` (the child's highest RSS while `fn` ran, sampled every 20 ms, imports included)
    and `base_rss_mib` (before `fn`).
    With isolate=False it runs here (fast, for smoke tests) and the memory figures are this process's.
    """
    if not isolate:
        with PeakSampler() as mem:
            out = fn(*args)
        out.setdefault("peak_rss_mib", round(mem.peak, 1))
        out.setdefault("base_rss_mib", round(mem.start, 1))
        return out
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    status, payload = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark child failed: {payload}")
    return payload


def percentile(values: list[float], q: float) -> float:
    """q-th percentile (0-100) by linear interpolation, without numpy."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


# ---------------------------------------------------------------- inputs

def synthetic_file(rows: int, *, seed: int = 7, cache_dir: Path | None = None) -> Path:
    """A gzip CSV of `rows` synthetic raw LendingClub rows (all 151 columns, notice and summary lines),
    generated once and cached by size and seed."""
    from training import synthetic  # imported late: it needs pandas/pyarrow

    cache = Path(cache_dir or CACHE_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"synthetic_{rows}_s{seed}.csv.gz"
    if not path.exists():
        tmp = path.with_name(path.name + ".partial.csv.gz")
        synthetic.write_raw_csv(tmp, rows, seed, all_columns=True)
        tmp.rename(path)
    return path


def notice_lines(path: str | Path) -> int:
    """Lines before the header (LendingClub's notice line has no comma): 0 or 1."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return 0 if "," in fh.readline() else 1


# ---------------------------------------------------------------- results

@dataclass
class Goal:
    """A target from the performance issue and whether this run met it."""
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run (e.g. a skipped case)


@dataclass
class Result:
    name: str
    params: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command_line(),
            "git_commit": git_commit(),
            "machine": machine_info(),
            "versions": library_versions(),
            "params": self.params,
            "results": self.rows,
            "goals": [g.__dict__ for g in self.goals],
            "notes": self.notes,
        }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain-text table of dict rows (columns: union of keys, in first-seen order)."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("e", "").replace("+", "").isdigit()


def report(result: Result, results_dir: Path | None = None, *, echo: Callable[[str], None] = print) -> Path:
    """Print the result's table and goals, and write `<results_dir>/<name>.json`; returns the path."""
    out_dir = Path(results_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    payload = result.to_dict()
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    echo(f"\n== {result.name} ==  ({payload['machine']['cpu_cores_usable']} cores, "
         f"{payload['machine']['memory_gib']} GiB, {payload['machine']['cpu_model']}"
         f"{', GPU: ' + '; '.join(payload['machine']['gpus']) if payload['machine']['gpus'] else ''})")
    echo(format_table(result.rows))
    for goal in result.goals:
        mark = {True: "MET", False: "NOT MET", None: "n/a"}[goal.met]
        echo(f"  goal [{mark}] {goal.name}: target {goal.target}, measured {goal.measured}")
    for note in result.notes:
        echo(f"  note: {note}")
    echo(f"  -> {path}")
    return path
