"""Telegram channel (python-telegram-bot 22): webhook or long polling in, plain-text replies out.

`config.py` is import-light (no `telegram` import) so validating a config never loads the SDK;
`adapter.py` is imported through the registry only when a `telegram` channel is configured.
"""
