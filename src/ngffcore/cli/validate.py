"""``ngffcore validate``: the problems :func:`ngffcore.validate` finds at a location, as text
or JSON. Exit status 1 when there are errors (or warnings, with ``--fail-on-warning``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import IO, Any

import ngffcore
from ngffcore.cli.common import CliError, open_location


def add_validate_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``validate`` on the ``ngffcore`` command's subparsers."""
    validate = sub.add_parser("validate", parents=[common],
                              help="check LOCATION against the OME-Zarr specification")
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    validate.add_argument("--strict", action="store_true",
                          help="use the strict schemas (also require what the spec recommends)")
    validate.add_argument("--fail-on-warning", action="store_true",
                          help="exit 1 on warnings too, not only on errors")


def cmd_validate(args: argparse.Namespace, stdout: IO[str]) -> int:
    store = open_location(args)
    try:
        problems = ngffcore.validate(store, zarr_format=args.zarr_format, strict=args.strict)
    except ImportError as exc:  # jsonschema is an optional dependency
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in problems], indent=2), file=stdout)
    else:
        for problem in problems:
            print(problem, file=stdout)
        errors = sum(p.severity == "error" for p in problems)
        print(f"{store.url}: {errors} error(s), {len(problems) - errors} warning(s)"
              if problems else f"{store.url}: no problems found", file=stdout)
    # warnings flag what is legal but suspect: they fail only when asked to
    failing = [p for p in problems if p.severity == "error" or args.fail_on_warning]
    return 1 if failing else 0
