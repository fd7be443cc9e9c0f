"""Bearer tokens for the MCP server over HTTP: the tokens come from settings, never from logs."""

from __future__ import annotations

import hashlib
import hmac

from mcp.server.auth.provider import AccessToken
from pydantic import SecretStr


class StaticTokenVerifier:
    """Accepts exactly the configured tokens, compared in constant time.

    Note: the token a client showed is never logged or stored; an accepted one is known
    only by a short fingerprint (`client_id`).
    """

    def __init__(self, tokens: list[SecretStr]) -> None:
        self._tokens = [t.get_secret_value().encode() for t in tokens if t.get_secret_value()]

    async def verify_token(self, token: str) -> AccessToken | None:
        offered = token.encode()
        matched = False
        for known in self._tokens:  # every token compared, whatever matched first
            matched |= hmac.compare_digest(offered, known)
        if not matched:
            return None
        fingerprint = hashlib.sha256(offered).hexdigest()[:8]
        return AccessToken(token="", client_id=f"token-{fingerprint}", scopes=[])
