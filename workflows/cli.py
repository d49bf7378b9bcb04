"""`ubench`: the one command line. Snakemake rules call it; people call it by hand.

Each package contributes its own subcommands through a `register(subparsers)` function in its
`cli.py`, so a new area of the suite adds commands without touching this file's logic.

Expected failures (a bad config, data file, model path or submission) print one message naming
what is wrong and exit 1; `--debug` (anywhere on the command line) or UBENCH_DEBUG=1 shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that contribute subcommands; each defines register(subparsers: argparse._SubParsersAction).
COMMAND_MODULES = (
    "workflows.commands",
    "workflows.attack_commands",
    "evaluation.cli",
    "methods.cli",
    "leaderboard.cli",
)
DEBUG_FLAG = "--debug"
DEBUG_VARIABLE = "UBENCH_DEBUG"
EXIT_ERROR = 1
# What bad input raises throughout the suite: our own checks raise ValueError subclasses (GridError,
# AggregationError, ...), FileNotFoundError/FileExistsError/PermissionError, KeyError for an unknown
# name, RuntimeError for a refused operation (publish); YAML/JSON/Unicode errors are ValueErrors too.
EXPECTED_ERRORS = (ValueError, KeyError, OSError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ubench",
        description="unlearn-bench: run, evaluate and compare LLM unlearning methods.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `ubench <command> --help` for the options of each command. "
               f"{DEBUG_FLAG} (or {DEBUG_VARIABLE}=1) shows the traceback of an error.",
    )
    parser.add_argument(DEBUG_FLAG, action="store_true", help="show tracebacks instead of one-line errors")
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


def debug_requested(argv: list[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def error_message(error: BaseException) -> str:
    """One readable line (or block) for an expected error: KeyError's repr quotes are dropped."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    text = str(text).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename and error.strerror and len(error.args) == 2:
        text = f"{error.filename}: {error.strerror}"  # no "[Errno 2]" noise
    elif isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {text}"
    return text


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]  # accepted after the subcommand too
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Each subcommand sets `func` (via set_defaults) to a callable taking the parsed args.
        result = args.func(args)
    except EXPECTED_ERRORS as error:
        if debug:
            raise
        command = " ".join(a for a in (args.command, *(getattr(args, k, None) for k in vars(args)
                                                       if k.endswith("_command"))) if isinstance(a, str))
        print(f"ubench {command}: error: {error_message(error)}", file=sys.stderr)
        print(f"(run with {DEBUG_FLAG} or {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if debug:
            raise
        print("ubench: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
