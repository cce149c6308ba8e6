"""The Connexion internals src/web/ builds on are the ones it was written against.

taskapi.web subclasses and re-implements parts of Connexion 3.3 that are not its public API
(the list, and why, is in src/web/__init__.py's docstring). An upgrade that changes any of them
must be read against ours before it ships, so each is fingerprinted here by its source: a
changed fingerprint fails naming the Connexion object that moved and the taskapi code that
depends on it. After re-reading both, update the fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from connexion.middleware.abstract import ROUTING_CONTEXT

# Connexion object -> (fingerprint of its source, what in taskapi.web depends on it).
FENCE: dict[str, tuple[str, str]] = {
    "connexion.middleware.request_validation:RequestValidationOperation": (
        "da1cdca1e7fa69be",
        "planned._PlannedValidationOperation (re-implements __call__, reads _operation,"
        " _validator_map, strict_validation, security_query_params)",
    ),
    "connexion.middleware.request_validation:RequestValidationAPI": (
        "1c66b3c47e4a9972",
        "planned._PlannedValidationAPI (make_operation's arguments)",
    ),
    "connexion.apps.asynchronous:AsyncOperation": (
        "b8922d2613e3e145",
        "planned._PlannedOperation (replaces it: the decorator chain it builds per request)",
    ),
    "connexion.apps.asynchronous:AsyncApi": (
        "c1dd287a7f2d37b7",
        "planned._PlannedApi (make_operation)",
    ),
    "connexion.apps.asynchronous:AsyncASGIApp": (
        "320a610f5d38cf53",
        "planned._PlannedASGIApp (api_cls, add_api)",
    ),
    "connexion.apps.asynchronous:AsyncApp.__init__": (
        "9d75263c3e0bcc1c",
        "planned.PlannedAsyncApp.__init__ (skips it: sets _middleware_app, calls AbstractApp)",
    ),
    "connexion.decorators.parameter:AsyncParameterDecorator": (
        "583138b191d241e0",
        "planned._PlannedOperation.__call__ (does what its wrapper does, signature read once)",
    ),
    "connexion.decorators.parameter:prep_kwargs": (
        "540996f4a2d3322a",
        "planned._PlannedArguments (gives the same arguments: spec's, then the context's)",
    ),
    "connexion.decorators.parameter:get_arguments": (
        "ae08cf9736809fc5",
        "planned._PlannedArguments (path, query, then the body, as it collects them)",
    ),
    "connexion.decorators.parameter:_get_path_arguments": (
        "adccc996e0ace942",
        "planned._PlannedArguments (path values typed by _get_val_from_param)",
    ),
    "connexion.decorators.parameter:_query_args_helper": (
        "a1846cd56bb566e9",
        "planned._PlannedArguments (only parameters the handler takes, typed)",
    ),
    "connexion.decorators.parameter:_get_query_defaults": (
        "015cc451cb838385",
        "planned._query_default (where a default is found)",
    ),
    "connexion.decorators.parameter:_get_val_from_param": (
        "e505b0522196508b",
        "planned._PlannedArguments (calls it for every path and query value and default)",
    ),
    "connexion.decorators.parameter:_get_body_argument_json": (
        "7081f903210c8858",
        "planned._PlannedArguments._body (null and absent bodies)",
    ),
    "connexion.decorators.response:AsyncResponseDecorator": (
        "6876625ab57aa47e",
        "planned._PlannedOperation (wraps the handler with it)",
    ),
    "connexion.security:AbstractSecurityHandler._accepts_kwarg": (
        "50c0a19d5115da3f",
        "planned._PlannedSecurityOperation (asks it, at start-up, what the token function takes)",
    ),
    "connexion.middleware.security:SecurityOperation": (
        "6e0bd6cb6e546653",
        "planned._PlannedSecurityOperation (re-implements __call__ for one bearer requirement;"
        " reads security, security_schemes, security_handler_factory)",
    ),
    "connexion.middleware.security:SecurityAPI.make_operation": (
        "9f531ae16dfb270f",
        "planned._PlannedSecurityAPI (makes the planned operation the same way)",
    ),
    "connexion.security:SecurityHandlerFactory.parse_security_scheme": (
        "7292771b2fbf2628",
        "planned._PlannedSecurityOperation (finds the bearer handler as it does)",
    ),
    "connexion.security:BearerSecurityHandler._get_verify_func": (
        "83dd19eaaca1eb89",
        "planned._bearer_token (the scheme's check: not bearer is no token)",
    ),
    "connexion.security:AbstractSecurityHandler.get_auth_header_value": (
        "8ae9026fede43dda",
        "planned._bearer_token (the header's first value, split once, its errors)",
    ),
    "connexion.security:AbstractSecurityHandler._generic_check": (
        "3847e7a44e05ff13",
        "planned._PlannedSecurityOperation (a None answer is an invalid token)",
    ),
    "connexion.security:SecurityHandlerFactory.verify_security": (
        "f6c4a9207e2c68cc",
        "planned._PlannedSecurityOperation (no token, errors raised, the context it sets)",
    ),
    "connexion.middleware.swagger_ui:SwaggerUIMiddleware": (
        "e1b746adea49a615",
        "planned.SwaggerUIOnItsPaths (reads router.routes' mounts; bypasses __call__)",
    ),
    "connexion.validators.parameter:ParameterValidator": (
        "94476b7535287723",
        "validation.ContractParameterValidator (re-implements validate; reads parameters,"
        " uri_parser, strict_validation, security_query_params)",
    ),
    "connexion.validators.abstract:AbstractRequestBodyValidator": (
        "7b78003dfab8bfaf",
        "validation.ContractJSONBodyValidator (re-implements wrap_receive; reads _schema,"
        " _required, _insert_messages)",
    ),
    "connexion.validators.json:JSONRequestBodyValidator": (
        "b414730fe3032db5",
        "validation.ContractJSONBodyValidator (replaces it for */*json)",
    ),
    "connexion.lifecycle:ConnexionRequest": (
        "da68cd089b9a40b2",
        "planned._PlannedArguments (builds one, for path_params, query_params and get_body,"
        " only when request validation did not parse the request)",
    ),
    "connexion.security:AbstractSecurityHandler._resolve_func": (
        "7bef84f6856a29cb",
        "security.checking_access_tokens (overrides it: the check is given in code, not by path)",
    ),
    "connexion.resolver:Resolver": (
        "a36177f2dfe98703",
        "dependencies.HandlerResolver (overrides resolve, calls"
        " resolve_function_from_operation_id)",
    ),
    "connexion.context": (
        "fb43605e021a9498",
        "dependencies (reads context['token_info'], operation and scope in the handler's thread)",
    ),
    "connexion.middleware.context:ContextOperation": (
        "85050eca1041f77b",
        "dependencies (context['token_info'], operation) and tracing (reads"
        " scope['extensions']['connexion_context']['user'])",
    ),
    "connexion.middleware.routing:RoutingOperation": (
        "dd3bf3ee5f7e25f4",
        "edge, for the access record and the metrics (reads"
        " scope['extensions']['connexion_routing']['operation_id']); planned.PlannedRouting"
        " (gives the next layer the scope it gives: path_params, api_base_path, operation_id)",
    ),
    "connexion.middleware.routing:RoutingMiddleware": (
        "c257743d2f7a1d74",
        "planned.PlannedRouting (reads the mount add_api adds; falls back to __call__)",
    ),
    "connexion.middleware.routing:RoutingAPI": (
        "d7b93596519e256f",
        "planned.PlannedRouting (one route per operation and method, RoutingOperation apps)",
    ),
}

# Starlette's CORS, which taskapi.web.edge asks in place of running it as a layer, and its
# routing, which taskapi.web.planned.PlannedRouting matches as it does.
STARLETTE_FENCE: dict[str, tuple[str, str]] = {
    "starlette.routing:Router.app": (
        "df666eb124bb25d1",
        "planned.PlannedRouting (the first route that fully matches, in order, wins)",
    ),
    "starlette.routing:Mount.matches": (
        "67f514ddd82f89c9",
        "planned._PlannedRoute.match (the base path, then the rest from its slash)",
    ),
    "starlette.routing:Route.matches": (
        "9a47a1dfd02b78d1",
        "planned._PlannedRoute.match (path_regex, param_convertors, methods)",
    ),
    "starlette.middleware.cors:CORSMiddleware.__call__": (
        "9667ac2563da8bad",
        "edge._is_preflight (tells a preflight as it does)",
    ),
    "starlette.middleware.cors:CORSMiddleware.preflight_response": (
        "32492d2e4e340940",
        "edge.Edge._serve (answers preflights with it)",
    ),
    "starlette.middleware.cors:CORSMiddleware.send": (
        "f284c4029b633ade",
        "edge._Answer._start (adds CORS's headers with it)",
    ),
}

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def resolve(target: str) -> Any:
    module_name, _, attribute_path = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for attribute in filter(None, attribute_path.split(".")):
        found = inspect.getattr_static(found, attribute)
    return found.__func__ if isinstance(found, staticmethod | classmethod) else found


def fingerprint(target: str) -> str:
    # Whitespace-insensitive: a reformatted release does not count as a change.
    source = re.sub(r"\s+", " ", inspect.getsource(resolve(target))).strip()
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("target", "package", "fence"),
    [(target, "connexion", FENCE) for target in FENCE]
    + [(target, "starlette", STARLETTE_FENCE) for target in STARLETTE_FENCE],
)
def test_internal_is_as_taskapi_web_expects(
    target: str, package: str, fence: dict[str, tuple[str, str]]
) -> None:
    expected, dependant = fence[target]

    assert fingerprint(target) == expected, (
        f"{target} changed in {package} {version(package)}: re-read it against"
        f" taskapi.web.{dependant}, then update its fingerprint in {Path(__file__).name}"
    )


def test_the_routing_extension_keeps_its_name() -> None:
    assert ROUTING_CONTEXT == "connexion_routing"


def test_installed_connexion_is_the_pinned_minor_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(d for d in dependencies if d.startswith("connexion"))
    minor = pin.partition("==")[2].removesuffix(".*")

    assert minor == "3.3"
    assert version("connexion").startswith(f"{minor}.")
