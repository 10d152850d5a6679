"""offhook: an open-source call manager (the role Cisco CallManager plays)."""

__version__ = "0.1.0"
