"""The yardstick: a trivial grpc.aio server with the gateway's mutual TLS, answering every call at once with a
reply of a given size. ``make bench`` runs it in its own process and measures it with the same load generator.

    python -m bench.echo --listen 127.0.0.1:50900 --tls-dir var/pki --reply-bytes 600
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc

from gateway.security.tls import TlsFolder

METHOD = "/sigw.bench.Echo/Call"


def _identity(data: bytes) -> bytes:
    return data


async def serve(listen: str, tls_dir: Path, reply_bytes: int) -> None:
    reply = b"x" * reply_bytes

    async def call(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return reply

    handler = grpc.method_handlers_generic_handler(
        "sigw.bench.Echo",
        {"Call": grpc.unary_unary_rpc_method_handler(call, _identity, _identity)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_secure_port(listen, TlsFolder(tls_dir).server_credentials())
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--tls-dir", type=Path, required=True)
    parser.add_argument("--reply-bytes", type=int, default=600)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.tls_dir, args.reply_bytes))


if __name__ == "__main__":
    main()
