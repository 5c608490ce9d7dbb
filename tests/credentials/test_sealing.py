from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from gatewayd.credentials import DataKey, SealError, Secret, open_data_key
from gatewayd.credentials.sealing import NONCE_BYTES, SEAL_VERSION
from gatewayd.errors import ClawgressError

from .conftest import OPENAI_KEY


def test_round_trip(data_key: DataKey) -> None:
    sealed = data_key.seal(Secret(OPENAI_KEY), "openai-prod")
    assert sealed[0] == SEAL_VERSION
    assert OPENAI_KEY.encode() not in sealed
    assert data_key.unseal(sealed, "openai-prod").reveal() == OPENAI_KEY


def test_every_seal_takes_a_new_nonce(data_key: DataKey) -> None:
    one = data_key.seal(Secret(OPENAI_KEY), "c")
    two = data_key.seal(Secret(OPENAI_KEY), "c")
    assert one[1:1 + NONCE_BYTES] != two[1:1 + NONCE_BYTES]
    assert one != two


def test_a_sealed_key_opens_for_its_credential_only(data_key: DataKey) -> None:
    sealed = data_key.seal(Secret(OPENAI_KEY), "openai-prod")
    with pytest.raises(SealError, match="credential openai-dev: its key does not open"):
        data_key.unseal(sealed, "openai-dev")


def test_another_data_key_does_not_open_it(data_key: DataKey) -> None:
    sealed = data_key.seal(Secret(OPENAI_KEY), "c")
    other = DataKey(bytes(32))
    with pytest.raises(SealError, match=f"data key {other.key_id}") as err:
        other.unseal(sealed, "c")
    assert OPENAI_KEY not in str(err.value)


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # the tag
    lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:],  # the ciphertext
    lambda b: b"\x02" + b[1:],  # an unknown version
    lambda b: b[:10],  # cut short
])
def test_a_damaged_seal_is_refused(data_key: DataKey,
                                   damage: Callable[[bytes], bytes]) -> None:
    sealed = data_key.seal(Secret(OPENAI_KEY), "c")
    with pytest.raises(SealError):
        data_key.unseal(damage(sealed), "c")


def test_data_key_id_and_repr(data_key: DataKey) -> None:
    assert len(data_key.key_id) == 16
    assert int(data_key.key_id, 16) >= 0
    assert repr(data_key) == f"DataKey(key_id={data_key.key_id!r})"
    assert DataKey(bytes(range(32))).key_id == data_key.key_id
    assert DataKey(bytes(32)).key_id != data_key.key_id
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(bytes(16))


def test_secret_keeps_its_text_to_itself() -> None:
    secret = Secret(OPENAI_KEY)
    assert secret.reveal() == OPENAI_KEY
    assert len(secret) == len(OPENAI_KEY)
    old_style = "%s" % (secret,)  # noqa: UP031 - a log call formats this way
    for text in (repr(secret), str(secret), f"{secret}", old_style, f"{[secret]}"):
        assert OPENAI_KEY not in text
        assert f"{len(OPENAI_KEY)} characters" in text
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(secret)


# -- the data key's file --------------------------------------------------------------


def test_created_on_first_use_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.key"
    first = open_data_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_size == 32
    assert open_data_key(path).key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == ["credentials.key"]  # no temporary left


def test_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        open_data_key(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    open_data_key(tmp_path / "k")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_not_created_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(ClawgressError, match="no data key there"):
        open_data_key(tmp_path / "k", create=False)
    assert not (tmp_path / "k").exists()


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    open_data_key(path)
    path.chmod(0o640)
    with pytest.raises(ClawgressError, match=r"readable by other users \(mode 0640\)"):
        open_data_key(path)


def test_a_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"x" * 31)
    path.chmod(0o600)
    with pytest.raises(ClawgressError, match="not a data key"):
        open_data_key(path)


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    open_data_key(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ClawgressError, match="cannot read the data key"):
        open_data_key(tmp_path / "link")


def test_the_file_holds_no_provider_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    key = open_data_key(path)
    key.seal(Secret(OPENAI_KEY), "c")
    assert OPENAI_KEY.encode() not in path.read_bytes()
