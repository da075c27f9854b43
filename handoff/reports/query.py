"""The figures of one period, read from SQL: hourly roll-ups and conversations for volume and the
bot, tickets for the team and CSAT. Every figure is a `Table` (a chart draws it, the page shows it
as a table, CSV exports it). Times are UTC; a period of two days or less is bucketed by hour."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Float, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from bot.config import SLASettings
from bot.models import Priority
from handoff.models import Agent, Ticket
from handoff.reports.models import ReportConversation, ReportDecision, ReportHourly
from handoff.reports.store import REASONS

Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Filters:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    channel: str | None = None
    lang: str | None = None
    topic: str | None = None

    @property
    def hourly(self) -> bool:
        return self.end - self.start <= timedelta(days=2)


@dataclass(slots=True)
class Table:
    """One figure: `columns` are (key, English, Chinese) labels; `chart` how to draw it
    (`bar`: first column categories, the others bars; `line`: first column x; None: table only)."""

    id: str
    section: str
    title: tuple[str, str]
    columns: list[tuple[str, str, str]]
    rows: list[list[Cell]] = field(default_factory=list)
    chart: str | None = "bar"
    unit: str = ""
    plot: tuple[str, ...] = ()  # the columns the chart draws (default: every numeric column)

    def plotted(self) -> list[int]:
        keys = [c[0] for c in self.columns]
        if self.plot:
            return [keys.index(k) for k in self.plot]
        return [i for i in range(1, len(keys))
                if any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in self.rows)]


class epoch(FunctionElement[float]):  # noqa: N801 (reads as a SQL function)
    """A timestamp as Unix seconds, computed by the database: a report reads tens of thousands of
    tickets, and numbers cross the driver far faster than timestamps are parsed."""

    type = Float()
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    # EXTRACT gives numeric on PostgreSQL 14+ (a Decimal per value in the driver): ask for a double.
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


def utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (the value below which p of the values lie), None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p * len(s)) - 1)]


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _rate(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 1) if b else None


def buckets(f: Filters) -> list[datetime]:
    step = timedelta(hours=1) if f.hourly else timedelta(days=1)
    t = f.start.replace(minute=0, second=0, microsecond=0)
    if not f.hourly:
        t = t.replace(hour=0)
    out = []
    while t < f.end:
        out.append(t)
        t += step
    return out


def bucket_label(t: datetime, hourly: bool) -> str:
    return t.strftime("%Y-%m-%d %H:00") if hourly else t.strftime("%Y-%m-%d")


def _bucket(t: datetime, f: Filters) -> datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t if f.hourly else t.replace(hour=0)


def _bucket_of(f: Filters) -> Any:
    """Unix seconds → the start of its bucket (hour or UTC day), memoized: tens of thousands of
    timestamps fall in a few hundred buckets."""
    step = 3600 if f.hourly else 86400
    cache: dict[int, datetime] = {}

    def of(ts: float) -> datetime:
        k = int(ts // step)
        b = cache.get(k)
        if b is None:
            b = cache[k] = datetime.fromtimestamp(k * step, UTC)
        return b

    return of


def _where(model: Any, f: Filters, *, time_col: Any) -> list[Any]:
    w = [time_col >= f.start, time_col < f.end]
    for name in ("channel", "lang", "topic"):
        v = getattr(f, name)
        if v:
            w.append(getattr(model, name) == v)
    return w


async def volume_and_bot(s: AsyncSession, f: Filters) -> list[Table]:
    H = ReportHourly
    wh = _where(H, f, time_col=H.hour)
    # One pass for the time series and the model versions (a version's period is its first and
    # last hour), one for topics and reasons.
    by_hour = (await s.execute(
        select(epoch(H.hour), H.channel, H.action, H.model_version, func.sum(H.n)).where(*wh)
        .group_by(H.hour, H.channel, H.action, H.model_version)
    )).all()
    by_topic = (await s.execute(
        select(H.topic, H.action, H.reason, func.sum(H.n)).where(*wh).group_by(H.topic, H.action, H.reason)
    )).all()
    C = ReportConversation
    convs = (await s.execute(
        select(C.started_hour, C.channel, func.count(), func.count(C.handed_off_at))
        .where(*_where(C, f, time_col=C.started_hour)).group_by(C.started_hour, C.channel)
    )).all()
    D = ReportDecision
    unanswered = (await s.execute(
        select(D.intent, func.count()).where(D.action == "clarify", *_where(D, f, time_col=D.decided_at))
        .group_by(D.intent).order_by(func.count().desc(), D.intent).limit(10)
    )).all()

    bks = buckets(f)
    channels = sorted({r[1] for r in by_hour} | {c for _, c, _, _ in convs})
    msgs: dict[tuple[datetime, str], int] = Counter()
    per_bucket_action: dict[tuple[datetime, str], int] = Counter()
    hod: dict[int, int] = Counter()
    models: dict[str, dict[str, Any]] = {}
    hour_of = _bucket_of(Filters(f.start, f.start))  # hourly
    bucket = _bucket_of(f)
    for ts, ch, action, ver, n in by_hour:
        hour, n = hour_of(ts), int(n)
        b = bucket(ts)
        msgs[(b, ch)] += n
        per_bucket_action[(b, action)] += n
        hod[hour.hour] += n
        m = models.setdefault(ver or "-", {"from": hour, "to": hour, "n": Counter()})
        m["from"], m["to"] = min(m["from"], hour), max(m["to"], hour)
        m["n"][action] += n
    conv_n: dict[tuple[datetime, str], int] = Counter()
    conv_total: dict[str, int] = Counter()
    conv_handed: dict[str, int] = Counter()
    for hour, ch, n, handed in convs:
        conv_n[(_bucket(utc(hour), f), ch)] += int(n)  # type: ignore[arg-type]
        conv_total[ch] += int(n)
        conv_handed[ch] += int(handed)
    msg_total: dict[str, int] = Counter()
    for (_, ch), n in msgs.items():
        msg_total[ch] += n

    tables: list[Table] = []
    lab = bucket_label
    t = Table("volume_by_channel", "volume", ("Conversations and messages by channel", "按渠道统计的会话和消息"),
              [("channel", "Channel", "渠道"), ("conversations", "Conversations", "会话"),
               ("messages", "Messages", "消息")])
    t.rows = [[ch, conv_total[ch], msg_total[ch]] for ch in channels]
    tables.append(t)
    cols = [("time", "Time (UTC)", "时间 (UTC)")] + [(f"msg_{c}", c, c) for c in channels]
    t = Table("messages_over_time", "volume", ("Messages by channel over time", "各渠道消息趋势"), cols, chart="line")
    t.rows = [[lab(b, f.hourly), *[msgs[(b, c)] for c in channels]] for b in bks]
    tables.append(t)
    cols = [("time", "Time (UTC)", "时间 (UTC)")] + [(f"conv_{c}", c, c) for c in channels]
    t = Table("conversations_over_time", "volume", ("New conversations by channel over time", "各渠道新会话趋势"), cols,
              chart="line")
    t.rows = [[lab(b, f.hourly), *[conv_n[(b, c)] for c in channels]] for b in bks]
    tables.append(t)
    t = Table("messages_by_hour_of_day", "volume", ("Messages by hour of day (UTC)", "按小时分布的消息 (UTC)"),
              [("hour", "Hour", "小时"), ("messages", "Messages", "消息")])
    t.rows = [[f"{h:02d}", hod[h]] for h in range(24)]
    tables.append(t)

    # -- bot -----------------------------------------------------------------------------------
    total_conv, handed_conv = sum(conv_total.values()), sum(conv_handed.values())
    t = Table("containment", "bot", ("Containment: conversations the bot handled to the end", "机器人自助解决率（会话）"),
              [("channel", "Channel", "渠道"), ("conversations", "Conversations", "会话"),
               ("handed_off", "Handed to a person", "转人工"), ("containment_pct", "Containment %", "自助解决率 %")],
              plot=("containment_pct",))
    t.rows = [[ch, conv_total[ch], conv_handed[ch], _rate(conv_total[ch] - conv_handed[ch], conv_total[ch])]
              for ch in channels if conv_total[ch]]
    t.rows.append(["all", total_conv, handed_conv, _rate(total_conv - handed_conv, total_conv)])
    tables.append(t)
    topic_msgs: dict[str, int] = Counter()
    topic_hand: dict[str, int] = Counter()
    reasons: dict[str, int] = Counter()
    actions: dict[str, int] = Counter()
    for topic, action, reason, n in by_topic:
        n = int(n)
        actions[action] += n
        if action == "agent":
            continue
        topic_msgs[topic] += n
        if action == "handoff":
            topic_hand[topic] += n
            reasons[reason] += n
    t = Table("handoff_by_topic", "bot", ("Handoff rate by topic", "各主题转人工率"),
              [("topic", "Topic", "主题"), ("messages", "Bot decisions", "机器人决策"),
               ("handoffs", "Handoffs", "转人工"), ("handoff_pct", "Handoff %", "转人工率 %")],
              plot=("handoff_pct",))
    t.rows = [[tp, topic_msgs[tp], topic_hand[tp], _rate(topic_hand[tp], topic_msgs[tp])]
              for tp in sorted(topic_msgs, key=lambda k: (-topic_hand[k], k))]
    tables.append(t)
    nh = sum(reasons.values())
    t = Table("handoff_by_reason", "bot", ("Handoffs by reason", "转人工原因"),
              [("reason", "Reason", "原因"), ("handoffs", "Handoffs", "转人工"), ("share_pct", "Share %", "占比 %")],
              plot=("handoffs",))
    t.rows = [[r, reasons[r], _rate(reasons[r], nh)] for r in REASONS]
    tables.append(t)
    bot_total = sum(n for a, n in actions.items() if a != "agent")
    t = Table("outcomes", "bot", ("Bot decisions: answered, clarified, handed off", "机器人决策：回答、澄清、转人工"),
              [("action", "Decision", "决策"), ("count", "Count", "数量"), ("pct", "Share %", "占比 %")],
              plot=("count",))
    t.rows = [[a, actions[a], _rate(actions[a], bot_total)] for a in ("answer", "clarify", "handoff")]
    t.rows.append(["agent", actions["agent"], None])
    tables.append(t)
    t = Table("misunderstood_trend", "bot", ("Misunderstood messages (clarify) over time", "未理解消息（澄清）趋势"),
              [("time", "Time (UTC)", "时间 (UTC)"), ("clarify", "Clarify", "澄清"),
               ("clarify_pct", "Clarify %", "澄清率 %")], chart="line", plot=("clarify",))
    for b in bks:
        tot = sum(per_bucket_action[(b, a)] for a in ("answer", "clarify", "handoff"))
        t.rows.append([lab(b, f.hourly), per_bucket_action[(b, "clarify")], _rate(per_bucket_action[(b, "clarify")], tot)])
    tables.append(t)
    t = Table("top_unanswered", "bot", ("Top misunderstood intents (see the review queue)", "最常未理解的意图（见复核队列）"),
              [("intent", "NLU's best guess", "NLU 最佳猜测"), ("count", "Messages", "消息")])
    t.rows = [[i or "-", int(n)] for i, n in unanswered]
    tables.append(t)
    t = Table("model_versions", "bot", ("Model versions: their period and outcomes", "模型版本：使用时段与结果"),
              [("model", "Model version", "模型版本"), ("from", "From (UTC)", "起 (UTC)"), ("to", "To (UTC)", "止 (UTC)"),
               ("decisions", "Decisions", "决策"), ("clarify_pct", "Clarify %", "澄清率 %"),
               ("handoff_pct", "Handoff %", "转人工率 %")], chart=None)
    for ver, m in sorted(models.items(), key=lambda kv: kv[1]["from"]):
        c = m["n"]
        tot = c["answer"] + c["clarify"] + c["handoff"]
        t.rows.append([ver, bucket_label(m["from"], True), bucket_label(m["to"] + timedelta(hours=1), True), tot,
                       _rate(c["clarify"], tot), _rate(c["handoff"], tot)])
    tables.append(t)
    return tables


async def team_and_csat(s: AsyncSession, f: Filters, sla: SLASettings) -> list[Table]:
    T = Ticket
    created_e = epoch(T.created_at)
    rows = (await s.execute(
        select(T.priority, created_e, epoch(T.first_responded_at), epoch(T.resolved_at), T.sla_warned_at.is_not(None),
               T.sla_breached_at.is_not(None), T.assignee_id, T.csat, T.topic)
        .where(*_where(T, f, time_col=T.created_at))
    )).all()
    names = dict((await s.execute(select(Agent.id, Agent.name))).all())
    other = _where(T, f, time_col=T.created_at)[2:]
    open_at_start = (await s.execute(
        select(func.count()).where(T.created_at < f.start, T.resolved_at.is_(None) | (T.resolved_at >= f.start), *other)
    )).scalar_one()
    # Resolved within the period: those opened in it are in `rows`; only older ones are read here.
    resolved_before = (await s.execute(
        select(epoch(T.resolved_at)).where(T.resolved_at >= f.start, T.resolved_at < f.end, T.created_at < f.start,
                                           *other)
    )).scalars().all()

    frt: dict[str, list[float]] = defaultdict(list)
    res: dict[str, list[float]] = defaultdict(list)
    sla_state: dict[str, Counter[str]] = defaultdict(Counter)
    agent_n: dict[int, int] = Counter()
    agent_frt: dict[int, list[float]] = defaultdict(list)
    agent_csat: dict[int, list[int]] = defaultdict(list)
    topic_csat: dict[str, list[int]] = defaultdict(list)
    csat_day: dict[datetime, list[int]] = defaultdict(list)
    dist: dict[int, int] = Counter()
    bucket = _bucket_of(f)
    for prio, created, first, resolved, warned, breached, assignee, csat, topic in rows:
        if first is not None:
            frt[prio].append((first - created) / 60)
        if resolved is not None:
            res[prio].append((resolved - created) / 60)
        sla_state[prio]["breached" if breached else "warned" if warned else "met"] += 1
        if assignee is not None:
            agent_n[assignee] += 1
            if first is not None:
                agent_frt[assignee].append((first - created) / 60)
        if csat is not None:
            dist[int(csat)] += 1
            topic_csat[topic].append(int(csat))
            if assignee is not None:
                agent_csat[assignee].append(int(csat))
            csat_day[bucket(created)].append(int(csat))

    tables: list[Table] = []
    t = Table("response_times", "team", ("First response and resolution time vs SLA (minutes)", "首次响应与解决时长对比 SLA（分钟）"),
              [("priority", "Priority", "优先级"), ("tickets", "Tickets", "工单"),
               ("frt_p50", "First response p50", "首次响应 p50"), ("frt_p90", "First response p90", "首次响应 p90"),
               ("frt_target", "First response target", "首次响应目标"),
               ("res_p50", "Resolution p50", "解决 p50"), ("res_p90", "Resolution p90", "解决 p90"),
               ("res_target", "Resolution target", "解决目标")], unit="min",
              plot=("frt_p50", "frt_p90", "frt_target"))
    for p in reversed(Priority):
        tgt = sla.targets[p]
        n = sum(sla_state[p.value].values())
        t.rows.append([p.value, n, _r(percentile(frt[p.value], .5)), _r(percentile(frt[p.value], .9)),
                       tgt.first_response_min, _r(percentile(res[p.value], .5)), _r(percentile(res[p.value], .9)),
                       tgt.resolution_min])
    tables.append(t)
    t = Table("sla_outcomes", "team", ("SLA: met, warned, breached", "SLA：达标、预警、违约"),
              [("priority", "Priority", "优先级"), ("met", "Met", "达标"), ("warned", "Warned", "预警"),
               ("breached", "Breached", "违约")])
    t.rows = [[p.value, sla_state[p.value]["met"], sla_state[p.value]["warned"], sla_state[p.value]["breached"]]
              for p in reversed(Priority)]
    tables.append(t)
    created_s = sorted(r[1] for r in rows)
    end_s = f.end.timestamp()
    resolved_s = sorted([*resolved_before, *(r[3] for r in rows if r[3] is not None and r[3] < end_s)])
    step = timedelta(hours=1) if f.hourly else timedelta(days=1)
    t = Table("backlog", "team", ("Open tickets (backlog) at the end of each period", "各时段末未结工单（积压）"),
              [("time", "Time (UTC)", "时间 (UTC)"), ("open", "Open tickets", "未结工单")], chart="line")
    for b in buckets(f):
        at = min(b + step, f.end).timestamp()
        t.rows.append([bucket_label(b, f.hourly),
                       open_at_start + bisect_left(created_s, at) - bisect_right(resolved_s, at)])
    tables.append(t)
    t = Table("agents", "team", ("Per agent", "按客服统计"),
              [("agent", "Agent", "客服"), ("tickets", "Tickets handled", "处理工单"),
               ("frt_median", "Median first response (min)", "首次响应中位数（分钟）"),
               ("csat_avg", "CSAT average", "满意度均值"), ("csat_n", "Ratings", "评分数")], plot=("tickets",))
    for aid in sorted(agent_n, key=lambda a: (-agent_n[a], names.get(a, ""))):
        cs = agent_csat[aid]
        t.rows.append([names.get(aid, f"#{aid}"), agent_n[aid], _r(percentile(agent_frt[aid], .5)),
                       _r(sum(cs) / len(cs), 2) if cs else None, len(cs)])
    tables.append(t)
    # -- CSAT ----------------------------------------------------------------------------------
    t = Table("csat_distribution", "csat", ("CSAT distribution", "满意度分布"),
              [("score", "Score", "评分"), ("count", "Ratings", "评分数")])
    t.rows = [[str(i), dist[i]] for i in range(1, 6)]
    tables.append(t)
    t = Table("csat_trend", "csat", ("CSAT average over time", "满意度均值趋势"),
              [("time", "Time (UTC)", "时间 (UTC)"), ("csat_avg", "CSAT average", "满意度均值"),
               ("csat_n", "Ratings", "评分数")], chart="line", plot=("csat_avg",))
    t.rows = [[bucket_label(b, f.hourly), _r(_avg(csat_day[b]), 2), len(csat_day[b])] for b in buckets(f)]
    tables.append(t)
    t = Table("csat_by_agent", "csat", ("CSAT by agent", "按客服的满意度"),
              [("agent", "Agent", "客服"), ("csat_avg", "CSAT average", "满意度均值"), ("csat_n", "Ratings", "评分数")],
              plot=("csat_avg",))
    t.rows = [[names.get(a, f"#{a}"), _r(_avg(v), 2), len(v)] for a, v in sorted(agent_csat.items(),
                                                                                 key=lambda kv: names.get(kv[0], ""))]
    tables.append(t)
    t = Table("csat_by_topic", "csat", ("CSAT by topic", "按主题的满意度"),
              [("topic", "Topic", "主题"), ("csat_avg", "CSAT average", "满意度均值"), ("csat_n", "Ratings", "评分数")],
              plot=("csat_avg",))
    t.rows = [[k, _r(_avg(v), 2), len(v)] for k, v in sorted(topic_csat.items())]
    tables.append(t)
    return tables


def _avg(v: Iterable[int]) -> float | None:
    v = list(v)
    return sum(v) / len(v) if v else None


async def report(s: AsyncSession, f: Filters, sla: SLASettings) -> list[Table]:
    """Every figure of the period, in page order."""
    return [*(await volume_and_bot(s, f)), *(await team_and_csat(s, f, sla))]
