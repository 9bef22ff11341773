"""A loopback SMTP server for the e-mail tests: aiosmtpd on a port of 127.0.0.1 it binds itself,
which writes each message it receives to DIR/<n>.eml and says
'listening on smtp://127.0.0.1:PORT' on stderr once it listens. Usage: smtp_sink.py DIR"""

import asyncio
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, f"{self.count}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


async def main():
    directory = sys.argv[1]
    sink = Sink(directory)
    loop = asyncio.get_running_loop()
    # Port 0: the kernel picks a free port, which this says; aiosmtpd's Controller cannot be
    # started on port 0 (it connects to the port it was given to check that it listens).
    server = await loop.create_server(lambda: SMTP(sink), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on smtp://127.0.0.1:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
