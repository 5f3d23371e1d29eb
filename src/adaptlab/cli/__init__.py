"""The `adaptlab` command: thin typer commands that call the library and print with rich.

Nothing heavy is imported here, so `adaptlab --help` never loads torch.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from adaptlab.errors import AdaptlabError

app = typer.Typer(
    name="adaptlab",
    help="Fine-tune or prompt? Build both on your labeled data, measure them side by side, and see which to use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain help: brackets in help text (pip install 'adaptlab[mlflow]') print as written, switches as switches
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from adaptlab import __version__

        print(f"adaptlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print adaptlab's version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Fine-tune or prompt? Build both on your labeled data, measure them side by side, and see which to use."""


from adaptlab.cli import audit as _audit  # noqa: E402,F401  (registers the command)
from adaptlab.cli import compare as _compare  # noqa: E402,F401
from adaptlab.cli import export as _export  # noqa: E402,F401
from adaptlab.cli import finetune as _finetune  # noqa: E402,F401
from adaptlab.cli import init as _init  # noqa: E402,F401
from adaptlab.cli import judge as _judge  # noqa: E402,F401
from adaptlab.cli import recommend as _recommend  # noqa: E402,F401
from adaptlab.cli import registry as _registry  # noqa: E402,F401
from adaptlab.cli import report as _report  # noqa: E402,F401
from adaptlab.cli import review as _review  # noqa: E402,F401
from adaptlab.cli import serve as _serve  # noqa: E402,F401
from adaptlab.cli import sweep as _sweep  # noqa: E402,F401


def main() -> None:
    """Entry point: run the app; adaptlab's own errors become a message and an exit code."""
    # Libraries' deprecation notices are for adaptlab's developers, not its users.
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        app()
    except AdaptlabError as exc:
        err.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )  # data text like "[/x]" is not markup
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
