"""Answers to the operator's questions (core/answers.py): question detection, the spoken answers from a status
snapshot, and the description of what the tracker sees."""
import math

import numpy as np
import pytest

from mmchat_ros.core.answers import (HELP_TEXT, TOPICS, Status, answer, describe_activity, describe_detections,
                                     distance_word, question_topic, side_word, spoken_number)
from mmchat_ros.core.detections import TrackedObject

W, H = 640, 480


def flying(**changes) -> Status:
    status = Status(battery_fraction=0.764, position=np.array([1.26, -0.74, 2.04]), velocity=np.zeros(3),
                    mode="HOVER", armed=True, operator="alice", authorised=True,
                    detections=[TrackedObject(3, "person", 80, 300, 30, 70),
                                TrackedObject(7, "person", 330, 250, 120, 330),
                                TrackedObject(12, "car", 580, 260, 90, 60)],
                    image_width=W, image_height=H, home=np.zeros(3))
    for name, value in changes.items():
        setattr(status, name, value)
    return status


# ----------------------------------------------------------------------------------------------- the scene
def test_the_scene_names_classes_counts_sides_and_distances():
    assert describe_detections(flying().detections, W, H) == (
        "I see two people: one on the left, far away, and one in the centre, close; and a car on the right, "
        "far away.")


def test_thirds_and_apparent_size_rules():
    assert [side_word(x, 600) for x in (0, 199, 200, 300, 400, 401, 600)] == [
        "on the left", "on the left", "in the centre", "in the centre", "in the centre", "on the right",
        "on the right"]
    assert distance_word(240, 480) == "close"            # half the image height or more
    assert distance_word(239, 480) == "a few meters away"
    assert distance_word(96, 480) == "a few meters away"  # a fifth
    assert distance_word(95, 480) == "far away"
    assert side_word(100, 0) == "" and distance_word(100, 0) == ""


def test_single_object_and_plurals_and_articles():
    assert describe_detections([TrackedObject(1, "person", 320, 240, 50, 300)], W, H) == \
        "I see a person in the centre, close."
    assert describe_detections([TrackedObject(1, "umbrella", 600, 240, 50, 50)], W, H) == \
        "I see an umbrella on the right, far away."
    two_kinds = [TrackedObject(1, "dog", 100, 240, 50, 150), TrackedObject(2, "bus", 600, 240, 300, 300)]
    assert describe_detections(two_kinds, W, H) == \
        "I see a dog on the left, a few meters away; and a bus on the right, close."
    buses = [TrackedObject(i, "bus", 100 + 200 * i, 240, 50, 50) for i in range(2)]
    assert describe_detections(buses, W, H).startswith("I see two buses: one on the left, far away, and one")


def test_many_objects_of_a_class_are_counted_not_all_listed():
    crowd = [TrackedObject(i, "person", 20 + 60 * i, 240, 20, 60) for i in range(7)]
    text = describe_detections(crowd, W, H)
    assert text.startswith("I see seven people: one on the left, far away, one on the left")
    assert text.endswith("and three more.")
    assert text.count("one ") == 4


def test_a_short_window_of_detections_keeps_the_newest_box_of_every_track():
    from mmchat_ros.core.answers import merge_recent
    a_old, a_new = TrackedObject(1, "person", 100, 200, 40, 100), TrackedObject(1, "person", 120, 200, 40, 110)
    car = TrackedObject(5, "car", 500, 300, 90, 60)
    ghost_old, ghost_new = TrackedObject(-1, "dog", 10, 10, 5, 5), TrackedObject(-1, "cat", 9, 9, 5, 5)
    frames = [[a_old, car, ghost_old], [], [a_new, ghost_new]]       # the detector missed the middle frame
    assert merge_recent(frames) == [a_new, car, ghost_new]
    assert merge_recent([[a_old], []]) == [a_old]
    assert merge_recent([]) == []


def test_nothing_seen_and_no_camera_yet_are_told_apart():
    assert describe_detections([], W, H) == "I don't see anything I recognise right now."
    assert describe_detections([], 0, 0) == "I have no recent camera detections, so I can't tell what's around me."
    # No image size: counts only, no made-up positions.
    assert describe_detections([TrackedObject(1, "person", 10, 10, 5, 5)] * 2, 0, 0) == "I see two people."


# ---------------------------------------------------------------------------------------------- the answers
def test_answers_from_a_flying_status_are_short_and_rounded():
    status = flying()
    assert answer("battery", status) == "My battery is at 76 percent."
    assert answer("altitude", status) == "I'm 2 meters up."
    assert answer("position", status) == "I'm at x 1.3, y minus 0.7, 2 meters up, 1.5 meters from my take-off point."
    assert answer("speed", status) == "I'm holding still."
    assert answer("mode", status) == "I'm flying, hovering in place."
    assert answer("operator", status) == "alice is the operator, and is authorised to command me."
    assert answer("activity", status) == "I'm flying and waiting for a command."
    assert answer("help", status) == HELP_TEXT
    assert answer("scene", status) == describe_detections(status.detections, W, H)
    assert answer("describe", status) == answer("scene", status)
    assert answer("describe", flying(vision_description="A person stands on a lawn.")) == \
        "A person stands on a lawn."
    for topic in TOPICS:
        assert answer(topic, status).endswith(".")


def test_unknown_values_are_said_honestly():
    unknown = Status()
    assert answer("battery", unknown) == "I don't know my battery level yet."
    assert answer("battery", flying(battery_fraction=math.nan)) == "I don't know my battery level yet."
    assert answer("altitude", unknown) == "I don't know my altitude yet."
    assert answer("position", unknown) == "I don't know my position yet."
    assert answer("speed", unknown) == "I don't know my speed yet."
    assert answer("mode", unknown) == "I don't know my flight state yet."
    assert answer("operator", unknown) == "Nobody is authorised to command me right now."
    assert "waiting for a command" in answer("activity", unknown)
    assert "no recent camera detections" in answer("scene", unknown)
    # Position known, home not: no distance to it.
    assert answer("position", flying(home=None)) == "I'm at x 1.3, y minus 0.7, 2 meters up."
    with pytest.raises(ValueError, match="unknown question topic"):
        answer("weather", unknown)


def test_state_dependent_answers():
    landed = flying(position=np.array([0.0, 0.0, 0.02]), mode="LANDED", armed=False)
    assert answer("altitude", landed) == "I'm on the ground."
    assert answer("mode", landed) == "I'm on the ground with the motors off."
    assert answer("position", landed) == "I'm at x 0, y 0, 0 meters up, at my take-off point."
    assert answer("activity", landed) == "I'm on the ground with the motors off, waiting for a command."
    assert answer("speed", landed) == "I'm not moving."
    assert answer("battery", flying(battery_fraction=0.18)) == "My battery is at 18 percent. That's low; I should land soon."
    moving = flying(velocity=np.array([0.6, 0.8, -0.31]), mode="POSITION")
    assert answer("speed", moving) == "I'm moving at 1 meter per second and descending at 0.3 meters per second."
    assert answer("speed", flying(velocity=np.array([0.0, 0.0, 0.5]))) == "I'm climbing at 0.5 meters per second."
    above_home = flying(position=np.array([0.1, 0.0, 1.5]))
    assert answer("position", above_home).endswith("right above my take-off point.")
    assert answer("operator", flying(authorised=False)) == \
        "I recognise alice, but nobody is authorised to command me right now."
    assert answer("mode", flying(mode="EMERGENCY")).startswith("I'm in emergency stop")
    busy = flying(activity=describe_activity("Flying forward 2 meters", 0.4, 1, 3))
    assert answer("activity", busy) == "I'm flying forward 2 meters, 40 percent done (step 2 of 3)."
    assert describe_activity("Taking off", 0.0) == "taking off"


def test_spoken_numbers():
    assert [spoken_number(v) for v in (1.49, 2.0, -0.3, -0.04, 12.345)] == ["1.5", "2", "minus 0.3", "0", "12.3"]
    assert spoken_number(76.4, 0) == "76"


# ------------------------------------------------------------------------------------------ question topics
QUESTIONS = {
    "battery": ["how much battery do you have left", "What's your battery level?", "battery?", "Battery status.",
                "how much power is left", "is your battery low", "tell me the charge", "how long can you stay up?",
                "battery percentage pls"],
    "altitude": ["how high are you", "What is your altitude?", "what height are you at", "altitude?",
                 "how far off the ground are you"],
    "position": ["where are you", "What's your position?", "how far are you from home", "what are your coordinates",
                 "tell me your location"],
    "speed": ["how fast are you going", "what's your speed", "are you moving?", "what is your velocity"],
    "mode": ["are you flying", "Are you on the ground?", "what mode are you in", "what's your flight state",
             "status", "have you landed", "are you up in the air or sitting on the ground"],
    "operator": ["who is in control", "who's the operator?", "who is flying you", "am I authorised",
                 "who am I", "who controls you", "who has control of you right now"],
    "activity": ["what are you doing", "what's your current task", "What are you up to?", "are you busy",
                 "where are you going"],
    "help": ["what can I say", "What can you do?", "help", "what commands do you understand", "how do I use you",
             "what kind of commands do you understand"],
    "scene": ["what do you see", "What do you see?", "is anyone there", "Is anybody there?", "how many people",
              "how many people can you see", "can you see me", "do you see a car", "what's in front of you",
              "tell me what you see", "is there a person", "anyone around?", "who do you see",
              "anything ahead of you?"],
    "describe": ["describe the scene", "Describe what you see.", "what does it look like", "can you describe the view",
                 "what's the scene like"],
}


@pytest.mark.parametrize("topic,text", [(t, q) for t, qs in QUESTIONS.items() for q in qs])
def test_question_topics(topic, text):
    assert question_topic(text) == topic


@pytest.mark.parametrize("text", [
    "take off", "go to a height of two meters", "climb to an altitude of 3 meters", "set the speed to one meter per second",
    "could you climb to a height of three meters?", "can you take off", "change the operator",
    "switch off the face check", "fly forward two meters", "land", "hold still", "follow me", "stop following",
    "hello", "thanks", "how are you", "what's your name", "get airborne", "gain a metre of height",
    "increase the battery limit", "fly to the red box", "come back home", "",
    "could you kindly relax the speed limit a little for me",
])
def test_commands_and_chat_are_not_questions(text):
    assert question_topic(text) is None


def test_vision_replies_are_trimmed_for_speaking_and_fall_back_to_the_tracker():
    from mmchat_ros.core.answers import spoken_vision_reply, vision_fallback
    assert spoken_vision_reply("  A **person** walks\non grass.  ") == "A person walks on grass."
    long = "One. Two two. Three three three. Four."
    assert spoken_vision_reply(long) == "One. Two two. Three three three."
    assert spoken_vision_reply("word " * 200).endswith("...") and len(spoken_vision_reply("word " * 200)) < 330
    assert spoken_vision_reply("a tree") == "a tree."
    assert spoken_vision_reply("   ") == ""
    assert vision_fallback("timed out after 5 s", flying()) == (
        "I couldn't get a description from the vision model (timed out after 5 s). I see two people: one on the "
        "left, far away, and one in the centre, close; and a car on the right, far away.")
