"""The ``tailhub`` command: ``serve`` runs a hub; the other commands talk to one.

Every option of ``serve`` is also read from its environment variable (the original hub's
names: ``PORT``, ``AUTH_TOKEN``, ...); a flag wins over the variable. Failures are one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from tailhub import __version__
from tailhub.config import OPTIONS, ConfigError, build_settings

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tailhub")
def main() -> None:
    """tailhub: watch and steer fleets of agent containers in real time."""


def _serve_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        default = "(generated)" if option.name == "auth_token" else option.default
        func = click.option(
            option.flag,
            option.name,
            envvar=option.env,
            default=None,
            show_envvar=True,
            help=f"{option.help} [default: {default or 'none'}]",
        )(func)
    return func


@main.command()
@_serve_options
@click.pass_context
def serve(ctx: click.Context, /, **raw: str | None) -> None:
    """Run a hub: WebSocket, HTTP API, metrics and dashboard on one port."""
    values = {
        name: (value, ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE)
        for name, value in raw.items()
    }
    try:
        settings = build_settings(values)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from tailhub.server.app import run

    raise SystemExit(run(settings))
