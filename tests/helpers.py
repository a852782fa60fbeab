"""Helpers the fault tests share: real processes (Redis, the worker, web servers) that a test starts,
stops and kills."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from app.config import Settings
from tests.test_bus import _free_port, _wait_for_port, redis_server
from tests.test_live_ws import require_redis_server

ROOT = Path(__file__).resolve().parents[1]


class RedisProcess:
    """A redis-server of the test's own on a free port, which the test stops and starts again
    (without persistence, so a restart loses every key, as a Redis that crashed would)."""

    def __init__(self) -> None:
        require_redis_server()
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._running = ExitStack()

    async def start(self) -> None:
        self._running.enter_context(redis_server(self.port))
        await _wait_for_port(self.port)

    def stop(self) -> None:
        self._running.close()


def process_env(settings: Settings, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a production process on the test's database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "TEST_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        SECRET_KEY=settings.secret_key,
        COOKIE_SECURE="false",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def procfile_command(kind: str) -> list[str]:
    """The Procfile's command for a kind of process, with the shell's ``${VAR:-default}``s filled in
    from the environment the test passes (``$PORT`` must be set there)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return shlex.split(command)
    raise AssertionError(f"no {kind}: line in the Procfile")


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    expanded = [_expand(part, env) for part in command]
    with log.open("wb") as out:
        return subprocess.Popen(
            expanded, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _expand(part: str, env: dict[str, str]) -> str:
    """``${NAME:-default}`` and ``$NAME`` as a shell would expand them from ``env``."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+):-([^}]*)\}|\$(\w+)", value, part)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and every process it started (its session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


async def answers(url: str, path: str = "/healthz") -> bool:
    """Whether a web process answers 200 on ``path`` (``/readyz``: database and bus are up too)."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{url}{path}")).status_code == 200
    except httpx.HTTPError:
        return False
