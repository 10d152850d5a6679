"""``python -m offhook``: the ``offhook`` command (``offhook serve`` starts its media server so)."""

from offhook.cli import main

main()
