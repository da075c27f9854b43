"""One error hierarchy for the product.

Transient errors leave a queue entry unacknowledged so it is retried; permanent errors send it
to the dead-letter stream with the reason. Only the CLI turns errors into exit codes.
"""


class SwitchboardError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(SwitchboardError):
    """The configuration is invalid; the message names the key and why."""


class TransientError(SwitchboardError):
    """Worth retrying later: a peer is down or slow."""


class NLUUnavailable(TransientError):
    """No Rasa server answered; messages wait in the queue until one does."""


class TransientChannelError(TransientError):
    """A channel's API failed in a way that may succeed later (network, 5xx, rate limit).

    `retry_after` (seconds) is honoured by the outbound sender when the API said how long to wait
    (Telegram `RetryAfter`, X `x-rate-limit-reset`)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentChannelError(SwitchboardError):
    """A channel refused a send for good (blocked by user, invalid recipient)."""


class InvalidMessage(SwitchboardError):
    """An inbound payload cannot become a Message (malformed, too large)."""
