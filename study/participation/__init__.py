"""A participant's life cycle in a study, apart from HTTP.

- `scoring`: which answer to a real-or-fake trial is right (the one definition).
- `rules`: pure rules: platforms and their ids, refusals, the completion redirect, exposure,
  the fields of an answer, the staircase step.
- `lifecycle`: start, next trial, answer, events, complete, as functions over a `Ledger`:
  where a participant's state lives.
- `ledgers`: the database's ledger (every step stored once) and the preview's (state in the
  researcher's signed cookie, nothing stored).

The JSON API (study/api) parses a request, calls one of these functions and serialises what it
returns.
"""
