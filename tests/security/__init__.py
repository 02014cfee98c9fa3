"""The security suite. A package, like tests/integration, so that both suites run in one
pytest invocation: each test module imports its own `.conftest`."""
