"""``holefill serve``: run the painting page and the fill API on uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

from holefill.cli import add_limit_arguments, add_method_arguments, method_options_from_args
from holefill.errors import HolefillError, InputError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="holefill serve",
        description="A local web page to paint a mask over a photo and fill it, and the HTTP API "
        "behind it (OpenAPI at /docs).",
    )
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (127.0.0.1: this computer only; 0.0.0.0: the network)",
    )
    server.add_argument("--port", type=int, default=8080, help="port (8080; 0 picks a free one)")
    server.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest request body in MB (50)"
    )
    add_limit_arguments(server)
    server.add_argument(
        "--queue-size",
        type=int,
        default=4,
        help="requests that may wait while one fills; more get 503 (4)",
    )
    server.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (warning; info logs every request)",
    )
    server.add_argument("--open", action="store_true", help="open the page in a web browser")
    access = parser.add_argument_group(
        "access",
        "Only this computer's browser may use the server: requests naming another host, or "
        "coming from another web page, get 403. Listening beyond this computer (--host) also "
        "needs a random token, printed with the address.",
    )
    access.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this host name in requests (e.g. a name this computer has on the "
        "network); repeat for more",
    )
    access.add_argument(
        "--no-token",
        action="store_true",
        help="with --host beyond this computer, do not require the token (anyone who can reach "
        "the port can use the server)",
    )
    access.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from this origin (e.g. http://localhost:3000) call the API; repeat for "
        "more (CORS is off otherwise)",
    )
    add_method_arguments(parser)
    return parser


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises :class:`InputError` when that fails."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name such as localhost
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (it is in use: pick another with --port)" if port else ""
        raise InputError(f"cannot listen on {host}:{port}{hint}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, *, log_level: str = "warning"):
    """A ``uvicorn.Server`` for ``app``; call ``.run(sockets=[bind_socket(...)])``."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
            timeout_graceful_shutdown=5,
        )
    )


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def main(argv: list[str] | None = None) -> int:
    """Run the server until Ctrl+C. Returns the exit code."""
    args = _build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from holefill.serve.app import ServeConfig, create_app
    except ImportError as exc:
        raise HolefillError(
            f"`holefill serve` needs the serve extra: pip install 'holefill[serve]' ({exc})"
        ) from None
    from holefill.pipeline import load_method
    from holefill.serve.security import SecurityConfig

    security = SecurityConfig.for_server(
        args.host,
        allow_hosts=args.allow_host,
        cors_origins=args.cors_origin,
        no_token=args.no_token,
    )
    config = ServeConfig(
        method=args.method,
        options=method_options_from_args(args),
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        queue_size=args.queue_size,
    )
    load_method(config.method, **config.options)  # fail now on a bad method, load models once
    app = create_app(config, security)
    app.state.service.methods()  # import every method now, so the page opens at once
    sock = bind_socket(args.host, args.port)
    url = url_of(sock)
    query = f"?token={security.token}" if security.token else ""
    if security.exposed and not security.token:
        print(
            f"holefill: warning: listening on {args.host} without a token (--no-token): anyone "
            "who can reach this machine can use the server",
            file=sys.stderr,
        )
    elif security.exposed:
        print(
            f"holefill: listening on {args.host}: other computers reach the page at this "
            "computer's address with the same ?token=",
            file=sys.stderr,
        )
    print(
        f"holefill: serving {config.method} at {url}{query}  "
        f"(API docs: {url}docs{query}; Ctrl+C to stop)",
        flush=True,
    )
    if args.open:
        import webbrowser

        webbrowser.open(url + query)
    try:
        make_server(app, log_level=args.log_level).run(sockets=[sock])
    finally:
        sock.close()
    return 0
