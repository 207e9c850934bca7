"""Logging in, refreshing, and who the tokens say the caller is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.app import CerberusApp, create_app
from cerberus.auth import passwords
from cerberus.settings import Settings
from cerberus.tenancy.models import User
from tests.conftest import TEST_SECRET_KEY, Backend
from tests.factories import DEFAULT_PASSWORD, create_organisation, create_user
from tests.holding import Held, health_while_held

API = "/control-plane/api/v1"


async def test_login_answers_a_bearer_pair_with_the_documented_claims(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    organisation = await create_organisation(session)
    user = await create_user(session, organisation, role="org_viewer")

    response = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    key = settings.SECRET_KEY.get_secret_value()
    access = jwt.decode(body["access_token"], key, algorithms=["HS256"])
    refresh = jwt.decode(body["refresh_token"], key, algorithms=["HS256"])
    assert access["sub"] == user.id
    assert access["org"] == organisation.id
    assert access["role"] == "org_viewer"
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert access["jti"] != refresh["jti"]
    assert access["exp"] - access["iat"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert refresh["exp"] - refresh["iat"] == settings.REFRESH_TOKEN_EXPIRE_DAYS * 86400


async def test_a_login_does_not_hold_the_requests_of_others(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A password check is 0.3-0.7 s of bcrypt: on the event loop, every login (and every
    # failed one: a flood of them) held each proxied call of the process for that long.
    # Here the check is held until /health has been answered.
    user = await create_user(session, await create_organisation(session))
    held = Held(bcrypt.checkpw)
    monkeypatch.setattr(bcrypt, "checkpw", held)
    login = client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    health, answer = await health_while_held(client, held, login)

    assert health.status_code == 200
    assert held.waited == [True]
    assert answer.status_code == 200, answer.text


ADMIN = {"email": "root@example.com", "password": "long-enough-1"}


@asynccontextmanager
async def _admin_app_with_held_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[CerberusApp, Held, httpx.AsyncClient]]:
    """An app of its own (real sessions, one per request, as served) with a super_admin,
    whose first password check is held."""
    admin = {"CERBERUS_ADMIN_EMAIL": ADMIN["email"], "CERBERUS_ADMIN_PASSWORD": ADMIN["password"]}
    settings = Settings(APP_ENV="test", DATA_DIR=tmp_path, SECRET_KEY=TEST_SECRET_KEY, **admin)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        held = Held(bcrypt.checkpw)
        monkeypatch.setattr(bcrypt, "checkpw", held)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield app, held, http


async def test_a_login_waiting_for_its_password_check_holds_no_database_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Logins queue for the password thread; each holding a connection meanwhile, a flood of
    # them took the whole pool from the proxy's key lookups and the audit writer.
    async with _admin_app_with_held_check(tmp_path, monkeypatch) as (app, held, http):
        login = asyncio.ensure_future(http.post(f"{API}/auth/login", json=ADMIN))
        assert await asyncio.to_thread(held.entered.wait, 5)
        in_use = app.state.engine.pool.checkedout()
        held.released.set()
        answer = await login
    assert in_use == 0
    assert answer.status_code == 200, answer.text


async def test_a_login_finding_the_password_queue_full_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One thread checks passwords: queued without bound, a flood of logins (failed ones need
    # no account) made every later login, an admin's included, wait for all of them.
    monkeypatch.setattr(passwords, "MAX_QUEUED_CHECKS", 2)
    async with _admin_app_with_held_check(tmp_path, monkeypatch) as (_, held, http):
        wrong = {"email": "someone@example.com", "password": "a-guess-1"}
        first = asyncio.ensure_future(http.post(f"{API}/auth/login", json=ADMIN))
        assert await asyncio.to_thread(held.entered.wait, 5)
        second = asyncio.ensure_future(http.post(f"{API}/auth/login", json=wrong))
        for _ in range(500):  # until the second check is queued behind the held one
            if passwords._queued == 2:
                break
            await asyncio.sleep(0.01)
        refused = await http.post(f"{API}/auth/login", json=ADMIN)
        held.released.set()
        answers = [await first, await second]
        after = await http.post(f"{API}/auth/login", json=ADMIN)
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {"detail": "too many logins in progress; try again in 1 second"}
    assert [answer.status_code for answer in answers] == [200, 401]
    assert passwords._queued == 0
    assert after.status_code == 200, after.text


async def test_guesses_sent_together_cannot_outrun_the_lock(tmp_path: Path) -> None:
    # Every guess passed the first look at the lock; checked one at a time, the wrong ones
    # locked the account before the right one's check ended, and it still got tokens.
    admin = {"CERBERUS_ADMIN_EMAIL": ADMIN["email"], "CERBERUS_ADMIN_PASSWORD": ADMIN["password"]}
    settings = Settings(
        APP_ENV="test",
        DATA_DIR=tmp_path,
        SECRET_KEY=TEST_SECRET_KEY,
        LOGIN_MAX_FAILURES=3,
        LOGIN_LOCKOUT_SECONDS=120,
        **admin,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            wrong = [{**ADMIN, "password": f"wrong-guess-{n}"} for n in range(3)]
            guesses = [asyncio.ensure_future(http.post(f"{API}/auth/login", json=w)) for w in wrong]
            for _ in range(500):  # until all three wait for the password thread
                if passwords._queued == 3:
                    break
                await asyncio.sleep(0.01)
            right = await http.post(f"{API}/auth/login", json=ADMIN)
            answers = [await guess for guess in guesses]
    # The wrong ones end in any order; the last of them to fail locks the account.
    assert sorted(answer.status_code for answer in answers) == [401, 401, 429]
    assert right.status_code == 429, right.text


async def test_login_is_case_insensitive_on_email(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))

    response = await client.post(
        f"{API}/auth/login", json={"email": user.email.upper(), "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200


async def test_wrong_password_and_unknown_email_answer_the_same_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))

    wrong = await client.post(f"{API}/auth/login", json={"email": user.email, "password": "nope"})
    unknown = await client.post(
        f"{API}/auth/login", json={"email": "nobody@example.com", "password": DEFAULT_PASSWORD}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid email or password"}


async def test_inactive_user_cannot_log_in(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session), is_active=False)

    response = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 401


async def test_me_answers_the_user_behind_the_access_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
) -> None:
    user = await create_user(session, await create_organisation(session))

    response = await client.get(f"{API}/auth/me", headers=headers_for(user))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.id
    assert body["email"] == user.email
    assert "password_hash" not in body


async def test_refresh_rotates_and_a_used_refresh_token_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))
    login = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    first = login.json()["refresh_token"]

    rotated = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})
    again = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    reused = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})

    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first
    assert again.status_code == 200
    assert reused.status_code == 401
    me = await client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
    )
    assert me.json()["id"] == user.id


async def test_a_used_refresh_token_presented_again_ends_its_login_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # A thief who copied a refresh token and refreshed with it first kept the login for as
    # long as they kept refreshing: the owner's next refresh was refused, the thief's chain
    # went on. Now the second use ends the chain, whoever holds it (RFC 9700 4.14.2).
    user = await create_user(session, await create_organisation(session))
    credentials = {"email": user.email, "password": DEFAULT_PASSWORD}
    copied = (await client.post(f"{API}/auth/login", json=credentials)).json()["refresh_token"]
    elsewhere = (await client.post(f"{API}/auth/login", json=credentials)).json()
    thief = await client.post(f"{API}/auth/refresh", json={"refresh_token": copied})
    thief_next = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": thief.json()["refresh_token"]}
    )
    assert (thief.status_code, thief_next.status_code) == (200, 200)

    owner = await client.post(f"{API}/auth/refresh", json={"refresh_token": copied})
    assert owner.status_code == 401
    chain = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": thief_next.json()["refresh_token"]}
    )
    assert chain.status_code == 401
    # The account's other login goes on.
    other = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}
    )
    assert other.status_code == 200


async def test_a_logout_ends_its_refresh_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))
    login = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    token = {"refresh_token": login.json()["refresh_token"]}

    first = await client.post(f"{API}/auth/logout", json=token)
    again = await client.post(f"{API}/auth/logout", json=token)
    refreshed = await client.post(f"{API}/auth/refresh", json=token)

    assert (first.status_code, again.status_code) == (204, 204)
    assert refreshed.status_code == 401
    forged = await client.post(f"{API}/auth/logout", json={"refresh_token": "not-a-token"})
    assert forged.status_code == 401


async def test_a_password_change_ends_every_refresh_token_of_the_account(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Callable[[User], dict[str, str]]
) -> None:
    # A thief who took a refresh token (or used one first) kept refreshing for ever: the
    # owner's remedy, a new password, left the stolen chain working.
    user = await create_user(session, await create_organisation(session))
    credentials = {"email": user.email, "password": DEFAULT_PASSWORD}
    stolen = (await client.post(f"{API}/auth/login", json=credentials)).json()["refresh_token"]
    changed = await client.patch(
        f"{API}/users/{user.id}", headers=headers_for(user), json={"password": "brand-new-pw-1"}
    )
    assert changed.status_code == 200
    refreshed = await client.post(f"{API}/auth/refresh", json={"refresh_token": stolen})
    assert refreshed.status_code == 401
    new = {"email": user.email, "password": "brand-new-pw-1"}
    fresh = (await client.post(f"{API}/auth/login", json=new)).json()["refresh_token"]
    assert (await client.post(f"{API}/auth/refresh", json={"refresh_token": fresh})).is_success


async def test_a_nul_in_a_login_or_a_path_is_a_4xx_not_a_500(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
    backend: Backend,
) -> None:
    # PostgreSQL's text refuses U+0000: its error was a 500 (before any login, too), logged
    # with the statement's parameters.
    answer = await client.post(
        f"{API}/auth/login", json={"email": "ana\u0000@corp.example", "password": "a-password"}
    )
    assert answer.status_code == (422 if backend.name == "postgres" else 401)
    root = await create_user(session, None, role="super_admin")
    unknown = await client.get(f"{API}/organisations/a%00b", headers=headers_for(root))
    assert unknown.status_code == (422 if backend.name == "postgres" else 404)
