"""Every command's ``--help``: each option and positional says what it is, options read from the
environment name their variable, and no reST markup leaks into what a terminal shows."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator, Mapping

import pytest

from bench.cli import _parser as bench_parser
from collector.cli import _parser as collector_parser
from edge_agent.cli import _parser as agent_parser
from simulators.cli import _parser as sim_parser
from simulators.demo import _parser as demo_parser

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "custos-collector": collector_parser,
    "custos-agent": agent_parser,
    "custos-sim": sim_parser,
    "custos-demo": demo_parser,
    "custos-bench": bench_parser,
}


def _walk(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _walk(sub, f"{name} {command}")


def _described(action: argparse.Action) -> bool:
    return (
        action.help is not None and action.help.strip() != "" and action.help != argparse.SUPPRESS
    )


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_option_and_positional_has_help(program: str) -> None:
    missing = [
        f"{name}: {'/'.join(action.option_strings) or action.dest}"
        for name, parser in _walk(PARSERS[program](), program)
        for action in parser._actions
        if not _described(action)
    ]
    assert missing == []


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_subcommand_has_help(program: str) -> None:
    missing = [
        f"{name} {choice.dest}"
        for name, parser in _walk(PARSERS[program](), program)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        if not _described(choice)
    ]
    assert missing == []


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_help_shows_no_markup(program: str) -> None:
    leaking = [
        name for name, parser in _walk(PARSERS[program](), program) if "``" in parser.format_help()
    ]
    assert leaking == []


class _RecordingEnviron(dict[str, str]):
    """An environment that remembers which variables were asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def _defaults(
    build: Callable[[], argparse.ArgumentParser], program: str
) -> dict[tuple[str, str], tuple[object, str]]:
    return {
        (name, action.dest): (action.default, action.help or "")
        for name, parser in _walk(build(), program)
        for action in parser._actions
    }


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_options_read_from_the_environment_name_their_variable(
    program: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {key: value for key, value in os.environ.items() if not key.startswith("CUSTOS_")}
    recorder = _RecordingEnviron(base)
    monkeypatch.setattr(os, "environ", recorder)
    baseline = _defaults(PARSERS[program], program)
    asked = sorted(name for name in recorder.asked if name.startswith("CUSTOS_"))
    unnamed = []
    for variable in asked:
        monkeypatch.setattr(os, "environ", _RecordingEnviron({**base, variable: "UTC"}))
        for key, (default, help_text) in _defaults(PARSERS[program], program).items():
            if default != baseline[key][0] and f"env {variable}" not in help_text:
                unnamed.append(f"{key[0]} {key[1]}: {variable}")
    assert unnamed == []
    if program != "custos-bench":
        assert asked, "the command reads no environment variable at all"
