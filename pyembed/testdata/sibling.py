"""Imported by hello_file.py from its own directory."""
WORD = b"sibling"
