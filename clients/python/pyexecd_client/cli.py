"""`python3 -m pyexecd_client run SCRIPT`: runs one script on a pyexecd over HTTP and prints
the response body as the service sent it, as `pyexecd exec` prints its own. The options
after `run` are exec's (--file, --stdin, --arg, --kwarg, --return-files) plus --url,
--timeout, --memory-mb and --retries; the API key, if the service wants one, is read from
the environment (PYEXECD_API_KEY), never from the command line, where `ps` shows it.

Exit status, as `pyexecd exec`'s: 0 success, 1 the script's or the request's error (an HTTP
4xx answer, or a --arg, --kwarg, script or stdin that cannot be sent), 2 the service's
(a 5xx answer, OVERLOADED once the retries are spent, no answer at all) or a local file
that cannot be read; a usage error is 2 too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from . import __version__
from .client import DEFAULT_MAX_RETRIES, Client, request_body
from .errors import ConnectionFailedError

EXIT_OK, EXIT_REQUEST, EXIT_SERVICE = 0, 1, 2
DEFAULT_URL = "http://localhost:8080"


class RequestProblem(Exception):
    """What the command line asks for cannot be sent (exit status 1)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m pyexecd_client",
        description="A client of pyexecd: runs Python scripts in its sandbox over HTTP.")
    parser.add_argument("--version", action="version", version=f"pyexecd_client {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run one script and print the response",
        description="Runs SCRIPT (a file, or - for this process's stdin) and prints the "
                    "response body. Exit status: 0 success, 1 script or request error, "
                    "2 service error or no answer. PYEXECD_API_KEY: the API key to send.")
    run.add_argument("script", metavar="SCRIPT")
    run.add_argument("--url", default=os.environ.get("PYEXECD_URL", DEFAULT_URL),
                     help="the service (default: $PYEXECD_URL, else %(default)s)")
    run.add_argument("--file", action="append", default=[], metavar="[DEST=]PATH",
                     help="the local file PATH as an input file at DEST (default: at PATH); "
                          "repeatable")
    run.add_argument("--stdin", metavar="FILE", help="the script's stdin (- for ours)")
    run.add_argument("--arg", action="append", default=[], metavar="JSON",
                     help="a positional argument of main(), as JSON; repeatable, in order")
    run.add_argument("--kwarg", action="append", default=[], metavar="NAME=JSON",
                     help="a keyword argument of main(), as JSON; repeatable")
    run.add_argument("--return-files", action="store_true",
                     help="return the files the script created or changed")
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="the script's wall-clock limit (at most the service's)")
    run.add_argument("--memory-mb", type=int, metavar="MB",
                     help="the script's memory limit (at most the service's)")
    run.add_argument("--retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                     help="times to retry a 503 with Retry-After (default %(default)s)")
    return parser


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestProblem(f"the {what} is not valid UTF-8 ({e})") from None


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise RequestProblem(f"{what} {text[:64]}: not a JSON value") from None


def _body(opts: argparse.Namespace) -> bytes:
    """The request body. OSError for a local file that cannot be read, RequestProblem for
    what cannot be sent."""
    script = _text(_read(opts.script), "script")
    files = {}
    for spec in opts.file:
        dest, eq, path = spec.partition("=")
        files[dest] = _read(path if eq else dest)
    stdin = None if opts.stdin is None else _text(_read(opts.stdin), "stdin")
    args = [_json(a, "--arg") for a in opts.arg]
    kwargs = {}
    for spec in opts.kwarg:
        name, eq, value = spec.partition("=")
        if not eq or not name:
            raise RequestProblem(f"--kwarg {spec[:64]}: not NAME=JSON")
        kwargs[name] = _json(value, "--kwarg")
    try:
        return request_body(script, files=files or None, stdin=stdin, args=args or None,
                            kwargs=kwargs or None, return_files=opts.return_files,
                            timeout=opts.timeout, memory_mb=opts.memory_mb)
    except (TypeError, ValueError) as e:
        raise RequestProblem(str(e)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = _parser()
    opts = parser.parse_args(argv)
    if opts.script == "-" and opts.stdin == "-":
        parser.error("the script and --stdin cannot both be read from stdin")
    if opts.retries < 0:
        parser.error("--retries must not be negative")
    try:
        client = Client(opts.url, os.environ.get("PYEXECD_API_KEY") or None,
                        max_retries=opts.retries)
    except ValueError as e:
        parser.error(str(e))
    try:
        body = _body(opts)
    except OSError as e:
        print(f"pyexecd_client: cannot read {e.filename}: {e.strerror or e}", file=sys.stderr)
        return EXIT_SERVICE
    except RequestProblem as e:
        print(f"pyexecd_client: {e}", file=sys.stderr)
        return EXIT_REQUEST
    try:
        answer = client.post(body)
    except ConnectionFailedError as e:
        print(f"pyexecd_client: {e}", file=sys.stderr)
        return EXIT_SERVICE
    sys.stdout.buffer.write(answer.body + b"\n")
    sys.stdout.flush()
    if answer.status == 200:
        return EXIT_OK
    return EXIT_SERVICE if answer.status >= 500 else EXIT_REQUEST
