"""switchboard core: message models, config, queue, router, redaction, CLI and web app."""

__version__ = "0.1.0"
