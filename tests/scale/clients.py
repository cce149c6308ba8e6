"""Clients of the replica set: each from an address of its own in 127.0.0.0/8, so that what a
replica sees as the client is known, and told apart from HAProxy's address."""

from __future__ import annotations

import secrets

import httpx

TIMEOUT = 30.0


def client_address() -> str:
    """A loopback address no other client of this run uses (127.0.0.x are left to servers)."""
    a, b, c = (secrets.randbelow(200) + 20, secrets.randbelow(250) + 1, secrets.randbelow(250) + 1)
    return f"127.{a}.{b}.{c}"


def client(base_url: str, address: str | None = None) -> httpx.Client:
    """An HTTP client whose connections come from `address` (a fresh one by default)."""
    transport = httpx.HTTPTransport(local_address=address or client_address())
    return httpx.Client(base_url=base_url, transport=transport, timeout=TIMEOUT)
