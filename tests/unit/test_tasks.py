"""The task supervisor: a crashed task is restarted; one that keeps failing stops the role."""

from __future__ import annotations

import asyncio

import pytest

from bot.tasks import TaskFailed, TaskSupervisor


async def test_a_crashed_task_is_restarted_and_keeps_its_work_going() -> None:
    sup = TaskSupervisor(backoff_base=0.01, backoff_cap=0.02)
    runs: list[int] = []
    done = asyncio.Event()

    async def work() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise LookupError("a bug that happens twice")
        done.set()
        await sup.stop.wait()

    sup.start("worker", work)
    await asyncio.wait_for(done.wait(), 5)
    [status] = sup.status(stale_s=30)
    assert status["alive"] and status["restarts"] == 2 and status["last_error"].startswith("LookupError")
    await sup.close()


async def test_a_task_that_keeps_failing_stops_the_role_with_an_error() -> None:
    sup = TaskSupervisor(max_failures=3, backoff_base=0.01, backoff_cap=0.02)

    async def broken() -> None:
        raise RuntimeError("always")

    async def fine() -> None:
        await sup.stop.wait()

    sup.start("broken", broken)
    sup.start("fine", fine)
    await asyncio.wait_for(sup.wait(), 5)  # the role is asked to stop
    with pytest.raises(TaskFailed, match="task broken kept failing: RuntimeError: always"):
        await sup.close()


async def test_a_task_that_returns_while_the_role_runs_is_restarted() -> None:
    sup = TaskSupervisor(backoff_base=0.01, backoff_cap=0.02)
    runs: list[int] = []

    async def quits() -> None:
        runs.append(1)
        if len(runs) >= 2:
            await sup.stop.wait()

    sup.start("quits", quits)
    for _ in range(100):
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.01)
    assert sup.status(30)[0]["last_error"] == "ended unexpectedly"
    await sup.close()


async def test_a_channel_task_that_dies_with_an_error_stops_the_role_loudly() -> None:
    """A poller created by a channel cannot be restarted by the role: its crash stops the role with
    an error (the process gets restarted) instead of leaving the channel silently deaf."""
    sup = TaskSupervisor()

    async def poller() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionResetError("the poll loop had a bug")

    async def helper() -> None:
        return None  # a short task that just finishes: not a failure

    sup.adopt("telegram:poll", asyncio.get_running_loop().create_task(poller()))
    sup.adopt("telegram:helper", asyncio.get_running_loop().create_task(helper()))
    await asyncio.wait_for(sup.wait(), 5)
    statuses = {s["name"]: s for s in sup.status(30)}
    assert not statuses["telegram:poll"]["alive"] and "the poll loop had a bug" in statuses["telegram:poll"]["last_error"]
    assert "telegram:helper" not in statuses  # finished its work: nothing to report
    with pytest.raises(TaskFailed, match="telegram:poll"):
        await sup.close()
