"""The operator's log: every line once, kopf's and Stretto's, in one format."""

from __future__ import annotations

import logging

import pytest

from stretto.operator.command import configure_logging


@pytest.fixture
def root_handlers():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = saved
    root.setLevel(level)


def test_each_line_is_printed_once(root_handlers, capsys):
    configure_logging(verbose=False)
    configure_logging(verbose=False)                       # configuring twice adds nothing
    assert len([h for h in root_handlers.handlers if type(h) is logging.StreamHandler]) == 1
    logging.getLogger("stretto.operator.test").info("round 7 applied")
    logging.getLogger("kopf.objects").info("Handler succeeded.")
    captured = capsys.readouterr().err
    assert captured.count("round 7 applied") == 1 and captured.count("Handler succeeded.") == 1
    assert " INFO stretto.operator.test: round 7 applied" in captured
