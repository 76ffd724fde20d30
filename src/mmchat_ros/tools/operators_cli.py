"""`mmchat operators enroll|list|delete|set-pin|rotate-key`: manage the operator database and the authorisation
key directly, without ROS (secrets never travel over DDS: this local CLI is the only way to set a PIN).

  mmchat operators enroll NAME IMAGE [IMAGE ...] [--pin PIN | --pin-stdin | --no-pin] [--database PATH]
  mmchat operators list [--json] [--database PATH]
  mmchat operators delete NAME_OR_ID [--database PATH]
  mmchat operators set-pin NAME_OR_ID [--pin-stdin] [--database PATH]
  mmchat operators rotate-key [--key-dir DIR]

Enrollment runs the same face backend and checks as the face_auth node's enroll_operator service, and makes the
authorisation key pair (auth_signing.key/.pub, 0600) when there is none. Without a PIN option it asks for one
(twice) on a terminal. A running face_auth node picks changes up within a second; a rotated key too (the flight
controller and planner re-read the public key, so an old key's signatures are refused from then on).
(`python -m mmchat_ros.tools.operators_cli ...` works the same without the `mmchat` front end.)
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from datetime import datetime

from mmchat_ros.core.auth_signing import AuthKeyError, ensure_keys, generate_keys, key_dir_or_default
from mmchat_ros.core.operator_store import OperatorStore, OperatorStoreError, default_database_path

DEFAULT_THRESHOLD = 0.5   # the face_auth node's match_threshold default


def _store(args, create: bool = False) -> OperatorStore:
    return OperatorStore(args.database or default_database_path(), create=create)


def _read_secret(args) -> str | None:
    if args.no_pin:
        return None
    if args.pin is not None:
        return args.pin
    if args.pin_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        print("no PIN given (not a terminal): enrolling without a second factor secret", file=sys.stderr)
        return None
    first = getpass.getpass("PIN or password for the second factor (empty for none): ")
    if first and getpass.getpass("again: ") != first:
        raise ValueError("the two entries differ")
    return first or None


def _load_image(path: str):
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _enroll(args) -> int:
    from mmchat_ros.backends.faces import EMBEDDING_MODEL_NAME, make_face_analyzer
    from mmchat_ros.core.face_auth import enroll_operator
    secret = _read_secret(args)
    images = [_load_image(path) for path in args.images]
    analyzer = make_face_analyzer(args.detector, args.model_dir, args.upsample)
    try:
        embeddings, problems = analyzer.enrollment_embeddings(images)
    finally:
        analyzer.close()
    for index, why in problems:
        print(f"skipped {args.images[index]}: {why}", file=sys.stderr)
    enrollment = enroll_operator(_store(args, create=True), args.name, embeddings, secret, args.threshold,
                                 args.min_samples, EMBEDDING_MODEL_NAME)
    op = enrollment.operator
    key_id, made = ensure_keys(args.key_dir or None)
    if made:
        print(f"made the authorisation key pair {key_id} in {key_dir_or_default(args.key_dir or None)}")
    print(f"enrolled '{op.name}' (id {op.operator_id}) from {enrollment.samples_used} sample(s)"
          f"{f', {enrollment.samples_dropped} inconsistent dropped' if enrollment.samples_dropped else ''}; "
          f"secret: {'yes' if op.has_secret else 'none'}")
    return 0


def _list(args) -> int:
    operators = _store(args).operators()
    if args.json:
        print(json.dumps([{"id": o.operator_id, "name": o.name, "samples": len(o.samples), "secret": o.has_secret,
                           "model": o.embedding_model, "created": o.created, "updated": o.updated}
                          for o in operators], indent=2))
        return 0
    if not operators:
        print("no operators enrolled")
    for o in operators:
        updated = datetime.fromtimestamp(o.updated).isoformat(timespec="seconds")
        print(f"{o.name}\tid {o.operator_id}\t{len(o.samples)} samples\tsecret {'yes' if o.has_secret else 'no'}"
              f"\tupdated {updated}")
    return 0


def _delete(args) -> int:
    if not _store(args).delete(args.operator):
        print(f"no operator named or with id '{args.operator}'", file=sys.stderr)
        return 1
    print(f"deleted '{args.operator}'")
    return 0


def _set_pin(args) -> int:
    store = _store(args)
    operator = store.get(args.operator)
    if operator is None:
        print(f"no operator named or with id '{args.operator}'", file=sys.stderr)
        return 1
    secret = sys.stdin.readline().rstrip("\n") if args.pin_stdin else _read_secret(
        argparse.Namespace(no_pin=False, pin=None, pin_stdin=False))
    if not secret:
        raise ValueError("no PIN given")
    store.set_secret(operator.operator_id, secret)
    print(f"PIN set for '{operator.name}'")
    return 0


def _answer_pin(args) -> int:
    """Wait for face_auth's challenge on /auth/challenge, answer it on /auth/secret (the PIN stays here)."""
    import os
    from mmchat_ros.core.rosenv import apply_to_current_process
    from mmchat_ros.core.secret_challenge import answer_challenge
    apply_to_current_process()
    from std_msgs.msg import String
    from mmchat_ros.nodes.common import COMMAND_QOS, STATE_QOS
    from mmchat_ros.tools.ros_client import RosClient
    secret = sys.stdin.readline().rstrip("\n") if args.pin_stdin else getpass.getpass("PIN or password: ")
    client = RosClient(int(os.environ.get("ROS_DOMAIN_ID", "0")), name="answer_pin")
    try:
        challenges = client.collect(String, "/auth/challenge", STATE_QOS)
        try:
            challenge = client.wait_for_message(challenges, lambda m: bool(m.data), args.timeout,
                                                "a challenge on /auth/challenge (is the operator in front of the "
                                                "camera, and face_auth running with second_factor pin?)")
        except TimeoutError as exc:
            raise RuntimeError(str(exc)) from None
        answers = client.node.create_publisher(String, "/auth/secret", COMMAND_QOS)
        client.wait_for_subscribers(answers, timeout=args.timeout)
        answers.publish(String(data=answer_challenge(challenge.data, secret)))
        time.sleep(0.5)   # let the reliable publisher deliver before the participant goes away
    finally:
        client.close()
    print("answer sent (the PIN itself was not)")
    return 0


def _rotate_key(args) -> int:
    directory = key_dir_or_default(args.key_dir or None)
    existed = (directory / "auth_signing.key").exists()
    key_id = generate_keys(directory, overwrite=True)
    print(f"{'rotated' if existed else 'made'} the authorisation key pair: {key_id} in {directory} (0600); running "
          "nodes pick it up within a second, and signatures by the old key are refused from now on")
    return 0


def _guarded(command):
    """Clear one-line errors and a non-zero status instead of tracebacks."""
    def run(args) -> int:
        try:
            return command(args)
        except (OperatorStoreError, AuthKeyError, ValueError, RuntimeError, OSError) as exc:
            print(f"mmchat operators: {exc}", file=sys.stderr)
            return 2
    return run


def add_subparser(subparsers) -> argparse.ArgumentParser:
    """Register `operators enroll|list|delete` on an argparse subparsers object (mmchat's CLI)."""
    operators = subparsers.add_parser("operators", help="enroll, list or delete operators (face database)",
                                      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", help=f"operator database (default: {default_database_path()})")
    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("--key-dir", help=f"authorisation key directory (default: {key_dir_or_default(None)}; the "
                                        "nodes' auth_key_dir parameter)")
    sub = operators.add_subparsers(dest="operators_command", required=True)

    enroll = sub.add_parser("enroll", parents=[common, keys], help="enroll or re-enroll an operator from face images")
    enroll.add_argument("name")
    enroll.add_argument("images", nargs="+", help="photos of the operator's face (several views)")
    secret = enroll.add_mutually_exclusive_group()
    secret.add_argument("--pin", help="PIN or password (visible in the process list: prefer the prompt)")
    secret.add_argument("--pin-stdin", action="store_true", help="read the PIN or password from stdin's first line")
    secret.add_argument("--no-pin", action="store_true", help="no secret (keeps an existing one on re-enrollment)")
    enroll.add_argument("--detector", default="hog", help="face detector: hog, cnn or mediapipe")
    enroll.add_argument("--model-dir", default="", help="dlib model directory (default: the installed package)")
    enroll.add_argument("--upsample", type=int, default=1)
    enroll.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="match threshold for the consistency and duplicate checks")
    enroll.add_argument("--min-samples", type=int, default=3, help="face samples needed")
    enroll.set_defaults(func=_guarded(_enroll))

    listing = sub.add_parser("list", parents=[common], help="list enrolled operators")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_guarded(_list))

    delete = sub.add_parser("delete", parents=[common], help="delete an operator (name or id)")
    delete.add_argument("operator")
    delete.set_defaults(func=_guarded(_delete))

    set_pin = sub.add_parser("set-pin", parents=[common], help="set or change an operator's PIN or password "
                                                                "(asked on the terminal; only here, never over DDS)")
    set_pin.add_argument("operator")
    set_pin.add_argument("--pin-stdin", action="store_true", help="read it from stdin's first line")
    set_pin.set_defaults(func=_guarded(_set_pin))

    answer = sub.add_parser("answer-pin", help="answer face_auth's PIN challenge (second_factor pin): the PIN is "
                                              "typed here and never sent, only an HMAC of the challenge")
    answer.add_argument("--pin-stdin", action="store_true", help="read it from stdin's first line")
    answer.add_argument("--timeout", type=float, default=20.0, help="wait this long for a challenge, s")
    answer.set_defaults(func=_guarded(_answer_pin))

    rotate = sub.add_parser("rotate-key", parents=[keys], help="make a new authorisation signing key pair (the "
                                                               "old one stops being accepted at once)")
    rotate.set_defaults(func=_guarded(_rotate_key))
    return operators


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmchat")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["operators", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
