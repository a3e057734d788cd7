"""``fter-tvm`` command line: dispatches ``fter-tvm COMMAND ...`` to ``fter_tvm/cli/<command>.py``."""

from __future__ import annotations

import argparse
import importlib
import sys

DESCRIPTION = "Compile fully ternary Vision Transformers (FTerViT) for the ESP32-S3 and x86 with TVM."

# name -> (module, one-line help). Adding a command is one line here plus its module.
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("fter_tvm.cli.compile", "compile a model for x86 or esp32s3"),
    "tune": ("fter_tvm.cli.tune", "autotune the ternary kernels for a target"),
    "simulate": ("fter_tvm.cli.simulate", "run an esp32s3 build in the Xtensa simulator"),
    "bench": ("fter_tvm.cli.bench", "benchmark compiled models"),
    "demo": ("fter_tvm.cli.demo", "load (or train) the digits FTerViT and print accuracy and sizes"),
}


def _load(command: str):
    module_name = COMMANDS[command][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:   # the command exists but one of its imports is missing
            raise
        raise SystemExit(f"fter-tvm: command '{command}' is not available yet ({module_name} not found)")


def _parser(command: str | None) -> argparse.ArgumentParser:
    from fter_tvm import __version__

    parser = argparse.ArgumentParser(prog="fter-tvm", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fter-tvm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:   # only the chosen command's module is imported
            _load(name).add_arguments(p)
            _add_output_arguments(p)
    return parser


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    loudness = out.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="list the captured TVM/torch warnings (default: only their count)")
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="for scripts: no progress line, no warning count, no human summary "
                               "(results asked for with --json and errors are still printed)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fter-tvm`` (and ``python -m fter_tvm``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(command if command in COMMANDS else None).parse_args(argv)
    return _run_quietly(_load(args.command), args)


def _run_quietly(module, args: argparse.Namespace) -> int:
    """Run a command with TVM's and torch's warnings captured (summarised on stderr after it)
    and a progress line on a terminal."""
    from fter_tvm.console import capture_warnings, enable_progress, format_summary

    enable_progress(not args.quiet)
    captured: list[str] = []
    try:
        with capture_warnings() as captured:
            return int(module.run(args) or 0)
    finally:
        enable_progress(False)
        if not args.quiet:
            sys.stdout.flush()
            sys.stderr.write(format_summary(captured, verbose=args.verbose))


if __name__ == "__main__":
    sys.exit(main())
