"""Exponential back-off with jitter, reset on success: half of each delay is fixed and half random,
so a fleet of pollers or connections that failed together does not retry in step. The one helper
for every wait-and-retry of the product (stream consumers, pollers, IMAP, supervised tasks)."""

from __future__ import annotations

import random


def delay_for(n: int, base: float = 0.5, cap: float = 60.0) -> float:
    """The jittered delay before attempt `n + 1` after `n` failures (n >= 1)."""
    d = min(cap, base * 2 ** max(0, n - 1))
    return d / 2 + random.uniform(0, d / 2)


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 60.0) -> None:
        self.base, self.cap, self.n = base, cap, 0

    def next(self) -> float:
        """The delay before the next attempt (grows until `cap`)."""
        self.n += 1
        return delay_for(self.n, self.base, self.cap)

    def reset(self) -> None:
        self.n = 0
