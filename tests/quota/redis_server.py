"""A real ``redis-server`` for the tests: on a free loopback port, in a temporary folder.

Tests that need one fail (not skip) when the program is missing: CI installs it
(``tools/debian-packages.txt``), so a missing server is a broken machine, not a reason to
test less.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; ``stop`` and ``start`` again keep its port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        program = shutil.which("redis-server")
        if program is None:
            pytest.fail("redis-server is not installed: apt-get install redis-server"
                        " (it is listed in tools/debian-packages.txt)")
        self.program = program
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.program, "--port", str(self.port), "--bind", "127.0.0.1",
             # Counters survive a stop and start (an append-only file in the folder).
             "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
             "--daemonize", "no", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
        )
        log.close()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                             socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.process.poll() is not None:
                    log_text = (self.folder / "redis.log").read_text(errors="replace")
                    pytest.fail(f"redis-server exited at start:\n{log_text[-2000:]}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} did not answer in"
                                f" {START_TIMEOUT_S}s")
                time.sleep(0.02)
        finally:
            client.close()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang until ``resume``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
