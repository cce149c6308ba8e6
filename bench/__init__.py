"""The side-by-side benchmark of taskapi against two reference peers (`make bench`).

Modules: `seed` fills a database through the real migrations, `serve` runs each service under
uvicorn, `drive` loads them with wrk, `report` prints and records the figures, `cli` ties the
modes together. The peers live in `bench.peers`.
"""
