"""offhook.ris."""
