"""What the organisation, workspace and user routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from cerberus.auth.passwords import check_password_strength
from cerberus.field_errors import reject_null
from cerberus.json_storable import storable_json
from cerberus.tenancy.upstream_urls import check_upstream_url

Slug = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
        description="lower-case letters, digits and hyphens",
        examples=["acme"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Password = Annotated[str, AfterValidator(check_password_strength)]
FreeSettings = Annotated[dict[str, Any], AfterValidator(storable_json)]
UpstreamUrl = Annotated[
    str,
    Field(max_length=2048, examples=["https://mcp.internal.example.com/mcp"]),
    AfterValidator(check_upstream_url),
]
EnvironmentType = Literal["production", "staging", "development"]
# People created under an organisation; super_admins come from the CLI or the environment.
OrgRole = Literal["org_admin", "org_viewer"]


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug
    settings: FreeSettings = Field(default_factory=dict)
    admin_email: EmailStr | None = None
    admin_password: Password | None = None

    @model_validator(mode="after")
    def _admin_needs_both(self) -> OrganisationCreate:
        if (self.admin_email is None) != (self.admin_password is None):
            field = "admin_password" if self.admin_password is None else "admin_email"
            raise ValueError(f"{field} is required when creating the first org_admin")
        return self


class OrganisationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    slug: Slug | None = None
    settings: FreeSettings | None = None
    is_active: bool | None = None

    _not_null = field_validator("name", "slug", "settings", "is_active", mode="before")(reject_null)


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    slug: str
    settings: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class WorkspaceSettings(BaseModel):
    """Known keys are checked; others are kept as given."""

    model_config = ConfigDict(extra="allow")

    fail_mode: Literal["closed", "open"] = Field(
        default="closed", description="what the proxy does when policies cannot be evaluated"
    )
    request_timeout_seconds: float | None = Field(default=None, gt=0, le=600)

    @model_validator(mode="after")
    def _storable_extras(self) -> WorkspaceSettings:
        storable_json(self.model_extra or {})
        return self


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug
    environment_type: EnvironmentType = "development"
    mcp_server_url: UpstreamUrl
    settings: WorkspaceSettings = Field(default_factory=WorkspaceSettings)


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    slug: Slug | None = None
    environment_type: EnvironmentType | None = None
    mcp_server_url: UpstreamUrl | None = None
    settings: WorkspaceSettings | None = None
    is_active: bool | None = None

    _not_null = field_validator(
        "name", "slug", "environment_type", "mcp_server_url", "settings", "is_active", mode="before"
    )(reject_null)


class WorkspaceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    name: str
    slug: str
    environment_type: str
    mcp_server_url: str
    settings: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    role: OrgRole = "org_viewer"
    full_name: Name | None = None


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    password: Password | None = None
    role: OrgRole | None = None
    full_name: Name | None = None
    is_active: bool | None = None

    _not_null = field_validator("email", "password", "role", "is_active", mode="before")(
        reject_null
    )


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str | None
    email: str
    full_name: str | None
    role: str
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
