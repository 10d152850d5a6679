"""Media: the address-family bridge of the node (``bridge``, ``relay``); later the
media server of DESIGN.md (RTP endpoints, G.711, music on hold, mixing, tones)."""
