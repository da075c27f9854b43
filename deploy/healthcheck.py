"""Container health check: exit 0 when an HTTP GET on the URL answers 200 within 3 s.

Standard library only, so both images (product on Python 3.11, Rasa on 3.10) can run it; the
images have no curl. Usage: python healthcheck.py [URL] (default $HEALTHCHECK_URL).
"""

import os
import sys
import urllib.request


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8080/healthz")
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - a fixed local URL
            return 0 if resp.status == 200 else 1
    except Exception as e:  # any failure is "unhealthy"; say why for `podman inspect`
        print(f"unhealthy: {url}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
