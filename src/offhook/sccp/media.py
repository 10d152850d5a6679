"""One SCCP call's media channels: the phone's receive channel and its transmission.

Theory of operation. For each call on a phone the call manager keeps at most
one receive channel (OpenReceiveChannel, identified by a pass-through party
id, answered by OpenReceiveChannelAck with the phone's RTP address) and at
most one transmission (StartMediaTransmission to the far end's address,
StopMediaTransmission). ``CallMedia`` tracks both, sends the messages and runs
a continuation when the phone has acknowledged a receive channel, so the
call logic can say "open a channel for this codec, then answer with it".

Sans-IO: messages go out through the ``send`` callable; the endpoint routes
OpenReceiveChannelAck to ``acknowledged`` by pass-through id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from offhook.sccp.mediamap import Choice
from offhook.sccp.messages import (
    CloseReceiveChannel,
    Message,
    OpenReceiveChannel,
    StartMediaTransmission,
    StopMediaTransmission,
)

log = logging.getLogger(__name__)

DSCP_EF_TOS = 184
"""StartMediaTransmission precedence: DSCP EF (46) as a ToS byte, as CallManager sends."""


@dataclass(slots=True)
class Receive:
    """An open (or opening) receive channel on the phone."""

    pass_thru: int
    choice: Choice
    address: str = ""
    port: int = 0
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Transmit:
    """Where the phone sends RTP, in which format."""

    address: str
    port: int
    payload: int


def _ipv4(address: str) -> bool:
    parts = address.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


class CallMedia:
    """The receive channel and transmission of one call on one phone."""

    def __init__(self, ref: int, send: Callable[[Message], None]) -> None:
        self.ref = ref
        self._send = send
        self.rx: Receive | None = None
        self.tx: Transmit | None = None
        self._then: Callable[[Receive], None] | None = None

    def open(self, pass_thru: int, choice: Choice, then: Callable[[Receive], None]) -> None:
        """Ask the phone for a receive channel; ``then(rx)`` runs once it is acknowledged."""
        self.close()
        self.rx = Receive(pass_thru, choice)
        self._then = then
        self._send(
            OpenReceiveChannel(
                conference_id=self.ref,
                pass_thru_party_id=pass_thru,
                ms_packet_size=choice.ptime,
                payload_capability=choice.payload,
                echo_cancel_type=0,
                g723_bit_rate=0,
                call_reference=self.ref,
            )
        )

    def acknowledged(self, pass_thru: int, address: str, port: int) -> bool:
        """The phone opened the channel; False if it is not the one we wait for."""
        rx = self.rx
        if rx is None or rx.pass_thru != pass_thru or rx.ready:
            return False
        rx.address, rx.port, rx.ready = address, port, True
        then, self._then = self._then, None
        if then is not None:
            then(rx)
        return True

    def start(self, address: str, port: int, choice: Choice) -> bool:
        """Tell the phone to send RTP to ``address:port`` (IPv4 only: SCCP carries 4 bytes)."""
        if not _ipv4(address) or port <= 0:
            log.warning("call %d: cannot send SCCP media to %s:%d", self.ref, address, port)
            return False
        target = Transmit(address, port, choice.payload)
        if self.tx == target:
            return True
        self.stop()
        self.tx = target
        self._send(
            StartMediaTransmission(
                conference_id=self.ref,
                pass_thru_party_id=self.rx.pass_thru if self.rx is not None else 0,
                remote_ip=address,
                remote_port=port,
                ms_packet_size=choice.ptime,
                payload_capability=choice.payload,
                precedence=DSCP_EF_TOS,
                silence_suppression=0,
                max_frames_per_packet=0,
                g723_bit_rate=0,
                call_reference=self.ref,
            )
        )
        return True

    def stop(self) -> None:
        """Stop the phone's transmission, if any."""
        if self.tx is None:
            return
        self.tx = None
        self._send(
            StopMediaTransmission(
                conference_id=self.ref,
                pass_thru_party_id=self.rx.pass_thru if self.rx is not None else 0,
                conference_id1=self.ref,
                port_handling_flag=0,
            )
        )

    def close(self) -> None:
        """Stop transmitting and close the receive channel."""
        self.stop()
        if self.rx is None:
            return
        rx, self.rx, self._then = self.rx, None, None
        self._send(
            CloseReceiveChannel(
                conference_id=self.ref,
                pass_thru_party_id=rx.pass_thru,
                conference_id1=self.ref,
                port_handling_flag=0,
            )
        )
