"""How taskapi extends Connexion: the HTTP edge, built once from the spec.

Everything that turns Connexion's stock behaviour into ours lives here, in one place per concern:
problems (every error as RFC 9457 problem+json), validation (every failing field, in plain words),
request context (request ids, access logs, body limits), transactions (one unit of work per
request) and responses (explicit content types, paging envelopes).
"""
