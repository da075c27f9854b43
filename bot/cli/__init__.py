"""The `switchboard` entry point of installs made before the CLI moved to `app.cli` (their script
imports `bot.cli:main`). Reinstalling (`make venvs`) points the script at `app.cli:main`; this
shim is the only import of the application from the core, allowed by name in the layers contract."""


def main() -> None:
    from app.cli import main as app_main

    app_main()
