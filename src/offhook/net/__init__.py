"""offhook.net."""
