import sys

try:
    from runner.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI's libraries load: nothing has started yet
    sys.exit(130)

sys.exit(main())
