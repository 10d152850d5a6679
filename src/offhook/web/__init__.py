"""The web process: REST API (OpenAPI), admin pages and the self-care portal.

One ASGI application (FastAPI, served by uvicorn) on the ``[web]`` listener,
in its own process: it reads and writes the database and reaches the node
only through the node's local control endpoint, so nothing it does can stop
call processing.
"""
