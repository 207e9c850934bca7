"""Every way a bad bearer token can arrive is refused with 401 and a Bearer challenge."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.auth.tokens import issue
from cerberus.settings import Settings
from cerberus.tenancy.models import User
from tests.factories import create_organisation, create_user

ME = "/control-plane/api/v1/auth/me"


def _claims(user: User, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user.id,
        "org": user.organisation_id,
        "role": user.role,
        "type": "access",
        "jti": "j1",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_tokens(user: User, settings: Settings) -> dict[str, str]:
    key = settings.SECRET_KEY.get_secret_value()
    good = jwt.encode(_claims(user), key, algorithm="HS256")
    header, _payload, signature = good.split(".")
    forged_payload = _b64(json.dumps(_claims(user, role="super_admin")).encode())
    return {
        "expired": jwt.encode(
            _claims(user, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            key,
            algorithm="HS256",
        ),
        "tampered": f"{header}.{forged_payload}.{signature}",
        "alg_none": jwt.encode(_claims(user), None, algorithm="none"),
        "wrong_key": jwt.encode(_claims(user), "another-secret-key-0123456789abcdef", "HS256"),
        "refresh_as_access": issue(user, settings, "refresh").token,
        "missing_jti": jwt.encode(
            {k: v for k, v in _claims(user).items() if k != "jti"}, key, "HS256"
        ),
        "unknown_user": jwt.encode(_claims(user, sub="no-such-user"), key, "HS256"),
        "garbage": "not-a-jwt",
        "nested_header": f"{_b64(b'[' * 5000)}.{_payload}.{signature}",
    }


BAD_TOKEN_CASES = [
    "expired",
    "tampered",
    "alg_none",
    "wrong_key",
    "refresh_as_access",
    "missing_jti",
    "unknown_user",
    "garbage",
    "nested_header",
]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_bad_token_is_refused_with_401_and_a_bearer_challenge(
    case: str, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session, await create_organisation(session))
    token = _bad_tokens(user, settings)[case]

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}]
)
async def test_missing_or_non_bearer_credentials_are_401(
    headers: dict[str, str], client: httpx.AsyncClient
) -> None:
    response = await client.get(ME, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_access_token_of_a_deactivated_user_stops_working(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
) -> None:
    user = await create_user(session, await create_organisation(session))
    headers = headers_for(user)
    assert (await client.get(ME, headers=headers)).status_code == 200

    user.is_active = False
    await session.flush()

    assert (await client.get(ME, headers=headers)).status_code == 401


async def test_users_of_a_deactivated_organisation_are_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
) -> None:
    organisation = await create_organisation(session)
    user = await create_user(session, organisation)
    organisation.is_active = False
    await session.flush()

    assert (await client.get(ME, headers=headers_for(user))).status_code == 401


async def test_access_token_is_not_accepted_as_a_refresh_token(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session, await create_organisation(session))
    access = issue(user, settings, "access").token

    response = await client.post(
        "/control-plane/api/v1/auth/refresh", json={"refresh_token": access}
    )

    assert response.status_code == 401


def test_a_process_that_only_proxies_never_loads_pyjwt() -> None:
    # PyJWT imports `cryptography` (10.5 MiB resident): it loads with the first token instead.
    code = "import sys, cerberus.app, cerberus.cli; print('jwt' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
