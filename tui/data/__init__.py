"""The TUI's data layer, with no Textual in it (tests/tui/test_layering.py keeps it so): what the
poller threads read from the store (snapshot, checklist, trial_data, wizard_data, logtail), the
pure functions that turn it into plots and ticks, and the actions the keys run."""
