"""The `scalelab` command line: a thin view over the library (parse flags, call, print).

Commands live in one module per area; importing them registers them on :data:`app`.
"""

from __future__ import annotations

import atexit
import gc
import signal
import sys

import typer

from scalelab.cli import bench, comparisons, models, studies, training  # noqa: F401  (register the commands)
from scalelab.cli._app import app
from scalelab.errors import ScalelabError
from scalelab.signals import SignalStop


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback.

    Exit codes: 0 done, 1 a user error (the line says what), 2 a bad flag, 130 interrupted by Ctrl-C,
    143 stopped by SIGTERM (both after queueing the running trials again)."""
    # Registered first, so it runs last: the interpreter's final garbage collections over torch's objects
    # would take about 1 s of every command's exit; everything scalelab writes is closed by then.
    atexit.register(gc.freeze)
    stop = SignalStop()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # bad flags and values; typer raises its own click errors
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            sys.exit(0)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except ScalelabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        _interrupted(stop)
    finally:
        if not stop.received:  # after a stop, these signals are ignored until the process ends
            stop.restore()
    if code == 130 or stop.received:  # typer turns an interrupt into Exit(130), which it returns
        _interrupted(stop)
    if isinstance(code, int) and code:  # a command's typer.Exit(code), returned rather than raised
        sys.exit(code)


def _interrupted(stop: SignalStop) -> None:
    """Exit 130 or 143, whatever other Ctrl-C or SIGTERM comes while the process ends."""
    stop.ignore_until_exit()
    by_sigterm = stop.by_sigterm
    what = "stopped by SIGTERM" if by_sigterm else "interrupted"
    typer.echo(f"{what}: running trials were queued again and finished ones are kept; re-run the same "
               "command to resume", err=True)
    sys.exit(128 + signal.SIGTERM if by_sigterm else 130)
