"""Locates the peers' data in ../shared/data/peers; a missing folder fails the test loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers"


@pytest.fixture
def peers() -> Path:
    if not (PEERS / "synergy").is_dir() or not (PEERS / "shockwave").is_dir():
        pytest.fail(f"peer data missing: expected {PEERS.resolve()} with synergy/ and shockwave/")
    return PEERS
