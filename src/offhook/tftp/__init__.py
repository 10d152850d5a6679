"""Phone provisioning: TFTP (RFC 1350/2347/2348/2349) and HTTP (port 6970) file serving.

``protocol`` is the sans-IO TFTP codec and read session, ``files`` the safe
file resolver, ``cnf`` the SEP<MAC>.cnf.xml / XMLDefault.cnf.xml generator,
``aio`` and ``http`` the asyncio servers.
"""
