"""Subcommands of the ``fter-tvm`` CLI, one module per command (registered in ``fter_tvm.__main__``).

Each module defines ``add_arguments(parser)`` (argparse options, validated with ``type=`` checkers)
and ``run(args) -> int`` (calls the public API, returns the exit code). Modules are imported only
when their command runs, so a heavy or missing command never slows down or breaks another.
"""
