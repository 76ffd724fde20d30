"""Who may command the vehicle, from face embeddings: matching against the enrolled operators, voting over frames,
ambiguity, the second factor and the lapse of authorisation when the operator is gone.

Rules:
  * A face matches an operator when its embedding lies within ``match_threshold`` (Euclidean) of the operator's
    mean embedding. A face within the threshold of two operators whose distances differ by less than
    ``ambiguity_margin`` is ambiguous. Unknown faces never match.
  * A frame votes for one operator when exactly one operator is recognised in it (strangers beside them are
    ignored). Two recognised operators, or an ambiguous face, make the frame ambiguous, unless the operator already
    in session is among them: a newcomer can neither take over nor lock out the person in control.
  * A session starts when ``votes_required`` of the last ``vote_window`` analysed frames, each at most
    ``vote_max_age_s`` old, voted for the same operator. Every frame that sees that operator again renews it;
    ``absence_timeout_s`` after the last such frame the session lapses ("expired") and new votes are needed.
  * With a second factor ("pin" or "passphrase"), a session authorises only after the operator's secret was
    verified during it; ``max_secret_attempts`` wrong secrets lock the operator's second factor for ``lockout_s``.
  * With ``liveness`` on, a session authorises only after its operator passed a liveness challenge
    (core/liveness.py: blink or turn the head, chosen at random) during it; every new session (so every
    re-authorisation after a lapse) needs a new one. A failed challenge is reported and a new one begins. The
    caller feeds the challenge the Face Mesh landmarks of the operator's face (``observe_liveness``) only while
    ``liveness_wanted``.
  * A database error, or no operator enrolled, means nobody is authorised.

Times are seconds on any clock the caller keeps consistent (the node uses ROS time, so ``expires`` is a stamp).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core.liveness import FAILED, PASSED, LivenessChallenge, LivenessConfig

FACE_MATCH = "face match"
NO_FACE = "no face"
UNKNOWN_FACE = "unknown face"
AMBIGUOUS = "ambiguous match"
EXPIRED = "expired"
NO_OPERATORS = "no operators enrolled"
WAITING = "waiting for a face"
AWAITING_SECOND_FACTOR = "awaiting second factor"
SECOND_FACTOR_LOCKED = "second factor locked out"
DATABASE_ERROR = "database error"
AWAITING_LIVENESS = "awaiting liveness check"
LIVENESS_FAILED = "liveness check failed"
SECOND_FACTORS = ("none", "pin", "passphrase")


@dataclass(frozen=True)
class EnrolledFace:
    operator_id: str
    name: str
    embedding: np.ndarray
    secret_hash: str = ""


def faces_from_operators(operators) -> list[EnrolledFace]:
    """EnrolledFace for each core.operator_store.Operator."""
    return [EnrolledFace(o.operator_id, o.name, o.embedding, o.secret_hash) for o in operators]


def match_confidence(distance: float, threshold: float) -> float:
    """1 for an identical embedding, 0.5 at the threshold, 0 at twice the threshold and beyond."""
    return float(np.clip(1.0 - distance / (2.0 * threshold), 0.0, 1.0))


@dataclass(frozen=True)
class FaceMatch:
    operator: EnrolledFace | None   # None: unknown or ambiguous
    distance: float                 # to the nearest operator (inf with none enrolled)
    ambiguous: bool = False
    nearest: EnrolledFace | None = None


class Gallery:
    """The enrolled operators' mean embeddings, matched in one vectorised step."""

    def __init__(self, faces: Sequence[EnrolledFace], threshold: float, ambiguity_margin: float = 0.0):
        self.faces = list(faces)
        self.threshold = float(threshold)
        self.ambiguity_margin = float(ambiguity_margin)
        self._matrix = np.stack([f.embedding for f in self.faces]) if self.faces else np.zeros((0, 0))

    def __len__(self) -> int:
        return len(self.faces)

    def distances(self, embedding: np.ndarray) -> np.ndarray:
        if not self.faces:
            return np.zeros(0)
        return np.linalg.norm(self._matrix - np.asarray(embedding, dtype=np.float64)[None, :], axis=1)

    def match(self, embedding: np.ndarray) -> FaceMatch:
        distances = self.distances(embedding)
        if distances.size == 0:
            return FaceMatch(None, float("inf"))
        order = np.argsort(distances)
        best, nearest = float(distances[order[0]]), self.faces[order[0]]
        if best > self.threshold:
            return FaceMatch(None, best, nearest=nearest)
        if distances.size > 1:
            second = float(distances[order[1]])
            if second <= self.threshold and second - best < self.ambiguity_margin:
                return FaceMatch(None, best, ambiguous=True, nearest=nearest)
        return FaceMatch(nearest, best, nearest=nearest)


@dataclass(frozen=True)
class FrameVerdict:
    reason: str                         # FACE_MATCH, NO_FACE, UNKNOWN_FACE or AMBIGUOUS
    operator: EnrolledFace | None = None
    distance: float = float("inf")
    confidence: float = 0.0
    faces: int = 0
    index: int = -1                     # which of the frame's faces voted (FACE_MATCH only)


def judge_frame(embeddings: Sequence[np.ndarray], gallery: Gallery, current_operator_id: str | None = None
                ) -> FrameVerdict:
    """What one frame's faces say (see the module rules)."""
    if not embeddings:
        return FrameVerdict(NO_FACE)
    matches = [gallery.match(e) for e in embeddings]
    recognised: dict[str, FaceMatch] = {}
    index_of: dict[str, int] = {}
    for i, m in enumerate(matches):
        if m.operator and (m.operator.operator_id not in recognised
                           or m.distance < recognised[m.operator.operator_id].distance):
            recognised[m.operator.operator_id] = m
            index_of[m.operator.operator_id] = i
    ambiguous = any(m.ambiguous for m in matches)

    def vote(m: FaceMatch) -> FrameVerdict:
        return FrameVerdict(FACE_MATCH, m.operator, m.distance, match_confidence(m.distance, gallery.threshold),
                            len(matches), index_of[m.operator.operator_id])
    if current_operator_id in recognised:
        return vote(recognised[current_operator_id])
    if ambiguous or len(recognised) > 1:
        return FrameVerdict(AMBIGUOUS, distance=min(m.distance for m in matches), faces=len(matches))
    if recognised:
        return vote(next(iter(recognised.values())))
    return FrameVerdict(UNKNOWN_FACE, distance=min(m.distance for m in matches), faces=len(matches))


def enrollment_samples(embeddings: Sequence[np.ndarray], threshold: float, min_samples: int
                       ) -> tuple[list[np.ndarray], int]:
    """The samples that agree with each other: those within ``threshold`` of the samples' element-wise median
    (a bystander caught in one enrollment frame is dropped). Returns (kept, number dropped); ValueError when fewer
    than ``min_samples`` remain."""
    vectors = [np.asarray(e, dtype=np.float64) for e in embeddings]
    if len(vectors) < min_samples:
        raise ValueError(f"{len(vectors)} face sample(s), at least {min_samples} needed")
    centre = np.median(np.stack(vectors), axis=0)
    kept = [v for v in vectors if np.linalg.norm(v - centre) <= threshold]
    if len(kept) < min_samples:
        raise ValueError(f"only {len(kept)} of {len(vectors)} face samples look like the same person; at least "
                         f"{min_samples} needed")
    return kept, len(vectors) - len(kept)


@dataclass(frozen=True)
class Enrollment:
    operator: object      # core.operator_store.Operator
    samples_used: int
    samples_dropped: int


def enroll_operator(store, name: str, embeddings: Sequence[np.ndarray], secret: str | None, threshold: float,
                    min_samples: int, embedding_model: str = "") -> Enrollment:
    """Enroll (or re-enroll) ``name`` in ``store`` (a core.operator_store.OperatorStore) from face embeddings:
    inconsistent samples are dropped, and a face already enrolled under another name is refused (two operators
    sharing a face would make every later match ambiguous). ValueError says why an enrollment is refused."""
    kept, dropped = enrollment_samples(embeddings, threshold, min_samples)
    mean = np.mean(kept, axis=0)
    wanted = " ".join(name.split()).casefold()
    for other in store.operators():
        distance = float(np.linalg.norm(other.embedding - mean))
        if other.name.casefold() != wanted and distance <= threshold:
            raise ValueError(f"this face is already enrolled as '{other.name}' (distance {distance:.2f} <= "
                             f"{threshold}): delete that operator or re-enroll under its name")
    operator = store.enroll(name, kept, secret, embedding_model)
    return Enrollment(operator, len(kept), dropped)


@dataclass(frozen=True)
class AuthConfig:
    match_threshold: float = 0.5
    ambiguity_margin: float = 0.05
    vote_window: int = 5
    votes_required: int = 3
    absence_timeout_s: float = 2.0
    vote_max_age_s: float = 4.0
    second_factor: str = "none"
    max_secret_attempts: int = 3
    lockout_s: float = 30.0
    liveness: bool = False
    liveness_config: LivenessConfig = field(default_factory=LivenessConfig)

    def __post_init__(self):
        if not 0.0 < self.match_threshold < 2.0:
            raise ValueError(f"match_threshold {self.match_threshold} is outside (0, 2)")
        if self.ambiguity_margin < 0.0:
            raise ValueError("ambiguity_margin must be >= 0")
        if not 1 <= self.votes_required <= self.vote_window:
            raise ValueError(f"votes_required {self.votes_required} must be in 1..vote_window ({self.vote_window})")
        if self.absence_timeout_s <= 0.0 or self.vote_max_age_s <= 0.0:
            raise ValueError("absence_timeout_s and vote_max_age_s must be > 0")
        if self.second_factor not in SECOND_FACTORS:
            raise ValueError(f"second_factor '{self.second_factor}' is not one of {', '.join(SECOND_FACTORS)}")
        if self.max_secret_attempts < 1 or self.lockout_s < 0.0:
            raise ValueError("max_secret_attempts must be >= 1 and lockout_s >= 0")


@dataclass(frozen=True)
class AuthStatus:
    authorised: bool
    operator_id: str = ""
    operator_name: str = ""
    confidence: float = 0.0
    expires: float | None = None   # when the session lapses unless the operator is seen again
    reason: str = ""

    def key(self) -> tuple:
        """What makes a status different enough to publish at once (not the moving expiry or confidence)."""
        return self.authorised, self.operator_id, self.reason


@dataclass
class _Session:
    operator: EnrolledFace
    started: float
    last_seen: float
    confidence: float
    second_factor_ok: bool = False
    liveness_ok: bool = False
    challenge: LivenessChallenge | None = None
    liveness_failure: str = ""       # why the last challenge failed, until the next one is issued


@dataclass
class _Attempts:
    wrong: int = 0
    locked_until: float = float("-inf")


@dataclass
class _Vote:
    time: float
    operator_id: str | None
    confidence: float


class FaceAuthenticator:
    """The authorisation state machine. Feed it each analysed frame's embeddings (``observe``), call ``tick``
    periodically for the lapse, and route second-factor secrets through ``secret_target`` / ``secret_result``
    (the hash check itself is slow, so the caller runs it outside whatever lock guards this object)."""

    def __init__(self, config: AuthConfig, rng=None):
        self.config = config
        self.rng = rng   # picks the liveness challenges (None: the system's random source)
        self.gallery: Gallery | None = None
        self.database_error: str | None = None
        self.session: _Session | None = None
        self.votes: deque[_Vote] = deque(maxlen=config.vote_window)
        self.attempts: dict[str, _Attempts] = {}
        self.last_reason = WAITING
        self.last_verdict: FrameVerdict | None = None

    # ------------------------------------------------------------------------------------------- the gallery
    def set_operators(self, faces: Sequence[EnrolledFace]) -> None:
        """New or reloaded operators. A session whose operator is gone (deleted) ends now."""
        self.gallery = Gallery(faces, self.config.match_threshold, self.config.ambiguity_margin)
        if self.database_error:
            self.last_reason = WAITING   # the error no longer holds
        self.database_error = None
        if self.session:
            fresh = {f.operator_id: f for f in faces}.get(self.session.operator.operator_id)
            if fresh is None:
                self._end_session(f"operator '{self.session.operator.name}' is no longer enrolled")
            else:
                self.session.operator = fresh
        known = {f.operator_id for f in faces}
        self.votes = deque((v for v in self.votes if v.operator_id in known or v.operator_id is None),
                           maxlen=self.config.vote_window)

    def set_database_error(self, message: str) -> None:
        self.database_error = message
        self.gallery = None
        self._end_session(f"{DATABASE_ERROR}: {message}")

    def _end_session(self, reason: str) -> None:
        self.session = None
        self.votes.clear()
        self.last_reason = reason

    # ------------------------------------------------------------------------------------------------ frames
    def observe(self, embeddings: Sequence[np.ndarray], now: float) -> AuthStatus:
        self.tick(now)
        if self.gallery is None or not len(self.gallery):
            self.last_verdict = None
            self.last_reason = f"{DATABASE_ERROR}: {self.database_error}" if self.database_error else NO_OPERATORS
            return self.status(now)
        current = self.session.operator.operator_id if self.session else None
        verdict = judge_frame(embeddings, self.gallery, current)
        self.last_verdict = verdict
        self.last_reason = verdict.reason
        voted_for = verdict.operator.operator_id if verdict.operator else None
        self.votes.append(_Vote(now, voted_for, verdict.confidence))
        if voted_for is None:
            return self.status(now)
        if self.session and self.session.operator.operator_id == voted_for:
            self.session.last_seen = now
            self.session.confidence = self._vote_confidence(voted_for, now)
        elif self.session is None and self._vote_count(voted_for, now) >= self.config.votes_required:
            self.session = _Session(verdict.operator, now, now, self._vote_confidence(voted_for, now))
            if self.config.liveness:
                self.session.challenge = self._new_challenge()
        return self.status(now)

    # ------------------------------------------------------------------------------------------------ liveness
    def _new_challenge(self) -> LivenessChallenge:
        if self.rng is None:
            return LivenessChallenge(self.config.liveness_config)
        return LivenessChallenge(self.config.liveness_config, rng=self.rng)

    def liveness_wanted(self, now: float) -> bool:
        """Whether a session waits for its liveness challenge: only then are Face Mesh landmarks needed."""
        self.tick(now)
        return bool(self.config.liveness and self.session and not self.session.liveness_ok)

    @property
    def liveness_prompt(self) -> str:
        """What to ask the operator now ("Please blink."), empty when nothing is asked."""
        s = self.session
        if not (self.config.liveness and s and not s.liveness_ok and s.challenge):
            return ""
        return s.challenge.prompt

    def observe_liveness(self, points, now: float) -> AuthStatus:
        """One frame's Face Mesh landmarks of the session operator's face (None: not seen in that frame)."""
        self.tick(now)
        s = self.session
        if not (self.config.liveness and s and not s.liveness_ok):
            return self.status(now)
        self._advance_challenge(points, now)
        return self.status(now)

    def _advance_challenge(self, points, now: float) -> None:
        s = self.session
        if s.challenge is None:
            s.challenge = self._new_challenge()
        state = s.challenge.observe(points, now)
        if state == PASSED:
            s.liveness_ok, s.liveness_failure = True, ""
        elif state == FAILED:
            s.liveness_failure = s.challenge.reason
            s.challenge = self._new_challenge()   # a new challenge, chosen afresh, from a new baseline
        elif s.challenge.prompt:
            s.liveness_failure = ""

    def _recent_votes(self, operator_id: str, now: float) -> list[_Vote]:
        return [v for v in self.votes
                if v.operator_id == operator_id and now - v.time <= self.config.vote_max_age_s]

    def _vote_count(self, operator_id: str, now: float) -> int:
        return len(self._recent_votes(operator_id, now))

    def _vote_confidence(self, operator_id: str, now: float) -> float:
        """How close the operator's recent matches were (mean match confidence), scaled down while they hold
        fewer than the votes required."""
        votes = self._recent_votes(operator_id, now)
        if not votes:
            return 0.0
        return sum(v.confidence for v in votes) / len(votes) * min(1.0, len(votes) / self.config.votes_required)

    def tick(self, now: float) -> AuthStatus:
        if self.session and now - self.session.last_seen > self.config.absence_timeout_s:
            self._end_session(EXPIRED)
        s = self.session
        if s and self.config.liveness and not s.liveness_ok and s.challenge is not None and s.challenge.prompt \
                and now - s.challenge.issued_at > s.challenge.config.timeout_s:
            self._advance_challenge(None, now)   # the time to answer ran out without a frame to say so
        return self.status(now)

    # -------------------------------------------------------------------------------------------- the status
    def status(self, now: float) -> AuthStatus:
        if self.database_error:
            return AuthStatus(False, reason=f"{DATABASE_ERROR}: {self.database_error}")
        if self.gallery is not None and not len(self.gallery):
            return AuthStatus(False, reason=NO_OPERATORS)
        s = self.session
        if s is None:
            return AuthStatus(False, reason=self.last_reason)
        expires = s.last_seen + self.config.absence_timeout_s
        op = s.operator
        if self.config.liveness and not s.liveness_ok:
            prompt = s.challenge.prompt if s.challenge else ""
            reason = (f"{LIVENESS_FAILED}: {s.liveness_failure}" if s.liveness_failure
                      else f"{AWAITING_LIVENESS}: {prompt}" if prompt else AWAITING_LIVENESS)
            return AuthStatus(False, op.operator_id, op.name, s.confidence, expires, reason)
        if self.config.second_factor != "none" and not s.second_factor_ok:
            attempts = self.attempts.get(op.operator_id)
            reason = (SECOND_FACTOR_LOCKED if attempts and now < attempts.locked_until
                      else f"{AWAITING_SECOND_FACTOR} ({self.config.second_factor})")
            return AuthStatus(False, op.operator_id, op.name, s.confidence, expires, reason)
        reason = FACE_MATCH if self.config.second_factor == "none" else f"{FACE_MATCH} + {self.config.second_factor}"
        return AuthStatus(True, op.operator_id, op.name, s.confidence, expires, reason)

    # ------------------------------------------------------------------------------------------ second factor
    def secret_target(self, now: float) -> tuple[EnrolledFace | None, str]:
        """The operator a submitted secret is to be checked against, or None and why it is refused unchecked."""
        self.tick(now)
        if self.config.second_factor == "none":
            return None, "no second factor is configured"
        if self.session is None:
            return None, "no recognised operator: look at the camera first"
        op = self.session.operator
        if self.session.second_factor_ok:
            return None, f"'{op.name}' is already authorised"
        if not op.secret_hash:
            return None, f"'{op.name}' has no secret enrolled: re-enroll with one"
        attempts = self.attempts.get(op.operator_id)
        if attempts and now < attempts.locked_until:
            return None, f"locked out for {attempts.locked_until - now:.0f} s after too many wrong secrets"
        return op, ""

    def secret_result(self, operator_id: str, correct: bool, now: float) -> str:
        """Record the outcome of checking a secret against ``operator_id``; returns what happened."""
        if self.session is None or self.session.operator.operator_id != operator_id:
            return "the operator left before the secret was checked"
        attempts = self.attempts.setdefault(operator_id, _Attempts())
        if correct:
            self.session.second_factor_ok = True
            attempts.wrong = 0
            return f"second factor accepted for '{self.session.operator.name}'"
        attempts.wrong += 1
        if attempts.wrong >= self.config.max_secret_attempts:
            attempts.wrong = 0
            attempts.locked_until = now + self.config.lockout_s
            return f"wrong secret: locked out for {self.config.lockout_s:.0f} s"
        return f"wrong secret ({attempts.wrong} of {self.config.max_secret_attempts})"
