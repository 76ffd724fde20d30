"""Signed authorisation: face_auth signs every AuthState, the flight controller and the planner verify it.

Without DDS security any participant on the ROS domain can publish on /auth/state. So an ``AuthState`` counts only
when it carries a valid Ed25519 signature (``cryptography``) made with face_auth's private key, a counter higher
than every one accepted before from that key, and an expiry a few publish periods ahead of its stamp that has not
passed. Anything else is not authorisation: it is refused with a reason, counted, and changes nothing (the last
valid state keeps running out at its own expiry, so a flood of forgeries can neither authorise nor extend).

Keys: ``auth_signing.key`` (the private key, a 32-byte Ed25519 seed in hex) and ``auth_signing.pub`` (the public
key) in the data directory ($XDG_DATA_HOME/mmchat_ros), both mode 0600 in a 0700 directory; made by the first
enrolment or ``mmchat operators rotate-key``. Files readable by group or others are refused. Verifiers re-read
the public key when its file changes, so a rotation needs no restart.

The counter is ``max(previous + 1, wall clock in µs)``: strictly increasing within a face_auth process and across
its restarts (as long as the wall clock does not step back by more than the downtime). A verifier that restarts
remembers nothing: for it the expiry bounds replay to at most ``max_validity_s`` after a message was signed.

Times are integer nanoseconds on the clock the nodes share (ROS time; the same clock under sim time).
This module never imports rclpy.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

PRIVATE_KEY_FILE = "auth_signing.key"
PUBLIC_KEY_FILE = "auth_signing.pub"
PAYLOAD_VERSION = "mmchat-auth/1"

# Why a message is not authorisation (diagnostics keys; "valid" = accepted).
VALID = "valid"
NO_KEY = "no verification key"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown key"
BAD_SIGNATURE = "bad signature"
REPLAYED = "replayed or out of order"
EXPIRED = "expired"
NO_EXPIRY = "no expiry"
TOO_LONG = "validity too long"
FUTURE = "stamped in the future"
REFUSAL_REASONS = (NO_KEY, UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, REPLAYED, EXPIRED, NO_EXPIRY, TOO_LONG, FUTURE)


class AuthKeyError(RuntimeError):
    """A signing or verification key cannot be used: the message says why and what to do."""


def default_key_dir() -> Path:
    """$XDG_DATA_HOME/mmchat_ros (~/.local/share/mmchat_ros): beside the default operator database."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmchat_ros"


def key_dir_or_default(key_dir: str | os.PathLike | None) -> Path:
    return Path(key_dir).expanduser() if key_dir else default_key_dir()


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------ key files
def _write_0600(path: Path, text: str) -> None:
    """Atomically (a temp file renamed over it) and never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate_keys(key_dir: str | os.PathLike | None = None, overwrite: bool = False) -> str:
    """Make a new Ed25519 key pair in ``key_dir``; returns its key id. FileExistsError when a key is there and
    ``overwrite`` is false (rotation passes true: the old key stops verifying at once)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
    directory = key_dir_or_default(key_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    if private_path.exists() and not overwrite:
        raise FileExistsError(f"a signing key already exists at {private_path} (rotate it with "
                              "`mmchat operators rotate-key`)")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # Public first: a verifier that reads between the two writes sees the new public key and refuses the old
    # signatures for a moment (fail closed), never the reverse.
    _write_0600(public_path, public.hex() + "\n")
    _write_0600(private_path, seed.hex() + "\n")
    return key_id_of(public)


def ensure_keys(key_dir: str | os.PathLike | None = None) -> tuple[str, bool]:
    """The key pair in ``key_dir``, made when missing: (key id, whether it was made now)."""
    directory = key_dir_or_default(key_dir)
    if (directory / PRIVATE_KEY_FILE).exists():
        return key_id_of(load_public_key(directory)), False
    return generate_keys(directory), True


def _read_key_file(path: Path, what: str, size: int) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AuthKeyError(f"no {what} at {path}: enroll an operator (mmchat operators enroll) or make one with "
                           "`mmchat operators rotate-key`") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise AuthKeyError(f"{what} {path} has mode {mode:04o}: others could read it; refusing it. `chmod 600 "
                           f"{path}` if nobody else could have copied it, else `mmchat operators rotate-key`")
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise AuthKeyError(f"{what} {path} is unreadable ({exc}): `mmchat operators rotate-key` makes a new "
                           "one") from exc
    if len(raw) != size:
        raise AuthKeyError(f"{what} {path} holds {len(raw)} bytes, not {size}: `mmchat operators rotate-key` "
                           "makes a new one")
    return raw


def load_private_key(key_dir: str | os.PathLike | None = None) -> bytes:
    return _read_key_file(key_dir_or_default(key_dir) / PRIVATE_KEY_FILE, "authorisation signing key", 32)


def load_public_key(key_dir: str | os.PathLike | None = None) -> bytes:
    return _read_key_file(key_dir_or_default(key_dir) / PUBLIC_KEY_FILE, "authorisation verification key", 32)


def _file_signature(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode


class PublicKeyFile:
    """The verification key, re-read whenever its file changes (checked at most every ``check_period_s`` of the
    caller's clock). ``get`` returns (key id, raw public key) or raises AuthKeyError."""

    def __init__(self, key_dir: str | os.PathLike | None = None, check_period_s: float = 1.0):
        self.path = key_dir_or_default(key_dir) / PUBLIC_KEY_FILE
        self.check_period_s = check_period_s
        self._signature = "unread"
        self._checked = float("-inf")
        self._key: tuple[str, bytes] | None = None
        self._error: AuthKeyError | None = None

    def get(self, now_s: float | None = None) -> tuple[str, bytes]:
        now_s = time.monotonic() if now_s is None else now_s
        if now_s - self._checked >= self.check_period_s:
            self._checked = now_s
            signature = _file_signature(self.path)
            if signature != self._signature:
                self._signature = signature
                try:
                    raw = load_public_key(self.path.parent)
                    self._key, self._error = (key_id_of(raw), raw), None
                except AuthKeyError as exc:
                    self._key, self._error = None, exc
        if self._error is not None:
            raise self._error
        return self._key


# ----------------------------------------------------------------------------------------------- claims & payload
@dataclass(frozen=True)
class AuthClaim:
    """What an AuthState says, as signed."""
    authorised: bool
    operator_id: str = ""
    operator_name: str = ""
    confidence: float = 0.0
    reason: str = ""
    stamp_ns: int = 0
    expires_ns: int = 0
    counter: int = 0
    key_id: str = ""


def payload(claim: AuthClaim) -> bytes:
    """The bytes signed: every field, unambiguously (JSON array), confidence as the float32 the message holds."""
    confidence = struct.pack("<f", float(claim.confidence)).hex()
    return json.dumps([PAYLOAD_VERSION, claim.key_id, int(claim.counter), int(claim.stamp_ns), int(claim.expires_ns),
                       bool(claim.authorised), claim.operator_id, claim.operator_name, confidence, claim.reason],
                      separators=(",", ":"), ensure_ascii=True).encode("ascii")


class AuthSigner:
    """face_auth's side: numbers, bounds and signs each claim."""

    def __init__(self, private_key: bytes, validity_s: float, wall_clock_us=lambda: time.time_ns() // 1000):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        if not 0.0 < validity_s <= 10.0:
            raise ValueError(f"signature validity {validity_s} s must be in (0, 10]")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.key_id = key_id_of(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        self.validity_ns = int(validity_s * 1e9)
        self._wall_clock_us = wall_clock_us
        self.counter = 0

    def sign(self, claim: AuthClaim, now_ns: int) -> tuple[AuthClaim, bytes]:
        """The claim stamped ``now_ns``, expiring at the earlier of its own expiry (the face session's) and
        ``now + validity``, with the next counter and this key's id; and its signature."""
        self.counter = max(self.counter + 1, int(self._wall_clock_us()))
        limit = now_ns + self.validity_ns
        expires = min(claim.expires_ns, limit) if claim.expires_ns > 0 else limit
        signed = replace(claim, stamp_ns=int(now_ns), expires_ns=int(expires), counter=self.counter,
                         key_id=self.key_id)
        return signed, self._key.sign(payload(signed))


# ------------------------------------------------------------------------------------------------------ verifying
@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str                      # VALID or one of REFUSAL_REASONS (with detail after ': ')
    claim: AuthClaim | None = None

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass
class AuthVerifier:
    """The flight controller's and planner's side. ``check`` judges one message; ``authorised(now)`` is the
    standing decision: the last accepted claim says authorised and its expiry has not passed."""
    keys: object                               # PublicKeyFile-like: get(now_s) -> (key id, raw public key)
    max_validity_s: float = 3.0
    max_clock_skew_s: float = 1.0
    counts: dict = field(default_factory=dict)
    last_counter: dict = field(default_factory=dict)    # key id -> highest counter accepted
    current: AuthClaim | None = None

    def __post_init__(self):
        if self.max_validity_s <= 0.0:
            raise ValueError("max_validity_s must be > 0: an authorisation that never expires is not accepted")

    def _refuse(self, reason: str, claim: AuthClaim | None = None) -> Verdict:
        kind = reason.split(":", 1)[0]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return Verdict(False, reason, claim)

    def check(self, claim: AuthClaim, signature: bytes, now_ns: int) -> Verdict:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        try:
            key_id, public = self.keys.get(now_ns * 1e-9)
        except AuthKeyError as exc:
            return self._refuse(f"{NO_KEY}: {exc}", claim)
        if not signature:
            return self._refuse(UNSIGNED, claim)
        if claim.key_id != key_id:
            return self._refuse(f"{UNKNOWN_KEY}: {claim.key_id or 'none'} (expected {key_id})", claim)
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(bytes(signature), payload(claim))
        except (InvalidSignature, ValueError):
            return self._refuse(BAD_SIGNATURE, claim)
        if claim.expires_ns <= 0:
            return self._refuse(NO_EXPIRY, claim)
        if claim.expires_ns - claim.stamp_ns > self.max_validity_s * 1e9:
            return self._refuse(f"{TOO_LONG}: {(claim.expires_ns - claim.stamp_ns) * 1e-9:.1f} s > "
                                f"{self.max_validity_s} s", claim)
        if claim.stamp_ns > now_ns + self.max_clock_skew_s * 1e9:
            return self._refuse(f"{FUTURE}: {(claim.stamp_ns - now_ns) * 1e-9:.1f} s ahead", claim)
        if claim.counter <= self.last_counter.get(key_id, 0):
            return self._refuse(f"{REPLAYED}: counter {claim.counter} <= {self.last_counter[key_id]}", claim)
        if now_ns >= claim.expires_ns:
            return self._refuse(f"{EXPIRED}: {(now_ns - claim.expires_ns) * 1e-9:.1f} s ago", claim)
        self.last_counter[key_id] = claim.counter
        self.current = claim
        self.counts[VALID] = self.counts.get(VALID, 0) + 1
        return Verdict(True, VALID, claim)

    def authorised(self, now_ns: int) -> bool:
        c = self.current
        return bool(c is not None and c.authorised and now_ns < c.expires_ns)

    def lapse_due(self, now_ns: int) -> bool:
        """True once, when an accepted authorisation has run out without a renewal (then forgotten)."""
        c = self.current
        if c is not None and c.authorised and now_ns >= c.expires_ns:
            self.current = replace(c, authorised=False, reason=EXPIRED)
            return True
        return False

    def refusals(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if k != VALID}


class BurstLog:
    """Log a repeated event once per burst: the first occurrence of a reason, and again only after that reason
    was quiet for ``quiet_s``; the next logged line says how many were suppressed meanwhile."""

    def __init__(self, quiet_s: float = 5.0):
        self.quiet_s = quiet_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def should_log(self, reason: str, now_s: float) -> tuple[bool, int]:
        """(log it?, occurrences suppressed since the last logged one)."""
        last = self._last.get(reason)
        self._last[reason] = now_s
        if last is not None and now_s - last < self.quiet_s:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return False, 0
        return True, self._suppressed.pop(reason, 0)
