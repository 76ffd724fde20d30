"""Enrolled operators in a local SQLite database: face embeddings (mean and per sample) and a salted scrypt hash of
each operator's secret (PIN or password). Never the secret itself, nor anything it could be recovered from.

The database file is created with mode 0600 (SQLite gives its journal the same mode) and refused when group or
others may read or write it (``DatabaseExposed``: a clear error, never a silent chmod), deleted rows are overwritten
(``secure_delete``: embeddings are biometric data), and every failure to read it (missing file, not a database,
damaged pages, wrong schema, malformed rows) raises ``OperatorStoreError`` with a message that says what to do.

Secrets are compared in a canonical form (Unicode NFKC, case-folded, punctuation dropped, whitespace collapsed) so
that a spoken passphrase ("Open sesame.") can match the typed one ("open sesame"); a PIN is unchanged by it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import stat
import time
import unicodedata
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
EMBEDDING_DTYPE = np.dtype("<f8")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    embedding BLOB NOT NULL,          -- mean of the samples, little-endian float64
    embedding_model TEXT NOT NULL,
    secret_hash TEXT NOT NULL DEFAULT '',   -- 'scrypt$n=..,r=..,p=..$salt$key' (base64), '' = no secret
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE samples (
    operator_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (operator_id, idx)
);
"""


class OperatorStoreError(RuntimeError):
    """The operator database cannot be used: the message says why and what to do."""


class DatabaseMissing(OperatorStoreError):
    pass


class DatabaseCorrupt(OperatorStoreError):
    pass


class DatabaseExposed(OperatorStoreError):
    """The database file is readable or writable by group or others: refused until its owner fixes it."""


# ------------------------------------------------------------------------------------------------------ secrets
@dataclass(frozen=True)
class ScryptParams:
    """Cost of one hash: 128 * n * r bytes of memory, n * r * p work. The default is one of OWASP's equivalent
    recommendations (n=2^15, r=8, p=3: 32 MiB, ~0.3 s here); a PIN has little entropy, so the cost is the defence."""
    n: int = 2 ** 15
    r: int = 8
    p: int = 3
    salt_bytes: int = 16
    key_bytes: int = 32


DEFAULT_SCRYPT = ScryptParams()
_HASH_FORMAT = re.compile(r"^scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def canonical_secret(secret: str) -> str:
    text = unicodedata.normalize("NFKC", secret).casefold()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, key_bytes: int) -> bytes:
    return hashlib.scrypt(canonical_secret(secret).encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=key_bytes,
                          maxmem=2 * 128 * n * r + 64 * 1024 * 1024)


def hash_secret(secret: str, params: ScryptParams = DEFAULT_SCRYPT) -> str:
    """A self-describing salted scrypt hash of ``secret``; ValueError if the secret is empty once canonical."""
    if not canonical_secret(secret):
        raise ValueError("the secret is empty (letters and digits count; punctuation and spaces do not)")
    salt = secrets.token_bytes(params.salt_bytes)
    key = _scrypt(secret, salt, params.n, params.r, params.p, params.key_bytes)
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"scrypt$n={params.n},r={params.r},p={params.p}${b64(salt)}${b64(key)}"


def verify_secret(secret: str, encoded: str) -> bool:
    """True when ``secret`` matches the hash; False for a mismatch, an empty hash or a malformed one."""
    match = _HASH_FORMAT.match(encoded or "")
    if not match or not canonical_secret(secret):
        return False
    n, r, p = (int(v) for v in match.group(1, 2, 3))
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 64 or n > 2 ** 20:
        return False   # refuse parameters that would only burn memory or time
    salt, key = base64.b64decode(match.group(4)), base64.b64decode(match.group(5))
    return hmac.compare_digest(_scrypt(secret, salt, n, r, p, len(key)), key)


# ---------------------------------------------------------------------------------------------------- operators
@dataclass(frozen=True)
class Operator:
    operator_id: str
    name: str
    embedding: np.ndarray            # mean of the samples
    samples: tuple[np.ndarray, ...]
    embedding_model: str
    secret_hash: str
    created: float
    updated: float

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_hash)


def default_database_path() -> Path:
    """$XDG_DATA_HOME/mmchat_ros/operators.db (~/.local/share/mmchat_ros/operators.db)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmchat_ros" / "operators.db"


def file_signature(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """Changes whenever the file is written or replaced (for a reader that caches the operators); None: no file."""
    try:
        st = Path(path).expanduser().stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def _check_embeddings(embeddings, dim: int) -> list[np.ndarray]:
    checked = []
    for i, vector in enumerate(embeddings):
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (dim,) or not np.all(np.isfinite(vector)):
            raise ValueError(f"embedding {i} is not {dim} finite numbers (shape {vector.shape})")
        checked.append(vector)
    if not checked:
        raise ValueError("no embeddings to enroll")
    return checked


class OperatorStore:
    """One operator database file. Every call opens its own short SQLite connection, so a store may be used from
    any thread, and the CLI and a running node can share the file (SQLite's locking serialises the writers)."""

    def __init__(self, path: str | os.PathLike, create: bool = False, embedding_dim: int = 128,
                 scrypt: ScryptParams = DEFAULT_SCRYPT):
        self.path = Path(path).expanduser()
        self.embedding_dim = int(embedding_dim)
        self.scrypt = scrypt
        if not self.path.exists():
            if not create:
                raise DatabaseMissing(f"no operator database at {self.path}: enroll an operator first "
                                      "(mmchat operators enroll, or the enroll_operator service)")
            return   # created by the first enrollment, so a refused one leaves no empty file behind
        if not self.path.is_file():
            raise DatabaseCorrupt(f"{self.path} is not a file")
        self._tighten_permissions()
        self._validate()

    # ------------------------------------------------------------------------------------------- file & schema
    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created 0600 before SQLite touches it: no window in which the file is readable by others.
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
                db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", str(SCHEMA_VERSION)),
                                                                   ("embedding_dim", str(self.embedding_dim))])
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def _tighten_permissions(self) -> None:
        """Refuse a database that group or others can read or write: its embeddings are biometric data and its
        rows say who may fly, so anyone who could have read or replaced it must be ruled out by its owner."""
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise DatabaseExposed(
                f"operator database {self.path} has mode {mode:04o}: other users can "
                f"{'write' if mode & 0o022 else 'read'} it, so it is refused. If nobody else could have read or "
                f"changed it: `chmod 600 {self.path}`; otherwise delete it and enroll again")

    @contextmanager
    def _connect(self):
        try:
            with closing(sqlite3.connect(self.path, timeout=5.0)) as db:
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA secure_delete = ON")
                with db:   # one transaction: committed on success, rolled back on an exception
                    yield db
        except sqlite3.IntegrityError as exc:
            raise OperatorStoreError(f"operator database {self.path}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "unable to open" in str(exc) or "readonly" in str(exc):
                raise OperatorStoreError(f"operator database {self.path}: {exc}") from exc
            raise DatabaseCorrupt(f"operator database {self.path} is unreadable ({exc}); restore it from a backup "
                                  "or delete it and enroll again") from exc
        except sqlite3.DatabaseError as exc:
            raise DatabaseCorrupt(f"operator database {self.path} is unreadable ({exc}); restore it from a backup "
                                  "or delete it and enroll again") from exc

    def _validate(self) -> None:
        with self._connect() as db:
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise DatabaseCorrupt(f"operator database {self.path} is damaged ({check[0] if check else '?'}); "
                                      "restore it from a backup or delete it and enroll again")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "operators", "samples"} <= tables:
                raise DatabaseCorrupt(f"{self.path} is an SQLite file but not an operator database "
                                      f"(tables: {', '.join(sorted(tables)) or 'none'})")
            meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise DatabaseCorrupt(f"{self.path} has schema version {meta.get('schema_version')!r}; this version of "
                                  f"mmchat_ros reads version {SCHEMA_VERSION}")
        if meta.get("embedding_dim") != str(self.embedding_dim):
            raise DatabaseCorrupt(f"{self.path} holds {meta.get('embedding_dim')}-D embeddings, the face model "
                                  f"makes {self.embedding_dim}-D ones")

    def signature(self) -> tuple[int, int, int] | None:
        return file_signature(self.path)

    # ----------------------------------------------------------------------------------------------- reading
    def _vector(self, blob: bytes, what: str) -> np.ndarray:
        if not isinstance(blob, bytes) or len(blob) != self.embedding_dim * EMBEDDING_DTYPE.itemsize:
            raise DatabaseCorrupt(f"operator database {self.path}: {what} is not a {self.embedding_dim}-D embedding")
        vector = np.frombuffer(blob, dtype=EMBEDDING_DTYPE).astype(np.float64)
        if not np.all(np.isfinite(vector)):
            raise DatabaseCorrupt(f"operator database {self.path}: {what} holds non-finite numbers")
        return vector

    def _operators(self, db, where: str = "", args: tuple = ()) -> list[Operator]:
        rows = db.execute("SELECT id, name, embedding, embedding_model, secret_hash, created, updated FROM operators "
                          f"{where} ORDER BY name", args).fetchall()
        result = []
        for op_id, name, blob, model, secret_hash, created, updated in rows:
            samples = tuple(self._vector(b, f"a sample of '{name}'") for (b,) in db.execute(
                "SELECT embedding FROM samples WHERE operator_id = ? ORDER BY idx", (op_id,)))
            result.append(Operator(op_id, name, self._vector(blob, f"the embedding of '{name}'"), samples, model,
                                   secret_hash or "", created, updated))
        return result

    def operators(self) -> list[Operator]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            return self._operators(db)

    def get(self, name_or_id: str) -> Operator | None:
        if not self.path.exists():
            return None
        with self._connect() as db:
            found = self._operators(db, "WHERE id = ? OR name = ?", (name_or_id, name_or_id))
        return found[0] if found else None

    # ----------------------------------------------------------------------------------------------- writing
    def enroll(self, name: str, embeddings, secret: str | None = None, embedding_model: str = "") -> Operator:
        """Add ``name`` with these face samples, or replace the samples of an operator of that name (same id).
        ``secret`` (PIN or password) is stored as a salted scrypt hash; None keeps an existing one."""
        name = " ".join(str(name).split())
        if not name:
            raise ValueError("an operator needs a name")
        samples = _check_embeddings(embeddings, self.embedding_dim)
        mean = np.mean(samples, axis=0)
        secret_hash = hash_secret(secret, self.scrypt) if secret else None   # slow: outside the transaction
        now = time.time()
        if not self.path.exists():
            self._create()
        with self._connect() as db:
            row = db.execute("SELECT id FROM operators WHERE name = ?", (name,)).fetchone()
            if row:
                op_id = row[0]
                db.execute("UPDATE operators SET name = ?, embedding = ?, embedding_model = ?, updated = ? "
                           "WHERE id = ?", (name, _to_blob(mean), embedding_model, now, op_id))
                db.execute("DELETE FROM samples WHERE operator_id = ?", (op_id,))
            else:
                op_id = uuid.uuid4().hex
                db.execute("INSERT INTO operators (id, name, embedding, embedding_model, created, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (op_id, name, _to_blob(mean), embedding_model, now, now))
            if secret_hash is not None:
                db.execute("UPDATE operators SET secret_hash = ? WHERE id = ?", (secret_hash, op_id))
            db.executemany("INSERT INTO samples VALUES (?, ?, ?)",
                           [(op_id, i, _to_blob(v)) for i, v in enumerate(samples)])
            return self._operators(db, "WHERE id = ?", (op_id,))[0]

    def delete(self, name_or_id: str) -> bool:
        if not self.path.exists():
            return False
        with self._connect() as db:
            return db.execute("DELETE FROM operators WHERE id = ? OR name = ?",
                              (name_or_id, name_or_id)).rowcount > 0

    def set_secret(self, name_or_id: str, secret: str) -> bool:
        """Set (replace) an operator's secret; False when there is no such operator."""
        secret_hash = hash_secret(secret, self.scrypt)
        if not self.path.exists():
            return False
        with self._connect() as db:
            return db.execute("UPDATE operators SET secret_hash = ?, updated = ? WHERE id = ? OR name = ?",
                              (secret_hash, time.time(), name_or_id, name_or_id)).rowcount > 0

    def check_secret(self, name_or_id: str, secret: str) -> bool:
        operator = self.get(name_or_id)
        return operator is not None and verify_secret(secret, operator.secret_hash)
