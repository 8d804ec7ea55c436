"""The ``ngffcore`` command: the parser and the dispatch to one module per command
(``info``, ``read``, ``render``, ``validate``, ``bench``, ``convert``; shared helpers in
``common``, the PNG encoder of ``render`` in ``png``).

Exit status: 0 success, 1 problems found (validate), 2 errors (nothing there, bad metadata,
bad arguments), 130 interrupted, 141 the reader of stdout went away.
"""

from __future__ import annotations

import argparse
import os
import sys

import ngffcore
from ngffcore.cli.bench import add_bench_parser, cmd_bench
from ngffcore.cli.common import CliError, common_parser
from ngffcore.cli.convert import add_convert_parser, cmd_convert
from ngffcore.cli.info import add_info_parser, cmd_info
from ngffcore.cli.read import add_read_parser, cmd_read
from ngffcore.cli.render import add_render_parser, cmd_render
from ngffcore.cli.validate import add_validate_parser, cmd_validate
from ngffcore.errors import NgffError


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="ngffcore", description="Inspect, read, render and validate OME-Zarr data.")
    parser.add_argument("--version", action="version", version=f"ngffcore {ngffcore.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_info_parser(sub, common)
    add_read_parser(sub, common)
    add_render_parser(sub, common)
    add_validate_parser(sub, common)
    add_bench_parser(sub, common)
    add_convert_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    stdout, stderr = sys.stdout, sys.stderr
    try:
        if args.command == "info":
            return cmd_info(args, stdout)
        if args.command == "read":
            return cmd_read(args, stdout, stderr)
        if args.command == "render":
            return cmd_render(args, stdout)
        if args.command == "bench":
            return cmd_bench(args, stdout, stderr)
        if args.command == "convert":
            return cmd_convert(args, stderr)
        return cmd_validate(args, stdout)
    except (NgffError, CliError) as exc:
        print(f"ngffcore {args.command}: error: {exc}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ngffcore {args.command}: interrupted", file=stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`ngffcore info … | head`): no traceback, and no second
        # error when Python flushes stdout at exit; 141 is what a shell reports for SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


__all__ = ["main", "build_parser"]
