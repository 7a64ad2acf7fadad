"""What the integration tests share: a redis-server of their own, the test servers of
apps/serve.py (each in its own process, on a loopback port), and a wait on a condition.
Nothing here is mocked: real servers, real clients, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SERVE = HERE / "apps" / "serve.py"
SECRET = "integration tests cluster secret"
# Bounds for liveness only: the changes show within a poll window (50 ms) or a cluster
# tick (50 ms) plus a round trip; the bounds leave room for a loaded machine.
WITHIN_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """redis-server on a free loopback port, nothing saved; yields its URL. Its output goes
    to workdir/redis.log, which a failure to start quotes."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (make test-python installs it: deps-redis in mk/deps.mk)")
    log_path = workdir / "redis.log"
    failures = []
    for _ in range(3):
        port = free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline and not accepts(port):
            time.sleep(0.02)
        if proc.poll() is None and accepts(port):
            break
        # Most likely the port was taken between free_port() and the bind: try another.
        proc.kill()
        proc.wait()
        failures.append(f"port {port}: exit {proc.returncode}: {log_path.read_text(errors='replace')}")
    else:
        pytest.fail("redis-server did not start:\n" + "\n".join(failures))
    try:
        yield f"redis://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode is not None, "redis-server stopped"


class Server:
    """One test server (apps/serve.py KIND ARGS) in a process of its own."""

    def __init__(self, kind: str, *args: str) -> None:
        self.kind = kind
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0

    def start(self, port: int = 0) -> Server:
        env = {**os.environ, "PRESENCE_TEST_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), self.kind, *self.args, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.proc.kill()
            raise RuntimeError(f"{self.kind} server did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        return self

    @property
    def ws(self) -> str:
        return "ws" + self.url[4:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=5) as response:
            return json.loads(response.read())

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def until(check: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str) -> None:
    """Waits until `check()` is true; fails after WITHIN_S."""
    deadline = time.monotonic() + WITHIN_S
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WITHIN_S} s: {what}")
        await asyncio.sleep(0.02)


async def http_get(server: Server, path: str) -> Any:
    return await asyncio.to_thread(server.get, path)
