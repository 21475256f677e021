"""``holefill serve``: a local web page to paint a mask and fill it, and the HTTP API behind it.

:func:`create_app` builds the FastAPI application; ``holefill serve`` (:mod:`holefill.serve.cli`)
runs it on uvicorn. FastAPI and uvicorn come with the ``serve`` extra.
"""

from holefill.serve.app import FillQueue, ServeConfig, ServerBusyError, create_app

__all__ = ["create_app", "ServeConfig", "FillQueue", "ServerBusyError"]
