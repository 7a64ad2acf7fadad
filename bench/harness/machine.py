"""The machine and the versions the report names."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from .core import ROOT


def cmd_out(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            return "not found"
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def machine() -> list[tuple[str, str]]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    redis = cmd_out(["redis-server", "--version"])
    m = re.search(r"v=(\S+)", redis)
    node = cmd_out(["node", "--version"])
    return [
        ("CPU", f"{model}, {os.cpu_count()} cores visible (shared with other work)"),
        ("memory", mem),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("rustc", cmd_out(["rustc", "--version"])),
        ("C compiler", cmd_out(["gcc", "--version"])),
        ("Python", platform.python_version()),
        ("Node", node),
        ("redis-server", m.group(1) if m else redis),
        ("presence-engine", engine_version()),
    ]


def engine_version() -> str:
    try:
        text = (ROOT / "Cargo.toml").read_text()
        v = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    except (OSError, AttributeError):
        v = "?"
    rev = cmd_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if rev == "not found":
        return f"{v} (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "core", "Cargo.toml"],
                           capture_output=True, text=True).stdout.strip()
    return f"{v} (git {rev}{', with uncommitted changes to src/ or core/' if dirty else ''})"
