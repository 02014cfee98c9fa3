"""The exceptions of pyexecd_client.

Every error answer of pyexecd (a JSON object with "error" and "code") is raised as the class
of its code, under one base, ExecutionError, grouped by whose doing it is:

    PyexecdError
     +-- ConnectionFailedError      no HTTP answer (refused, DNS, reset, client timeout)
     +-- UnexpectedResponseError    an HTTP answer that is not pyexecd's (a proxy's 502 page)
     +-- ExecutionError             pyexecd's error answer; `code` says which
          +-- RequestError          the request was refused; the script did not run
          +-- ScriptError           the script ran and failed
          +-- ServiceError          the service could not run it (5xx)

A code this version does not know (a newer service) is raised as ExecutionError itself,
with its `code`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from .results import OutputFile, parse_output_files, parse_str_list


class PyexecdError(Exception):
    """The base of every exception pyexecd_client raises."""


class ConnectionFailedError(PyexecdError):
    """No HTTP answer from the service. `sent` is False when the request never left (the
    connection could not be made: the script did not run), True when it was sent, or partly
    sent, and no answer came (the script may have run; the service stops a script whose
    client went away)."""

    def __init__(self, url: str, reason: str, *, sent: bool) -> None:
        self.url = url
        self.reason = reason
        self.sent = sent
        if sent:
            text = f"no answer from {url}: {reason} (the request was sent; the script may have run)"
        else:
            text = f"cannot connect to {url}: {reason}"
        super().__init__(text)


class UnexpectedResponseError(PyexecdError):
    """An HTTP answer that is not one of pyexecd's: not a JSON object, a 200 without a
    result, an error without a code, or fields that do not hold what the API says (e.g.
    a proxy's HTML error page). `body` is the raw body."""

    def __init__(self, url: str, status: int, body: bytes, why: str) -> None:
        self.url = url
        self.status = status
        self.body = body
        self.why = why
        super().__init__(f"HTTP {status} from {url} is not a pyexecd answer: {why}: "
                         f"{body[:200]!r}")


def _typed(response: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """response[key] if it has the type `kind` (a bool is not an int here), else None."""
    value = response.get(key)
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


class ExecutionError(PyexecdError):
    """pyexecd's answer to a request that did not succeed. The response's fields are
    attributes (None when the response does not carry them):

    code, message (the response's "error"), status (HTTP), stdout, stderr, duration_ms,
    traceback (RUNTIME_ERROR), line and column (SYNTAX_ERROR), signal (CRASHED), truncated
    (OUTPUT_LIMIT), files / files_omitted / files_truncated (RUNTIME_ERROR and
    NOT_JSON_SERIALIZABLE with return_files; empty when absent), request_id (the body's, else
    the X-Request-Id header), retry_after (seconds, from a 503's Retry-After), attempts (the
    requests sent, retries included), and response (the whole JSON object)."""

    CODE: ClassVar[str] = ""

    def __init__(self, response: Mapping[str, Any], status: int, *,
                 request_id: str | None = None, retry_after: float | None = None,
                 attempts: int = 1) -> None:
        self.response: dict[str, Any] = dict(response)
        self.status = status
        self.code: str = _typed(response, "code", str) or self.CODE
        self.message: str = _typed(response, "error", str) or ""
        self.stdout: str | None = _typed(response, "stdout", str)
        self.stderr: str | None = _typed(response, "stderr", str)
        duration = _typed(response, "duration_ms", (int, float))
        self.duration_ms: float | None = None if duration is None else float(duration)
        self.traceback: str | None = _typed(response, "traceback", str)
        self.line: int | None = _typed(response, "line", int)
        self.column: int | None = _typed(response, "column", int)
        self.signal: str | None = _typed(response, "signal", str)
        self.truncated: bool | None = _typed(response, "truncated", bool)
        self.files: list[OutputFile] = parse_output_files(response.get("files"))
        self.files_omitted: list[str] = parse_str_list(response.get("files_omitted"),
                                                       "files_omitted")
        self.files_truncated: bool = response.get("files_truncated") is True
        self.request_id: str | None = _typed(response, "request_id", str) or request_id
        self.retry_after = retry_after
        self.attempts = attempts
        text = f"{self.code} (HTTP {status}): {self.message}"
        if self.traceback:
            text += "\n" + self.traceback.rstrip("\n")
        super().__init__(text)


class RequestError(ExecutionError):
    """The service refused the request as sent (4xx): the script did not run."""


class ScriptError(ExecutionError):
    """The script ran and failed, or broke a limit: the script's doing, not the service's."""


class ServiceError(ExecutionError):
    """The service could not run the script (5xx): its own fault or its load."""


class InvalidRequestError(RequestError):
    """INVALID_REQUEST (400): a field missing, unknown, of the wrong type or out of range."""

    CODE = "INVALID_REQUEST"


class PayloadTooLargeError(RequestError):
    """PAYLOAD_TOO_LARGE (413): the body is over the service's --max-body, or the input
    files do not fit in the sandbox's /tmp."""

    CODE = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(RequestError):
    """UNSUPPORTED_MEDIA_TYPE (415): not sent as application/json."""

    CODE = "UNSUPPORTED_MEDIA_TYPE"


class UnauthorizedError(RequestError):
    """UNAUTHORIZED (401): the service wants an API key, and none or a wrong one was sent."""

    CODE = "UNAUTHORIZED"


class NotFoundError(RequestError):
    """NOT_FOUND (404): nothing at that path (is the client's URL the service's root?)."""

    CODE = "NOT_FOUND"


class MethodNotAllowedError(RequestError):
    """METHOD_NOT_ALLOWED (405)."""

    CODE = "METHOD_NOT_ALLOWED"


class ScriptSyntaxError(ScriptError):
    """SYNTAX_ERROR (400): the script does not compile; `line` and `column` say where."""

    CODE = "SYNTAX_ERROR"


class MissingMainError(ScriptError):
    """MISSING_MAIN (400): no callable main() after the module body ran."""

    CODE = "MISSING_MAIN"


class ScriptRuntimeError(ScriptError):
    """RUNTIME_ERROR (422): an exception in the script (`traceback`), or it ended its own
    process before main() returned."""

    CODE = "RUNTIME_ERROR"


class NotJsonSerializableError(ScriptError):
    """NOT_JSON_SERIALIZABLE (422): main() returned a value JSON cannot carry."""

    CODE = "NOT_JSON_SERIALIZABLE"


class ScriptTimeoutError(ScriptError):
    """TIMEOUT (422): the script hit its wall-clock (or CPU-time) limit and was stopped."""

    CODE = "TIMEOUT"


class MemoryLimitError(ScriptError):
    """MEMORY_LIMIT (422): MemoryError, or the sandbox's OOM kill."""

    CODE = "MEMORY_LIMIT"


class OutputLimitError(ScriptError):
    """OUTPUT_LIMIT (422): stdout or stderr over the limit (returned truncated,
    `truncated` True), or a result over the result limit."""

    CODE = "OUTPUT_LIMIT"


class CrashedError(ScriptError):
    """CRASHED (422): the script's process died of a signal (`signal`, e.g. "SIGSEGV")."""

    CODE = "CRASHED"


class OverloadedError(ServiceError):
    """OVERLOADED (503): the queue was full, the service was shutting down, or the request
    waited too long for a sandbox; the script did not run. Raised once the client's retries
    (see Client's max_retries) are spent; `retry_after` is the service's advice."""

    CODE = "OVERLOADED"


class InternalServiceError(ServiceError):
    """INTERNAL (500): a fault of the service itself; `request_id` names it in its logs."""

    CODE = "INTERNAL"


ERROR_CLASSES: dict[str, type[ExecutionError]] = {
    cls.CODE: cls
    for cls in (InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError,
                UnauthorizedError, NotFoundError, MethodNotAllowedError, ScriptSyntaxError,
                MissingMainError, ScriptRuntimeError, NotJsonSerializableError,
                ScriptTimeoutError, MemoryLimitError, OutputLimitError, CrashedError,
                OverloadedError, InternalServiceError)
}
"""Every error code pyexecd documents, to its exception class."""


def error_class(code: str) -> type[ExecutionError]:
    """The exception class of an error code (ExecutionError for a code not known here)."""
    return ERROR_CLASSES.get(code, ExecutionError)
