"""docs/cli.md: every command's --help, generated so the page cannot drift from the parser.

Run `python -m pushgod.cli.reference > docs/cli.md` (or `make docs`); a test compares.
"""

from __future__ import annotations

import argparse
import functools

from pushgod.cli.main import build_parser

WIDTH = 100


def _commands(
    parser: argparse.ArgumentParser, words: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    found = [(words, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, [*words, name])
    return found


def render() -> str:
    lines = [
        "# Command line",
        "",
        "Generated from the parser by `make docs`; every command also answers `--help`.",
        "",
    ]
    for words, parser in _commands(build_parser(), ["pushgod"]):
        parser.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
        lines += [f"## `{' '.join(words)}`", "", "```", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
