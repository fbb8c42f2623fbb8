"""The authenticator: turns a request's credentials into a :class:`Principal`.

Accepted credentials: ``Authorization: Bearer <access JWT>``, ``X-Api-Key: <key>``, or an API
key as the bearer token. The route wrapper (``laserd.api.routing``) calls
:meth:`Authenticator.authenticate` for every route above ``public``; the WebSocket's
first-message auth calls :meth:`Authenticator.principal_from_token`.
"""

from __future__ import annotations

from laserd import errors
from laserd.auth.apikeys import ApiKeys
from laserd.auth.principal import Principal
from laserd.auth.sessions import Sessions
from laserd.auth.tokens import API_KEY_PREFIX


class Authenticator:
    def __init__(self, sessions: Sessions, api_keys: ApiKeys) -> None:
        self._sessions = sessions
        self._api_keys = api_keys

    async def authenticate(self, *, api_key: str | None, authorization: str | None) -> Principal:
        """The caller of a request with these ``X-Api-Key`` and ``Authorization`` headers
        (None: absent), or 401 (``not_authenticated`` / ``token_expired`` /
        ``token_invalid``)."""
        if api_key is not None:
            return await self._api_keys.verify(api_key.strip())
        header = authorization
        if not header:
            raise errors.NotAuthenticated()
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise errors.TokenInvalid("Use 'Authorization: Bearer <token>'.")
        return await self.principal_from_token(credential.strip())

    async def principal_from_token(self, token: str) -> Principal:
        """An access JWT or an API key → the principal (raises 401 errors like above)."""
        if token.startswith(API_KEY_PREFIX):
            return await self._api_keys.verify(token)
        return await self._sessions.verify_access(token)
