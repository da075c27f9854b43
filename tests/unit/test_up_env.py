"""`switchboard up` gives its processes one shared Prometheus directory only when there are
several of them (router processes beside the web role); one process keeps its values in memory."""

from __future__ import annotations

from pathlib import Path

from app.up import child_env


def test_router_processes_share_one_emptied_metrics_directory(tmp_path: Path) -> None:
    mp = tmp_path / "metrics"
    mp.mkdir()
    (mp / "counter_123.db").write_bytes(b"left by an earlier run")
    env = child_env({"PATH": "/bin"}, mp, routers=2)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(mp) and env["PATH"] == "/bin"
    assert mp.is_dir() and not any(mp.iterdir())  # an earlier run's values do not count again


def test_one_process_keeps_its_values_in_memory(tmp_path: Path) -> None:
    mp = tmp_path / "metrics"
    env = child_env({"PATH": "/bin", "PROMETHEUS_MULTIPROC_DIR": "/somewhere/else"}, mp, routers=0)
    assert "PROMETHEUS_MULTIPROC_DIR" not in env  # not even one left over in the operator's shell
    assert not mp.exists()
