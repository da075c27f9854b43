"""Build-time check: every package installed in an image's environment is pinned, at that
version, by one of the given lock files. Standard library only (runs on 3.10 and 3.11).

Usage: python check_pins.py INSTALLED LOCK [LOCK...]   (INSTALLED = `pip freeze --all` output)
"""

import sys

INSTALLERS = {"pip", "setuptools", "wheel"}  # the venv's own tools, not dependencies


def pins(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].split(";", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def main() -> int:
    installed = pins(sys.argv[1])
    locked: dict[str, str] = {}
    for lock in sys.argv[2:]:
        locked.update(pins(lock))
    bad = {k: v for k, v in installed.items() if k not in INSTALLERS and locked.get(k) != v}
    for name, version in sorted(bad.items()):
        print(f"not pinned by {', '.join(sys.argv[2:])}: {name}=={version} (lock: {locked.get(name, 'absent')})",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
