"""offhook.sdp."""
