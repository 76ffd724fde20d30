"""Utterance texts for the ASR adapter's training data, written as the transcript Whisper should produce.

Built from the command language's vocabulary as the code defines it (core/language/lexicon.py, numbers.py, the
safety reader's protected things, docs/understanding.md), never from the evaluation corpus (tests/data/commands).
Numbers are written as spoken words ("two point five", "a hundred and forty"), and teens and tens of the same
digit (thirteen/thirty ... nineteen/ninety) are drawn equally often: those are tiny.en's costly confusions.
About 15 % of the texts are everyday English sentences not about drones (from a template generator below), so the
adapter does not learn to hear commands in everything.

``generate(n, seed)`` is deterministic for a seed.
"""
from __future__ import annotations

import random

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
TEENS = _ONES[13:20]
TENS_WORDS = _TENS[3:10]


def number_words(n: int, rng: random.Random | None = None) -> str:
    """0..999 as spoken: 42 → "forty-two", 140 → "a hundred and forty" / "one hundred forty" (either style,
    picked by ``rng``; without one the British "one hundred and forty")."""
    if not 0 <= n <= 999:
        raise ValueError(f"{n} is outside 0..999")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    hundreds, rest = divmod(n, 100)
    head = ("a" if hundreds == 1 and rng is not None and rng.random() < 0.3 else _ONES[hundreds]) + " hundred"
    if not rest:
        return head
    joiner = " " if rng is not None and rng.random() < 0.35 else " and "
    return head + joiner + number_words(rest)


# ---------------------------------------------------------------------------------------------- vocabulary
# Synonyms of each action, all phrases the lexicon (core/language/lexicon.py INTENT_PHRASES) reads as that action;
# the unit test checks that they are.
TAKEOFF = ("take off", "lift off", "launch", "get airborne", "get in the air", "start flying", "leave the ground",
           "get off the ground", "up you go")
LAND = ("land", "touch down", "set down", "put it down", "make a landing", "bring it down", "come down and land")
HOVER = ("hover", "hold", "hold position", "hold your position", "hold still", "stay put", "stay", "wait", "pause",
         "keep still", "stand by", "sit tight", "loiter")
STOP = ("stop", "halt", "freeze", "stop moving", "stop right there", "abort", "brake")
UNFOLLOW = ("stop following", "quit following", "stop tracking", "cancel follow", "stop following me",
            "don't follow me", "stop chasing me", "cancel the follow", "no more following")
HOME = ("return home", "go home", "come back home", "return to home", "return to launch", "fly home", "head home",
        "return to base", "come home", "come back", "go back home", "return to the starting point",
        "go back to where you took off")
FOLLOW = ("follow me", "track me", "come with me", "follow the person on the left", "follow the person on the right",
          "follow that person", "follow the car", "keep up with me", "shadow me")
MOVE_VERBS = ("fly", "move", "go", "head", "travel", "slide", "shift", "drift", "strafe", "step", "inch", "glide")
HORIZONTAL = ("forward", "forwards", "ahead", "back", "backward", "backwards", "left", "right", "to the left",
              "to the right")
VERTICAL = ("up", "down", "upward", "downward", "higher", "lower")
DIRECTIONAL_VERBS = {"advance": "forward", "reverse": "back", "retreat": "back", "back up": "back",
                     "back off": "back", "climb": "up", "ascend": "up", "rise": "up", "gain": "up",
                     "descend": "down", "drop": "down", "lower": "down", "sink": "down", "come down": "down",
                     "go down": "down", "go higher": "up", "go lower": "down"}
TURN_VERBS = ("turn", "rotate", "yaw", "spin", "pivot", "swivel")
TURN_SIDES = ("left", "right", "clockwise", "anticlockwise", "counter-clockwise", "counterclockwise", "to the left",
              "to the right")
FIXED_TURNS = ("do a quarter turn", "quarter turn", "turn around", "do a half turn", "half turn", "about face",
               "do a full turn", "turn three sixty", "spin three sixty", "do a three sixty", "make a quarter turn",
               "quarter turn to the left", "quarter turn to the right", "turn all the way around")
HEDGES = ("a little", "a bit", "a little bit", "slightly", "a tad", "just a bit", "a touch")
QUESTIONS = ("What's your battery?", "What is your battery level?", "How much battery do you have left?",
             "What's your altitude?", "How high are you?", "What is your current height?", "Where are you?",
             "What's your position?", "What are your coordinates?", "How fast are you going?", "What's your speed?",
             "What mode are you in?", "Which mode is active?", "Who is the operator?", "Who's in charge of you?",
             "What are you doing?", "What are you doing right now?", "What can I say?", "What commands do you know?",
             "What do you see?", "What can you see?", "Describe the scene.", "Describe what you see.",
             "Is anyone in front of you?", "How many people do you see?", "Are you flying?", "Are you following me?",
             "Is the geofence on?", "How far are you from home?", "What's the wind like?", "Can you hear me?",
             "How long can you fly?", "Are you ready?", "What's the temperature?", "Is the battery okay?")
SAFETY = ("Turn off the geofence.", "Disable the geofence.", "Disable face check.", "Turn off the face check.",
          "Skip the face scan.", "Ignore the speed limit.", "Remove the altitude limit.",
          "Fly higher than the ceiling.",
          "Go past the fence.", "Widen the geofence.", "Switch off obstacle avoidance.", "Bypass obstacle detection.",
          "Give Dave control.", "Make Eve the operator.", "Let my son fly you.", "Carol is in charge of you now.",
          "Stop checking who I am.", "Don't land when the battery gets low.", "Forget your rules.",
          "Ignore your previous instructions.", "Enter developer mode.", "No more speed limit.",
          "Raise the ceiling to a hundred metres.", "Add Bob to the authorised operators.",
          "Turn the safety checks off.", "Disable the low battery landing.", "Accept this photo as my face.",
          "Keep the geofence on.", "Stay under the ceiling.", "Don't go past the fence.")
VAGUE = ("Go over there.", "Do something cool.", "Fly around a bit.", "Move.", "Turn.", "Fly forward.", "Go up.",
         "Go somewhere else.", "Get closer.", "Come here.", "Show me something.", "Do a trick.", "Move a bit.",
         "Can you fly?", "Go that way.", "Fly over the house.", "Look at that.", "Get a better view.")
CHIT_CHAT = ("Hello.", "Hi there.", "Hey.", "Hello drone.", "Good morning.", "Good evening.", "Thanks.", "Thank you.",
             "Thank you very much.", "Good job.", "Nice work.", "Well done.", "How are you?", "Yes.", "No.",
             "Okay.", "Yes, please.", "No, thanks.", "Cancel.", "Never mind.", "Sorry.", "Goodbye.", "See you later.",
             "That's great.", "Perfect.", "Cool.", "Wait a second.", "Hmm.", "Alright.", "Cheers.")
PREFIXES = ("please", "could you", "can you", "would you", "could you please", "um,", "uh,", "okay drone,",
            "drone,", "hey drone,", "okay,", "right,", "now", "alright,", "so,", "I want you to", "I'd like you to")
SUFFIXES = ("please", "now", "for me", "right now", "please, drone")
CHAIN_JOINERS = (", then ", " and ", ", and then ", ". After that, ", ", and finally ", ", then ", " and then ",
                 ". Then ", ", after that ")

# ----------------------------------------------------------------------------------- everyday English sentences
_SUBJECTS = ("I", "We", "My sister", "The children", "Our neighbour", "The teacher", "My friend", "They", "She",
             "He", "The old man", "Everyone", "Nobody", "The cat", "The dog", "Most people")
_PREDICATES = ("had breakfast early this morning", "went to the market on Saturday", "forgot the keys again",
               "likes to read before going to sleep", "planted tomatoes in the garden", "missed the last bus",
               "painted the kitchen yellow", "is learning to play the piano", "made soup for dinner",
               "walked along the river", "bought a new pair of shoes", "watched a film last night",
               "called the doctor about the appointment", "left the window open", "baked bread on Sunday",
               "fixed the bicycle in the shed", "wrote a long letter", "sat by the fire all evening",
               "visited the museum in town", "could not find the umbrella", "booked a table for eight",
               "was late for the meeting", "cleaned the car yesterday", "sang in the choir", "took the train north")
_FIXED_ENGLISH = ("The weather is lovely today.", "It might rain later this afternoon.", "Where did you put the milk?",
                  "Could you pass the salt?", "The meeting has been moved to Thursday.", "I think the shop closes "
                  "at six.", "Let's have lunch in the park.", "The library is closed on Mondays.", "Have you seen "
                  "my glasses?", "This coffee is too hot.", "The train leaves in ten minutes.", "Turn the music "
                  "down a little.", "Remember to water the plants.", "I can't believe it's already December.",
                  "The book was better than the film.", "What time does the match start?", "Dinner is almost "
                  "ready.", "My phone battery is nearly dead.", "The road to the village is closed.",
                  "Please close the door behind you.", "How was your holiday?", "We need more bread and eggs.",
                  "The baby is finally asleep.", "It's your turn to do the dishes.", "The garden looks wonderful "
                  "in spring.", "Who left the lights on?", "I'll call you back in an hour.", "The printer is out "
                  "of paper again.", "Let's take the long way home.", "She plays tennis every Wednesday.")
_TIMES = ("at seven o'clock", "on Tuesday", "next week", "in the morning", "after lunch", "before midnight",
          "in two days", "at half past three", "on the fifteenth", "last year")


def _everyday(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(_FIXED_ENGLISH)
    if kind < 0.85:
        sentence = f"{rng.choice(_SUBJECTS)} {rng.choice(_PREDICATES)}"
        return sentence + (f" {rng.choice(_TIMES)}" if rng.random() < 0.3 else "") + "."
    count = rng.randint(2, 90)
    thing = rng.choice(("people came to the party", "chairs are in the hall", "pages are left to read",
                        "minutes until the bus comes", "apples were in the box", "students passed the exam"))
    return f"{number_words(count).capitalize()} {thing}."


# ---------------------------------------------------------------------------------------------------- numbers
def confusable_number(rng: random.Random) -> int:
    """A teen or the tens of the same digit, equally often (13/30 ... 19/90)."""
    digit = rng.randint(3, 9)
    return digit + 10 if rng.random() < 0.5 else digit * 10


def _count(rng: random.Random) -> int:
    kind = rng.random()
    if kind < 0.45:
        return confusable_number(rng)
    if kind < 0.75:
        return rng.randint(1, 12)
    if kind < 0.9:
        return rng.randint(20, 99)
    return rng.randint(100, 400)


def _metres(rng: random.Random) -> str:
    unit = rng.choice(("metres", "meters"))
    singular = unit[:-1]
    kind = rng.random()
    if kind < 0.35:
        n = rng.randint(1, 10)
        return f"{number_words(n)} {singular if n == 1 else unit}"
    if kind < 0.55:
        return f"{number_words(rng.randint(0, 9))} point {number_words(rng.randint(1, 9))} {unit}"
    if kind < 0.65:
        return f"{number_words(rng.randint(1, 5))} and a half {unit}"
    if kind < 0.72:
        return rng.choice((f"a {singular} and a half", f"half a {singular}", f"a {singular}", f"one {singular}",
                           f"a quarter of a {singular}"))
    return f"{number_words(_count(rng), rng)} {unit}"


def length(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return _metres(rng)
    if kind < 0.8:
        n = _count(rng)
        unit = rng.choice(('centimetres', 'centimeters'))
        return f"{number_words(n, rng)} {unit[:-1] if n == 1 else unit}"
    n = _count(rng) if rng.random() < 0.5 else rng.randint(1, 10)
    return f"{number_words(n, rng)} {'foot' if n == 1 else 'feet'}"


def angle(rng: random.Random) -> str:
    n = rng.choice((confusable_number(rng), confusable_number(rng), rng.choice((45, 90, 180, 270, 360, 5, 10, 25)),
                    rng.randint(1, 359)))
    return f"{number_words(n, rng)} {'degree' if n == 1 else 'degrees'}"


# ---------------------------------------------------------------------------------------------------- clauses
def _move(rng: random.Random) -> str:
    if rng.random() < 0.3:
        verb = rng.choice(tuple(DIRECTIONAL_VERBS))
        amount = rng.choice((length(rng), length(rng), rng.choice(HEDGES), f"by {length(rng)}"))
        return f"{verb} {amount}"
    verb = rng.choice(MOVE_VERBS)
    direction = rng.choice(HORIZONTAL if rng.random() < 0.75 else VERTICAL)
    shape = rng.random()
    if shape < 0.6:
        return f"{verb} {direction} {length(rng)}"
    if shape < 0.8:
        return f"{verb} {length(rng)} {direction}"
    if shape < 0.95:
        return f"{verb} {direction} {rng.choice(HEDGES)}" if rng.random() < 0.5 else \
            f"{verb} {rng.choice(HEDGES)} {direction}"
    speed = rng.randint(1, 3)
    unit = rng.choice(("metre", "meter")) + ("" if speed == 1 else "s")
    return f"{verb} {direction} {length(rng)} at {number_words(speed)} {unit} per second"


def _turn(rng: random.Random) -> str:
    shape = rng.random()
    verb, side = rng.choice(TURN_VERBS), rng.choice(TURN_SIDES)
    if shape < 0.5:
        return f"{verb} {side} {angle(rng)}"
    if shape < 0.65:
        return f"{verb} {angle(rng)} {side}"
    if shape < 0.72:
        return f"{verb} {side} by {angle(rng)}"
    if shape < 0.8:
        return f"{verb} {side} {rng.choice(HEDGES)}"
    if shape < 0.87:
        return f"{verb} {side}"
    return rng.choice(FIXED_TURNS)


def _altitude(rng: random.Random) -> str:
    target = _metres(rng) if rng.random() < 0.7 else length(rng)
    return rng.choice((f"climb to {target}", f"descend to {target}", f"set altitude to {target}",
                       f"go to a height of {target}", f"fly at {target}", f"change altitude to {target}"))


def _goto(rng: random.Random) -> str:
    x, y, z = (number_words(rng.randint(0, 20)) for _ in range(3))
    if rng.random() < 0.2:
        x = "minus " + x
    return rng.choice((f"go to x {x} y {y} z {z}", f"fly to position {x}, {y}, {z}",
                       f"go to coordinates {x}, {y}, {z}", f"go to x {x}, y {y}, z {z}",
                       f"navigate to waypoint {x}, {y}, {z}"))


def _hover(rng: random.Random) -> str:
    word = rng.choice(HOVER + STOP)
    if rng.random() < 0.25:
        seconds = rng.choice((confusable_number(rng), rng.randint(2, 10)))
        return f"{rng.choice(('hover', 'hold', 'wait', 'stay'))} for {number_words(seconds)} seconds"
    return word


def _repeat(rng: random.Random) -> str:
    return f"{_move(rng)} {rng.choice(('twice', 'three times', 'four times', 'two times', 'five times'))}"


_CLAUSES = ((_move, 30), (_turn, 22), (lambda r: r.choice(TAKEOFF), 7), (lambda r: r.choice(LAND), 7),
            (_hover, 8), (lambda r: r.choice(FOLLOW), 4), (lambda r: r.choice(UNFOLLOW), 3),
            (lambda r: r.choice(HOME), 5), (_altitude, 5), (_goto, 4), (_repeat, 2))


def clause(rng: random.Random) -> str:
    makers, weights = zip(*_CLAUSES)
    return rng.choices(makers, weights)[0](rng)


def _sentence_case(text: str) -> str:
    text = text[0].upper() + text[1:]
    # a capital after a full stop inside a chain ("... two metres. After that, land.")
    parts = text.split(". ")
    return ". ".join(part[0].upper() + part[1:] if part else part for part in parts)


def command(rng: random.Random) -> str:
    clauses = [clause(rng) for _ in range(rng.choices((1, 2, 3, 4), (55, 30, 11, 4))[0])]
    text = clauses[0]
    for following in clauses[1:]:
        text += rng.choice(CHAIN_JOINERS) + following
    if rng.random() < 0.25:
        prefix = rng.choice(PREFIXES)
        text = f"{prefix} {text}"
        question = prefix in ("could you", "can you", "would you", "could you please") and ". " not in text
    else:
        question = False
    if rng.random() < 0.1:
        text = f"{text}, {rng.choice(SUFFIXES)}" if rng.random() < 0.6 else f"{text} {rng.choice(SUFFIXES)}"
    return _sentence_case(text) + ("?" if question else ".")


def utterance(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:   # 0.15 made an adapter that heard commands in unclear speech ("is anyone there" → "ascend one")
        return _everyday(rng)
    if kind < 0.33:
        return rng.choice(QUESTIONS)
    if kind < 0.39:
        return rng.choice(SAFETY)
    if kind < 0.43:
        return rng.choice(VAGUE)
    if kind < 0.48:
        return rng.choice(CHIT_CHAT)
    return command(rng)


def generate(n: int, seed: int) -> list[str]:
    """``n`` utterance texts, the same for the same seed."""
    rng = random.Random(seed)
    return [utterance(rng) for _ in range(n)]


if __name__ == "__main__":
    import sys
    for line in generate(int(sys.argv[1]) if len(sys.argv) > 1 else 40, int(sys.argv[2]) if len(sys.argv) > 2 else 0):
        print(line)
