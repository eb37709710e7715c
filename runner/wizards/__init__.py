"""The guided wizards: batch-size probe, warmup sweep, adopt-or-not, training length.

Each wizard plans stages of real trials as sub-studies of its own (named
"<wizard>.<stage>", registered like any study file), lets the runner run them,
and reads their results into the pure decisions of runner.playbook (batch_probe,
warmup, adopt, training_length, rounds). Where it stands lives in the store's
`wizards` table, so the CLI and the TUI drive the same state machine and either
can resume it. Their options are in runner.wizards.options.
"""
