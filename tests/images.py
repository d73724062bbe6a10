"""The synthetic images live in testkit/images.py (shared with bench/); this name stays for the tests."""

from testkit.images import *  # noqa: F403
