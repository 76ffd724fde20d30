"""The PIN second factor without the PIN on the wire: a challenge–response over the stored scrypt hash.

face_auth publishes a challenge for the recognised operator: a fresh random nonce and the scrypt parameters and
salt of that operator's stored hash (neither is secret). The operator's device derives the scrypt key from the
PIN it is given locally and answers ``v1:<nonce>:<HMAC-SHA256(key, "mmchat-pin/1|operator_id|nonce")>``. face_auth
checks it against the key in the database; each nonce answers once. What travels over DDS is a nonce and an HMAC:
someone who records them can still guess the PIN offline, at the cost of one scrypt (~0.3 s) per guess, so a
4-digit PIN falls in about an hour of one core: prefer a long password. Whoever can read the database can answer
without the PIN (its 0600 mode is what protects it).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets

from mmchat_ros.core.operator_store import _HASH_FORMAT, canonical_secret

VERSION = "v1"
_ANSWER = re.compile(r"^v1:([0-9a-f]{32}):([0-9a-f]{64})$")


class ChallengeError(ValueError):
    """A challenge cannot be made or answered (no secret enrolled, malformed challenge)."""


def make_challenge(operator_id: str, secret_hash: str, nonce: str | None = None) -> dict:
    match = _HASH_FORMAT.match(secret_hash or "")
    if not match:
        raise ChallengeError("the operator has no secret enrolled")
    n, r, p = (int(v) for v in match.group(1, 2, 3))
    return {"version": VERSION, "operator_id": operator_id, "nonce": nonce or secrets.token_hex(16), "kdf": "scrypt",
            "n": n, "r": r, "p": p, "salt": match.group(4), "key_bytes": len(base64.b64decode(match.group(5)))}


def _mac(key: bytes, challenge: dict) -> str:
    message = f"mmchat-pin/1|{challenge['operator_id']}|{challenge['nonce']}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def answer_challenge(challenge: dict | str, secret: str) -> str:
    """The operator's side: the answer to publish (derives the scrypt key locally: ~0.3 s)."""
    c = json.loads(challenge) if isinstance(challenge, str) else challenge
    try:
        n, r, p, key_bytes = int(c["n"]), int(c["r"]), int(c["p"]), int(c["key_bytes"])
        salt = base64.b64decode(c["salt"])
        nonce = str(c["nonce"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChallengeError(f"malformed challenge: {exc}") from exc
    if n < 2 or n & (n - 1) or n > 2 ** 20 or not 1 <= r <= 64 or not 1 <= p <= 64 or not 16 <= key_bytes <= 64:
        raise ChallengeError("challenge asks for unreasonable scrypt parameters")
    key = hashlib.scrypt(canonical_secret(secret).encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=key_bytes,
                         maxmem=2 * 128 * n * r + 64 * 1024 * 1024)
    return f"{VERSION}:{nonce}:{_mac(key, c)}"


def is_answer(text: str) -> bool:
    return bool(_ANSWER.match(text or ""))


def check_answer(challenge: dict, answer: str, secret_hash: str) -> bool:
    """face_auth's side: True when ``answer`` answers this very challenge with the key in ``secret_hash``."""
    match, stored = _ANSWER.match(answer or ""), _HASH_FORMAT.match(secret_hash or "")
    if not match or not stored or not hmac.compare_digest(match.group(1), str(challenge.get("nonce", ""))):
        return False
    return hmac.compare_digest(match.group(2), _mac(base64.b64decode(stored.group(5)), challenge))
