"""The deterministic command reader: an utterance → clauses → (intent, slots) → plan steps, without an LLM.

How it reads, in order (each stage general, none keyed to a particular sentence), and where each stage lives:
1. ``safety``: a request to change safety limits or authorisation is refused before anything else is read (change
   predicates on protected things, authority handed over, injection forms, from word classes with their
   inflections); the protected things by name, and what the command is read without — reasons ("because the
   battery is low") and compliance phrases ("stay under the ceiling") — are here too.
2. ``normalise``: lower case, punctuation to separators, "2m" → "2 m", "take-off" → "take off", signs kept on
   numbers, number homophones that speech recognition writes ("to", "too", "for", "won", "tree", "ate") read as
   numbers only where a unit follows them; ``FILLERS`` (politeness, articles) carry no meaning.
3. ``clauses``: hard separators ("then", "after that", "next", "finally") always split; soft ones ("and", commas,
   full stops) split only where the next piece can stand as a command by itself, so "move, left, one meter" and
   "a metre and a half" stay whole while "fly forward two meters and right one meter" is two moves.
4. ``clause_reader``: per clause, the intent comes from the verb lexicon (``lexicon``: the most specific match
   wins, "head back to where you started" is going home, not moving back), and the slots anywhere in the clause:
   directions, distances and angles with units (``numbers``), durations, speeds, hedges ("a bit" → a documented
   small amount), absolute heights ("to five metres"), coordinates, follow targets; numbers, units and directions
   that no step took are reported (``ParseResult.unused``: "climb that slide right a bit" has no use for "right").
5. ``parser`` (``parse_command``, the entry point): a clause with no intent gets a phonetic second look
   (``recognition_slips``: "this end" → descend, "write" → right; a filler and a slot word that sound like another
   slot are read as it first: "turn into clockwise" → anticlockwise) and, when the caller gives one, an intent
   classifier (sentence embeddings, see core/understanding.py) fills the intent; the slots still come from the
   words.
What cannot be read stays ``unparsed`` (for the LLM stage); what is understood but lacks a detail becomes a
clarifying question, never motion.

Each module imports only those listed before it: numbers; normalise and lexicon (numbers); clauses;
recognition_slips (the vocabulary of all of the above); safety (reads slips as safety words, quantities and verbs
from numbers and lexicon); clause_reader
(numbers, lexicon); parser (all). Names are imported from the module that defines them: this package re-exports
nothing.
"""
