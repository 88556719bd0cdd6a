"""Every number flag of every `lssgen` command refuses NaN and inf while parsing (issue 12).

`--guidance nan` used to be accepted: it turned guidance off, and the rerun refused to resume.
The walk below covers every option of every command and subcommand, so a flag added later with
a plain `type=float` fails here.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator

import pytest

from lssgen.cli import COMMANDS, main


def _parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for name, (module_name, _help) in COMMANDS.items():
        parser = argparse.ArgumentParser(prog=f"lssgen {name}")
        importlib.import_module(module_name).add_arguments(parser)
        yield from _with_subparsers(f"lssgen {name}", parser)


def _with_subparsers(
    prog: str, parser: argparse.ArgumentParser
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _with_subparsers(f"{prog} {name}", sub)


def _typed_options() -> list[tuple[str, str, object]]:
    return [
        (prog, action.option_strings[-1], action.type)
        for prog, parser in _parsers()
        for action in parser._actions
        if action.option_strings and callable(action.type)
    ]


def test_the_walk_finds_the_float_flags() -> None:
    found = {(prog, flag) for prog, flag, _ in _typed_options()}
    for expected in [
        ("lssgen generate", "--guidance"),
        ("lssgen generate", "--start-sigma"),
        ("lssgen train-upsampler", "--lr"),
        ("lssgen mini vae", "--kl-weight"),
        ("lssgen mini assemble", "--shift"),
        ("lssgen demo", "--start-sigma"),
    ]:
        assert expected in found


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_no_option_accepts_a_non_finite_number(text: str) -> None:
    accepted = []
    for prog, flag, kind in _typed_options():
        try:
            kind(text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        accepted.append(f"{prog} {flag}")
    assert accepted == []


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--model", "m", "--prompt", "p", "--outdir", "o", "--guidance", "nan"],
        ["train-upsampler", "--vae", "v", "--images", "i", "--output", "o", "--lr", "inf"],
        ["mini", "vae", "--work", "w", "--lr", "nan"],
    ],
    ids=["generate --guidance", "train-upsampler --lr", "mini vae --lr"],
)
def test_the_error_names_the_flag_before_any_work(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    flag, value = argv[-2], argv[-1]
    err = capsys.readouterr().err
    assert f"argument {flag}: must be a finite number, got {value}" in err
