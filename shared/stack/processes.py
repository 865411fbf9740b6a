"""Child processes that die with their parent, and a tiny HTTP probe."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["free_port", "http_status", "spawn", "stop_process", "wait_port"]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: the child gets SIGTERM if the launcher dies, even by SIGKILL, so nothing is orphaned.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], *, env: Mapping[str, str], log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a child that receives SIGTERM when this process dies; output to ``log_path`` (or inherited)."""
    out: IO[bytes] | int | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - argv is built by the launcher, not from user input
            list(argv),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if os.name == "posix" else None,  # noqa: PLW1509 - only calls prctl
        )
    finally:
        if hasattr(out, "close"):
            out.close()  # type: ignore[union-attr]


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 20.0, signalled: bool = False) -> int | None:
    """SIGTERM (once: unless ``signalled`` already), wait up to ``timeout`` for a graceful exit, then SIGKILL.

    A second SIGTERM is never sent: it would interrupt the graceful shutdown the first one started.
    """
    if proc.poll() is None:
        if not signalled:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


async def wait_port(host: str, port: int, *, timeout: float) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            await asyncio.sleep(0.1)
        else:
            writer.close()
            return


async def http_status(host: str, port: int, path: str, *, timeout: float = 2.0) -> int:
    """Status code of a GET, or 0 when nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 else 0
    except (OSError, TimeoutError, ValueError):
        return 0
    finally:
        writer.close()
