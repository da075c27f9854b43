"""Train NLU models and run Rasa servers from the Rasa environment (`.venv-rasa`, Python 3.10).

The product never imports Rasa: it runs the `rasa` executable of that environment and talks to
the server over HTTP. Models are named after a hash of the pipeline and training data
(`models/nlu-<hash>.tar.gz`), so training is skipped when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_MARKERS = ("intents", "bot")


class RasaError(Exception):
    pass


@dataclass(frozen=True)
class RasaPaths:
    """Where the Rasa project, its environment and the models live."""

    root: Path  # repo / install root (PYTHONPATH for the custom components)
    venv: Path
    project: Path
    models: Path

    @property
    def rasa_bin(self) -> Path:
        return self.venv / "bin" / "rasa"

    @property
    def config(self) -> Path:
        return self.project / "config.yml"

    @property
    def nlu_data(self) -> Path:
        return self.project / "data" / "nlu"

    def check_env(self) -> None:
        if not self.rasa_bin.exists():
            raise RasaError(
                f"Rasa is not installed at {self.rasa_bin}; run `make .venv-rasa` (needs Python 3.10)"
            )


def data_files(p: RasaPaths) -> list[Path]:
    files = [p.config]
    files += sorted(x for x in p.nlu_data.rglob("*.yml") if x.is_file())
    comp = p.project / "components"
    if comp.is_dir():
        files += sorted(x for x in comp.rglob("*.py") if x.is_file())
    return files


def data_hash(p: RasaPaths) -> str:
    h = hashlib.sha256()
    for f in data_files(p):
        h.update(str(f.relative_to(p.project)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def model_for_data(p: RasaPaths) -> Path:
    return p.models / f"nlu-{data_hash(p)}.tar.gz"


def newest_model(p: RasaPaths) -> Path | None:
    ms = sorted(p.models.glob("*.tar.gz"), key=lambda x: x.stat().st_mtime)
    return ms[-1] if ms else None


# A parse is one small sparse product: BLAS/OpenMP worker threads only spin-wait beside the
# server's event loop. Measured here: 7.1 ms CPU per /model/parse with the default thread pools
# (two busy threads), 3.7 ms with one, at higher throughput — and the second core stays free for
# the router and the web role. Operators may still override these in the environment.
SERVE_THREAD_CAPS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def rasa_env(p: RasaPaths, *, serve: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if serve:
        for k, v in SERVE_THREAD_CAPS.items():
            env.setdefault(k, v)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["PYTHONPATH"] = str(p.root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def train(
    p: RasaPaths,
    *,
    force: bool = False,
    out: Path | None = None,
    name: str | None = None,
    nlu_data: list[Path] | None = None,
    log: IO[str] | None = None,
) -> tuple[Path, bool]:
    """Train an NLU-only model; returns (model path, trained?). Skips when the data is unchanged."""
    p.check_env()
    target = (out or p.models) / (f"{name}.tar.gz" if name else model_for_data(p).name)
    if target.exists() and not force:
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(p.rasa_bin), "train", "nlu",
        "--config", str(p.config),
        "--out", str(target.parent),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]
    for d in nlu_data or [p.nlu_data]:
        cmd += ["--nlu", str(d)]
    stream = log or sys.stderr
    proc = subprocess.Popen(
        cmd, cwd=p.root, env=rasa_env(p), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if any(k in line for k in ("Epochs", "Training", "Finished", "Your Rasa model", "ERROR", "Error")):
            stream.write("  rasa | " + line)
            stream.flush()
    rc = proc.wait()
    if rc != 0 or not target.exists():
        raise RasaError(f"rasa train failed (exit {rc}):\n" + "".join(tail))
    return target, True


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rasa_status(url: str, timeout: float = 1.0) -> dict[str, object] | None:
    import json

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=timeout) as r:  # noqa: S310
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class RasaServer:
    """One `rasa run --enable-api` process serving a model on 127.0.0.1:port."""

    paths: RasaPaths
    model: Path
    port: int
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.paths.check_env()
        cmd = [
            str(self.paths.rasa_bin), "run", "--enable-api",
            "-m", str(self.model), "-p", str(self.port), "-i", "127.0.0.1",
        ]
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=self.paths.root, env=rasa_env(self.paths, serve=True), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self) -> bool:
        st = rasa_status(self.url)
        return bool(st and (st.get("model_file") or st.get("model_id")))

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RasaError(f"rasa exited with code {self.proc.returncode} (see {self.log_path})")
            if self.ready():
                return
            time.sleep(0.5)
        raise RasaError(f"rasa did not become ready within {timeout:.0f}s (see {self.log_path})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def find_python310() -> str | None:
    """Python 3.10 for the Rasa environment: pyenv first, then PATH."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True).stdout.strip()
            candidates += sorted(Path(root, "versions").glob("3.10*/bin/python3.10"), reverse=True)  # type: ignore[arg-type]
        except (subprocess.CalledProcessError, OSError):
            pass
    w = shutil.which("python3.10")
    if w:
        candidates.append(w)
    for c in candidates:
        if Path(c).exists():
            return str(c)
    return None
