"""The integration suite. A package, like tests/security, so that both suites run in one
pytest invocation: each test module imports its own `.conftest`."""
