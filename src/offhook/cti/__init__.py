"""CTI: applications watch and control calls (the CTI Manager of a call manager).

On the node, ``events`` turns core bus events into the CTI event schema and
``journal`` numbers them node-wide, keeps the recent ones and streams them
to the web process (the control op ``events``). In the web process, the
hub, sessions and scopes fan them out to WebSocket clients.
"""
