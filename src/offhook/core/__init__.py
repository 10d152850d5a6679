"""offhook.core."""
