"""Helpers of the reliability suite: run the CLI as a user would, SIGKILL a process mid-work."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`opinionbench ARGS` in a subprocess: what a user sees (exit status, stdout, stderr)."""
    return subprocess.run([sys.executable, "-m", "opinionbench.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def kill_when(cmd: list[str], cwd: Path, ready, timeout: float = 120) -> int:
    """Start `cmd`, SIGKILL it as soon as `ready()` is true (work is half done); return its status."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
