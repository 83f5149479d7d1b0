"""KeyStore: generated admin keys, keys.json, env keys, per-account keys."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from hearth.aws.keys import KeyStore
from hearth.config import Settings


def test_generates_admin_key_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, account_id="123456789012")
    keys, generated = KeyStore.load(settings)
    assert generated
    admin = keys.admin_key()
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", admin.access_key_id)
    assert len(admin.secret_access_key) == 40 and admin.account_id == "123456789012"
    path = tmp_path / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())[0]["access_key_id"] == admin.access_key_id
    assert admin.secret_access_key not in repr(admin)
    again, generated_again = KeyStore.load(settings)
    assert not generated_again and again.admin_key() == admin
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temp files left behind


def test_env_key_and_file_keys(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(json.dumps([
        {"access_key_id": "AKIAOTHER", "secret_access_key": "s2", "account_id": "222222222222"}]))
    (tmp_path / "keys.json").chmod(0o600)
    settings = Settings(data_dir=tmp_path, access_key_id="AKIAENV", secret_access_key="s1", account_id="111111111111")
    keys, generated = KeyStore.load(settings)
    assert not generated
    assert keys.admin_key().access_key_id == "AKIAENV"
    other = keys.lookup("AKIAOTHER")
    assert other is not None and other.account_id == "222222222222"
    assert keys.lookup("AKIANONE") is None
    assert keys.key_for_account("222222222222") == other
    fresh = keys.key_for_account("333333333333")
    assert fresh.account_id == "333333333333" and keys.lookup(fresh.access_key_id) == fresh
    assert keys.key_for_account("333333333333") == fresh


def test_corrupt_keys_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"keys\.json"):
        KeyStore.load(Settings(data_dir=tmp_path))
