"""Exponential back-off with jitter, reset on success: half of each delay is fixed and half random,
so a fleet of pollers or connections that failed together does not retry in step."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 60.0) -> None:
        self.base, self.cap, self.n = base, cap, 0

    def next(self) -> float:
        """The delay before the next attempt (grows until `cap`)."""
        d = min(self.cap, self.base * 2**self.n)
        self.n += 1
        return d / 2 + random.uniform(0, d / 2)

    def reset(self) -> None:
        self.n = 0
