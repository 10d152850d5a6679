"""Cisco SCCP (Skinny): framing, message ids and typed messages (sans-IO).

``SccpFramer`` turns a TCP stream into messages, ``decode``/``encode`` convert
one message, ``MessageId`` is the id table and ``messages`` holds the types.
"""

from offhook.sccp.codec import DEFAULT_MAX_SIZE, SccpFramer, decode, decode_frame, encode
from offhook.sccp.messages import MESSAGE_TYPES, Message, MessageId, Unknown

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MESSAGE_TYPES",
    "Message",
    "MessageId",
    "SccpFramer",
    "Unknown",
    "decode",
    "decode_frame",
    "encode",
]
