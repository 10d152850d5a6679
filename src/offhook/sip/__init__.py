"""offhook.sip."""
