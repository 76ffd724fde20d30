"""The issue's attack, repeated: another participant on the ROS domain, without face_auth's key, publishes an
authorised /auth/state and calls /takeoff. The real sim + flight controller (require_authorisation true) refuse it,
and refuse a replayed genuine message, an expired one and one signed with another key, each counted per reason on
/diagnostics. Genuine messages are signed here with the key in auth_key_dir, as face_auth would (the face part is
test_auth_gating_sim.py's); every forged message comes from this test's own participant, a separate process."""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from mmchat_ros.core.auth_signing import AuthClaim, AuthSigner, generate_keys, load_private_key
from mmchat_ros.msg import AuthState
from mmchat_ros.nodes.auth_guard import auth_state_of
from mmchat_ros.nodes.common import COMMAND_QOS, STATE_QOS
from tests.helpers.domains import unused_domain_id
from tests.helpers.flight import FlightClient, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.sim]


@pytest.fixture
def domain_id():
    return unused_domain_id()


def refusals(diagnostics) -> dict[str, int]:
    for _, array_msg in reversed(list(diagnostics)):
        for status in array_msg.status:
            if status.name == "mmchat/flight_controller":
                return {v.key.split("/", 1)[1]: int(v.value) for v in status.values if v.key.startswith("auth_")
                        and "/" in v.key} | {"accepted": next((int(v.value) for v in status.values
                                                               if v.key == "auth_accepted"), 0)}
    return {}


def test_forged_replayed_and_expired_authorisation_cannot_fly(ros, ros_env, tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys)
    generate_keys(tmp_path / "rogue")
    stack = start_stack(ros_env, tmp_path, fc_params={"require_authorisation": True, "auth_key_dir": str(keys)})
    try:
        flight = FlightClient(ros)
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics", COMMAND_QOS)
        auth = ros.node.create_publisher(AuthState, "/auth/state", STATE_QOS)
        ros.wait_for_subscribers(auth)
        now = lambda: ros.node.get_clock().now().nanoseconds  # noqa: E731

        def send(msg, reason, count=1):
            """Publish and wait until the flight controller counted it under ``reason``."""
            before = refusals(diagnostics).get(reason, 0)
            auth.publish(msg)
            ros.wait_for(lambda: refusals(diagnostics).get(reason, 0) >= before + count, 10,
                         f"the flight controller to count '{reason}'")

        def takeoff_refused():
            response = flight.trigger("/takeoff")
            assert not response.success and "authoris" in response.message, response.message
            assert not flight.state().operator_authorised and flight.state().mode == "LANDED"

        # 1. The forgery: authorised, no expiry, no signature. Then with an expiry, still unsigned.
        send(AuthState(authorised=True, operator_name="mallory", reason="face match"), "unsigned")
        takeoff_refused()
        forged = auth_state_of(AuthClaim(True, "x", "mallory", 1.0, "face match", now(), now() + 10**9, 1, ""), b"")
        send(forged, "unsigned")
        # 2. Signed with a key of the forger's own, under its id and under the genuine key's id.
        rogue = AuthSigner(load_private_key(tmp_path / "rogue"), 2.0)
        send(auth_state_of(*rogue.sign(AuthClaim(True, "x", "mallory", 1.0, "face match"), now())), "unknown key")
        claim, signature = rogue.sign(AuthClaim(True, "x", "mallory", 1.0, "face match"), now())
        genuine_id = AuthSigner(load_private_key(keys), 2.0).key_id
        from dataclasses import replace
        send(auth_state_of(replace(claim, key_id=genuine_id), signature), "bad signature")
        takeoff_refused()

        # 3. A genuine authorisation is accepted (the positive control) ...
        signer = AuthSigner(load_private_key(keys), 2.0)
        genuine = auth_state_of(*signer.sign(AuthClaim(True, "op-1", "eileen", 0.9, "face match"), now()))
        auth.publish(genuine)
        ros.wait_for(lambda: flight.state().operator_authorised, 10, "the genuine authorisation")
        # ... and its revocation, after which replaying the genuine message (still within its expiry) fails.
        auth.publish(auth_state_of(*signer.sign(AuthClaim(False, reason="expired"), now())))
        ros.wait_for(lambda: not flight.state().operator_authorised, 10, "the revocation")
        send(genuine, "replayed or out of order")
        takeoff_refused()

        # 4. A genuine message that expired before it arrived (held back by an attacker) never authorises.
        send(auth_state_of(*signer.sign(AuthClaim(True, "op-1", "eileen", 0.9, "face match"), now() - 5 * 10**9)),
             "expired")
        takeoff_refused()
        # 5. A genuine authorisation lapses at its expiry when no renewal follows (face_auth died).
        auth.publish(auth_state_of(*signer.sign(AuthClaim(True, "op-1", "eileen", 0.9, "face match"), now())))
        ros.wait_for(lambda: flight.state().operator_authorised, 10, "a fresh genuine authorisation")
        ros.wait_for(lambda: not flight.state().operator_authorised, 5, "the lapse 2 s later")
        takeoff_refused()
        counts = refusals(diagnostics)
        assert counts["unsigned"] >= 2 and counts["unknown key"] >= 1 and counts["bad signature"] >= 1
        assert counts["replayed or out of order"] >= 1 and counts["expired"] >= 1 and counts["accepted"] == 3
        fc_log = stack[1].output
        assert fc_log.count("refused /auth/state") <= 6   # logged once per burst and reason, not per message
    finally:
        for proc in stack:
            proc.stop()
