"""An SMTP server on 127.0.0.1 that keeps every mail it accepts, until its stdin closes.

    smtp_server.py PORT MAILDIR [MODE]

Each accepted message is written as MAILDIR/<n>.eml, exactly as received (to a temporary
name first, then renamed, so a reader never sees half a mail). MODE says how it answers:

    accept          every mail: 250 (the default)
    stall-first     the first mail is kept, then never answered (a server that hangs in the
                    middle of a send); the later ones: 250
    tempfail-first  the first mail: 451, not kept; the later ones: 250
    reject          every mail: 550 quoting the recipient, not kept
    auth            every mail: 250, but only after AUTH as user `mailer`, password
                    `s3cret pass` (PLAIN or LOGIN, without TLS: loopback only)

Whoever starts it holds its stdin: when that holder exits, however it exits, the pipe
closes and the server stops with it. Used by the mail tests (crates/ecom-testkit/src/smtp.rs).
"""

import asyncio
import itertools
import os
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = b"mailer", b"s3cret pass"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER,
        PASSWORD,
    )
    return AuthResult(success=ok)


class Keeper:
    def __init__(self, maildir, mode):
        self.maildir = maildir
        self.mode = mode
        self.seen = itertools.count(1)

    def keep(self, envelope):
        n = len([f for f in os.listdir(self.maildir) if f.endswith(".eml")]) + 1
        tmp = os.path.join(self.maildir, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.maildir, f"{n}.eml"))

    async def handle_DATA(self, server, session, envelope):
        nth = next(self.seen)
        if self.mode == "reject":
            # As many servers do, the answer quotes the recipient.
            return f"550 5.1.1 <{envelope.rcpt_tos[0]}>: mailbox unavailable"
        if self.mode == "tempfail-first" and nth == 1:
            return "451 4.3.0 try again later"
        self.keep(envelope)
        if self.mode == "stall-first" and nth == 1:
            await asyncio.sleep(3600)
        return "250 2.0.0 OK"


def watch_parent():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


port, maildir = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "accept"
os.makedirs(maildir, exist_ok=True)
auth = (
    dict(authenticator=authenticate, auth_required=True, auth_require_tls=False)
    if mode == "auth"
    else {}
)
controller = Controller(Keeper(maildir, mode), hostname="127.0.0.1", port=port, **auth)
controller.start()
print("ready", flush=True)
watch_parent()
