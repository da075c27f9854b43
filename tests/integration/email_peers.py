"""Real mail servers for the email tests: a private Dovecot (IMAP) and an aiosmtpd capture server.

Dovecot runs from its own config in a temp dir under /tmp (made 0755: every parent must be
traversable by the `dovecot` user, which rules out pytest's 0700 tmp_path), on a free port, with
its own base_dir/state_dir — nothing in /etc/dovecot or /var/lib/dovecot is read or written.
Mail is delivered the way an MDA does it: write into Maildir/tmp, rename into Maildir/new (that
also works while the server is down, which the restart test needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.conftest import free_port

USER = "support@example.test"
PASSWORD = "imap-secret-1"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
NO_IDLE_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS"


class Dovecot:
    def __init__(self, *, idle: bool = True, tls: tuple[Path, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sb-dovecot-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        d = self.dir
        tls_conf = (
            f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\nssl_min_protocol = TLSv1.2\n" if tls else "ssl = no\n"
        )
        caps = "" if idle else f"imap_capability = {NO_IDLE_CAPABILITY}\n"
        (d / "dovecot.conf").write_text(
            f"""
base_dir = {d}/run
state_dir = {d}/state
instance_name = sb-test-{self.port}
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls_conf}disable_plaintext_auth = no
mail_location = maildir:{d}/mail/%u/Maildir
first_valid_uid = 0
{caps}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        )
        (d / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.maildir = d / "mail" / USER / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(d / "mail")], check=True)

    def start(self) -> None:
        # Its own process group: stopping the server also stops its imap processes, which would
        # otherwise keep serving open connections for a while after the master is gone.
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start; log:\n{self.log()[-2000:]}")

    def stop(self) -> None:
        """Stop the server and every process it started (like a restart of the service)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of this instance only
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def deliver(self, raw: bytes) -> None:
        """Drop a mail into the inbox as a local delivery agent would (tmp, then rename)."""
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.sbtest"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, _uid("dovecot"), _gid("dovecot"))
        os.rename(tmp, self.maildir / "new" / name)

    def flags(self) -> list[str]:
        """Maildir info flags of every mail ("S" = \\Seen), in delivery order."""
        out: list[tuple[str, str]] = []
        for sub in ("new", "cur"):
            for f in (self.maildir / sub).iterdir():
                base, _, info = f.name.partition(":2,")
                out.append((base, info))
        return [info for _, info in sorted(out)]


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


class Recorder:
    """aiosmtpd handler that keeps what it was given; `refuse` answers chosen recipients with an error."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse: dict[str, str] = {}  # recipient → SMTP reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def mails(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]  # type: ignore[misc]


class SmtpServer:
    """aiosmtpd on the test's own event loop."""

    def __init__(self, port: int | None = None, **smtp_kw: Any) -> None:
        self.port = port or free_port()
        self.rec = Recorder()
        self.kw = smtp_kw
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self.rec, **self.kw), "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def password_auth(login: str, password: str):  # type: ignore[no-untyped-def]
    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == login.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return auth
