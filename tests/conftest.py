"""The whole suite: no test may leave a process running (tests/process_guard.py), and the
guard's own tests run pytest inside pytest (``pytester``)."""

pytest_plugins = ["pytester", "tests.process_guard"]
