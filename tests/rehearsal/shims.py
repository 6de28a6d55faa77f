"""Shims for the commands an instance has and this machine must not run (shutdown, package managers),
a thin `aws` wrapper, and an emulated CloudWatch agent ctl. Every shim call is one JSON line in a calls file.

`python -m tests.rehearsal.shims CALLS STATE ARGS...` is the ctl's implementation (the installed ctl
script execs it).
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CTL_NAME = "amazon-cloudwatch-agent-ctl"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
NO_PACKAGES = "shim: no package manager in the rehearsal"


def _write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _logging_shim(name: str, calls_file: Path, exit_code: int, message: str = "") -> str:
    say = f"sys.stderr.write({message + chr(10)!r})\n" if message else ""
    return (f"#!{sys.executable} -I\n# rehearsal shim of {name}: logs the call (tests/rehearsal/shims.py)\n"
            "import json, sys, time\n"
            f"with open({str(calls_file)!r}, 'a') as calls:\n"
            f"    calls.write(json.dumps({{'cmd': {name!r}, 'args': sys.argv[1:], 'time': time.time()}}) + '\\n')\n"
            f"{say}sys.exit({exit_code})\n")


def install_shims(bin_dir: Path, calls_file: Path, aws_cli: Path) -> Path:
    """Write shutdown/poweroff (log, exit 0), dnf/yum/apt-get (log, exit 1) and aws (execs `aws_cli`) into `bin_dir`."""
    for name in ("shutdown", "poweroff"):
        _write_executable(bin_dir / name, _logging_shim(name, calls_file, 0))
    for name in ("dnf", "yum", "apt-get"):
        _write_executable(bin_dir / name, _logging_shim(name, calls_file, 1, NO_PACKAGES))
    _write_executable(bin_dir / "aws", f'#!/bin/sh\nexec {shlex.quote(str(aws_cli))} "$@"\n')
    return bin_dir


def cloudwatch_agent_ctl(path: Path, calls_file: Path) -> Path:
    """Install the emulated `amazon-cloudwatch-agent-ctl` at `path` (its state lives in `<path>.state.json`).

    `-a fetch-config -m ec2 [-s] -c file:CONFIG` records CONFIG and, with -s, (re)starts a detached
    `tests.rehearsal.log_shipper` for it; `-a start`, `-a stop` (SIGTERM, waits up to 10 s) and `-a status`.
    """
    state = path.with_name(path.name + ".state.json")
    # -P: the caller's directory (maybe a clone with its own tests/) must not shadow this checkout's package
    command = (sys.executable, "-P", "-m", "tests.rehearsal.shims", calls_file, state)
    args = " ".join(shlex.quote(str(arg)) for arg in command)
    return _write_executable(path, (
        "#!/bin/sh\n# rehearsal stand-in for the CloudWatch agent ctl (tests/rehearsal/shims.py)\n"
        f'export PYTHONPATH={shlex.quote(str(REPO))}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'exec {args} "$@"\n'))


def log_call(calls_file: Path, cmd: str, args: list[str]) -> None:
    with open(calls_file, "a") as calls:
        calls.write(json.dumps({"cmd": cmd, "args": args, "time": time.time()}) + "\n")


def read_calls(calls_file: Path) -> list[dict]:
    """The logged shim calls, oldest first ([] when nothing was called)."""
    if not Path(calls_file).exists():
        return []
    return [json.loads(line) for line in Path(calls_file).read_text().splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")  # a zombie has exited


def _running_pid(state: dict) -> int | None:
    pidfile = Path(state["pidfile"]) if state.get("pidfile") else None
    if pidfile is None or not pidfile.exists():
        return None
    pid = int(pidfile.read_text().split()[0])
    return pid if _alive(pid) else None


def _start(state: dict) -> int:
    config = Path(state["config"])
    pidfile = config.with_name(config.name + ".shipper.pid")
    logfile = config.with_name(config.name + ".shipper.log")
    pidfile.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with open(logfile, "ab") as log:
        shipper = subprocess.Popen([sys.executable, "-m", "tests.rehearsal.log_shipper", str(config), str(pidfile)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                   start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip() == str(shipper.pid):
            state["pidfile"] = str(pidfile)
            return 0
        if shipper.poll() is not None:
            break
        time.sleep(0.05)
    print(f"{CTL_NAME}: the log shipper did not start; {logfile}:\n{logfile.read_text()[-2000:]}", file=sys.stderr)
    return 1


def _stop(state: dict) -> int:
    pid = _running_pid(state)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            print(f"{CTL_NAME}: the log shipper ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killed", file=sys.stderr)
            return 1
    if state.get("pidfile"):
        Path(state["pidfile"]).unlink(missing_ok=True)
    return 0


def ctl_main(argv: list[str]) -> int:
    """argv: CALLS_FILE STATE_FILE then the ctl's own arguments."""
    calls_file, state_file, args = Path(argv[0]), Path(argv[1]), argv[2:]
    log_call(calls_file, CTL_NAME, args)
    options = {flag: args[i + 1] for i, flag in enumerate(args[:-1]) if flag in ("-a", "-m", "-c")}
    state: dict = json.loads(state_file.read_text()) if state_file.exists() else {}
    action, code = options.get("-a"), 0
    if action == "fetch-config":
        source = options.get("-c", "")
        if not source.startswith("file:") or not Path(source[5:]).is_file():
            print(f"{CTL_NAME}: -c must name an existing file:<path>, got {source!r}", file=sys.stderr)
            return 1
        state["config"] = str(Path(source[5:]).resolve())
        if "-s" in args:
            code = _stop(state) or _start(state)
    elif action == "start":
        code = 0 if _running_pid(state) else _start(state) if state.get("config") else 1
    elif action == "stop":
        code = _stop(state)
    elif action == "status":
        running = _running_pid(state) is not None
        print(json.dumps({"status": "running" if running else "stopped",
                          "configstatus": "configured" if state.get("config") else "not configured"}))
    else:
        print(f"{CTL_NAME}: unsupported action {action!r} in the rehearsal", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(ctl_main(sys.argv[1:]))
