"""The first super_admin: from `cerberus admin create-superuser` or from the environment at start.

CERBERUS_ADMIN_EMAIL / CERBERUS_ADMIN_PASSWORD create one only while no super_admin exists,
so the variables can stay set without resetting a password someone has since changed.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.auth.roles import Role
from cerberus.errors import CerberusError, Conflict, Unprocessable
from cerberus.settings import Settings
from cerberus.tenancy.models import User

logger = logging.getLogger("cerberus.auth")


async def create_superuser(session: AsyncSession, email: str, password: str) -> User:
    """A new super_admin; Unprocessable for a bad email or password, Conflict if taken."""
    # Imported here: a serving process checks that a super_admin exists at every start, but
    # creates one once, and these two cost ~1.5 MiB of its memory for the rest of its life.
    from email_validator import EmailNotValidError, validate_email

    from cerberus.auth.passwords import check_password_strength, hash_password_in_thread

    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Unprocessable(f"email: {exc}") from None
    try:
        check_password_strength(password)
    except ValueError as exc:
        raise Unprocessable(f"password: {exc}") from None
    if await session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict(f"a user with email {email} already exists")
    user = User(
        organisation_id=None,
        email=email,
        password_hash=await hash_password_in_thread(password),
        role=Role.SUPER_ADMIN,
    )
    session.add(user)
    await session.flush()
    return user


async def superuser_exists(session: AsyncSession) -> bool:
    found = await session.scalar(select(User.id).where(User.role == Role.SUPER_ADMIN).limit(1))
    return found is not None


async def bootstrap_superuser(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> bool:
    """Create the super_admin named by the environment if none exists; True if created."""
    email, password = settings.CERBERUS_ADMIN_EMAIL, settings.CERBERUS_ADMIN_PASSWORD
    if not email or password is None:
        return False
    async with sessionmaker() as session:
        if await superuser_exists(session):
            return False
        try:
            await create_superuser(session, email, password.get_secret_value())
            await session.commit()
        except IntegrityError:
            # Another instance starting at the same moment created it first.
            return False
        except CerberusError as exc:
            logger.error("CERBERUS_ADMIN_EMAIL: no super_admin created: %s", exc.detail)
            return False
    logger.info("created the first super_admin from CERBERUS_ADMIN_EMAIL")
    return True


async def create_superuser_in(settings: Settings, email: str, password: str) -> User:
    """For the CLI: migrate if configured to, then create and commit one super_admin."""
    from cerberus.db import create_engine, create_sessionmaker
    from cerberus.migrate import upgrade

    if settings.RUN_MIGRATIONS_ON_STARTUP:
        await upgrade(settings)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await create_superuser(session, email, password)
            await session.commit()
            return user
    finally:
        await engine.dispose()
