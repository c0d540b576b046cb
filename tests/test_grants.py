"""Grants and token verification: the rule for each role, and what a token must be."""

from __future__ import annotations

import jwt
import pytest

from tailhub.auth import Authenticator, TokenError, claims_of, looks_like_jwt, mint
from tailhub.grants import ADMIN, Grant, Role

SECRET = "unit-test-secret-0123456789abcdefghijkl"


class TestGrant:
    def test_roles(self) -> None:
        """Each role may do what docs/tokens.md says, in its scope only."""
        table = {
            "publisher": (True, True, False),
            "viewer": (True, False, False),
            "operator": (True, False, True),
        }
        for role, (read, publish, command) in table.items():
            grant = Grant.of(role, ["task-*"])
            assert (read, publish, command) == (
                grant.may_read("task-1"),
                grant.may_publish("task-1"),
                grant.may_command("task-1"),
            )
            assert (False, False, False) == (
                grant.may_read("other"),
                grant.may_publish("other"),
                grant.may_command("other"),
            )

    def test_admin_is_everything(self) -> None:
        """The shared token's grant covers every container and action."""
        assert (True, True, True) == (
            ADMIN.may_publish("x"),
            ADMIN.may_command("y"),
            ADMIN.may_read("z"),
        )
        assert Grant.of("admin", []).everything

    def test_exact_ids_and_patterns(self) -> None:
        """Containers are IDs or fnmatch patterns, matched case-sensitively."""
        grant = Grant.of("viewer", ["a", "b-?", "c-[12]"])
        covered = [c for c in ("a", "ab", "b-1", "b-12", "c-2", "c-3", "A") if grant.covers(c)]
        assert ["a", "b-1", "c-2"] == covered

    def test_bad_claims(self) -> None:
        """An unknown role, or no containers for a scoped role, is refused."""
        with pytest.raises(ValueError, match="role must be one of"):
            Grant.of("root", ["*"])
        with pytest.raises(ValueError, match="at least one container"):
            Grant.of(Role.VIEWER, [])


class TestAuthenticator:
    def test_shared_token_is_admin(self) -> None:
        """The shared token gives the admin grant."""
        assert Authenticator("shared", secret=SECRET).grant("shared") is ADMIN

    def test_minted_token_round_trips(self) -> None:
        """A token minted with the secret gives its claims back."""
        token, claims = mint(SECRET, "publisher", ["task-1"], 60, sub="ci")
        assert looks_like_jwt(token)
        grant = Authenticator("shared", secret=SECRET).grant(token)
        assert (Role.PUBLISHER, ("task-1",), "ci", claims["jti"]) == (
            grant.role,
            grant.containers,
            grant.sub,
            grant.jti,
        )
        assert claims == claims_of(token)

    @pytest.mark.parametrize(
        ("claims", "words"),
        [
            ({"role": "viewer", "containers": ["*"], "exp": 1}, "expired"),
            ({"role": "viewer", "containers": ["*"]}, "invalid token"),
            ({"containers": ["*"], "exp": 2**40}, "invalid token"),
            ({"role": "viewer", "containers": "*", "exp": 2**40, "jti": "gone"}, "revoked"),
            ({"role": "viewer", "containers": [3], "exp": 2**40}, "list of IDs"),
        ],
        ids=["expired", "no-exp", "no-role", "revoked", "bad-containers"],
    )
    def test_refusals(self, claims: dict[str, object], words: str) -> None:
        """Expired, incomplete and revoked tokens are refused with words that say why."""
        auth = Authenticator("shared", secret=SECRET)
        auth.revoke(["gone"])
        with pytest.raises(TokenError, match=words):
            auth.grant(jwt.encode(claims, SECRET, algorithm="HS256"))

    def test_expiry_at_now(self) -> None:
        """A token is refused from its exp on."""
        token, claims = mint(SECRET, "viewer", ["*"], 60)
        auth = Authenticator("shared", secret=SECRET)
        assert auth.grant(token, now=claims["exp"] - 1).role is Role.VIEWER
        with pytest.raises(TokenError, match="expired"):
            auth.grant(token, now=claims["exp"])

    def test_short_secret(self) -> None:
        """A secret under 32 characters is refused."""
        with pytest.raises(ValueError, match="at least 32"):
            Authenticator("shared", secret="short")
        with pytest.raises(ValueError, match="at least 32"):
            mint("short", "viewer", ["*"], 60)

    def test_not_a_jwt(self) -> None:
        """A wrong token without a JWT's shape is just invalid."""
        with pytest.raises(TokenError, match="invalid token"):
            Authenticator("shared", secret=SECRET).grant("wrong")
