"""The operator database: enroll / re-enroll / list / delete, scrypt secrets, 0600 files, clear errors for missing
and damaged databases, and no secret (nor anything reversible to it) on disk."""
from __future__ import annotations

import base64
import os
import sqlite3
import stat

import numpy as np
import pytest

from mmchat_ros.core.operator_store import (DatabaseCorrupt, DatabaseMissing, OperatorStore, ScryptParams,
                                            canonical_secret, default_database_path, hash_secret, verify_secret)

FAST_SCRYPT = ScryptParams(n=2 ** 10, r=8, p=1)   # hashing cost is not what these tests are about


def embeddings(seed: int, count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 0.1, 128)
    return [centre + rng.normal(0, 0.01, 128) for _ in range(count)]


@pytest.fixture
def store(tmp_path):
    store = OperatorStore(tmp_path / "data" / "operators.db", create=True, scrypt=FAST_SCRYPT)
    assert store.operators() == [] and not store.path.exists()   # the first enrollment creates the file
    return store


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_database_is_private_to_its_owner(store):
    store.enroll("alice", embeddings(1), "1234")
    assert mode_of(store.path) == 0o600
    assert mode_of(store.path.parent) == 0o700
    store.enroll("bob", embeddings(2), "1234")   # writing keeps it so
    assert mode_of(store.path) == 0o600


def test_enroll_list_get_and_delete_round_trip(store):
    samples = embeddings(1, 4)
    alice = store.enroll("alice", samples, "1234", embedding_model="dlib_resnet")
    bob = store.enroll("bob", embeddings(2))
    assert [o.name for o in store.operators()] == ["alice", "bob"]
    got = store.get("alice")
    assert got.operator_id == alice.operator_id == store.get(alice.operator_id).operator_id
    assert len(got.samples) == 4 and all(np.array_equal(a, b) for a, b in zip(got.samples, samples))
    assert np.allclose(got.embedding, np.mean(samples, axis=0))
    assert got.embedding_model == "dlib_resnet" and got.has_secret and not bob.has_secret
    assert store.delete("alice") and not store.delete("alice")
    assert store.get("alice") is None and [o.name for o in store.operators()] == ["bob"]
    assert store.delete(bob.operator_id) and store.operators() == []


def test_re_enrolling_replaces_the_samples_and_keeps_the_id(store):
    first = store.enroll("alice", embeddings(1, 5), "1234")
    second = store.enroll("Alice", embeddings(3, 3))   # names are case-insensitive; no secret given: kept
    assert second.operator_id == first.operator_id and len(store.operators()) == 1
    assert second.name == "Alice" and len(second.samples) == 3
    assert not np.allclose(second.embedding, first.embedding)
    assert store.check_secret("alice", "1234")
    store.enroll("alice", embeddings(3, 3), "9999")     # a new secret replaces the old one
    assert store.check_secret("alice", "9999") and not store.check_secret("alice", "1234")


def test_bad_enrollments_are_refused(store):
    with pytest.raises(ValueError, match="name"):
        store.enroll("   ", embeddings(1))
    with pytest.raises(ValueError, match="no embeddings"):
        store.enroll("alice", [])
    with pytest.raises(ValueError, match="128 finite"):
        store.enroll("alice", [np.full(128, np.nan)])
    with pytest.raises(ValueError, match="128 finite"):
        store.enroll("alice", [np.zeros(64)])
    with pytest.raises(ValueError, match="empty"):
        store.enroll("alice", embeddings(1), secret="  ...  ")
    assert store.operators() == [] and not store.path.exists()


@pytest.mark.slow   # the real scrypt cost, seven times: 2-8 s on a shared 2-core machine
def test_the_database_file_never_holds_a_secret_or_anything_reversible(tmp_path):
    store = OperatorStore(tmp_path / "operators.db", create=True)   # the real (default) scrypt cost
    secrets_ = {"alice": "hunter2-Secret-8493", "bob": "2468", "carol": "2468"}
    for i, (name, secret) in enumerate(secrets_.items()):
        store.enroll(name, embeddings(i), secret)
    store.enroll("alice", embeddings(9), "correct horse battery staple")   # the old hash's page is overwritten
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in [*secrets_.values(), "correct horse battery staple"]:
        for form in (secret, canonical_secret(secret)):
            raw = form.encode()
            for encoded in (raw, form.encode("utf-16-le"), raw.hex().encode(), base64.b64encode(raw),
                            base64.b64encode(raw).rstrip(b"=")):
                assert encoded not in on_disk, f"{form!r} is on disk as {encoded!r}"
    hashes = {o.name: o.secret_hash for o in store.operators()}
    assert all(h.startswith("scrypt$n=32768,r=8,p=3$") for h in hashes.values())
    assert hashes["bob"] != hashes["carol"], "the same PIN must hash differently (salt)"
    assert store.check_secret("carol", "2468") and not store.check_secret("bob", "2469")
    assert store.check_secret("alice", "correct horse battery staple")


def test_secrets_compare_in_canonical_form_so_a_spoken_passphrase_matches():
    encoded = hash_secret("Open sesame", FAST_SCRYPT)
    assert verify_secret("open sesame", encoded)
    assert verify_secret("  Open, Sesame. ", encoded)     # how a speech recogniser writes it
    assert not verify_secret("open sesame please", encoded)
    assert not verify_secret("", encoded)
    assert canonical_secret("１２３４") == "1234"          # full-width digits (NFKC)
    assert not verify_secret("1234", "")                   # no secret enrolled
    assert not verify_secret("1234", "plain:1234")          # malformed hashes never verify
    assert not verify_secret("1234", "scrypt$n=3,r=8,p=1$AAAA$AAAA")


def test_a_missing_database_is_a_clear_error_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere" / "operators.db"
    with pytest.raises(DatabaseMissing, match="no operator database at .*enroll an operator first"):
        OperatorStore(path)
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign sqlite", "bad embedding", "newer schema"])
def test_a_damaged_database_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "operators.db"
    OperatorStore(path, create=True, scrypt=FAST_SCRYPT).enroll("alice", embeddings(1), "1234")
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "foreign sqlite":
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE photos (id INTEGER)")
        os.chmod(path, 0o600)   # damaged, not exposed: that is its own error
    elif damage == "bad embedding":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE operators SET embedding = x'00ff'")
    elif damage == "newer schema":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(DatabaseCorrupt, match=str(path)) as error:
        OperatorStore(path).operators()
    assert len(str(error.value)) < 400   # one readable line, not a dump


@pytest.mark.parametrize("mode, word", [(0o644, "read"), (0o640, "read"), (0o606, "write")])
def test_a_database_others_can_access_is_refused(tmp_path, mode, word):
    from mmchat_ros.core.operator_store import DatabaseExposed
    path = tmp_path / "operators.db"
    OperatorStore(path, create=True, scrypt=FAST_SCRYPT).enroll("alice", embeddings(1))
    os.chmod(path, mode)
    with pytest.raises(DatabaseExposed, match=f"mode {mode:04o}: other users can {word} it.*chmod 600"):
        OperatorStore(path)
    assert mode_of(path) == mode   # never silently "fixed": whoever could read it may have copied it
    os.chmod(path, 0o600)
    assert [o.name for o in OperatorStore(path).operators()] == ["alice"]


def test_deleted_operators_leave_no_embedding_behind(tmp_path):
    store = OperatorStore(tmp_path / "operators.db", create=True)
    marker = np.full(128, 0.123456789)   # a recognisable byte pattern
    store.enroll("alice", [marker, marker], None)
    assert marker.astype("<f8").tobytes() in store.path.read_bytes()
    store.delete("alice")
    assert marker.astype("<f8").tobytes() not in store.path.read_bytes()


def test_the_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_path() == tmp_path / "mmchat_ros" / "operators.db"
