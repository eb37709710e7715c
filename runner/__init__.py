"""The headless half of playbook-tui: study files, search, processes, ingest, the CLI.

Never imports Textual; `runner.report` is stdlib-only so training scripts can use it anywhere.
"""
