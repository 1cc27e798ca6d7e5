"""A latency relay: one asyncio TCP forwarder per container port, on 127.0.0.1 only.

This kernel has no netem, so real-world round-trip time is made in userspace: every chunk
read from one side is written to the other ``delay`` seconds later (one-way, each
direction), in order. A chunk is stamped when it arrives and a writer per direction waits
until its stamp plus the delay, so the delay adds latency, never a bandwidth limit.
Both tools reach the hosts through the same relays; the delay is changed between
scenarios, never during a command.

What the relay sees is counted per listening port, so a command's cost at a distance is
measured without touching either tool:

* bytes each way (SSH payload and framing, no TCP/IP headers);
* round trips: how many times the client sent something after data from the server had
  reached it since its previous send, and at least half an RTT after that send (so a
  window update arriving in the middle of an upload does not count: the client did not
  wait for it). Each such turn is a wait of one RTT at a distance;
* TCP connections, and the wall-clock time of the first byte a client sent.

Not modelled: the TCP handshake's own round trip (the kernel accepts the client's
connection at once). It costs both tools the same one RTT per connection.

The loop runs in a daemon thread that :meth:`Relays.close` stops (the benchmark closes it
in a ``finally``): nothing outlives the run, and nothing listens on any other address.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

CHUNK = 256 * 1024


@dataclass(frozen=True)
class Traffic:
    """What one relay port has carried so far; two snapshots give what one command did."""

    up: int = 0  # client -> server bytes
    down: int = 0  # server -> client bytes
    turns: int = 0
    connections: int = 0
    first_bytes: tuple[float, ...] = ()  # epoch seconds of each connection's first client byte

    def minus(self, before: Traffic) -> Traffic:
        return Traffic(
            self.up - before.up,
            self.down - before.down,
            self.turns - before.turns,
            self.connections - before.connections,
            self.first_bytes[len(before.first_bytes) :],
        )


@dataclass
class _Counts:
    up: int = 0
    down: int = 0
    turns: int = 0
    connections: int = 0
    first_bytes: list[float] = field(default_factory=list)

    def frozen(self) -> Traffic:
        return Traffic(self.up, self.down, self.turns, self.connections, tuple(self.first_bytes))


class _Pipe:
    """One direction of one connection: chunks stamped on arrival, written after the delay."""

    def __init__(self, relays: Relays, writer: asyncio.StreamWriter) -> None:
        self.relays = relays
        self.writer = writer
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.ready = asyncio.Event()

    def push(self, data: bytes | None) -> None:
        self.queue.append((time.monotonic() + self.relays.delay, data))
        self.ready.set()

    async def drain(self, delivered) -> None:
        """Write chunks in order once their time has come; ``None`` ends the direction."""
        try:
            while True:
                while not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                due, data = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                await self.writer.drain()
                delivered(len(data))
        except (ConnectionError, OSError):
            return


class Relays:
    """Relays for many target ports; ``port_for(target)`` is where a tool connects instead."""

    def __init__(self, targets: list[int], delay: float = 0.0) -> None:
        self.delay = delay
        self.targets = list(targets)
        self._ports: dict[int, int] = {}
        self._counts: dict[int, _Counts] = {t: _Counts() for t in targets}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="latency-relay", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen_all(), self._loop).result(timeout=30)

    def set_rtt(self, rtt_ms: float) -> None:
        """Round-trip time added from now on (half of it each way)."""
        self.delay = rtt_ms / 2000

    def port_for(self, target: int) -> int:
        return self._ports[target]

    def traffic(self, target: int) -> Traffic:
        with self._lock:
            return self._counts[target].frozen()

    async def _listen_all(self) -> None:
        for target in self.targets:
            server = await asyncio.start_server(
                lambda r, w, t=target: self._serve(r, w, t), host="127.0.0.1", port=0
            )
            self._servers.append(server)
            self._ports[target] = server.sockets[0].getsockname()[1]

    async def _serve(self, client_r, client_w, target: int) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        counts = self._counts[target]
        with self._lock:
            counts.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        for w in (client_w, server_w):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # heard: server data reached the client since its last send; last: when that was
        state = {"heard": True, "first": True, "last": 0.0}

        def on_up(n: int) -> None:
            now = time.monotonic()
            with self._lock:
                counts.up += n
                if state["first"]:
                    counts.first_bytes.append(time.time())
                    state["first"] = False
                if state["heard"] and now - state["last"] >= self.delay:
                    counts.turns += 1
                state["heard"] = False
                state["last"] = now

        def on_down(n: int) -> None:
            with self._lock:
                counts.down += n
                state["heard"] = True

        up, down = _Pipe(self, server_w), _Pipe(self, client_w)
        try:
            await asyncio.gather(
                self._read(client_r, up, on_up),
                self._read(server_r, down, None),
                up.drain(lambda n: None),
                down.drain(on_down),
            )
        finally:
            for w in (client_w, server_w):
                w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _read(reader: asyncio.StreamReader, pipe: _Pipe, seen) -> None:
        """Read until EOF; a client's send is counted when it arrives (that is when it left)."""
        try:
            while data := await reader.read(CHUNK):
                if seen is not None:
                    seen(len(data))
                pipe.push(data)
        except (ConnectionError, OSError):
            pass
        pipe.push(None)

    def close(self) -> None:
        """Stop listening, drop every connection, stop the loop and its thread."""

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()
