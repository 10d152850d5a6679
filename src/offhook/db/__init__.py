"""offhook.db."""
