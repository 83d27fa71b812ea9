"""Migration commands: dump, load, copy, verify, sample."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
