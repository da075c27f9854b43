"""The container images as an operator runs them: built by scripts/image.sh (`make image`),
started with podman — router and web from the product image against the test Redis and
PostgreSQL, Rasa from its own image with the trained model baked in — configured through
environment variables only, and a widget message gets the bot's answer."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis

from tests.conftest import PG_URL, REDIS_URL, ROOT, free_port, reset_postgres

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

TAG = os.environ.get("SWITCHBOARD_TEST_IMAGE_TAG", "test")
PRODUCT = f"localhost/switchboard:{TAG}"
RASA = f"localhost/switchboard-rasa:{TAG}"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
PODMAN = ["podman", "--runtime", shutil.which("runc") or "/usr/sbin/runc", "--cgroup-manager=cgroupfs"]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], env=ENV, capture_output=True, text=True, check=check, timeout=timeout)


def logs(name: str) -> str:
    return podman("logs", "--tail", "40", name, check=False).stdout + podman("logs", "--tail", "40", name, check=False).stderr


def remove_orphans() -> None:
    """Containers of an earlier run of this test that was killed before its teardown (they would
    hold ports and a Rasa's memory): named sb-test-<pid>-…, removed when that pid is gone."""
    names = podman("ps", "-a", "--filter", "name=^sb-test-", "--format", "{{.Names}}", check=False).stdout.split()
    for n in names:
        pid = n.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            podman("rm", "-f", "-t", "0", n, check=False)


def wait_ready(web_url: str, containers: list[str], limit_s: float) -> None:
    """Until the web role's /readyz answers 200; fails at once when a container has exited."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            with urllib.request.urlopen(f"{web_url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        for n in containers:
            state = podman("inspect", "--format", "{{.State.Running}}", n, check=False).stdout.strip()
            assert state == "true", f"{n} is not running:\n{logs(n)}"
        assert time.monotonic() < deadline, f"not ready in {limit_s:.0f} s:\n" + "\n".join(logs(n) for n in containers)
        time.sleep(1)


@pytest.fixture(scope="module")
def images(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Both images, built the way `make image` builds them (cached layers: seconds when only
    the code or the model changed)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: `make sysdeps` (scripts/sysdeps.sh) installs podman, runc, debootstrap")
    background = os.environ.get("SWITCHBOARD_TEST_IMAGE_BUILD", "")
    if background not in ("", "0"):  # scripts/run-tests.sh started the build before the tests
        done_file, log = Path(background) / "rc", Path(background) / "log"
        deadline = time.monotonic() + 3600
        while not done_file.exists():
            assert time.monotonic() < deadline, f"the background image build did not finish:\n{log.read_text()[-4000:]}"
            time.sleep(2)
        text = log.read_text()
        assert done_file.read_text().strip() == "0", f"image build failed:\n{text[-4000:]}"
        assert f"({Path(str(trained_model)).name})" in text, f"the build baked another model than {trained_model}:\n{text[-2000:]}"
        return
    log = tmp_path_factory.mktemp("image") / "build.log"
    with open(log, "wb") as out:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "image.sh")], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              env={**ENV, "MODEL": str(trained_model), "IMAGE_TAG": TAG}, timeout=3600)
    assert done.returncode == 0, f"image build failed:\n{log.read_text()[-4000:]}"


@pytest.fixture(scope="module")
def stack(images: None) -> Iterator[dict[str, str]]:
    """Rasa, router and web containers on the host network (free ports), configured by env."""
    remove_orphans()
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    asyncio.run(reset_postgres(PG_URL))
    rasa_port, web_port = free_port(), free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    prefix = f"sb-test-{os.getpid()}"
    names = {"rasa": f"{prefix}-rasa", "router": f"{prefix}-router", "web": f"{prefix}-web"}
    common = ["run", "-d", "--network=host", "--health-interval=disable"]
    env = ["-e", f"SWITCHBOARD_REDIS_URL={REDIS_URL}", "-e", f"SWITCHBOARD_RASA_URL={rasa_url}",
           "-e", f"SWITCHBOARD_DATABASE_URL={PG_URL}"]
    try:
        # Host network, so listen on loopback only (the images default to 0.0.0.0).
        podman(*common, "--name", names["rasa"], "-e", f"HEALTHCHECK_URL={rasa_url}/", RASA,
               "--port", str(rasa_port), "--interface", "127.0.0.1", "--model", "/app/models")
        podman(*common, "--name", names["router"], *env, PRODUCT, "run", "--role", "router")
        podman(*common, "--name", names["web"], *env, "-e", f"SWITCHBOARD_WEB_PORT={web_port}", "-e", "SWITCHBOARD_WEB_HOST=127.0.0.1",
               "-e", f"HEALTHCHECK_URL=http://127.0.0.1:{web_port}/healthz", PRODUCT, "run", "--role", "web")
        web_url = f"http://127.0.0.1:{web_port}"
        wait_ready(web_url, list(names.values()), 180)  # Rasa loads TensorFlow and the model: ~25 s here
        yield {**names, "web_url": web_url, "rasa_url": rasa_url}
    finally:
        for n in names.values():
            podman("rm", "-f", "-t", "5", n, check=False)
        r.flushdb()
        r.close()


async def test_widget_message_is_answered_by_the_containers(stack: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(stack["web_url"] + "/readyz") as resp:
            checks = (await resp.json())["checks"]
            assert resp.status == 200 and checks["redis"] == "ok" and checks["nlu"] == "ok"
        async with http.ws_connect(stack["web_url"] + "/ws/chat") as ws:
            await ws.send_str(orjson.dumps({"type": "hello", "session": None, "last_seen": None, "lang": "en"}).decode())
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            await ws.send_str('{"type":"message","client_id":"c1","text":"How do I deposit USDT on TRC20?"}')
            async with asyncio.timeout(30):
                while True:
                    m = await ws.receive_json()
                    if m["type"] == "event" and m.get("kind") == "bot":
                        break
    assert "USDT" in m["text"] or "TRC20" in m["text"], m
    # The router container answered (it is the only consumer of this Redis DB's queue).
    consumers = redis.Redis.from_url(REDIS_URL, decode_responses=True).xinfo_consumers("inbound", "routers")
    assert consumers and sum(c["pending"] for c in consumers) == 0


async def widget_answer(web_url: str, text: str) -> str:
    async with aiohttp.ClientSession() as http, http.ws_connect(web_url + "/ws/chat") as ws:
        await ws.send_str(orjson.dumps({"type": "hello", "session": None, "last_seen": None, "lang": "en"}).decode())
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        await ws.send_str(orjson.dumps({"type": "message", "client_id": "k1", "text": text}).decode())
        async with asyncio.timeout(30):
            while True:
                m = await ws.receive_json()
                if m["type"] == "event" and m.get("kind") == "bot":
                    return str(m["text"])


def test_kubernetes_config_runs_on_a_read_only_root(stack: dict[str, str], tmp_path: Path) -> None:
    """The web role as deploy/k8s runs it: the ConfigMap's config.yaml mounted read-only, secrets
    as environment variables, a read-only root filesystem with only /tmp and /app/data writable."""
    port = free_port()
    name = stack["web"] + "-k8s"
    config = ROOT / "deploy" / "k8s" / "base" / "config.yaml"
    data = tmp_path / "data"  # the pod's emptyDir, writable by the pod's fsGroup
    data.mkdir()
    os.chown(data, 10001, 10001)
    try:
        podman("run", "-d", "--network=host", "--health-interval=disable", "--name", name, "--read-only",
               "--tmpfs", "/tmp", "-v", f"{data}:/app/data",
               "-v", f"{config}:/etc/switchboard/config.yaml:ro", "-e", "SWITCHBOARD_CONFIG=/etc/switchboard/config.yaml",
               "-e", f"SWITCHBOARD_REDIS_URL={REDIS_URL}", "-e", f"SWITCHBOARD_DATABASE_URL={PG_URL}",
               "-e", f"SWITCHBOARD_RASA_URL={stack['rasa_url']}", "-e", f"SWITCHBOARD_WEB_PORT={port}",
               "-e", "SWITCHBOARD_METRICS_TOKEN=" + "m" * 32,  # every key of secrets.example.env
               PRODUCT, "run", "--role", "web")
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, [name], 60)
        reply = asyncio.run(widget_answer(url, "What is the maker fee for spot trading?"))
        assert "fee" in reply.lower() or "费" in reply, reply
        assert '"event"' in logs(name)  # JSON log lines (logging.format: json)
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


def test_containers_run_as_non_root_and_report_healthy(stack: dict[str, str]) -> None:
    assert podman("exec", stack["web"], "id", "-u").stdout.strip() == "10001"
    assert podman("exec", stack["router"], "id", "-u").stdout.strip() == "10001"
    assert podman("exec", stack["rasa"], "id", "-u").stdout.strip() == "10002"
    for n in ("web", "rasa"):  # the image's own HEALTHCHECK command
        done = podman("healthcheck", "run", stack[n], check=False)
        assert done.returncode == 0, f"{n}: {done.stdout}{done.stderr}"


@pytest.mark.parametrize(("image", "installed", "locks"), [
    (PRODUCT, "/opt/venv/installed.txt", ["requirements/product.lock", "deploy/debian-python.lock"]),
    (RASA, "/opt/rasa/installed.txt", ["requirements/rasa.lock"]),
])
def test_every_installed_package_is_the_locked_version(images: None, image: str, installed: str, locks: list[str],
                                                       tmp_path: Path) -> None:
    (tmp_path / "installed.txt").write_text(podman("run", "--rm", "--entrypoint", "cat", image, installed).stdout)
    assert len((tmp_path / "installed.txt").read_text().splitlines()) > 20
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_pins.py"), str(tmp_path / "installed.txt"),
                           *(str(ROOT / lock) for lock in locks)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_roles_stop_cleanly_on_sigterm(stack: dict[str, str]) -> None:
    """`podman stop` (like Kubernetes) sends SIGTERM: the roles finish and exit 0 well before
    the grace period, instead of being killed (137)."""
    for n in ("router", "web"):
        t0 = time.monotonic()
        podman("stop", "-t", "30", stack[n], timeout=60)
        took = time.monotonic() - t0
        code = podman("inspect", "--format", "{{.State.ExitCode}}", stack[n]).stdout.strip()
        assert code == "0", f"{n} exited {code} after {took:.1f} s:\n{logs(n)}"
