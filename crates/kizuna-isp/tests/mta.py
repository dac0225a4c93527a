"""A real MTA for the agent's tests: aiosmtpd on loopback with STARTTLS required and AUTH.

Usage: mta.py OUTDIR CERT KEY USER PASSWORD [PORT]
Prints "READY <port>" once listening. Every accepted message is written to OUTDIR as
<n>.eml (the raw bytes as received) with <n>.json beside it (envelope, AUTH user, TLS).
Recipients containing "tempfail" get 451, containing "permfail" get 550.
"""

import json
import os
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

outdir, cert, key, user, password = sys.argv[1:6]
counter = 0
lock = threading.Lock()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "tempfail" in address:
            return "451 4.3.0 mailbox temporarily unavailable"
        if "permfail" in address:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global counter
        with lock:
            counter += 1
            n = counter
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.authenticated and user,
            "tls": session.ssl is not None,
        }
        tmp = os.path.join(outdir, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(os.path.join(outdir, f"{n}.json"), "w") as f:
            json.dump(meta, f)
        os.rename(tmp, os.path.join(outdir, f"{n}.eml"))
        return "250 2.0.0 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

if len(sys.argv) > 6:
    port = int(sys.argv[6])
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=port,
    tls_context=ctx,
    require_starttls=True,
    authenticator=authenticator,
    auth_require_tls=True,
    auth_exclude_mechanism=["CRAM-MD5"],
)
controller.start()
print(f"READY {port}", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
