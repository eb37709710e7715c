"""The playbook's decisions as pure functions: plain data in, verdicts and plot data out.

No SQL, no widgets, no processes: the CLI and the TUI both call these.
`runner.playbook.data` defines the inputs; `runner.study_data` loads them from the store.
"""
