"""The protocol client lives in testkit/client.py (shared with bench/); this name stays for the tests."""

from testkit.client import *  # noqa: F403
