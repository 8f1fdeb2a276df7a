"""The one selection syntax: scenario and client lists as users type them."""

from __future__ import annotations

import pytest

from pytest_tlsenv.errors import ConfigError
from pytest_tlsenv.scenarios import CATALOGUE, GROUPS
from pytest_tlsenv.selection import (
    ClientRef,
    did_you_mean,
    parse_client,
    parse_clients,
    parse_scenarios,
    split_tokens,
)


def test_commas_and_spaces_are_the_same_list() -> None:
    assert split_tokens("a,b c") == ["a", "b", "c"]
    assert split_tokens(["a,b", "c"]) == ["a", "b", "c"]
    assert split_tokens(" ,, ") == []


def test_group_minus_name_keeps_catalogue_order() -> None:
    names = parse_scenarios("store,-fifo")
    assert "fifo" not in names
    assert names == [n for n in CATALOGUE if n in GROUPS["store"] and n != "fifo"]


def test_drops_alone_start_from_everything() -> None:
    assert parse_scenarios("-good") == [n for n in CATALOGUE if n != "good"]
    assert parse_scenarios("") == list(CATALOGUE)


def test_unknown_scenario_suggests_the_closest_name() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown scenario or group 'unreadable-fil'.*did you mean 'unreadable-file'",
    ):
        parse_scenarios("good,unreadable-fil")


def test_no_suggestion_when_nothing_is_close() -> None:
    assert did_you_mean("zzzzzz", ["good", "store"]) == ""


def test_client_versions() -> None:
    known = ["uv", "pip", "curl"]
    assert parse_clients("uv@0.2.28,uv@0.2.29 pip@24.0", known) == [
        ClientRef("uv", "0.2.28"),
        ClientRef("uv", "0.2.29"),
        ClientRef("pip", "24.0"),
    ]
    assert str(parse_client("uv@0.2.29")) == "uv@0.2.29"
    assert parse_clients("-pip", known) == [ClientRef("uv"), ClientRef("curl")]


@pytest.mark.parametrize(
    ("token", "message"),
    [("cur", "did you mean 'curl'"), ("uv@", "is not a version"), ("@1.0", "a name comes before")],
)
def test_bad_client_words(token: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_clients(token, ["uv", "curl"])
