"""The `siyu` command line: `main.py` parses and runs one command; one module per command group."""
