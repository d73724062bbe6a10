"""pyworker: a lean, long-lived background-removal worker spoken to over stdio."""

__version__ = "0.2.0"
PROTOCOL_VERSION = 1
