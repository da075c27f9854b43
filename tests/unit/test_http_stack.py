"""The HTTP client stack under the X channel (tweepy → httpx → httpcore; the Telegram channel used it
too before its own aiohttp transport) asks `sniffio` which event loop runs on every request.
Without the module each request pays a failed import — a scan of sys.path, measured as ~3 % of the
web role's time on the Telegram webhook path when it went through httpx (bench/README.md)."""

import importlib.util

import httpcore._synchronization as sync


def test_httpcore_finds_the_event_loop_without_a_failed_import_per_request() -> None:
    assert importlib.util.find_spec("sniffio") is not None
    assert sync.current_async_library.__module__ == "httpcore._synchronization"
