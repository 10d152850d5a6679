"""SIP dialog state (RFC 3261 §12), sans-IO.

Theory of operation
-------------------
A ``Dialog`` is the peer-to-peer relationship an INVITE (or SUBSCRIBE, ...)
sets up. It is created on the UAS side from the request and the response
that carries our To tag (``Dialog.from_uas``, §12.1.1) and on the UAC side
from the request and a 1xx/2xx carrying the remote To tag
(``Dialog.from_uac``, §12.1.2; a 1xx makes an *early* dialog). It holds
what §12 calls the dialog state: Call-ID, local and remote tags, local and
remote URIs, sequence numbers, remote target and route set.

* ``create_request(method, ...)`` builds an in-dialog request (§12.2.1.1):
  To/From with tags, Call-ID, the next local CSeq (ACK and CANCEL reuse the
  last INVITE's number), Request-URI and Route per loose or strict routing.
  The caller adds the top Via (with a fresh branch) via ``via=`` and hands
  the request to the transaction layer.
* ``receive_request(req)`` applies §12.2.2: a CSeq lower than the remote
  sequence number returns 500 (the caller answers it); a target refresh
  request (INVITE, UPDATE, SUBSCRIBE, NOTIFY) replaces the remote target.
* ``receive_response(resp)`` (UAC side) applies §12.2.1.2 and §13.2.2.4:
  a 2xx to a target refresh request updates the remote target, a 2xx to the
  INVITE confirms an early dialog and recomputes its route set, a 300-699 to
  the initial INVITE terminates an early dialog.

``dialog.id`` is ``(call_id, local_tag, remote_tag)``;
``incoming_request_id`` and ``incoming_response_id`` compute the same key
from a message received, so the TU can look dialogs up in a dict.

Contact and Record-Route values are read by the small private helpers at the
top (strip ``<...>``); they are isolated so they can be replaced by the
structured views of ``sip/headers.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from offhook.sip.message import Headers, SipRequest, SipResponse, split_list

__all__ = [
    "TARGET_REFRESH",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogState",
    "incoming_request_id",
    "incoming_response_id",
]

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""

# RFC 3261 §12.2, RFC 3311 (UPDATE), RFC 6665 (SUBSCRIBE/NOTIFY).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})


class DialogState(StrEnum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogError(ValueError):
    """The messages given cannot create or drive a dialog."""


# --- header value helpers (to be swapped for sip/headers.py) --------------------


def _uri_of(value: str) -> str:
    """The URI of a name-addr (``"A" <sip:a@b;lr>;p=1``) or addr-spec."""
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end if end >= 0 else len(value)].strip()
    return value.split(";", 1)[0].strip()


def _strip_tag(value: str) -> str:
    """A From/To value without its ``tag`` parameter (display name kept)."""
    end = value.rfind(">")
    head, tail = (value[: end + 1], value[end + 1 :]) if end >= 0 else ("", value)
    parts = tail.split(";")
    kept = [parts[0]] + [p for p in parts[1:] if p.split("=", 1)[0].strip().lower() != "tag"]
    return (head + ";".join(kept)).strip()


def _is_loose(route: str) -> bool:
    """Whether a route entry's URI carries the ``lr`` parameter (RFC 3261 §19.1.1)."""
    uri = _uri_of(route).split("?", 1)[0]
    return any(p.split("=", 1)[0].strip().lower() == "lr" for p in uri.split(";")[1:])


def _contact_uri(msg: SipRequest | SipResponse) -> str | None:
    contacts = msg.headers.get_all("Contact")
    return _uri_of(contacts[0]) if contacts else None


def _record_route(msg: SipRequest | SipResponse) -> tuple[str, ...]:
    return tuple(value for raw in msg.headers.get_raw("Record-Route") for value in split_list(raw))


def _with_tag(value: str, tag: str) -> str:
    return f"{value};tag={tag}" if tag else value


# --- dialog ----------------------------------------------------------------------


def incoming_request_id(req: SipRequest) -> DialogId:
    """Dialog id of a request we received (we are the To side)."""
    return (req.call_id, req.to_tag or "", req.from_tag or "")


def incoming_response_id(resp: SipResponse) -> DialogId:
    """Dialog id of a response we received (we are the From side)."""
    return (resp.call_id, resp.from_tag or "", resp.to_tag or "")


@dataclass(slots=True)
class Dialog:
    """Dialog state (RFC 3261 §12). ``local_uri``/``remote_uri`` keep the whole
    From/To value without its tag (display name and URI), as they are sent."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    route_set: tuple[str, ...]
    local_seq: int | None
    remote_seq: int | None
    is_uac: bool
    secure: bool = False
    state: DialogState = DialogState.CONFIRMED
    invite_seq: int | None = None  # CSeq number of our last INVITE (for ACK/CANCEL)

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation ---------------------------------------------------------------
    @classmethod
    def from_uas(cls, request: SipRequest, response: SipResponse, *, tls: bool = False) -> Dialog:
        """RFC 3261 §12.1.1: the UAS side, from the request and our 1xx/2xx."""
        local_tag = response.to_tag
        if not local_tag:
            raise DialogError("response has no To tag")
        target = _contact_uri(request)
        if target is None:
            raise DialogError("request has no Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_tag or "",
            local_uri=_strip_tag(request.headers.get("To") or ""),
            remote_uri=_strip_tag(request.headers.get("From") or ""),
            remote_target=target,
            route_set=_record_route(request),
            local_seq=None,
            remote_seq=request.cseq[0],
            is_uac=False,
            secure=tls and request.uri.lower().startswith("sips:"),
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    @classmethod
    def from_uac(cls, request: SipRequest, response: SipResponse, *, tls: bool = False) -> Dialog:
        """RFC 3261 §12.1.2: the UAC side, from our request and a 1xx/2xx with a To tag."""
        remote_tag = response.to_tag
        if not remote_tag:
            raise DialogError("response has no To tag")
        if response.status >= 300:
            raise DialogError("only 1xx and 2xx responses create dialogs")
        target = _contact_uri(response)
        if target is None:
            raise DialogError("response has no Contact")
        num, method = request.cseq
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag or "",
            remote_tag=remote_tag,
            local_uri=_strip_tag(request.headers.get("From") or ""),
            remote_uri=_strip_tag(request.headers.get("To") or ""),
            remote_target=target,
            route_set=tuple(reversed(_record_route(response))),
            local_seq=num,
            remote_seq=None,
            is_uac=True,
            secure=tls and request.uri.lower().startswith("sips:"),
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            invite_seq=num if method == "INVITE" else None,
        )

    # --- UAC behaviour ----------------------------------------------------------
    def create_request(
        self,
        method: str,
        *,
        via: str | None = None,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        max_forwards: int = 70,
    ) -> SipRequest:
        """An in-dialog request (RFC 3261 §12.2.1.1).

        ``via`` is the full top Via value (with a fresh branch) the transaction
        layer needs; ``contact`` a Contact value (required in INVITE/UPDATE).
        """
        if method in ("ACK", "CANCEL"):
            if self.invite_seq is None:
                raise DialogError(f"{method} needs an INVITE in this dialog")
            seq = self.invite_seq
        else:
            seq = (self.local_seq if self.local_seq is not None else 0) + 1
            self.local_seq = seq
            if method == "INVITE":
                self.invite_seq = seq
        items: list[tuple[str, str]] = []
        if via is not None:
            items.append(("Via", via))
        uri, routes = self._uri_and_routes()
        items.extend(("Route", r) for r in routes)
        items.append(("Max-Forwards", str(max_forwards)))
        items.append(("From", _with_tag(self.local_uri, self.local_tag)))
        items.append(("To", _with_tag(self.remote_uri, self.remote_tag)))
        items.append(("Call-ID", self.call_id))
        items.append(("CSeq", f"{seq} {method}"))
        if contact is not None:
            items.append(("Contact", contact))
        if body and content_type is not None:
            items.append(("Content-Type", content_type))
        items.extend(headers)
        return SipRequest(method=method, uri=uri, headers=Headers(items), body=body)

    def _uri_and_routes(self) -> tuple[str, tuple[str, ...]]:
        routes = self.route_set
        if not routes:
            return self.remote_target, ()
        if _is_loose(routes[0]):  # RFC 3261 §12.2.1.1 loose routing
            return self.remote_target, routes
        # strict routing: first route becomes the Request-URI, the target goes last
        first = _uri_of(routes[0]).split("?", 1)[0]
        return first, (*routes[1:], f"<{self.remote_target}>")

    def receive_response(self, resp: SipResponse) -> None:
        """Apply a response to a request we sent in this dialog (UAC side)."""
        method = resp.cseq[1]
        status = resp.status
        if 200 <= status < 300:
            if method in TARGET_REFRESH:  # RFC 3261 §12.2.1.2
                target = _contact_uri(resp)
                if target is not None:
                    self.remote_target = target
            if self.state is DialogState.EARLY and method == "INVITE":
                # RFC 3261 §13.2.2.4: confirm and recompute the route set
                self.state = DialogState.CONFIRMED
                if self.is_uac:
                    self.route_set = tuple(reversed(_record_route(resp)))
        elif status >= 300 and self.state is DialogState.EARLY and method == "INVITE":
            self.state = DialogState.TERMINATED  # RFC 3261 §12.3

    # --- UAS behaviour ----------------------------------------------------------
    def receive_request(self, req: SipRequest) -> int | None:
        """Apply an in-dialog request (RFC 3261 §12.2.2).

        Returns a status to reject it with (500 for an out-of-order CSeq) or
        None when the request is acceptable.
        """
        if req.method in ("ACK", "CANCEL"):
            return None  # they carry the INVITE's sequence number
        num = req.cseq[0]
        if self.remote_seq is not None and num < self.remote_seq:
            return 500
        self.remote_seq = num
        if req.method in TARGET_REFRESH:
            target = _contact_uri(req)
            if target is not None:
                self.remote_target = target
        return None
