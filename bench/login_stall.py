"""/healthz latency while 8 agent sign-ins hash their passwords in parallel (issue #17 item 5).

    python bench/login_stall.py [CODE_ROOT]   # default: this checkout

Starts the web role of CODE_ROOT (e.g. an export of an older commit, to compare) on a free port
with that tree's config.yaml, a temporary SQLite database and the Redis in $SB_MEASURE_REDIS
(default redis://127.0.0.1:6379/15 — it is flushed before the run: use a DB of your own); probes
/healthz back to back during two bursts of 8 wrong-password sign-ins (16 < the per-address limit,
so every one is hashed). Prints median / p90 / max probe latency.
"""
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis

wt = Path(__file__).resolve().parent.parent
root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else wt
REDIS = os.environ.get("SB_MEASURE_REDIS", "redis://127.0.0.1:6379/15")
redis.Redis.from_url(REDIS).flushdb()
tmp = Path(tempfile.mkdtemp())
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    port = _s.getsockname()[1]
env = {**os.environ, "PYTHONPATH": str(root), "SWITCHBOARD_REDIS_URL": REDIS,
       "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/t.db", "SWITCHBOARD_RASA_URL": "http://127.0.0.1:1"}
cfg = tmp / "config.yaml"
text = (root / "config.yaml").read_text().replace("manage: true", "manage: false").replace("start_if_unreachable: true", "start_if_unreachable: false")
for key, rel in (("rasa_venv", ".venv-rasa"), ("project_dir", "intents"), ("model_dir", "models"), ("answers_dir", "intents/answers"), ("data_dir", "data")):
    text = text.replace(f"{key}: {rel}", f"{key}: {wt / rel}")
text = text.replace(f"data_dir: {wt / 'data'}", f"data_dir: {tmp}")
cfg.write_text(text)
exe = str(wt / ".venv/bin/python")
p = subprocess.Popen([exe, "-c", "import sys; from bot.cli import app; sys.argv[0] = \"switchboard\"; app()", "run", "--role", "web", "--port", str(port), "--config", str(cfg)], env=env, cwd=root,
                     stdout=subprocess.DEVNULL, stderr=open(tmp / "web.log", "wb"))

async def main():
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(base + "/healthz") as r:
                    if r.status == 200:
                        break
            except OSError:
                await asyncio.sleep(0.1)
        async def login(i, rnd):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                async with s.get(base + "/agent/login"):
                    pass
                csrf = next(c.value for c in s.cookie_jar if c.key == "sb_login_csrf")
                async with s.post(base + "/agent/login", data={"email": f"nobody{rnd}-{i}@example.com", "password": "x" * 12, "csrf": csrf}, allow_redirects=False) as r:
                    return r.status
        lat = []
        for rnd in range(2):
            tasks = [asyncio.create_task(login(i, rnd)) for i in range(8)]
            while not all(t.done() for t in tasks):
                t0 = time.perf_counter()
                async with http.get(base + "/healthz") as r:
                    await r.read()
                lat.append((time.perf_counter() - t0) * 1000)
            await asyncio.gather(*tasks)
        idle = []
        for _ in range(7):
            t0 = time.perf_counter()
            async with http.get(base + "/healthz") as r:
                await r.read()
            idle.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        print(f"{root}: /healthz during 8 parallel sign-ins (x2, {len(lat)} probes): median {statistics.median(lat):.1f} ms, p90 {lat[int(len(lat)*0.9)]:.1f} ms, max {max(lat):.1f} ms (idle median {statistics.median(idle):.1f} ms)")
try:
    asyncio.run(main())
finally:
    p.terminate()
    p.wait(20)
    redis.Redis.from_url(REDIS).flushdb()
