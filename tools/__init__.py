"""Development tools run from a checkout (`python -m tools.NAME`): not shipped, not tests."""
