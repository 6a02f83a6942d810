"""``ssmblocks app``: serves the page on this computer (127.0.0.1) until Ctrl+C.

    ssmblocks app                          # http://127.0.0.1:7860 (or the next free port)
    ssmblocks app --port 8000 --max-pixels 25000000
    ssmblocks app --host 0.0.0.0           # reachable from other machines: a warning says so

Nothing leaves the computer: Gradio's analytics are off, the page's fonts and scripts are served locally, and a
public ``--share`` link is made only when asked for. The results are written to a temporary folder, removed when
the server stops. Gradio is the optional ``app`` extra: ``pip install 'ssmblocks[app]'``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import sys
import time
from typing import Any

from ssmblocks.app.jobs import DEFAULT_MAX_PIXELS

__all__ = ["DEFAULT_HOST", "MissingAppBackendError", "add_arguments", "exposure_warning", "launch", "run"]

DEFAULT_HOST = "127.0.0.1"


class MissingAppBackendError(ImportError):
    """Gradio (the ``app`` extra) is not installed."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, share: bool) -> str | None:
    """What to tell the person starting the page when it can be reached from beyond this computer; else None."""
    warnings = []
    if not _is_loopback(host):
        warnings.append(f"serving on {host}: anyone who can reach this machine can use the page (and its processor "
                        f"and memory); it has no password. Leave out --host to keep it on this computer "
                        f"({DEFAULT_HOST}).")
    if share:
        warnings.append("--share publishes the page at a public address through Gradio's share servers (this needs "
                        "internet access): anyone with the link can use it.")
    return " ".join(warnings) or None


def _page() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from ssmblocks.app import page
    except ImportError as err:
        if (err.name or "").split(".")[0] != "gradio":
            raise
        raise MissingAppBackendError("the app needs Gradio: pip install 'ssmblocks[app]'") from None
    return page


def launch(*, host: str = DEFAULT_HOST, port: int | None = None, share: bool = False,
           max_pixels: int = DEFAULT_MAX_PIXELS, block: bool = True) -> Any:
    """Builds the page and serves it on ``host``:``port`` (default port: the first free one from 7860). With
    ``block`` (the command), serves until interrupted and removes the results folder; otherwise returns the
    running Gradio app at once (tests; ``app.close()`` stops it)."""
    page = _page()
    warning = exposure_warning(host, share)
    if warning:
        print(f"ssmblocks: warning: {warning}", file=sys.stderr)
    app = page.build_app(max_pixels=max_pixels)
    try:
        app.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True, show_error=False,
            ssr_mode=False, mcp_server=False, enable_monitoring=False, allowed_paths=[str(app.ssm_results)],
            css=page.CSS)
        print(f"ssmblocks app: open {app.local_url} in a browser"
              + (f" (public link: {app.share_url})" if app.share_url else "")
              + (" - Ctrl+C stops the server" if block else ""), flush=True)
        if block:
            _serve_until_stopped(app)
    finally:
        if block:
            shutil.rmtree(app.ssm_results, ignore_errors=True)
    return app


def _serve_until_stopped(app: Any) -> None:
    """Waits for Ctrl+C (or SIGTERM), then closes the server."""
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while app.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("ssmblocks app: stopping", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.close()


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text}")
    return port


def _pixels(text: str) -> int:
    pixels = int(text)
    if pixels < 1:
        raise argparse.ArgumentTypeError(f"--max-pixels must be a positive number of pixels, got {text}")
    return pixels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST}: this "
                        "computer only; 0.0.0.0 serves every network interface, with a warning)")
    parser.add_argument("--port", type=_port, help="port (default: the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public link through "
                        "Gradio's share servers (off unless given; needs internet access)")
    parser.add_argument("--max-pixels", type=_pixels, default=DEFAULT_MAX_PIXELS, help="refuse images (and video "
                        f"frames) with more pixels than this (default {DEFAULT_MAX_PIXELS}, i.e. 4096x4096)")


def run(args: argparse.Namespace) -> None:
    """The command: serves the page until Ctrl+C. A missing Gradio is reported in one line (exit status 1)."""
    try:
        launch(host=args.host, port=args.port, share=args.share, max_pixels=args.max_pixels)
    except MissingAppBackendError as err:
        raise SystemExit(f"ssmblocks: error: {err}") from None
    except KeyboardInterrupt:        # a second Ctrl+C while the server closes
        pass
