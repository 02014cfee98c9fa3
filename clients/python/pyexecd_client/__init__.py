"""pyexecd_client: a client of pyexecd, the service that runs Python scripts in a sandbox.

    from pyexecd_client import Client
    run = Client("http://localhost:8080").execute("def main():\n    return 6 * 7")
    run.result  # 42

Client.execute returns an Execution, or raises the ExecutionError subclass of the error
code (ScriptRuntimeError, ScriptTimeoutError, ...); see errors.py for the whole tree.
Standard library only; Python 3.9 or later.
"""

__version__ = "0.1.0"

from .client import Answer, Client, function_script, request_body  # noqa: E402
from .errors import (ERROR_CLASSES, ConnectionFailedError, CrashedError,  # noqa: E402
                     ExecutionError, InternalServiceError, InvalidRequestError,
                     MemoryLimitError, MethodNotAllowedError, MissingMainError,
                     NotFoundError, NotJsonSerializableError, OutputLimitError,
                     OverloadedError, PayloadTooLargeError, PyexecdError, RequestError,
                     ScriptError, ScriptRuntimeError, ScriptSyntaxError, ScriptTimeoutError,
                     ServiceError, UnauthorizedError, UnexpectedResponseError,
                     UnsupportedMediaTypeError, error_class)
from .results import Execution, Figure, OutputFile  # noqa: E402

__all__ = [
    "Answer", "Client", "ConnectionFailedError", "CrashedError", "ERROR_CLASSES", "Execution",
    "ExecutionError", "Figure", "InternalServiceError", "InvalidRequestError",
    "MemoryLimitError", "MethodNotAllowedError", "MissingMainError", "NotFoundError",
    "NotJsonSerializableError", "OutputFile", "OutputLimitError", "OverloadedError",
    "PayloadTooLargeError", "PyexecdError", "RequestError", "ScriptError",
    "ScriptRuntimeError", "ScriptSyntaxError", "ScriptTimeoutError", "ServiceError",
    "UnauthorizedError", "UnexpectedResponseError", "UnsupportedMediaTypeError",
    "error_class", "function_script", "request_body", "__version__",
]
