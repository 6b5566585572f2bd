"""Small real servers on 127.0.0.1 for the transport tests, each on its own loop in a thread.

- ``ServerThread``: runs an ``asyncio.start_server`` handler (optionally TLS) on a private loop.
- ``make_ca``: a throw-away CA and a server certificate for 127.0.0.1, made with ``cryptography``.
- ``tls_terminator``: TLS in front of a plain upstream (the emulator), piping bytes both ways.
- ``forward_proxy``: an HTTP forward proxy (absolute-form requests and CONNECT) that counts what it carries.
- ``BarrierServer``: HTTP/1.1 that answers only once ``n`` requests are in flight at the same time, and
  tracks how many client connections are open — what a pool test needs to tell a cap from a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ServerThread:
    """An asyncio server on its own loop in a daemon thread; ``port`` once started."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._handler = handler
        self._ssl = ssl_context
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(self._guarded, "127.0.0.1", 0, ssl=self._ssl)

        self._server = self.loop.run_until_complete(start())
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The handler, ended quietly when the server stops (a cancelled handler task is logged)."""
        try:
            await self._handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(client_r, client_w, upstream_r, upstream_w, first: bytes = b"") -> None:
    if first:
        upstream_w.write(first)
        await upstream_w.drain()
    await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))


# ------------------------------------------------------------------------------------------- TLS
@dataclass
class Pki:
    ca_path: Path
    server_context: ssl.SSLContext


def make_ca(folder: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1/localhost signed by it; the CA bundle is written as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "litellm-alipay test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return Pki(ca_path, context)


@contextlib.contextmanager
def tls_terminator(pki: Pki, upstream_port: int) -> Iterator[ServerThread]:
    """``https://127.0.0.1:<port>`` in front of ``http://127.0.0.1:<upstream_port>``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        await _splice(reader, writer, up_r, up_w)

    with ServerThread(handle, pki.server_context) as server:
        yield server


# ------------------------------------------------------------------------------------ forward proxy
@dataclass
class ProxyLog:
    targets: list[str]


@contextlib.contextmanager
def forward_proxy() -> Iterator[tuple[ServerThread, ProxyLog]]:
    """An HTTP proxy: ``CONNECT host:port`` tunnels, absolute-form requests are passed on as sent (the
    emulator accepts absolute-form targets). Every client connection's first target is logged."""
    log = ProxyLog([])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            log.targets.append(f"CONNECT {target}")
            up_r, up_w = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _splice(reader, writer, up_r, up_w)
            return
        authority = target.split("://", 1)[1].split("/", 1)[0]
        host, _, port = authority.rpartition(":")
        log.targets.append(f"{method} {target.split('?', 1)[0]}")
        up_r, up_w = await asyncio.open_connection(host, int(port))
        await _splice(reader, writer, up_r, up_w, first=head)

    with ServerThread(handle) as server:
        yield server, log


# ---------------------------------------------------------------------------------- barrier server
class BarrierServer:
    """Answers each request only when ``n`` requests are waiting at once (or 503 after ``bound`` s).

    ``open`` counts client connections not yet closed; ``wait_open(k)`` blocks (bounded) until it is ``k``.
    """

    def __init__(self, n: int, bound: float = 5.0, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.n = n
        self.bound = bound
        self.body = body
        self.headers = headers or {"Content-Type": "application/json"}
        self.open = 0
        self.connections = 0
        self._waiting = 0
        self._cond = threading.Condition()
        self._released: asyncio.Event | None = None
        self.server = ServerThread(self._handle)

    def __enter__(self) -> BarrierServer:
        self.server.__enter__()
        self.port = self.server.port
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def _set_open(self, delta: int) -> None:
        with self._cond:
            self.open += delta
            self._cond.notify_all()

    def wait_open(self, k: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.open == k, timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        self.connections += 1
        number = self.connections
        self._set_open(+1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self._waiting += 1
                if self._waiting >= self.n:
                    self._released.set()
                status = b"200 OK"
                try:
                    await asyncio.wait_for(self._released.wait(), self.bound)
                except TimeoutError:
                    status = b"503 Service Unavailable"
                payload = self.body if self.body is not None else json.dumps({"connection": number}).encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()).encode()
                writer.write(b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Length: "
                             + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                await writer.drain()
        finally:
            self._set_open(-1)
            writer.close()


# ------------------------------------------------------------------------------- canned answers
class CannedServer:
    """HTTP/1.1 that reads each request (head and ``Content-Length`` body) and writes ``answer`` bytes as
    they are: a redirect, a header flood, a compressed bomb. ``requests`` counts the requests it read;
    ``open`` the client connections not yet closed. Keeps connections alive unless ``close`` is set."""

    def __init__(self, answer: bytes | Callable[[], bytes], close: bool = False) -> None:
        self.answer = answer
        self.close = close
        self.requests = 0
        self.open = 0
        self._cond = threading.Condition()
        self.server = ServerThread(self._handle)

    def __enter__(self) -> CannedServer:
        self.server.__enter__()
        self.port = self.server.port
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def wait_open(self, k: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.open == k, timeout)

    def _set_open(self, delta: int) -> None:
        with self._cond:
            self.open += delta
            self._cond.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._set_open(+1)
        try:
            for _ in range(10_000):  # requests per connection, bounded
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.requests += 1
                answer = self.answer() if callable(self.answer) else self.answer
                for at in range(0, len(answer), 1 << 20):
                    writer.write(answer[at: at + (1 << 20)])
                    await writer.drain()
                if self.close:
                    return
        except ConnectionError:
            pass
        finally:
            self._set_open(-1)
            writer.close()


def http_answer(status: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 response (``Content-Length`` added)."""
    items = headers.items() if isinstance(headers, dict) else headers
    head = "".join(f"{k}: {v}\r\n" for k, v in items) + f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


def make_self_signed(folder: Path, name: str = "127.0.0.1") -> Pki:
    """A self-signed server certificate for ``name`` (an IP or a DNS name): what a private gateway pins."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "pinned.pem", folder / "pinned.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return Pki(cert_path, context)


# ------------------------------------------------------------------------- a server in its own process
BIG_ANSWER_SERVER = r'''
import asyncio, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
waiting, connections = [], [0]

async def handle(reader, writer):
    connections[0] += 1
    number = connections[0]
    try:
        for _ in range(10_000):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                           if l.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            released = asyncio.get_running_loop().create_future()
            waiting.append(released)
            if len(waiting) >= n:  # answer only once n requests are in flight: n connections at once
                for future in waiting:
                    future.set_result(None)
                waiting.clear()
            await asyncio.wait_for(released, 30)
            body = b"%08d" % number + bytes(size - 8)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
'''


@contextlib.contextmanager
def big_answer_server(n: int, size: int) -> Iterator[int]:
    """A server in a child process (so its buffers are not this process's memory) answering every request
    with ``size`` bytes that start with its connection's number, once ``n`` requests are in flight."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", BIG_ANSWER_SERVER, str(n), str(size)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline())
    finally:
        child.kill()
        child.wait(10)
