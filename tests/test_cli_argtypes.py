"""The tools' numeric options: a bad value is a usage error naming what was expected."""

from __future__ import annotations

import argparse

import pytest

from avaturn_async._cli._argtypes import port_number, positive_int


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    parser.add_argument("--n", type=positive_int)
    parser.add_argument("--port", type=port_number)
    return parser


def test_a_value_out_of_range_is_refused_with_the_options_reason() -> None:
    with pytest.raises(argparse.ArgumentError, match="must be at least 1"):
        _parser().parse_args(["--n", "0"])


def test_a_value_that_is_no_number_names_the_expected_kind() -> None:
    with pytest.raises(argparse.ArgumentError, match="invalid port value: 'http'"):
        _parser().parse_args(["--port", "http"])


def test_a_valid_value_is_converted() -> None:
    assert _parser().parse_args(["--n", "3", "--port", "0"]) == argparse.Namespace(n=3, port=0)
