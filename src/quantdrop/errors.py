"""The one exception type users see: a clear, one-line message and a non-zero exit."""


class QuantdropError(Exception):
    """Bad input or an unrecoverable condition, explained in one line (no traceback at the CLI)."""

    exit_code = 2


class InterruptedRun(QuantdropError):
    """The user stopped a long run; everything finished so far is kept."""

    exit_code = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same cleanup runs (temporaries removed, work kept)."""
