"""Prometheus metrics. With `switchboard up` every role writes to one multiprocess directory
($PROMETHEUS_MULTIPROC_DIR) so the web role's `/metrics` shows the whole product."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_IN = Counter("switchboard_messages_in_total", "Messages accepted onto the inbound queue", ["channel"])
MESSAGES_DUP = Counter("switchboard_messages_duplicate_total", "Duplicate channel messages ignored", ["channel"])
MESSAGES_LIMITED = Counter("switchboard_messages_rate_limited_total", "Messages refused by the per-user limit",
                           ["channel"])
MESSAGES_OUT = Counter("switchboard_messages_out_total", "Replies delivered by channel senders (and by the router into mailboxes)", ["channel"])
CHANNEL_ALERTS = Counter("switchboard_channel_alerts_total",
                         "Channel events ops must act on (an X app revocation, ...)", ["channel", "event"])
DECISIONS = Counter("switchboard_decisions_total", "Router decisions", ["action", "topic"])
DEAD_LETTERS = Counter("switchboard_dead_letters_total", "Entries moved to the dead-letter stream", ["stream"])
RETRIES = Counter("switchboard_retries_total", "Failed handling attempts that will be retried", ["stream"])
NLU_LATENCY = Histogram(
    "switchboard_nlu_latency_seconds",
    "Rasa /model/parse latency",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
NLU_CACHE = Counter("switchboard_nlu_cache_total", "NLU parse cache lookups", ["result"])
ROUTER_OVERHEAD = Histogram(
    "switchboard_router_overhead_seconds",
    "Time the router spends on a message outside the NLU call",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
)
PROCESSED = Counter("switchboard_stream_processed_total", "Stream entries handled successfully", ["stream"])
HANDLER_SECONDS = Histogram(
    "switchboard_stream_handler_seconds",
    "Time a stream consumer's handler spent on one entry",
    ["stream"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
OUTAGES = Counter("switchboard_stream_outages_total", "Handler attempts stopped by an outage (not counted)",
                  ["stream"])
NOT_REPLICATED = Counter(
    "switchboard_redis_not_replicated_total",
    "Writes that WAIT confirmed on fewer replicas than redis.wait_replicas in time (op: intake = refused, "
    "the channel sends again; commit = kept on the master only; read = entries held until replicas have them)",
    ["op"],
)
