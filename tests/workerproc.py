"""The protocol client lives in testkit/client.py (shared with bench/); this name stays for the tests.

Every worker a test starts through it packs its frames with strict types (testkit.client.WorkerProcess):
a NumPy scalar in any reply of the suite fails the test that received it.
"""

from typing import Any

from testkit import client
from testkit.client import *  # noqa: F403


class WorkerProcess(client.WorkerProcess):
    def __init__(self, *args: str, strict_types: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, strict_types=strict_types, **kwargs)
