"""Tokens verified once are remembered, never past their expiry, and never when invalid."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from score_chassis.tokens import ALGORITHM, InvalidToken, TokenAuthority

SECRET = "a-secret-for-these-tests-only-0123456789"


def test_a_token_is_decoded_once_while_it_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("staff")
    decoded = 0
    decode = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal decoded
        decoded += 1
        return decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    first, second = authority.verify(token), authority.verify(token)
    assert first == second
    assert first.role == "staff"
    assert decoded == 1


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("staff", ttl=dt.timedelta(seconds=2))
    principal = authority.verify(token)
    # The same token, seen again after its expiry (the remembered principal, aged).
    authority._verified[token] = principal.model_copy(
        update={"expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
    )
    with pytest.raises(InvalidToken, match="expired"):
        authority.verify(token)
    assert token not in authority._verified


def test_an_invalid_token_is_not_remembered() -> None:
    authority = TokenAuthority(SECRET)
    forged = jwt.encode(
        {"iss": "score-cases", "sub": "x", "jti": "j", "exp": 4102444800, "role": "admin"},
        "another-secret-another-secret-0123456789",
        algorithm=ALGORITHM,
    )
    for _ in range(2):
        with pytest.raises(InvalidToken):
            authority.verify(forged)
    assert not authority._verified
