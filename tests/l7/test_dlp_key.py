"""The DLP key (hash-log): made on first use, private, and refused when it is not a key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gatewayd.errors import ConfigError
from gatewayd.files import MAX_FILE_BYTES
from gatewayd.l7.dlp_stage import KEY_BYTES, load_key


def test_made_on_first_use_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "dlp.key"
    key = load_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_key(path) == key


def test_a_short_file_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "dlp.key"
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match=r"dlp\.key_file .*dlp\.key: not a key"):
        load_key(path)


def test_an_oversized_file_is_named_for_what_it_is_not(tmp_path: Path) -> None:
    path = tmp_path / "dlp.key"
    path.write_bytes(b"k" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigError) as caught:
        load_key(path)
    message = str(caught.value)
    assert message.startswith("dlp.key_file: ")
    assert "dlp.key: larger than" in message and "not a key or certificate" in message
    assert "CA" not in message


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    real.write_bytes(b"k" * KEY_BYTES)
    link = tmp_path / "dlp.key"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match=r"dlp\.key_file: .*dlp\.key: cannot read"):
        load_key(link)
