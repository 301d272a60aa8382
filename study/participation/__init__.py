"""A participant's life cycle in a study, apart from HTTP.

- `scoring`: which answer to a real-or-fake trial is right (the one definition).
- `rules`: pure rules: platforms and their ids, refusals, the completion redirect, exposure,
  the fields of an answer, the staircase step.
- `lifecycle`: next trial, answer, events, complete, as functions over a `Ledger`: where a
  participant's state lives.
- `database`: starting a stored participant, and the database's ledger (every answer stored
  once, study/response_store.py).
- `design`: design versions: the hash of a study's settings and stimulus set that each
  participant records at the start, whose stored settings keep serving that participant.
- `preview`: starting a researcher's preview, and its ledger (state in a plain dict that the
  API keeps in the signed session cookie; nothing stored).

The JSON API (study/api) parses a request, calls one of these functions and serialises what it
returns.
"""
