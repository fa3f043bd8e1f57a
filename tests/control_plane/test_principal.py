"""Who may do what (control_plane/auth/principal.py): pure rules."""

from __future__ import annotations

import pytest

from control_plane.errors import NotFoundError, PermissionDeniedError
from control_plane.principal import ROLE_SCOPES, Principal, PrincipalKind, Role, Scope


def tenant_token(tenant: str, *scopes: Scope) -> Principal:
    return Principal(
        PrincipalKind.API_TOKEN, "t", token_tenant_id=tenant, token_scopes=frozenset(scopes)
    )


def user(**roles: Role) -> Principal:
    return Principal(PrincipalKind.USER, "u", roles=dict(roles))


PLATFORM_TOKEN = Principal(PrincipalKind.API_TOKEN, "p", platform_admin=True)
PLATFORM_USER = Principal(PrincipalKind.USER, "op", platform_admin=True)


@pytest.mark.parametrize("scope", list(Scope))
def test_another_tenant_is_not_found_never_forbidden(scope: Scope) -> None:
    for principal in (
        tenant_token("a", *Scope),
        user(a=Role.OWNER),
        Principal(PrincipalKind.API_TOKEN, "orphan", token_scopes=frozenset(Scope)),
    ):
        assert principal.scopes_for("b") is None
        with pytest.raises(NotFoundError):
            principal.require("b", scope)
        with pytest.raises(NotFoundError):
            principal.require_owner("b")


def test_tenant_tokens_hold_exactly_their_scopes() -> None:
    reader = tenant_token("a", Scope.READ)
    reader.require("a", Scope.READ)
    for scope in (Scope.WRITE, Scope.ADMIN):
        with pytest.raises(PermissionDeniedError):
            reader.require("a", scope)
    writer = tenant_token("a", Scope.WRITE)
    writer.require("a", Scope.WRITE)
    with pytest.raises(PermissionDeniedError):
        writer.require("a", Scope.READ)  # scopes do not imply each other
    admin = tenant_token("a", *Scope)
    for scope in Scope:
        admin.require("a", scope)
    with pytest.raises(PermissionDeniedError):
        admin.require_owner("a")  # a token is never an owner
    with pytest.raises(PermissionDeniedError):
        admin.require_platform_admin()
    assert admin.visible_tenant_ids() == ["a"]


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        (Role.VIEWER, {Scope.READ}),
        (Role.ADMIN, set(Scope)),
        (Role.OWNER, set(Scope)),
    ],
)
def test_roles_map_to_scopes(role: Role, granted: set[Scope]) -> None:
    assert ROLE_SCOPES[role] == granted
    principal = user(a=role)
    for scope in Scope:
        if scope in granted:
            principal.require("a", scope)
        else:
            with pytest.raises(PermissionDeniedError):
                principal.require("a", scope)


def test_only_owners_and_platform_operators_pass_the_owner_check() -> None:
    member = user(a=Role.ADMIN, b=Role.OWNER, c=Role.VIEWER)
    with pytest.raises(PermissionDeniedError):
        member.require_owner("a")
    with pytest.raises(PermissionDeniedError):
        member.require_owner("c")
    member.require_owner("b")
    assert sorted(member.visible_tenant_ids() or []) == ["a", "b", "c"]
    with pytest.raises(PermissionDeniedError):
        member.require_platform_admin()


@pytest.mark.parametrize("operator", [PLATFORM_TOKEN, PLATFORM_USER], ids=["token", "user"])
def test_platform_operators_see_and_may_do_everything(operator: Principal) -> None:
    for scope in Scope:
        operator.require("any-tenant", scope)
    operator.require_owner("any-tenant")
    operator.require_platform_admin()
    assert operator.visible_tenant_ids() is None
    assert operator.scopes_for("any-tenant") == frozenset(Scope)


def test_a_user_without_memberships_sees_nothing() -> None:
    nobody = user()
    assert nobody.visible_tenant_ids() == []
    with pytest.raises(NotFoundError):
        nobody.require("a", Scope.READ)
    assert Principal(PrincipalKind.API_TOKEN, "x").visible_tenant_ids() == []
