"""`redis.url` for one server, a Redis Cluster and Sentinel; the partition layout's key names."""

from __future__ import annotations

import pytest

from bot.config import parse_settings
from bot.errors import ConfigError
from bot.redisconn import parse_url
from bot.router import outputs_for
from bot.streams import Layout


def test_cluster_and_sentinel_urls_are_understood() -> None:
    c = parse_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
    assert (c.kind, c.nodes, c.username, c.password) == ("cluster", [("10.0.0.1", 7000), ("10.0.0.2", 7001)], "u", "p@ss")
    s = parse_url("rediss+sentinel://:pw@s1,s2:26380/main/2?sentinel_password=sp")
    assert (s.kind, s.tls, s.nodes, s.master_name, s.db, s.password, s.sentinel_password) == (
        "sentinel", True, [("s1", 26379), ("s2", 26380)], "main", 2, "pw", "sp")
    assert parse_url("redis://127.0.0.1:6379/0").kind == "single"


@pytest.mark.parametrize(("url", "says"), [
    ("redis+sentinel://s1:26379", "master name"),
    ("redis+cluster://h:70000", "bad node"),
    ("redis+cluster://h:7000/3", "only database 0"),
    ("redis+sentinel://s1/m/x", "/<master name>[/<db number>]"),
    ("memcached://h", "must start with"),
])
def test_bad_urls_are_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="redis.url") as e:
        parse_settings({"redis": {"url": url}})
    assert says in str(e.value)


def test_partitions_owned_must_exist() -> None:
    with pytest.raises(ConfigError, match="partitions_owned"):
        parse_settings({"queue": {"partitions": 2, "partitions_owned": [0, 2]}})


def test_default_layout_keeps_the_single_redis_names() -> None:
    lay = Layout.of(parse_settings({}))
    assert not lay.tagged
    assert (lay.inbound(0), lay.conv("web:a"), lay.outbound("web", 0), lay.handoff(0), lay.seen("web:1", 0)) == (
        "inbound", "conv:web:a", "outbound:web", "handoff", "seen:web:1")
    assert lay.consumed("routers", ["web"]) == [("inbound", "routers"), ("handoff", "tickets"),
                                                ("decisions", "reports"), ("outbound:web", "senders")]


def _slot_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes (the first non-empty {...})."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


def test_every_key_of_a_commit_shares_the_partitions_slot() -> None:
    from bot.models import Action, Decision, Message, Priority

    s = parse_settings({"queue": {"partitions": 4}, "redis": {"url": "redis+cluster://127.0.0.1:7000"}})
    lay = Layout.of(s)
    for i in range(50):
        msg = Message(channel="web", channel_message_id=str(i), conversation_id=f"web:{{x}}{i}", user_id="u", text="hi")
        p = lay.partition(msg.conversation_id)
        d = Decision(message_id=msg.id, conversation_id=msg.conversation_id, channel="web", action=Action.HANDOFF,
                     reply="ok", intent="x", confidence=0.9, topic="deposit", lang="en", priority=Priority.NORMAL)
        keys = [lay.seen(msg.dedupe_key, p), lay.conv(msg.conversation_id), lay.inbound(p),
                lay.user_rate("web", "u", 1, p), *[o.stream for o in outputs_for(msg, d, lay)]]
        assert {_slot_tag(k) for k in keys} == {f"p{p}"}, keys
    assert {lay.partition(f"web:{i}") for i in range(200)} == {0, 1, 2, 3}


def test_a_redis_failover_is_an_outage_not_a_failed_attempt() -> None:
    from redis.exceptions import (
        ClusterDownError,
        ReadOnlyError,
        ResponseError,
        SlotNotCoveredError,
        TryAgainError,
    )

    from bot.consumer import is_outage
    from bot.redisconn import NotReplicated

    for exc in (ClusterDownError("CLUSTERDOWN The cluster is down"), TryAgainError("TRYAGAIN"),
                SlotNotCoveredError("slot 42"), ReadOnlyError("READONLY You can't write against a read only replica"),
                NotReplicated("intake on 0 of 1 replicas"),
                ResponseError("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"),
                ResponseError("WAIT cannot be used with replica instances. Please also note …")):
        assert is_outage(exc), exc
    assert not is_outage(ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"))


def _clients() -> tuple[object, object]:
    """A one-server client and a cluster client (neither connects until a command is sent)."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    return aioredis.Redis(), RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", 1)])


def test_state_outside_the_queue_keeps_its_names_on_one_redis_and_shares_a_slot_per_group_on_a_cluster() -> None:
    from redis.crc import key_slot

    from bot.redisconn import one_slot
    from bot.streams import slot_tag
    from channels.email.state import EmailState
    from handoff.auth import Sessions, agent_sessions_key, session_key

    single, cluster = _clients()
    # One Redis: the historical names, so existing deployments keep their sessions and mail state.
    assert (session_key(single, "t"), agent_sessions_key(single, 7)) == ("agent:sess:t", "agent:sessions:7")  # type: ignore[arg-type]
    assert Sessions(single, 60, 5, 60)._keys("a@x", "1.2.3.4") == [  # type: ignore[arg-type]
        "agent:fail:a@x:1.2.3.4", "agent:fail:a@x", "agent:failip:1.2.3.4"]
    assert EmailState(single, "Support@Example.test").k_deferred == "email:support@example.test:deferred"  # type: ignore[arg-type]
    # A cluster: every key one script or MULTI touches hashes to one slot.
    groups = [
        [session_key(cluster, "t"), agent_sessions_key(cluster, 7)],  # type: ignore[arg-type]
        Sessions(cluster, 60, 5, 60)._keys("a@x", "1.2.3.4"),  # type: ignore[arg-type]
        [(k := EmailState(cluster, "support@example.test").k_deferred), f"{k}:data", f"{k}:conv:email:c1"],  # type: ignore[arg-type]
    ]
    for keys in groups:
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        assert one_slot(cluster, *keys)
    assert not one_slot(cluster, "outbound:web", "outbound:web:dead") and one_slot(single, "a", "b")
    assert (slot_tag("outbound:web:{p3}:dead"), slot_tag("outbound:web"), slot_tag("a{}b")) == ("{p3}", "", "")
