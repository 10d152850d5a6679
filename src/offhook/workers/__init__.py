"""Several worker processes for one node (``[node] workers``; design: docs/workers.md).

- ``reuseport``: the SO_REUSEPORT socket groups and the classic BPF program
  that picks a group's socket by the datagram's source address;
- ``tags``: whose dialog or transaction a datagram is, read before any parse
  (the worker marks of ``common.ids``);
- ``bus``: the local bus between workers (Unix datagram sockets) and its codec;
- ``replica``: the location store that replicates SIP bindings over the bus;
- ``context``: what a worker adds to the node ``app.run`` builds;
- ``supervisor``: ``offhook serve`` with N > 1: holds the sockets, runs and
  restarts the workers; ``worker``: the entry point of one worker process;
- ``status``: ``offhook status``'s line per worker.
"""
