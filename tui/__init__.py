"""playbook-tui: a Textual terminal app over the store the headless runner writes.

The TUI never trains anything itself (it must not import torch): it reads the
SQLite store in a background thread, and asks the runner for work through the
store's command queue (starting a detached runner when none is alive).
"""
