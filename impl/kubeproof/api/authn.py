"""Authentication: who sent a request (the pure part; TLS is the HTTP layer's).

Theory of operation
-------------------
`Authenticator.authenticate(headers, client_cert_subject)` looks at, in
kube-apiserver's order, the TLS client certificate (its subject as
``(CN, (O, ...))``, which the TLS layer has already verified against the
client CA: CN is the user, each O a group), then the ``Authorization``
header: ``Bearer TOKEN`` against the static token file, ``Basic
base64(user:password)`` against the password file.  Both files are
kube-apiserver's CSV format::

    token,user,uid,"group1,group2"          (--token-auth-file)
    password,user,uid,"group1,group2"       (the old --basic-auth-file)

It returns the `UserInfo` (every authenticated user also gets
``system:authenticated``), None when the request carries no credentials at
all (the server then decides: ``system:anonymous`` in
``system:unauthenticated`` if anonymous access is enabled, else 401), and
raises `Unauthorized` for credentials that are presented but wrong.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hmac
import io
from collections.abc import Mapping

from .errors import ApiError, unauthorized
from .rbac import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED
from .types import UserInfo


class Unauthorized(ApiError):
    """Credentials were presented and are not valid (HTTP 401)."""

    def __init__(self, message: str = "Unauthorized") -> None:
        e = unauthorized(message)
        super().__init__(e.code, e.reason, e.message)


class CredentialFileError(ValueError):
    """A token or password file that is not kube's CSV format (names the line)."""


def parse_csv_file(text: str, what: str) -> dict[str, UserInfo]:
    """secret -> user, from kube's ``secret,user,uid[,"g1,g2"]`` CSV."""
    out: dict[str, UserInfo] = {}
    reader = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(reader, start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            raise CredentialFileError(
                f"{what} line {lineno}: need at least 3 columns (secret,user,uid), got {len(row)}"
            )
        secret, name, uid = row[0].strip(), row[1].strip(), row[2].strip()
        if not secret or not name:
            raise CredentialFileError(f"{what} line {lineno}: empty secret or user name")
        groups: tuple[str, ...] = ()
        if len(row) >= 4 and row[3].strip():
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip())
        # kube's tokenfile warns about a duplicate token and keeps the last one.
        out[secret] = UserInfo(name, groups, uid)
    return out


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, (*user.groups, AUTHENTICATED), user.uid)


ANONYMOUS_USER = UserInfo(ANONYMOUS, (UNAUTHENTICATED,))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


class Authenticator:
    def __init__(
        self, token_file_csv_text: str | None = None, basic_file_csv_text: str | None = None
    ) -> None:
        self.tokens = (
            parse_csv_file(token_file_csv_text, "token file") if token_file_csv_text else {}
        )
        self.passwords: dict[str, tuple[str, UserInfo]] = {}
        if basic_file_csv_text:
            for password, user in parse_csv_file(basic_file_csv_text, "password file").items():
                self.passwords[user.name] = (password, user)

    def authenticate(
        self,
        headers: Mapping[str, str],
        client_cert_subject: tuple[str, tuple[str, ...]] | None = None,
    ) -> UserInfo | None:
        if client_cert_subject is not None:
            cn, orgs = client_cert_subject
            if not cn:
                raise Unauthorized()
            return with_authenticated(UserInfo(cn, tuple(orgs)))
        auth = _header(headers, "Authorization")
        if auth is None:
            return None
        scheme, _, cred = auth.strip().partition(" ")
        cred = cred.strip()
        if scheme.lower() == "bearer":
            if not cred:
                raise Unauthorized()
            for token, user in self.tokens.items():
                if hmac.compare_digest(token.encode(), cred.encode()):
                    return with_authenticated(user)
            raise Unauthorized()
        if scheme.lower() == "basic":
            try:
                raw = base64.b64decode(cred, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthorized() from None
            name, sep, password = raw.partition(":")
            if not sep or name not in self.passwords:
                raise Unauthorized()
            want, user = self.passwords[name]
            if not hmac.compare_digest(want.encode(), password.encode()):
                raise Unauthorized()
            return with_authenticated(user)
        raise Unauthorized()
