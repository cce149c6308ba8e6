"""How taskapi extends Connexion: the HTTP edge, built once from the spec.

Everything that turns Connexion's stock behaviour into ours lives here, in one place per concern:
problems (every error as RFC 9457 problem+json), validation (every failing field, in plain words),
the edge (one layer around Connexion's: request ids, access logs, body limits, rate limits,
security and deprecation headers, the served spec, metrics), transactions (one unit of work per
request) and responses (explicit content types, paging envelopes).

What is built on Connexion 3.3's internals, and why (pyproject pins `connexion==3.3.*`;
tests/test_connexion_fence.py fingerprints each internal below and fails naming the one that
moved, so an upgrade is this checklist: re-read each changed one against ours):

- `planned._PlannedValidationOperation` / `_PlannedValidationAPI` /
  `PlannedRequestValidationMiddleware` (subclass `RequestValidationOperation` and its API, read
  its `_operation`, `_validator_map`, `strict_validation`, `security_query_params`): build each
  operation's URI parser, parameter validator, media-type table and body validators once, not
  per request; compare media types lower-cased with their charset.
- `planned._PlannedOperation`, `_PlannedApi`, `_PlannedASGIApp`, `PlannedAsyncApp` (replace
  `AsyncOperation`, override `AsyncApi.make_operation` and `AsyncASGIApp.api_cls`, and skip
  `AsyncApp.__init__` to set `_middleware_app` themselves): call each handler through
  `AsyncResponseDecorator` as Connexion's `AsyncParameterDecorator` would, with synchronous
  handlers on the app's own bounded threads (`HandlerThreads`) instead of anyio's.
- `planned._PlannedArguments` (re-implements `prep_kwargs` / `get_arguments`, calling its
  `_get_val_from_param`): the handler gets the arguments `prep_kwargs` would give it, built from
  the parameters and body validation parsed (no request object, no second parse), with the
  handler's signature, the parameters' definitions and defaults read once. Form bodies and
  object query parameters, which the spec does not use, stop the app from starting.
- `planned.PlannedSecurityMiddleware` (subclasses `SecurityMiddleware`, its API's
  `make_operation` and `SecurityOperation`, reading their `security`, `security_schemes` and
  `security_handler_factory`): an operation whose one requirement is a bearer token, checked
  by a function that takes the token alone, reads the Authorization header off the scope and
  calls the function directly, with the errors and the context of Connexion's own check
  (`BearerSecurityHandler`, `verify_security`); any other requirement takes the stock check.
  It asks `AbstractSecurityHandler._accepts_kwarg`, once, what the token function takes.
- `planned.SwaggerUIOnItsPaths` (subclasses `SwaggerUIMiddleware`, reads the layout of its
  `router`: one mount per API, one route per page): other requests skip the UI's router.
- `planned.PlannedRouting` (subclasses `RoutingMiddleware`, reads the routes its `add_api`
  mounts: Starlette `Route`s of `RoutingOperation`s, their `path_regex`, `param_convertors` and
  `methods`): a request a route fully matches goes to the next layer with the scope
  `RoutingOperation` would give it; everything else takes the stock router.
- `validation.ContractParameterValidator` and `ContractJSONBodyValidator` (subclass
  `ParameterValidator` and `AbstractRequestBodyValidator`, reading its `_schema`, `_required`
  and `_insert_messages`; the latter replaces `JSONRequestBodyValidator`): every failing field
  reported at once, bounded, in plain words; strict JSON; chunked bodies read.
- `security.checking_access_tokens` (overrides `AbstractSecurityHandler._resolve_func`): the
  bearer check is given in code, so the spec names no Python path and no environment swaps it.
- `dependencies.HandlerResolver` (subclasses `Resolver`, calls its
  `resolve_function_from_operation_id`): an operation's tag and operationId name its handler.
  `dependencies` also reads Connexion's context variables (`context["token_info"]`, `operation`,
  `scope`) in the handler's thread, to give handlers what they name and to find the operations
  that declare `Idempotency-Key`.
- `edge` asks Starlette's `CORSMiddleware` for its `preflight_response` and its `send` (the
  headers of other answers) instead of running it as one more layer, and tells a preflight as
  its `__call__` does (tests/test_connexion_fence.py fingerprints those three too).
- `edge` and `tracing` read `scope["extensions"]["connexion_routing"]["operation_id"]` (set by
  `RoutingOperation`) to name the route in access logs, metrics and spans; `tracing` reads the
  verified user from `scope["extensions"]["connexion_context"]` (which `ContextOperation` hands
  on).
"""
