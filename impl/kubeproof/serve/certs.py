"""Certificates for `kubeproof up`: a CA, the server's certificate, client certificates.

Theory of operation
-------------------
On first start `ensure_pki(dir)` makes a self-signed CA (EC P-256, ten
years) and, signed by it, a server certificate for the names clients dial
(localhost, 127.0.0.1, ::1 and the bind address) and a client certificate
for the admin user (CN ``kubernetes-admin``, O ``system:masters``).  Files
are PEM, private keys mode 0600; later starts reuse them, so kubeconfigs
stay valid.  The same CA verifies client certificates unless
``--client-ca-file`` names another: Kubernetes reads a client
certificate's subject as the user (CN) and groups (each O).

`issue_client_cert` signs further client certificates (tests make users
with it); `write_kubeconfig` writes a kubeconfig with the data inlined.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import os
from pathlib import Path

import yaml
from attrs import frozen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ADMIN_GROUP",
    "ADMIN_USER",
    "Pki",
    "ensure_pki",
    "issue_client_cert",
    "write_kubeconfig",
]

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "system:masters"


@frozen
class Pki:
    """Paths of the PEM files in a data directory."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path


def _now() -> _dt.datetime:
    # Backdated a little so that a client whose clock lags still accepts it.
    return _dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=5)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _subject(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _subject(cn)
    start = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    server_names: tuple[str, ...] = (),
    days: int = 365,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    start = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names:
        sans: list[x509.GeneralName] = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def ensure_pki(directory: Path, bind_address: str = "127.0.0.1") -> Pki:
    """Creates the CA and certificates in ``directory`` unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
    )
    if pki.ca_cert.exists() and pki.ca_key.exists():
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        ca_key = _load_key(pki.ca_key)
    else:
        ca_cert, ca_key = _make_ca("kubeproof-ca")
        _write_key(pki.ca_key, ca_key)
        _write_cert(pki.ca_cert, ca_cert)
    names = ["localhost", "kubernetes", "kubernetes.default", "127.0.0.1", "::1"]
    if bind_address not in ("0.0.0.0", "::", "") and bind_address not in names:
        names.append(bind_address)
    if not (pki.server_cert.exists() and pki.server_key.exists()) or not _covers(
        pki.server_cert, names
    ):
        cert, key = _issue(ca_cert, ca_key, _subject("kube-apiserver"), server_names=tuple(names))
        _write_key(pki.server_key, key)
        _write_cert(pki.server_cert, cert)
    if not (pki.admin_cert.exists() and pki.admin_key.exists()):
        cert, key = _issue(ca_cert, ca_key, _subject(ADMIN_USER, (ADMIN_GROUP,)))
        _write_key(pki.admin_key, key)
        _write_cert(pki.admin_cert, cert)
    return pki


def _covers(cert_path: Path, names: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    have |= set(san.get_values_for_type(x509.DNSName))
    return all(str(ipaddress.ip_address(n)) in have if _is_ip(n) else n in have for n in names)


def _is_ip(n: str) -> bool:
    try:
        ipaddress.ip_address(n)
    except ValueError:
        return False
    return True


def issue_client_cert(
    pki: Pki, user: str, groups: tuple[str, ...], cert_path: Path, key_path: Path
) -> None:
    """Signs a client certificate for ``user`` in ``groups`` with the CA."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = _load_key(pki.ca_key)
    cert, key = _issue(ca_cert, ca_key, _subject(user, groups))
    _write_key(key_path, key)
    _write_cert(cert_path, cert)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write_kubeconfig(
    path: Path,
    server: str,
    ca_cert: Path,
    *,
    user: str = ADMIN_USER,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    cluster: str = "kubeproof",
) -> None:
    """A kubeconfig whose one context reaches ``server`` as ``user``."""
    auth: dict[str, str] = {}
    if client_cert is not None and client_key is not None:
        auth["client-certificate-data"] = _b64(client_cert)
        auth["client-key-data"] = _b64(client_key)
    if token is not None:
        auth["token"] = token
    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": auth}],
        "contexts": [
            {"name": context, "context": {"cluster": cluster, "user": user, "namespace": "default"}}
        ],
        "current-context": context,
        "preferences": {},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
