"""offhook.sip: the SIP protocol (RFC 3261), so that SIP phones and trunks can use offhook.

Almost all of it is sans-IO and synchronous: ``abnf``, ``uri`` and ``headers``
parse the grammar; ``message`` holds requests and responses; ``codec`` frames
datagrams and TCP streams and salvages enough of a bad request to answer 400;
``validate`` applies the §8.2 checks; ``transaction``/``txn_fsm``/``timers`` are
the §17 transaction layer (timers A-M, driven by ``now`` arguments);
``dialog`` is §12 dialog state; ``auth`` is server-side digest (RFC 8760);
``registrar`` is the §10.3 registrar. None of these imports asyncio, socket,
ssl, time or ``offhook.core``. Only ``aio`` (the UDP/TCP transports) and
``endpoint`` (the B2BUA that turns dialogs into core legs) do I/O or speak to
the core; ``sdpmap`` translates SDP bodies to the core's media description for
the endpoint.
"""
