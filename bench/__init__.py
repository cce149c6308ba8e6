"""The side-by-side benchmark of taskapi against two reference peers (`make bench`).

Modules: `seed` fills a database through the real migrations, `serve` runs each service under
uvicorn, `drive` loads them with wrk, `report` prints and records the figures, `worst` sends
each operation's costliest requests (also used by tests/ops/test_stalls.py), `cli` ties the
modes together. The peers live in `bench.peers`.
"""
