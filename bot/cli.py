"""`switchboard` command line. Library code raises; only this module turns errors into one clear
line on stderr and an exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.errors import ConfigError, SwitchboardError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="switchboard: omnichannel support bot and router")
config_app = typer.Typer(no_args_is_help=True, help="Validate the configuration.")
dl_app = typer.Typer(no_args_is_help=True, help="Inspect and re-queue dead-lettered messages.")
app.add_typer(config_app, name="config")
app.add_typer(dl_app, name="deadletters")
tg_app = typer.Typer(no_args_is_help=True, help="Telegram: register or remove the webhook, show its status.")
app.add_typer(tg_app, name="telegram")
agents_app = typer.Typer(no_args_is_help=True, help="Manage agent accounts of the console.")
app.add_typer(agents_app, name="agents")
db_app = typer.Typer(no_args_is_help=True, help="Ticket database.")
app.add_typer(db_app, name="db")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="config file (default: $SWITCHBOARD_CONFIG or ./config.yaml)")
]


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"switchboard: {msg}", err=True)
    raise typer.Exit(code)


def load(config: Path | None):  # type: ignore[no-untyped-def]
    from bot.config import load_settings

    try:
        return load_settings(config)
    except ConfigError as e:
        fail(f"config error: {e}")


def config_path(config: Path | None) -> Path:
    return Path(config or os.environ.get("SWITCHBOARD_CONFIG") or "config.yaml").resolve()


def _logging(settings, role: str | None = None) -> None:  # type: ignore[no-untyped-def]
    from bot.logs import setup_logging

    fmt = os.environ.get("SWITCHBOARD_LOG_FORMAT") or settings.logging.format
    setup_logging(settings.logging.level, fmt, role)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate config.yaml (unknown keys, wrong types, missing secrets) and print a summary."""
    s = load(config)
    chans = ", ".join(c.type for c in s.channels) or "none"
    typer.echo(f"config OK: {config_path(config)}")
    typer.echo(f"  redis    {s.redis.url}")
    typer.echo(f"  database {s.database.url.split('@')[-1]}")
    typer.echo(f"  nlu      {', '.join(s.nlu.urls)} (threshold {s.nlu.confidence_threshold})")
    typer.echo(f"  web      http://{s.web.host}:{s.web.port}/")
    typer.echo(f"  channels {chans}")


@app.command()
def up(
    config: ConfigOpt = None,
    routers: Annotated[int, typer.Option(help="number of router worker processes")] = 1,
) -> None:
    """Run the whole product: Redis (if none), Rasa, router worker(s), web and channels."""
    from bot.supervisor import Supervisor

    s = load(config)
    try:
        code = asyncio.run(Supervisor(s, config_path(config), routers=routers).run())
    except SwitchboardError as e:
        fail(str(e))
    except Exception as e:  # RasaError and friends
        fail(f"{type(e).__name__}: {e}")
    raise typer.Exit(code)


@app.command()
def run(
    role: Annotated[str, typer.Option(help="router | web")],
    config: ConfigOpt = None,
    port: Annotated[int | None, typer.Option(help="web port (overrides web.port)")] = None,
) -> None:
    """Run one role, e.g. several `--role router` processes sharing the queue."""
    from bot import runtime

    s = load(config)
    _logging(s, role)
    if role == "router":
        asyncio.run(runtime.run_router(s))
    elif role == "web":
        asyncio.run(runtime.run_web(s, port=port))
    else:
        fail(f"--role: unknown role {role!r} (router, web)")


@app.command()
def train(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option(help="train even if the data did not change")] = False,
) -> None:
    """Train the NLU model into models/ (skipped when the data has not changed)."""
    import time

    from bot.runtime import rasa_paths
    from intents.rasa import RasaError
    from intents.rasa import train as do_train

    s = load(config)
    t0 = time.monotonic()
    try:
        model, trained = do_train(rasa_paths(s), force=force)
    except RasaError as e:
        fail(str(e), 1)
    took = time.monotonic() - t0
    typer.echo(f"{'trained' if trained else 'up to date'}: {model} ({took:.1f}s)")


@app.command()
def route(
    config: ConfigOpt = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="JSON lines file (default: stdin)")] = None,
) -> None:
    """Batch routing: JSON lines {channel, user, text} in, one JSON decision per line out."""
    from bot.batch import route_lines

    s = load(config)
    _logging(s.model_copy(update={"logging": s.logging.model_copy(update={"level": "warning"})}))
    src = open(input, encoding="utf-8") if input else sys.stdin  # noqa: SIM115
    try:
        code = asyncio.run(route_lines(s, src, sys.stdout))
    except SwitchboardError as e:
        fail(str(e), 1)
    finally:
        if input:
            src.close()
    raise typer.Exit(code)


@app.command("eval")
def eval_cmd(
    config: ConfigOpt = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="held-out files or folders")] = None,
    min_accuracy: Annotated[float, typer.Option(help="topic accuracy per language")] = 0.92,
    min_handoff_recall: Annotated[float, typer.Option(help="handoff recall per language")] = 1.0,
    max_false_handoff: Annotated[float, typer.Option(help="false-handoff rate per language")] = 0.03,
    min_clarify: Annotated[float, typer.Option(help="clarify rate on out-of-scope messages")] = 0.85,
    errors: Annotated[int, typer.Option(help="show this many misrouted messages")] = 15,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON")] = None,
) -> None:
    """Evaluate routing on the held-out set; exits 1 when a gate threshold is not met."""
    from rich.console import Console
    from rich.table import Table

    from bot.batch import evaluate
    from intents.evaluate import Gate

    s = load(config)
    _logging(s.model_copy(update={"logging": s.logging.model_copy(update={"level": "warning"})}))
    paths = data or [s.path(s.nlu.project_dir) / "eval" / "heldout"]
    try:
        rep, _ = asyncio.run(evaluate(s, paths))
    except (SwitchboardError, ValueError) as e:
        fail(str(e), 2)
    con = Console()
    t = Table("topic", "precision", "recall", "support", title=f"Per topic ({rep.n} held-out messages)")
    for topic, m in rep.per_topic.items():
        t.add_row(topic, f"{m['precision']:.3f}", f"{m['recall']:.3f}", str(int(m["support"])))
    con.print(t)
    t = Table("language", "n", "topic accuracy", "handoff recall", "false handoff", "clarify rate", title="Per language")
    for lang, m in rep.per_lang.items():
        t.add_row(lang, str(int(m["n"])), f"{m['topic_accuracy']:.3f}", f"{m['handoff_recall']:.3f}",
                  f"{m['false_handoff']:.3f}", f"{m['clarify_rate']:.3f}")
    con.print(t)
    if errors and rep.errors:
        t = Table("want", "got", "action", "conf", "text", title="Misrouted (first)")
        for e in rep.errors[:errors]:
            t.add_row(e["want"], e["got"], e["action"], f"{e['confidence']:.2f}", e["text"][:90])
        con.print(t)
    if json_out:
        json_out.write_bytes(__import__("orjson").dumps(rep.to_json(), option=2))
    gate = Gate(min_accuracy, min_handoff_recall, max_false_handoff, min_clarify)
    bad = gate.failures(rep)
    for b in bad:
        typer.echo(f"GATE FAILED: {b}", err=True)
    raise typer.Exit(1 if bad else 0)


@dl_app.command("list")
def deadletters_list(config: ConfigOpt = None, count: int = 50) -> None:
    """Show dead-lettered inbound messages with their error."""
    from rich.console import Console
    from rich.table import Table

    from bot.queue import Queue
    from bot.runtime import connect_redis

    s = load(config)

    async def go():  # type: ignore[no-untyped-def]
        r = connect_redis(s)
        try:
            return await Queue(r, s.queue).dead_letters(count)
        finally:
            await r.aclose()

    items = asyncio.run(go())
    if not items:
        typer.echo("no dead letters")
        return
    t = Table("id", "conversation", "attempts", "error")
    for e in items:
        t.add_row(e.id, e.fields.get("c", ""), e.fields.get("attempts", ""), e.fields.get("error", "")[:120])
    Console().print(t)


@dl_app.command("replay")
def deadletters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="dead-letter ids (default: all)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Re-queue dead letters (all, or the given ids) onto the inbound stream."""
    from bot.queue import Queue
    from bot.runtime import connect_redis

    s = load(config)

    async def go() -> int:
        r = connect_redis(s)
        try:
            return await Queue(r, s.queue).replay(ids or None)
        finally:
            await r.aclose()

    typer.echo(f"re-queued {asyncio.run(go())} message(s)")


def _with_tickets(config: Path | None, fn):  # type: ignore[no-untyped-def]
    from bot.runtime import connect_redis, ticket_service

    s = load(config)

    async def go():  # type: ignore[no-untyped-def]
        r = connect_redis(s)
        svc, engine = await ticket_service(s, r, migrate=True)
        try:
            return await fn(svc)
        finally:
            await engine.dispose()
            await r.aclose()

    return asyncio.run(go())


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply the ticket database migrations (also done at every start)."""

    async def nothing(svc):  # type: ignore[no-untyped-def]
        return None

    _with_tickets(config, nothing)
    typer.echo("database is up to date")


@agents_app.command("add")
def agents_add(
    email: str,
    name: Annotated[str, typer.Option(help="display name")],
    role: Annotated[str, typer.Option(help="agent | supervisor")] = "agent",
    config: ConfigOpt = None,
) -> None:
    """Create an agent; the password is read from $SWITCHBOARD_AGENT_PASSWORD or prompted."""
    from handoff.service import TicketError

    pw = os.environ.get("SWITCHBOARD_AGENT_PASSWORD") or typer.prompt("password", hide_input=True,
                                                                      confirmation_prompt=True)
    try:
        a = _with_tickets(config, lambda svc: svc.add_agent(email, name, pw, role))
    except (TicketError, ValueError) as e:
        fail(str(e))
    typer.echo(f"agent {a.id} created: {a.email} ({a.role})")


@agents_app.command("list")
def agents_list(config: ConfigOpt = None) -> None:
    """List agents."""
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import select

    from handoff.models import Agent

    async def go(svc):  # type: ignore[no-untyped-def]
        async with svc.sm() as s:
            return list((await s.execute(select(Agent).order_by(Agent.id))).scalars())

    t = Table("id", "email", "name", "role", "active")
    for a in _with_tickets(config, go):
        t.add_row(str(a.id), a.email, a.name, a.role, "yes" if a.active else "no")
    Console().print(t)


@agents_app.command("disable")
def agents_disable(email: str, config: ConfigOpt = None) -> None:
    """Disable an agent: signs them out everywhere at once."""
    from sqlalchemy import update

    from handoff.models import Agent

    async def go(svc):  # type: ignore[no-untyped-def]
        async with svc.sm() as s, s.begin():
            res = await s.execute(update(Agent).where(Agent.email == email.strip().lower()).values(active=False))
            return res.rowcount

    if not _with_tickets(config, go):
        fail(f"no agent with email {email}", 1)
    typer.echo(f"agent {email} disabled")


def _telegram(config: Path | None, action: str, drop_pending: bool = False) -> None:
    from channels.telegram import admin

    cfg = load(config).channel("telegram")
    if cfg is None:
        fail("config error: no `type: telegram` entry under channels")
    try:
        if action == "set":
            typer.echo(f"webhook set: {asyncio.run(admin.set_webhook(cfg, drop_pending=drop_pending))}")
        elif action == "delete":
            asyncio.run(admin.delete_webhook(cfg, drop_pending=drop_pending))
            typer.echo("webhook deleted (polling mode can now receive updates)")
        else:
            for k, v in asyncio.run(admin.info(cfg)).items():
                typer.echo(f"{k:16} {v}")
    except SwitchboardError as e:
        fail(str(e), 1)


DropOpt = Annotated[bool, typer.Option("--drop-pending", help="discard updates Telegram has queued")]


@tg_app.command("set-webhook")
def telegram_set_webhook(config: ConfigOpt = None, drop_pending: DropOpt = False) -> None:
    """Register public_url + webhook_path (with the secret token) as the bot's webhook."""
    _telegram(config, "set", drop_pending)


@tg_app.command("delete-webhook")
def telegram_delete_webhook(config: ConfigOpt = None, drop_pending: DropOpt = False) -> None:
    """Remove the webhook (needed before polling mode can receive updates)."""
    _telegram(config, "delete", drop_pending)


@tg_app.command("info")
def telegram_info(config: ConfigOpt = None) -> None:
    """Show the bot's identity and Telegram's view of the webhook (URL, pending, last error)."""
    _telegram(config, "info")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
