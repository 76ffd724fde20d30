"""Requests to change what keeps the vehicle safe or who may command it: the patterns that refuse them (also
through recognition slips: "bipass the geo fents"), the protected things by name, and the compliance phrases
("stay under the ceiling") that name one without asking to change it.
"""
from __future__ import annotations

import re

from mmchat_ros.core.language.normalise import normalise
from mmchat_ros.core.language.numbers import is_number_word
from mmchat_ros.core.language.recognition_slips import VOCABULARY, phonetic_key

SAFETY_OBJECTS = (r"geo ?fence|fence|safety|safeties|limit|limits|ceiling|envelope|authori[sz]ation|"
                  r"authenticat\w*|auth|face (check|checks|recognition|id|detection|verification|scan)|facial \w+|"
                  r"operators?|pilot|obstacle (avoidance|detection)|collision \w+|low battery \w*|battery (check|"
                  r"failsafe|protection)|failsafe|fail safe|max(imum)? (speed|altitude|height)|speed cap|"
                  r"altitude cap|restrictions?|protections?|rules|guard ?rails?|watchdog|kill switch|"
                  r"who (i am|is flying|can fly)|identity|security|permissions?|access control|kill switch|safe (zone|area|"
                  r"height)|no fly zones?|boundary|boundaries|perimeter|border|(my|the|your) face|face scan|"
                  r"range limit|speed governor|authori[sz]\w*|authenticat\w*|battery warnings?|warnings?|geo ?fenc\w*|"
                  r"checks|obstacle \w+|sensors?|(allowed|permitted|flying|flight|operating|safe) (\w+ )?(area|zone|space|"
                  r"region|volume|radius|box)")
# Where the vehicle may not go ("past the fence", "higher than the ceiling").
_BOUNDS = r"(fence|geofence|geo fence|ceiling|safe (zone|area)|boundary|boundaries|limits?|perimeter|border|" \
          r"no fly zone|allowed (area|zone|height|altitude))"
_OTHERS = r"(anyone|everyone|anybody|everybody|others|strangers|someone else|somebody else|other people|" \
          r"the public|all|him|her|them|my \w+|\w+ else)"
SAFETY_PATTERNS = [
    r"\b(ignore|forget|disregard|override|drop|abandon)\b.*\b(rules|instructions|limits|safety|programming|"
    r"restrictions|training|guidelines|constraints|prompt)\b",
    r"\b(disable|turn off|switch off|shut off|shut down|remove|bypass|override|deactivate|raise|increase|lift|"
    r"change|extend|expand|loosen|relax|skip|suspend|get rid of|kill|unlock|lower|reduce|reset|edit|modify|"
    r"adjust|set|boost|double|stop|without|no longer need|dont need|do not need|dont use|ignore)\b.*\b("
    + SAFETY_OBJECTS + r")\b",
    r"\bauthori[sz]e\b", r"\b(grant|give) (me |him |her |them |everyone |anyone )?(access|control|authori[sz]ation|"
    r"permission|admin)\b", r"\bno (limits|rules|restrictions)\b", r"\bjailbreak\b", r"\b(developer|god|admin|"
    r"debug|unrestricted|maintenance) mode\b",
    r"\b(make|set|add|register|enroll|enrol|appoint) \w+( \w+)? (as )?(the |an |a )?(new )?(operator|pilot|admin)\b",
    r"\blet (anyone|everyone|everybody|anybody|him|her|them|others|strangers|my \w+) (control|fly|command|use)\b",
    r"\b(anyone|everyone|anybody|everybody) (can|may|should be able to) (control|fly|command)\b",
    r"\bstop (checking|verifying|recogni[sz]ing|scanning|watching) (who|my|me|faces|the face)\b",
    r"\b(you are|youre) (now )?(free|unrestricted|unlimited|in \w+ mode)\b",
    r"\bpretend\b.*\b(no|without)\b",
    r"\b(no|zero|without any) (safety|limits?|rules|restrictions|checks|geo ?fence|fence|ceiling|failsafes?)\b",
    r"\bunrestricted\b|\bunlimited\b|\bno holds barred\b",
    r"\b(dont|do not|never|stop) (land|return|come back|descend)\w*\b.*\b(battery|low|fence|geofence|limit|signal)",
    r"\b(rules?|warnings?|limits?|restrictions?|checks?|failsafes?|fence|geofence)\b.*\b(no longer|dont|do not|doesnt|"
    r"does not|never|wont|will not) (apply|matter|count|exist)",
    r"\b(switch|swap|replace|transfer|change|hand over|move) (the )?(operator|pilot|control|controls|admin)\b",
    r"\btake over\b.*\b(control|controls|operator|pilot)?",
    r"\b(turn|switch|shut) of\b.*\b(" + SAFETY_OBJECTS + r")\b",
    r"\b(fly|go|move|head|climb|rise|ascend|travel|cross)\b.*\b(past|beyond|outside|over|above|through|higher than|"
    r"out of|across|farther than|further than)\b.*\b" + _BOUNDS + r"\b",
    r"\b(allow|let|permit|enable)\b.*\b(fly|control|command|pilot|operate|steer)\b.*\b(you|it|the drone)\b",
    r"\b(accept|take|obey|follow|listen to|respond to)\b.*\b(commands|orders|instructions|control)\b.*\b" + _OTHERS,
    r"\btrust (everyone|everybody|anyone|anybody|all|strangers|him|her|them|\w+ else)\b",
    r"\b(no need|dont need|do not need|neednt|no longer need) (for|to)\b.*\b(check|verify|scan|recogni[sz]e|"
    r"authenticat\w*|identif\w*|face|faces|limits?|fence|geofence|safety)",
    r"\bwithout (the |a |any |my |your )?(face|authori|authenticat|identity|verification|check|limits?|geo ?fence|"
    r"fence|restrictions|rules|safety)",
    r"\b(unlimited|unrestricted|infinite|limitless|maximum|max) (range|speed|altitude|height|power|thrust)\b.*"
    r"\b(mode|on|unlock|enable)?",
    r"\bunlock\b",
    r"\b(switch|turn|shut|take|knock|power)\b.*\b(" + SAFETY_OBJECTS + r")\b.*\b(off|down|out)\b",
    # Handing over authority: "give dave control", "hand the controls to my friend", "treat eve as the pilot".
    r"\b(give|grant|hand|pass|transfer|share|lend|assign)\b.*\b(control|controls|access|permission|permissions|"
    r"rights|authority|command|privileges|the keys)\b",
    r"\b(accept|recogni[sz]e|treat|consider|trust|register|enroll|enrol|add|make)\b.*\bas (the |an |a |my )?"
    r"(new |second |another )?(operator|pilot|admin|owner|user|master|controller)\b",
    r"\b(allow|let|permit|enable)\b (?!me\b|us\b)\w+( \w+)? (to )?(fly|control|command|pilot|operate|steer|use|"
    r"take over)\b",
    r"\b(new|another|different|second) (operator|pilot|admin|owner)\b",
    r"\b(operator|pilot|admin|owner) (is|should be|will be) (now )?(\w+)\b(?<!\bme)",
    r"\b(dont|do not|stop|never) (verify|check|scan|recogni[sz]e|authenticat\w*|identify|look at) (my|me|faces?|"
    r"the face|who)\b",
]


# The words safety requests are made of, for recognising them through recognition slips ("bipass", "geo fents").
SAFETY_WORDS = ("bypass", "disable", "override", "deactivate", "authentication", "authorisation", "authorization",
                "authorise", "authorize", "geofence", "fence", "ceiling", "operator", "pilot", "failsafe", "unlock",
                "unrestricted", "unlimited", "restrictions", "safety", "limits", "identity", "verify", "permission")


def refusal_for(text: str) -> str:
    """A reason to refuse when the command asks to change safety limits or authorisation (or to drop rules).
    Checked on the words as heard and with unknown words read as the safety word they sound like."""
    tokens = [t for t in normalise(text) if t not in (",", ".", ";")]
    heard = [" ".join(tokens), " ".join(_safety_sound_alikes(tokens))]
    for pattern in SAFETY_PATTERNS:
        if any(re.search(pattern, words) for words in heard):
            return SAFETY_REFUSAL
    return ""


def _safety_sound_alikes(tokens: list[str]) -> list[str]:
    out = []
    for token in tokens:
        if token in VOCABULARY or is_number_word(token) or len(token) < 4:
            out.append(token)
            continue
        key = phonetic_key(token)
        out.append(next((w for w in SAFETY_WORDS if phonetic_key(w) == key), token))
    return out


# What keeps the vehicle safe or decides who commands it, by name: the safety patterns' objects and the domain's
# other words for them (a request that names one and is no plain command is refused, core/understanding.py).
PROTECTED_THINGS = SAFETY_OBJECTS + r"|limiters?|liveness|fail ?safes?|battery|edge|speed limits?|orders|admin|" \
    r"authori[sz]ed|allowed"
# Saying the vehicle should keep within a protected thing is compliance, not a request to change it.
_COMPLIANCE = re.compile(r"\b((stay|staying|keep|keeping|remain|remaining)( well)? |(that is|thats|which is|its)"
                         r"( well)? )?(under|below|beneath|inside|within|in) (the |your |my )?(" + PROTECTED_THINGS
                         + r")\b|\b(for|because of) (your |my |our )?safety\b")


def without_compliance(text: str) -> str:
    """``text`` with its "stay under the ceiling" / "inside the limits" phrases taken out (normalised words)."""
    words = " ".join(t for t in normalise(text))
    return re.sub(r"\s+", " ", _COMPLIANCE.sub(" ", words)).strip(" ,")


def names_protected_thing(text: str) -> str:
    """The protected thing (geofence, ceiling, limits, failsafe, face check, operator, ...) the text names outside
    a compliance phrase, or ""."""
    words = without_compliance(text).replace(",", " ").replace(".", " ").replace(";", " ")
    found = re.search(r"\b(" + PROTECTED_THINGS + r")\b", words)
    return found.group(0) if found else ""


SAFETY_REFUSAL = ("I can't change safety limits, the geofence or who is authorised, and I don't ignore my rules; "
                  "that has to be done by an engineer in the configuration")
