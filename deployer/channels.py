"""Channels that cost one round trip per command at a distance, not three.

Paramiko's own way to run a command waits twice: for the host to confirm a new channel,
then for the host to accept the ``exec`` request, and only then may the script's input
be sent. At 50 ms of round-trip time that is 100 ms of waiting before a command even
starts. Two changes take both waits off the path, within the SSH protocol:

* the ``exec`` request goes out with its reply still asked for, but nothing waits for it:
  stdin follows at once, in the same flight. A host that refuses the request closes the
  channel (paramiko's ``_request_failed``), which :func:`refused` tells apart from a lost
  connection;
* the next command's channel is asked for while the current one runs (a spare, opened in a
  background thread that only waits on the network), so it is confirmed by the time the
  command after it starts. A host that allows one session at a time (``MaxSessions 1``)
  refuses the spare; from then on channels are opened one at a time, as before.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko

REFUSED_RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)  # seconds between asks: 1.6 s in all


def exec_without_waiting(channel: paramiko.Channel, command: str) -> None:
    """Send the ``exec`` request for ``command`` and return before the host answers."""
    from paramiko.common import cMSG_CHANNEL_REQUEST
    from paramiko.message import Message

    request = Message()
    request.add_byte(cMSG_CHANNEL_REQUEST)
    request.add_int(channel.remote_chanid)
    request.add_string("exec")
    request.add_boolean(True)  # a refusal then closes the channel instead of going unnoticed
    request.add_string(command)
    channel.transport._send_user_message(request)


def refused(channel: paramiko.Channel) -> bool:
    """Did the host close this channel without running anything (a refused ``exec``)? It
    then sent neither output nor an exit status, while the connection itself is alive."""
    return (
        channel.closed
        and not channel.exit_status_ready()
        and not channel.eof_received
        and channel.transport.is_active()
    )


class Spares:
    """At most one channel opened ahead of need on one connection."""

    def __init__(self, transport: paramiko.Transport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.enabled = True
        self._pending: _Opening | None = None

    def take(self) -> paramiko.Channel:
        """A confirmed channel: the spare if one was asked for, else a new one; and a
        spare is asked for the next command."""
        channel = self._spare() or self._open_now()
        if self.enabled:
            self._pending = _Opening(self.transport, self.timeout)
        return channel

    def _open_now(self) -> paramiko.Channel:
        """Open a channel and wait for it. A host that counts sessions (``MaxSessions``)
        may still hold the slot of the channel just closed (sshd frees it once its own
        side is done, a moment later): a refusal is asked again, briefly, before it counts."""
        import paramiko

        for pause in REFUSED_RETRIES:
            try:
                return self.transport.open_session(timeout=self.timeout)
            except paramiko.ChannelException:
                time.sleep(pause)
        return self.transport.open_session(timeout=self.timeout)

    def _spare(self) -> paramiko.Channel | None:
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        channel = pending.wait()
        if channel is None:
            self.enabled = False  # refused (MaxSessions) or lost: one at a time from now on
        return channel

    def close(self) -> None:
        """Close a spare nobody used (never waited for: the connection is closing too)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.discard()


class _Opening:
    """One channel being opened in the background."""

    def __init__(self, transport: paramiko.Transport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.channel: paramiko.Channel | None = None
        self.discarded = False
        self.lock = threading.Lock()
        self.done = threading.Event()
        threading.Thread(target=self._open, name="deployer-spare-channel", daemon=True).start()

    def _open(self) -> None:
        try:
            channel = self.transport.open_session(timeout=self.timeout)
        except Exception:  # refused, or the connection went: the caller opens its own
            channel = None
        with self.lock:
            self.channel = channel
            if self.discarded and channel is not None:
                channel.close()
        self.done.set()

    def wait(self) -> paramiko.Channel | None:
        self.done.wait(self.timeout + 1)
        with self.lock:
            self.discarded = True  # whatever arrives after this is closed, not leaked
            return self.channel

    def discard(self) -> None:
        with self.lock:
            self.discarded = True
            if self.channel is not None:
                self.channel.close()
