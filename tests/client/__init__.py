"""The tests of clients/python (pyexecd_client). A package, like tests/integration, so that
the suites run in one pytest invocation: each test module imports its own `.conftest`."""
