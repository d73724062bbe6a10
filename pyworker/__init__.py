"""pyworker: a lean, long-lived background-removal worker spoken to over stdio."""

__version__ = "0.3.0"
# docs/protocol.md's version (its "Versions" section says when it changes and what changed); sent in `ready`,
# checked by the Node pool against node-shim/lib/contract.json.
PROTOCOL_VERSION = 2
