"""`ubench`: the one command line. Snakemake rules call it; people call it by hand.

Each package contributes its own subcommands through a `register(subparsers)` function in its
`cli.py`, so a new area of the suite adds commands without touching this file's logic.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands; each defines register(subparsers: argparse._SubParsersAction).
COMMAND_MODULES = (
    "workflows.commands",
    "evaluation.cli",
    "methods.cli",
    "leaderboard.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ubench",
        description="unlearn-bench: run, evaluate and compare LLM unlearning methods.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `ubench <command> --help` for the options of each command.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue  # that part of the suite contributes no commands (yet)
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Each subcommand sets `func` (via set_defaults) to a callable taking the parsed args.
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
