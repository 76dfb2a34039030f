"""``python -m sustain.server [serve|dev] ...``: the server commands without the full CLI."""

from __future__ import annotations

import click

from sustain.cli.serve import dev, serve


@click.group()
def main() -> None:
    """Run a Sustain server."""


main.add_command(serve)
main.add_command(dev)

if __name__ == "__main__":
    main()
