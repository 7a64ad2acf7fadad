"""A throwaway redis-server for the suites that need one and for the check."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

from .core import TARGET, log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server is not installed (make bench installs it with apt-get)")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
             "--loglevel", "warning", "--dir", str(TARGET)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"redis-server exited with {self.proc.returncode} at start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        log(f"redis-server pid {self.proc.pid} on 127.0.0.1:{self.port}")
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise SystemExit("redis-server did not answer PING within 10 s")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log(f"redis-server pid {self.proc.pid} stopped")
