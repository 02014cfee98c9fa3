"""Client: POST /execute over HTTP(S) with the standard library alone.

One connection per request (so one Client may be shared by threads). A 503 that carries
Retry-After (OVERLOADED: the script did not run) is sent again after the wait it names, at
most `max_retries` times, and only when that wait is at most `max_retry_wait` seconds; any
other answer is final. The body is sent in chunks, and the sending stops as soon as the
service has answered (a 413 comes before the body is read), so that answer is the one
reported rather than the broken pipe that would follow.
"""

from __future__ import annotations

import ast
import base64
import email.utils
import http.client
import inspect
import json
import os
import re
import select
import socket
import textwrap
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence, Union

from . import __version__
from .errors import ConnectionFailedError, UnexpectedResponseError, error_class
from .results import Execution

DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_RETRY_WAIT = 30.0  # seconds
SEND_CHUNK = 64 * 1024

FileContent = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]
"""An input file's content: bytes (sent as base64), str (sent as UTF-8 text), or the path
of a local file (its bytes)."""

Files = Union[Mapping[str, FileContent], Iterable[Mapping[str, Any]]]
"""Input files: {path: content}, or the wire's entries [{"path", "content", "encoding"}]."""


class Answer(NamedTuple):
    """One HTTP answer: status, headers (lower-cased names), raw body, requests sent."""

    status: int
    headers: dict[str, str]
    body: bytes
    attempts: int


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP-date, RFC 9110
    10.2.3); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _file_entry(path: Any, content: Any) -> dict[str, str]:
    if not isinstance(path, str):
        raise TypeError(f"files: a path must be a str, not {type(path).__name__}")
    if isinstance(content, str):
        return {"path": path, "content": content, "encoding": "utf-8"}
    if isinstance(content, os.PathLike):
        with open(content, "rb") as f:
            content = f.read()
    if isinstance(content, (bytes, bytearray, memoryview)):
        return {"path": path, "content": base64.b64encode(content).decode("ascii"),
                "encoding": "base64"}
    raise TypeError(f"files[{path!r}]: the content must be bytes, str or a path, not "
                    f"{type(content).__name__}")


def _files_field(files: Files) -> list[Any]:
    if isinstance(files, Mapping):
        return [_file_entry(path, content) for path, content in files.items()]
    if isinstance(files, (str, bytes)):
        raise TypeError("files must be a mapping {path: content} or a list of entries")
    entries = []
    for entry in files:
        if not isinstance(entry, Mapping):
            raise TypeError("files: each entry of a list must be a mapping "
                            '{"path", "content", "encoding"}')
        entries.append(dict(entry))
    return entries


def request_body(script: str, *, files: Files | None = None, stdin: str | bytes | None = None,
                 args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                 return_files: bool = False, timeout: float | None = None,
                 memory_mb: int | None = None) -> bytes:
    """The JSON body of POST /execute (UTF-8) for these fields; an absent one is left out,
    so the service's default holds. TypeError or ValueError for what cannot be sent."""
    if not isinstance(script, str):
        raise TypeError(f"script must be a str, not {type(script).__name__}")
    body: dict[str, Any] = {"script": script}
    if files is not None:
        body["files"] = _files_field(files)
    if stdin is not None:
        if isinstance(stdin, (bytes, bytearray)):
            try:
                stdin = bytes(stdin).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"stdin must be UTF-8 text: {e}") from None
        if not isinstance(stdin, str):
            raise TypeError(f"stdin must be str or bytes, not {type(stdin).__name__}")
        body["stdin"] = stdin
    if args is not None:
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise TypeError("args must be a list or a tuple")
        body["args"] = list(args)
    if kwargs is not None:
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise TypeError("kwargs must be a mapping with str keys")
        body["kwargs"] = dict(kwargs)
    if return_files:
        body["return_files"] = True
    if timeout is not None:
        body["timeout"] = timeout
    if memory_mb is not None:
        body["memory_mb"] = memory_mb
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise type(e)(f"the request is not JSON (args and kwargs must be JSON values): {e}") \
            from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"the request has text that is not valid Unicode: {e}") from None


def function_script(fn: Callable[..., Any]) -> str:
    """A script whose main() is `fn`: the source of a top-level, undecorated `def`
    function, then `main = <its name>`. The function runs in the sandbox, so it must import
    what it uses itself (module-level names of its file are not sent); its default values
    and annotations are evaluated there too. TypeError or ValueError for anything else."""
    if not inspect.isfunction(fn):
        raise TypeError(f"run_function needs a function defined with def, not {fn!r}")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"{fn.__qualname__} is async: main() must be a plain function")
    if fn.__name__ == "<lambda>" or "." in fn.__qualname__:
        raise ValueError(f"{fn.__qualname__} is not a top-level function of its module: only "
                         "such a function's source stands on its own")
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise ValueError(f"the source of {fn.__qualname__} is not available: {e}") from None
    tree = ast.parse(source)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise ValueError(f"the source of {fn.__qualname__} is not one function definition")
    node = tree.body[0]
    if node.decorator_list:
        raise ValueError(f"{fn.__qualname__} is decorated: its decorators would run in the "
                         "sandbox, where they are not defined")
    script = source.rstrip("\n") + "\n"
    if node.name != "main":
        script += f"\n\nmain = {node.name}\n"
    return script


def _send_body(sock: socket.socket, body: bytes) -> None:
    """Sends `body` in chunks, stopping early once the service has answered or closed."""
    view = memoryview(body)
    for start in range(0, len(view), SEND_CHUNK):
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return
        try:
            sock.sendall(view[start:start + SEND_CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            return


class Client:
    """A client of the pyexecd at `url` ("http://host:8080", or https, or a path prefix
    under which a proxy serves it). `api_key`: sent as `Authorization: Bearer <key>` (the
    service's --api-keys-file). `timeout`: seconds to wait on the network (connecting, then
    each read; a script's run is a read), None to wait as long as the service takes (it
    always answers: its own limits end every script). `max_retries` and `max_retry_wait`:
    see the module's comment."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float | None = None,
                 *, max_retries: int = DEFAULT_MAX_RETRIES,
                 max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT) -> None:
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (parts.scheme not in ("http", "https") or not parts.hostname or port == -1
                or parts.query or parts.fragment or parts.username is not None):
            raise ValueError(f"not a service URL: {url!r} (expected http[s]://HOST[:PORT][/PATH])")
        if api_key is not None and not re.fullmatch(r"[\x21-\x7e]+", api_key):
            raise ValueError("api_key must be non-empty printable ASCII without white space")
        if max_retries < 0 or max_retry_wait < 0:
            raise ValueError("max_retries and max_retry_wait must not be negative")
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._path = parts.path.rstrip("/") + "/execute"

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def execute(self, script: str, *, files: Files | None = None,
                stdin: str | bytes | None = None, args: Sequence[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, return_files: bool = False,
                timeout: float | None = None, memory_mb: int | None = None) -> Execution:
        """Runs `script` (Python source defining main()) and returns its Execution; raises
        the ExecutionError subclass of the error code otherwise. `files` are written into
        the script's working directory first ({path: bytes | str | local path}, or the
        wire's entries); `stdin` is its standard input; main(*args, **kwargs);
        `return_files` returns the files it created or changed; `timeout` (seconds) and
        `memory_mb` lower the service's limits for this run."""
        body = request_body(script, files=files, stdin=stdin, args=args, kwargs=kwargs,
                            return_files=return_files, timeout=timeout, memory_mb=memory_mb)
        return self.interpret(self.post(body))

    def run_function(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Execution:
        """Runs the top-level function `fn` as main(*args, **kwargs) in the sandbox (see
        function_script for what `fn` may be); args and kwargs must be JSON values."""
        return self.execute(function_script(fn), args=args, kwargs=kwargs)

    def post(self, body: bytes) -> Answer:
        """Sends a ready JSON body to /execute, with the retries of a 503 + Retry-After, and
        returns the last answer as it came. ConnectionFailedError if none came."""
        attempts = 0
        while True:
            answer = self._post_once(body)
            attempts += 1
            wait = retry_after_seconds(answer.headers.get("retry-after"))
            if (answer.status != 503 or wait is None or attempts > self.max_retries
                    or wait > self.max_retry_wait):
                return answer._replace(attempts=attempts)
            time.sleep(wait)

    def interpret(self, answer: Answer) -> Execution:
        """The Execution of a 200 answer; raises the error answer's exception otherwise."""
        try:
            response = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnexpectedResponseError(self.url, answer.status, answer.body,
                                          "not JSON") from None
        if not isinstance(response, dict):
            raise UnexpectedResponseError(self.url, answer.status, answer.body,
                                          "not a JSON object")
        request_id = answer.headers.get("x-request-id")
        try:
            if answer.status == 200:
                return Execution.from_response(response, request_id)
            code = response.get("code")
            if not isinstance(code, str) or not isinstance(response.get("error"), str):
                raise ValueError("an error answer without error and code")
            error = error_class(code)(
                response, answer.status, request_id=request_id,
                retry_after=retry_after_seconds(answer.headers.get("retry-after")),
                attempts=answer.attempts)
        except ValueError as e:
            raise UnexpectedResponseError(self.url, answer.status, answer.body, str(e)) from None
        raise error

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _post_once(self, body: bytes) -> Answer:
        conn = self._connection()
        try:
            try:
                conn.putrequest("POST", self._path, skip_accept_encoding=True)
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Accept", "application/json")
                conn.putheader("User-Agent", f"pyexecd-client/{__version__}")
                if self.api_key is not None:
                    conn.putheader("Authorization", f"Bearer {self.api_key}")
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders()  # connects
            except OSError as e:
                raise ConnectionFailedError(self.url, str(e) or type(e).__name__,
                                            sent=False) from e
            try:
                if conn.sock is None:  # endheaders() connects, or raises
                    raise http.client.NotConnected()
                _send_body(conn.sock, body)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise ConnectionFailedError(self.url, str(e) or type(e).__name__,
                                            sent=True) from e
            headers = {name.lower(): value for name, value in resp.getheaders()}
            return Answer(resp.status, headers, raw, 1)
        finally:
            conn.close()
