"""core.auth_signing: keys 0600 and refused otherwise, signatures, counters, expiry, and every refusal reason."""
from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest

from mmchat_ros.core import auth_signing as a
from mmchat_ros.core.auth_signing import (AuthClaim, AuthKeyError, AuthSigner, AuthVerifier, BurstLog, PublicKeyFile,
                                          ensure_keys, generate_keys, load_private_key, load_public_key)

S = 1_000_000_000   # ns per s
T0 = 1_700_000_000 * S


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def keys(tmp_path):
    generate_keys(tmp_path / "keys")
    return tmp_path / "keys"


def signer_of(key_dir, validity_s=2.0) -> AuthSigner:
    clock = iter(range(10**15, 10**16))   # a wall clock in µs that moves on by 1 µs a call
    return AuthSigner(load_private_key(key_dir), validity_s, wall_clock_us=lambda: next(clock))


def authorised_claim(expires_ns: int = T0 + 3 * S) -> AuthClaim:
    return AuthClaim(True, "op-1", "Eileen", 0.9, "face match", expires_ns=expires_ns)


def test_keys_are_made_0600_in_a_0700_directory_and_never_overwritten_silently(tmp_path):
    key_id = generate_keys(tmp_path / "d")
    for name in (a.PRIVATE_KEY_FILE, a.PUBLIC_KEY_FILE):
        assert mode_of(tmp_path / "d" / name) == 0o600
    assert mode_of(tmp_path / "d") == 0o700
    assert a.key_id_of(load_public_key(tmp_path / "d")) == key_id
    with pytest.raises(FileExistsError, match="rotate-key"):
        generate_keys(tmp_path / "d")
    assert ensure_keys(tmp_path / "d") == (key_id, False)
    rotated = generate_keys(tmp_path / "d", overwrite=True)
    assert rotated != key_id and ensure_keys(tmp_path / "d") == (rotated, False)
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.endswith(".tmp")]


def test_missing_exposed_or_damaged_keys_give_clear_errors(tmp_path, keys):
    with pytest.raises(AuthKeyError, match=r"no authorisation signing key at .*(enroll an operator|rotate-key)"):
        load_private_key(tmp_path / "nowhere")
    os.chmod(keys / a.PRIVATE_KEY_FILE, 0o644)
    with pytest.raises(AuthKeyError, match="mode 0644: others could read it; refusing it"):
        load_private_key(keys)
    os.chmod(keys / a.PRIVATE_KEY_FILE, 0o600)
    (keys / a.PUBLIC_KEY_FILE).write_text("not hex")
    with pytest.raises(AuthKeyError, match="unreadable"):
        load_public_key(keys)


def test_a_genuine_claim_verifies_and_authorises_until_its_expiry(keys):
    signer, verifier = signer_of(keys), AuthVerifier(PublicKeyFile(keys))
    claim, signature = signer.sign(authorised_claim(expires_ns=T0 + 10 * S), T0)
    # The signer bounds the expiry: the session's 10 s become validity_s (2 s) after the stamp.
    assert claim.stamp_ns == T0 and claim.expires_ns == T0 + 2 * S and claim.key_id == signer.key_id
    verdict = verifier.check(claim, signature, T0 + S // 10)
    assert verdict.accepted and verdict.reason == a.VALID
    assert verifier.authorised(T0 + S) and not verifier.authorised(T0 + 2 * S)
    assert not verifier.lapse_due(T0 + S) and verifier.lapse_due(T0 + 2 * S) and not verifier.lapse_due(T0 + 3 * S)
    # A session expiry before the validity limit is kept as it is.
    shorter, _ = signer.sign(authorised_claim(expires_ns=T0 + S), T0)
    assert shorter.expires_ns == T0 + S


def test_counters_strictly_increase_and_follow_the_wall_clock_across_restarts(keys):
    signer = AuthSigner(load_private_key(keys), 2.0, wall_clock_us=lambda: 5)
    counters = [signer.sign(authorised_claim(), T0)[0].counter for _ in range(3)]
    assert counters == [5, 6, 7]
    restarted = AuthSigner(load_private_key(keys), 2.0)   # a new process: starts from the wall clock in µs
    assert restarted.sign(authorised_claim(), T0)[0].counter > 1_600_000_000 * 10**6


@pytest.mark.parametrize("tamper, reason", [
    (lambda c, s: (c, b""), a.UNSIGNED),
    (lambda c, s: (replace(c, operator_name="Mallory"), s), a.BAD_SIGNATURE),
    (lambda c, s: (replace(c, expires_ns=c.expires_ns + 60 * S), s), a.BAD_SIGNATURE),
    (lambda c, s: (replace(c, authorised=True, reason="face match"), s), a.BAD_SIGNATURE),
    (lambda c, s: (replace(c, confidence=0.99), s), a.BAD_SIGNATURE),
    (lambda c, s: (c, s[:-1] + bytes([s[-1] ^ 1])), a.BAD_SIGNATURE),
    (lambda c, s: (replace(c, key_id="0" * 16), s), a.UNKNOWN_KEY),
])
def test_tampered_or_unsigned_claims_are_refused(keys, tamper, reason):
    signer, verifier = signer_of(keys), AuthVerifier(PublicKeyFile(keys))
    claim, signature = signer.sign(AuthClaim(False, reason="no face"), T0)
    verdict = verifier.check(*tamper(claim, signature), T0)
    assert not verdict.accepted and verdict.kind == reason, verdict.reason
    assert verifier.counts == {reason: 1} and not verifier.authorised(T0)


def test_a_forger_with_its_own_key_is_refused(tmp_path, keys):
    generate_keys(tmp_path / "rogue")
    rogue = signer_of(tmp_path / "rogue")
    verifier = AuthVerifier(PublicKeyFile(keys))
    claim, signature = rogue.sign(authorised_claim(), T0)
    assert verifier.check(claim, signature, T0).kind == a.UNKNOWN_KEY
    # ... even when it claims the genuine key's id.
    claim = replace(claim, key_id=signer_of(keys).key_id)
    assert verifier.check(claim, signature, T0).kind == a.BAD_SIGNATURE
    assert not verifier.authorised(T0)


def test_replays_and_reordering_are_refused_and_change_nothing(keys):
    signer, verifier = signer_of(keys), AuthVerifier(PublicKeyFile(keys))
    old = signer.sign(authorised_claim(), T0)
    revoked = signer.sign(AuthClaim(False, reason="expired"), T0 + S // 2)
    assert verifier.check(*old, T0).accepted and verifier.authorised(T0)
    assert verifier.check(*revoked, T0 + S // 2).accepted and not verifier.authorised(T0 + S // 2)
    replay = verifier.check(*old, T0 + S // 2 + 1)   # still within its validity: only the counter stops it
    assert not replay.accepted and replay.kind == a.REPLAYED
    assert verifier.check(*revoked, T0 + S).kind == a.REPLAYED   # the same message twice
    assert not verifier.authorised(T0 + S)
    # A verifier that restarted remembers no counter: the expiry bounds the replay.
    fresh = AuthVerifier(PublicKeyFile(keys))
    assert fresh.check(*old, T0 + 3 * S).kind == a.EXPIRED and not fresh.authorised(T0 + 3 * S)


def test_zero_long_or_future_expiries_never_authorise(keys):
    private = load_private_key(keys)
    verifier = AuthVerifier(PublicKeyFile(keys), max_validity_s=3.0, max_clock_skew_s=1.0)

    def signed(**fields):   # what only a holder of the key could make: a signer that breaks the rules
        claim = replace(authorised_claim(), key_id=a.key_id_of(load_public_key(keys)), **fields)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        return claim, Ed25519PrivateKey.from_private_bytes(private).sign(a.payload(claim))
    assert verifier.check(*signed(counter=1, stamp_ns=T0, expires_ns=0), T0).kind == a.NO_EXPIRY
    assert verifier.check(*signed(counter=2, stamp_ns=T0, expires_ns=T0 + 3600 * S), T0).kind == a.TOO_LONG
    assert verifier.check(*signed(counter=3, stamp_ns=T0 + 5 * S, expires_ns=T0 + 6 * S), T0).kind == a.FUTURE
    assert verifier.check(*signed(counter=4, stamp_ns=T0 - 5 * S, expires_ns=T0 - 3 * S), T0).kind == a.EXPIRED
    assert verifier.check(*signed(counter=5, stamp_ns=T0, expires_ns=T0 + 2 * S), T0).accepted
    with pytest.raises(ValueError, match="never expires"):
        AuthVerifier(PublicKeyFile(keys), max_validity_s=0.0)
    with pytest.raises(ValueError):
        AuthSigner(private, 0.0)


def test_no_key_means_nobody_and_a_rotated_key_is_picked_up(tmp_path, keys):
    missing = AuthVerifier(PublicKeyFile(tmp_path / "nowhere"))
    claim, signature = signer_of(keys).sign(authorised_claim(), T0)
    verdict = missing.check(claim, signature, T0)
    assert verdict.kind == a.NO_KEY and "rotate-key" in verdict.reason and not missing.authorised(T0)

    keyfile = PublicKeyFile(keys, check_period_s=1.0)
    verifier = AuthVerifier(keyfile)
    assert verifier.check(claim, signature, T0).accepted
    generate_keys(keys, overwrite=True)
    new_signer = signer_of(keys)
    new_claim, new_signature = new_signer.sign(authorised_claim(), T0 + S)
    # Within the check period the old key is still cached; after it, the rotated one verifies and the old one not.
    assert verifier.check(new_claim, new_signature, T0 + 2 * S).accepted
    late_old, late_sig = replace(claim, counter=10**17), signature
    assert verifier.check(late_old, late_sig, T0 + 2 * S).kind in (a.UNKNOWN_KEY, a.BAD_SIGNATURE)


def test_payload_is_unambiguous():
    one = a.payload(AuthClaim(True, operator_id="a,b", operator_name="c"))
    two = a.payload(AuthClaim(True, operator_id="a", operator_name="b,c"))
    assert one != two


def test_burst_log_reports_once_per_burst_with_the_suppressed_count():
    burst = BurstLog(quiet_s=5.0)
    assert burst.should_log("unsigned", 0.0) == (True, 0)
    assert [burst.should_log("unsigned", t)[0] for t in (1.0, 2.0, 6.5, 11.0)] == [False, False, False, False]
    assert burst.should_log("bad signature", 11.0) == (True, 0)   # another reason is its own burst
    assert burst.should_log("unsigned", 20.0) == (True, 4)        # quiet for 9 s: a new burst, 4 were suppressed
