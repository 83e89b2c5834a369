"""localstripe on 127.0.0.1 only, from scratch, until its stdin closes.

    localstripe_server.py PORT

Its store is never written to or read from the /tmp/localstripe.pickle every instance
would share. Whoever starts it holds its stdin: when that holder exits, however it exits,
the pipe closes and the server stops with it. Used by the payments tests
(crates/ecom-testkit/src/localstripe.rs), sdk/journey.sh and bench/payments.sh.
"""

import os
import sys
import threading


def watch_parent():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


threading.Thread(target=watch_parent, daemon=True).start()

from aiohttp import web  # noqa: E402
import localstripe.resources as resources  # noqa: E402
from localstripe.server import app  # noqa: E402

resources.Store.dump_to_disk = lambda self: None
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
