"""`switchboard` command line. Library code raises; only this module turns errors into one clear
line on stderr and an exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bot.errors import ConfigError, SwitchboardError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="switchboard: omnichannel support bot and router")
config_app = typer.Typer(no_args_is_help=True, help="Validate the configuration.")
dl_app = typer.Typer(no_args_is_help=True, help="Dead letters of every stream: list, show, replay, drop.")
app.add_typer(config_app, name="config")
app.add_typer(dl_app, name="deadletters")
tg_app = typer.Typer(no_args_is_help=True, help="Telegram: register or remove the webhook, show its status.")
app.add_typer(tg_app, name="telegram")
agents_app = typer.Typer(no_args_is_help=True, help="Manage agent accounts of the console.")
app.add_typer(agents_app, name="agents")
db_app = typer.Typer(no_args_is_help=True, help="Ticket database.")
review_app = typer.Typer(help="Review misunderstood messages and label them for retraining.")
app.add_typer(review_app, name="review")
app.add_typer(db_app, name="db")
email_app = typer.Typer(no_args_is_help=True, help="E-mail: see how saved mails would be read.")
app.add_typer(email_app, name="email")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="config file (default: $SWITCHBOARD_CONFIG or ./config.yaml)")
]


def fail(msg: str, code: int = 2) -> NoReturn:
    typer.echo(f"switchboard: {msg}", err=True)
    raise typer.Exit(code)


def load(config: Path | None):
    from bot.config import load_settings

    try:
        return load_settings(config)
    except ConfigError as e:
        fail(f"config error: {e}")


def config_path(config: Path | None) -> Path:
    return Path(config or os.environ.get("SWITCHBOARD_CONFIG") or "config.yaml").resolve()


def _logging(settings, role: str | None = None) -> None:
    from bot.logs import setup_logging

    fmt = os.environ.get("SWITCHBOARD_LOG_FORMAT") or settings.logging.format
    setup_logging(settings.logging.level, fmt, role)


@email_app.command("inspect")
def email_inspect(
    files: Annotated[list[str], typer.Argument(help="saved mails (.eml); - reads one mail from stdin")],
    config: ConfigOpt = None,
    address: Annotated[str | None, typer.Option(help="our support address (default: from the config)")] = None,
) -> None:
    """One JSON line per mail: verdict (customer | auto_reply | bounce | list | loop | unparseable)
    and why, sender and whether it is verified, thread key, language, the text the bot would read,
    attachments and which would be stored. Needs no servers."""
    from channels.email.cli import inspect_command

    try:
        code = inspect_command(files, config, address, sys.stdin.buffer, sys.stdout)
    except ConfigError as e:
        fail(f"config error: {e}")
    raise typer.Exit(code)


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
    routers: Annotated[int, typer.Option(
        help="router worker processes beside the web role; 0: the router runs in the web role's process")] = 0,
) -> None:
    """Run the whole product: Redis (if none), Rasa, router worker(s), web and channels."""
    from app.up import Supervisor

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
    role: Annotated[str, typer.Option(help="router | web | web+router (both in one process)")],
    config: ConfigOpt = None,
    port: Annotated[int | None, typer.Option(help="web port (overrides web.port)")] = None,
) -> None:
    """Run one role, e.g. several `--role router` processes sharing the queue."""
    from app import roles, runtime

    s = load(config)
    _logging(s, role)
    from bot.tasks import TaskFailed

    try:
        if role == "router":
            try:
                runtime.answers(s)
            except ConfigError as e:
                fail(f"config error: {e}")
            runtime.run_loop(roles.run_router(s))
        elif role == "web":
            runtime.run_loop(roles.run_web(s, port=port))
        elif role == "web+router":
            try:
                runtime.answers(s)
            except ConfigError as e:
                fail(f"config error: {e}")
            runtime.run_loop(roles.run_web_and_router(s, port=port))
        else:
            fail(f"--role: unknown role {role!r} (router, web, web+router)")
    except TaskFailed as e:
        fail(f"{role}: {e}", 1)


@app.command()
def train(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option(help="train even if the data did not change")] = False,
) -> None:
    """Train the NLU model into models/ (skipped when the data has not changed)."""
    import time

    from app.runtime import rasa_paths
    from intents.ops import write_meta
    from intents.rasa import RasaError, data_hash
    from intents.rasa import train as do_train

    s = load(config)
    paths = rasa_paths(s)
    t0 = time.monotonic()
    try:
        model, trained = do_train(paths, force=force)
    except RasaError as e:
        fail(str(e), 1)
    took = time.monotonic() - t0
    if trained:
        write_meta(model, data_hash=data_hash(paths), training_s=round(took, 1),
                   trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    typer.echo(f"{'trained' if trained else 'up to date'}: {model} ({took:.1f}s)")
    typer.echo(f"next: switchboard eval --compare {model.name.removesuffix('.tar.gz')}")


@app.command()
def route(
    config: ConfigOpt = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="JSON lines file (default: stdin)")] = None,
) -> None:
    """Batch routing: JSON lines {channel, user, text} in, one JSON decision per line out."""
    from app.batch import route_lines

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


@app.command("redact")
def redact_cmd(
    input: Annotated[Path | None, typer.Option("--input", "-i", help="file to read (default: stdin)")] = None,
    fail_on_secret: Annotated[bool, typer.Option(help="exit 1 when any secret was found")] = False,
) -> None:
    """Redact plain lines or JSON lines ({"text": ...}): same format out; kinds found per line
    (JSON: under "redacted"; plain: on stderr)."""
    from bot.redact.scrub import scrub

    try:
        src = open(input, encoding="utf-8", errors="surrogateescape") if input else sys.stdin  # noqa: SIM115
    except OSError as e:
        fail(f"cannot read {input}: {e.strerror}")
    try:
        stats = scrub(src, sys.stdout, sys.stderr)
    finally:
        if input:
            src.close()
    kinds = ", ".join(f"{k} {n}" for k, n in stats.kinds.most_common()) or "none"
    typer.echo(f"{stats.lines} line(s), {stats.changed} with secrets ({kinds})", err=True)
    raise typer.Exit(1 if fail_on_secret and stats.changed else 0)


@app.command("eval")
def eval_cmd(
    config: ConfigOpt = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="held-out files or folders")] = None,
    min_accuracy: Annotated[float, typer.Option(help="topic accuracy per language")] = 0.92,
    min_handoff_recall: Annotated[float, typer.Option(help="handoff recall per language")] = 1.0,
    max_false_handoff: Annotated[float, typer.Option(help="false-handoff rate per language")] = 0.03,
    min_clarify: Annotated[float, typer.Option(help="clarify rate on out-of-scope messages")] = 0.85,
    min_offtopic_clarify: Annotated[float, typer.Option(help="clarify rate on the off-topic section")] = 0.90,
    max_offtopic_handoff: Annotated[float, typer.Option(help="handoff rate on the off-topic section")] = 0.01,
    errors: Annotated[int, typer.Option(help="show this many misrouted messages")] = 15,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON")] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="candidate model version to compare with the live one")] = None,
    tolerance: Annotated[float, typer.Option(help="allowed topic-accuracy drop for --compare")] = 0.01,
) -> None:
    """Evaluate routing on the held-out set; exits 1 when a gate threshold is not met.

    With --compare VERSION: the candidate against the live model on the held-out set and the newly
    labelled messages; refuses (exit 1) if handoff recall drops or topic accuracy falls by more than
    the tolerance, and prints the per-topic diff."""
    if compare:
        _compare(config, compare, tolerance, data)
        return
    from rich.console import Console
    from rich.table import Table

    from app.batch import evaluate
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
    if rep.offtopic:
        t = Table("language", "n", "clarify rate", "false handoff", "answered", title="Off-topic section")
        for lang, m in rep.offtopic.items():
            t.add_row(lang, str(int(m["n"])), f"{m['clarify_rate']:.3f}", f"{m['false_handoff']:.3f}",
                      f"{m['answered']:.3f}")
        con.print(t)
    if errors and rep.errors:
        t = Table("want", "got", "action", "conf", "text", title="Misrouted (first)")
        for err in rep.errors[:errors]:
            t.add_row(err["want"], err["got"], err["action"], f"{err['confidence']:.2f}", err["text"][:90])
        con.print(t)
    if errors and rep.offtopic_errors:
        t = Table("action", "got", "conf", "text", title="Off-topic, not clarified (first)")
        for err in rep.offtopic_errors[:errors]:
            t.add_row(err["action"], err["got"], f"{err['confidence']:.2f}", err["text"][:90])
        con.print(t)
    if json_out:
        json_out.write_bytes(__import__("orjson").dumps(rep.to_json(), option=2))
    gate = Gate(min_accuracy, min_handoff_recall, max_false_handoff, min_clarify, min_offtopic_clarify,
                max_offtopic_handoff)
    bad = gate.failures(rep)
    for b in bad:
        typer.echo(f"GATE FAILED: {b}", err=True)
    raise typer.Exit(1 if bad else 0)


def _compare(config: Path | None, version: str, tolerance: float, data: list[Path] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from app.batch import ensure_rasa, evaluate
    from app.runtime import rasa_paths
    from intents.evaluate import Gate
    from intents.ops import find_model, live_version, write_meta
    from intents.rasa import RasaServer, free_port

    s = load(config)
    _logging(s.model_copy(update={"logging": s.logging.model_copy(update={"level": "warning"})}))
    paths = rasa_paths(s)
    try:
        cand = find_model(paths, version)
    except FileNotFoundError as e:
        fail(str(e), 2)
    heldout = data or [s.path(s.nlu.project_dir) / "eval" / "heldout"]
    reviewed = _reviewed_items(paths)
    con = Console()

    def run_on(url: str):
        rep, _ = asyncio.run(evaluate(s, heldout, url))
        new = asyncio.run(evaluate(s, [reviewed], url))[0] if reviewed.exists() else None
        return rep, new

    live_url, live_server = ensure_rasa(s)
    cand_server = RasaServer(paths, cand, free_port(), log_path=s.path(s.data_dir) / "logs" / "rasa-candidate.log")
    typer.echo(f"starting the candidate {cand.name} (~20 s)…", err=True)
    try:
        cand_server.start()
        cand_server.wait_ready(300)
        live_rep, live_new = run_on(live_url)
        cand_rep, cand_new = run_on(cand_server.url)
    finally:
        cand_server.stop()
        if live_server is not None:
            live_server.stop()
    t = Table("topic", "live recall", "candidate recall", "Δ", title=f"Per topic: live {live_version(paths) or '(running)'} vs {cand.name}")
    for topic in sorted(set(live_rep.per_topic) | set(cand_rep.per_topic)):
        a = live_rep.per_topic.get(topic, {}).get("recall", 0.0)
        b = cand_rep.per_topic.get(topic, {}).get("recall", 0.0)
        t.add_row(topic, f"{a:.3f}", f"{b:.3f}", f"{b - a:+.3f}")
    con.print(t)
    t = Table("language", "metric", "live", "candidate", "Δ", title="Gate metrics")
    problems = []
    for lang in sorted(cand_rep.per_lang):
        for metric in ("topic_accuracy", "handoff_recall", "false_handoff", "clarify_rate"):
            a = live_rep.per_lang.get(lang, {}).get(metric, 0.0)
            b = cand_rep.per_lang[lang][metric]
            t.add_row(lang, metric, f"{a:.3f}", f"{b:.3f}", f"{b - a:+.3f}")
        if cand_rep.per_lang[lang]["handoff_recall"] < live_rep.per_lang.get(lang, {}).get("handoff_recall", 0.0):
            problems.append(f"{lang}: handoff recall dropped")
        if cand_rep.per_lang[lang]["topic_accuracy"] < live_rep.per_lang.get(lang, {}).get("topic_accuracy", 0.0) - tolerance:
            problems.append(f"{lang}: topic accuracy fell by more than {tolerance}")
    for lang in sorted(cand_rep.offtopic):
        for metric in ("clarify_rate", "false_handoff"):
            a = live_rep.offtopic.get(lang, {}).get(metric, 0.0)
            b = cand_rep.offtopic[lang][metric]
            t.add_row(lang, f"off-topic {metric}", f"{a:.3f}", f"{b:.3f}", f"{b - a:+.3f}")
        fho = cand_rep.offtopic[lang]["false_handoff"]
        if fho > Gate.offtopic_false_handoff and fho > live_rep.offtopic.get(lang, {}).get("false_handoff", 1.0):
            problems.append(f"{lang}: more off-topic messages handed to a person ({fho:.3f})")
    con.print(t)
    if cand_new is not None and live_new is not None:
        a = sum(m["topic_accuracy"] * m["n"] for m in live_new.per_lang.values()) / max(1, live_new.n)
        b = sum(m["topic_accuracy"] * m["n"] for m in cand_new.per_lang.values()) / max(1, cand_new.n)
        con.print(f"newly labelled messages ({cand_new.n}): topic accuracy live {a:.3f} → candidate {b:.3f}")
    verdict = "refused" if problems else "passed"
    write_meta(cand, gate=verdict, metrics=cand_rep.per_lang, gate_problems=problems)
    for pbl in problems:
        typer.echo(f"GATE REFUSED: {pbl}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"gate passed: deploy with `switchboard deploy {cand.name.removesuffix('.tar.gz')}`")


def _reviewed_items(paths) -> Path:
    """The accepted review labels as a JSONL eval file (text, lang, topic, intent)."""
    import tempfile

    import orjson
    import yaml

    from bot.policy import topic_of
    from intents.ops import REVIEWED

    out = Path(tempfile.mkdtemp(prefix="sb-reviewed-")) / "reviewed.jsonl"
    lines = []
    for lang in ("en", "zh"):
        f = paths.nlu_data / lang / REVIEWED
        if not f.exists():
            continue
        for b in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for ex in str(b["examples"]).splitlines():
                ex = ex.strip().removeprefix("- ").strip()
                if ex:
                    lines.append(orjson.dumps({"text": ex, "lang": lang, "topic": topic_of(b["intent"]),
                                               "intent": b["intent"]}).decode())
    if lines:
        out.write_text("\n".join(lines) + "\n")
    return out


@review_app.callback(invoke_without_command=True)
def review_list(
    ctx: typer.Context,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(help="groups to show")] = 30,
) -> None:
    """Show the most frequent misunderstood messages, grouped, with a suggested intent."""
    if ctx.invoked_subcommand:
        return
    from rich.console import Console
    from rich.table import Table

    from app.review import gather

    s = load(config)
    groups = asyncio.run(gather(s))
    if not groups:
        typer.echo("nothing to review")
        return
    t = Table("#", "n", "lang", "message (redacted)", "bot said", "suggested", "evidence",
              title=f"Review queue — {len(groups)} group(s)")
    for i, g in enumerate(groups[:limit], 1):
        t.add_row(str(i), str(g.count), g.lang, g.text[:70], g.predicted or "", g.suggested or "—",
                  ",".join(g.sources))
    Console().print(t)
    typer.echo('accept: switchboard review accept "<message>" --intent <intent>   discard: switchboard review discard "<message>"')


@review_app.command("accept")
def review_accept(
    text: str,
    intent: Annotated[str, typer.Option(help="the correct intent")],
    lang: Annotated[str | None, typer.Option(help="en | zh (default: detected)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Add a message to the training data as an example of INTENT (deduplicated)."""
    from app.review import resolve
    from bot.lang import detect_language
    from bot.redact import redact

    s = load(config)
    clean = redact(text).text
    try:
        added = asyncio.run(resolve(s, clean, intent=intent, lang=lang or detect_language(clean)))
    except ValueError as e:
        fail(str(e))
    typer.echo("added to the training data; run `switchboard train`" if added else "already in the training data")


@review_app.command("discard")
def review_discard(text: str, config: ConfigOpt = None) -> None:
    """Drop a message from the review queue without labelling it."""
    from app.review import resolve
    from bot.lang import detect_language

    s = load(config)
    asyncio.run(resolve(s, text, intent=None, lang=detect_language(text)))
    typer.echo("discarded")


@app.command()
def models(config: ConfigOpt = None) -> None:
    """List trained model versions (the live one marked)."""
    from rich.console import Console
    from rich.table import Table

    from app.runtime import rasa_paths
    from intents.ops import list_models

    t = Table("", "version", "trained", "training s", "gate", "data hash")
    for m in list_models(rasa_paths(load(config))):
        from intents.ops import read_meta

        meta = read_meta(Path(m["path"]))
        t.add_row("●" if m["live"] else "", m["version"], m["trained_at"], str(m["training_s"] or ""),
                  str(meta.get("gate", "")), str(m["data_hash"] or ""))
    Console().print(t)


@app.command()
def deploy(
    version: Annotated[str | None, typer.Argument(help="model version (default: the one for the current data)")] = None,
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option(help="deploy even if the gate did not pass it")] = False,
) -> None:
    """Load a model on every configured Rasa server, one at a time, with no downtime."""
    from app.runtime import rasa_paths
    from intents.ops import DeployError, find_model, read_meta, set_live
    from intents.ops import deploy as do_deploy
    from intents.rasa import model_for_data

    s = load(config)
    paths = rasa_paths(s)
    try:
        model = find_model(paths, version) if version else model_for_data(paths)
    except FileNotFoundError as e:
        fail(str(e), 2)
    if not model.exists():
        fail(f"{model.name} is not trained; run `switchboard train`", 2)
    gate = read_meta(model).get("gate")
    if gate != "passed" and not force:
        fail(f"{model.name}: the gate has not passed it (gate: {gate or 'not run'}); run "
             f"`switchboard eval --compare {model.name.removesuffix('.tar.gz')}` or use --force", 1)
    try:
        do_deploy(list(s.nlu.urls), model, log=lambda m: typer.echo(m, err=True))
    except DeployError as e:
        fail(str(e), 1)
    set_live(paths, model.name.removesuffix(".tar.gz"))
    typer.echo(f"live: {model.name.removesuffix('.tar.gz')}")


@app.command()
def rollback(config: ConfigOpt = None) -> None:
    """Deploy the previously live model again."""
    from app.runtime import rasa_paths
    from intents.ops import DeployError, find_model, previous_version, set_live
    from intents.ops import deploy as do_deploy

    s = load(config)
    paths = rasa_paths(s)
    prev = previous_version(paths)
    if not prev:
        fail("no previous live model to roll back to", 1)
    try:
        do_deploy(list(s.nlu.urls), find_model(paths, prev), log=lambda m: typer.echo(m, err=True))
    except (DeployError, FileNotFoundError) as e:
        fail(str(e), 1)
    set_live(paths, prev)
    typer.echo(f"rolled back; live: {prev}")


StreamOpt = Annotated[str | None, typer.Option("--stream", "-s", help="inbound, handoff, outbound:<channel> (default: all)")]


def _dead_scope(config: Path | None, stream: str | None):
    """Settings and the streams to look at (known ones even when they have no dead letters)."""
    from bot import streams

    s = load(config)
    known = [st for st, _ in streams.Layout.of(s).consumed(s.queue.group, [c.type for c in s.channels])]
    return s, known, stream


async def _dead_streams(r, known: list[str], stream: str | None) -> list[str]:
    from bot.deadletters import dead_streams

    return [stream] if stream else await dead_streams(r, known)


@dl_app.command("list")
def deadletters_list(config: ConfigOpt = None, stream: StreamOpt = None, count: int = 50) -> None:
    """Dead letters of every stream (or one) with their error, handler and attempts."""
    from rich.console import Console
    from rich.table import Table

    from app.runtime import connect_redis
    from bot.deadletters import list_dead

    s, known, stream = _dead_scope(config, stream)

    async def go():
        r = connect_redis(s)
        try:
            return [d for st in await _dead_streams(r, known, stream) for d in await list_dead(r, st, count)]
        finally:
            await r.aclose()

    items = asyncio.run(go())
    if not items:
        typer.echo("no dead letters")
        return
    t = Table("stream", "id", "handler", "attempts", "at", "error")
    for d in items:
        t.add_row(d.stream, d.id, d.handler, d.attempts, d.at, d.error[:120])
    Console(width=200).print(t)


@dl_app.command("show")
def deadletters_show(dead_id: str, config: ConfigOpt = None, stream: StreamOpt = None) -> None:
    """One dead letter in full (its original fields and why it died), as JSON."""
    import orjson

    from app.runtime import connect_redis
    from bot.deadletters import find

    s, known, stream = _dead_scope(config, stream)

    async def go():
        r = connect_redis(s)
        try:
            return await find(r, await _dead_streams(r, known, stream), dead_id)
        finally:
            await r.aclose()

    try:
        d = asyncio.run(go())
    except ValueError as e:  # an id of several streams
        fail(str(e), 2)
    if d is None:
        fail(f"no dead letter {dead_id}", 1)
    typer.echo(orjson.dumps({"stream": d.stream, "id": d.id, **d.fields}, option=orjson.OPT_INDENT_2).decode())


@dl_app.command("replay")
def deadletters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="dead-letter ids (default: all of --stream)")] = None,
    config: ConfigOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Put dead letters back on their stream (all of --stream, or the given ids)."""
    from app.runtime import connect_redis
    from bot.deadletters import replay, select
    from bot.queue import Durability, Queue
    from bot.streams import Layout

    s, known, stream = _dead_scope(config, stream)

    async def go() -> tuple[int, int]:
        r = connect_redis(s)
        try:
            items = await select(r, await _dead_streams(r, known, stream), ids, 10_000)
            q = Queue(r, s.queue, layout=Layout.of(s), durability=Durability.of(s))
            done = 0
            for d in items:
                done += await replay(r, q, d)
            return done, len(items) - done
        finally:
            await r.aclose()

    try:
        done, left = asyncio.run(go())
    except ValueError as e:  # an id of several streams
        fail(str(e), 2)
    typer.echo(f"re-queued {done} message(s)" + (f"; {left} could not be (malformed, left in place)" if left else ""))


@dl_app.command("drop")
def deadletters_drop(
    ids: Annotated[list[str] | None, typer.Argument(help="dead-letter ids")] = None,
    config: ConfigOpt = None,
    stream: StreamOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead letter of --stream")] = False,
) -> None:
    """Delete dead letters for good (the given ids, or --all of one --stream)."""
    from app.runtime import connect_redis
    from bot.deadletters import drop, select

    if not ids and not (all_ and stream):
        fail("give dead-letter ids, or --all with --stream")
    s, known, stream = _dead_scope(config, stream)

    async def go() -> int:
        r = connect_redis(s)
        try:
            items = await select(r, await _dead_streams(r, known, stream), ids, 100_000)
            for d in items:
                await drop(r, d)
            return len(items)
        finally:
            await r.aclose()

    try:
        n = asyncio.run(go())
    except ValueError as e:  # an id of several streams
        fail(str(e), 2)
    typer.echo(f"dropped {n} dead letter(s)")


def _with_tickets(config: Path | None, fn):
    from app.runtime import connect_redis, ticket_service

    s = load(config)

    async def go():
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

    async def nothing(svc):
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

    async def go(svc):
        async with svc.sm() as s:
            return list((await s.execute(select(Agent).order_by(Agent.id))).scalars())

    t = Table("id", "email", "name", "role", "active")
    for a in _with_tickets(config, go):
        t.add_row(str(a.id), a.email, a.name, a.role, "yes" if a.active else "no")
    Console().print(t)


@agents_app.command("disable")
def agents_disable(email: str, config: ConfigOpt = None) -> None:
    """Disable an agent: signs them out everywhere at once and closes their open consoles."""
    if not _with_tickets(config, lambda svc: svc.disable_agent(email)):
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


tickets_app = typer.Typer(no_args_is_help=True, help="Tickets: the users' ticket page links.")
app.add_typer(tickets_app, name="tickets")


@tickets_app.command("link")
def tickets_link(number: str, config: ConfigOpt = None) -> None:
    """Print a fresh ticket page link for a ticket (to give a user who lost theirs)."""
    from handoff.selfservice import cli_link

    try:
        typer.echo(_with_tickets(config, lambda svc: cli_link(svc, number)))
    except (SwitchboardError, ValueError) as e:
        fail(str(e))


@tickets_app.command("revoke-links")
def tickets_revoke_links(number: str, config: ConfigOpt = None) -> None:
    """Revoke every ticket page link issued so far for a ticket."""
    from handoff.selfservice import cli_revoke

    try:
        _with_tickets(config, lambda svc: cli_revoke(svc, number))
    except (SwitchboardError, ValueError) as e:
        fail(str(e))
    typer.echo(f"links of {number.upper()} revoked")


contacts_app = typer.Typer(no_args_is_help=True, help="Contacts: VIP tier and account manager.")
app.add_typer(contacts_app, name="contacts")


@contacts_app.command("set-manager")
def contacts_set_manager(
    contact: Annotated[str, typer.Argument(help="contact id, or an identity like telegram:12345 / email:a@b.c")],
    manager: Annotated[str | None, typer.Option(help="the account manager's agent e-mail; omit to remove")] = None,
    vip: Annotated[int | None, typer.Option(help="VIP tier, 0 (none) to 9")] = None,
    config: ConfigOpt = None,
) -> None:
    """Assign a contact's account manager (their new tickets are offered to them first) and VIP tier."""
    from handoff.vip import set_manager

    try:
        out = _with_tickets(config, lambda svc: set_manager(svc, contact, manager, vip, "cli"))
    except (SwitchboardError, ValueError) as e:
        fail(str(e))
    who = out["manager"]["name"] if out["manager"] else "no manager"
    typer.echo(f"contact {out['contact']}: VIP {out['vip']}, {who}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
