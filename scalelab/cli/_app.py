"""The typer application, its sub-commands and the pieces every command module shares."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Experiments on how ConvNets should be scaled.")
models_app = typer.Typer(no_args_is_help=True, help="Named model presets.")
app.add_typer(models_app, name="models")
bench_app = typer.Typer(no_args_is_help=True, help="Throughput benchmarks for this machine.")
app.add_typer(bench_app, name="bench")
search_app = typer.Typer(no_args_is_help=True, help="Architecture searches stored in an Optuna study.")
app.add_typer(search_app, name="search")

def _version(value: bool) -> None:
    if value:
        from scalelab import __version__

        typer.echo(f"scalelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Experiments on how ConvNets should be scaled."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Classes = Annotated[Optional[int], typer.Option("--classes", "-k", min=2,
                                                help="Number of classes (default: the preset's).")]


def emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)
