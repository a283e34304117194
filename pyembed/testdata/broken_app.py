"""An app whose import fails, for the load-error tests."""
RATIO = 1 / 0
