"""Interop tests: offhook against real third-party SIP peers (baresip, SIPp)."""
