"""A throw-away PKI for the local control plane, the way envtest makes one.

Three roots: one signs kube-apiserver's serving certificate, one signs client certificates (the
apiserver trusts it through --client-ca-file), and a bare key pair signs service-account tokens.
Everything is valid for a week and lives in the cluster's run directory only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=7)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Pki:
    """Paths of the files the control-plane processes are started with."""

    directory: Path

    @property
    def serving_ca(self) -> Path:
        return self.directory / "serving-ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def client_ca(self) -> Path:
        return self.directory / "client-ca.crt"

    @property
    def client_ca_key(self) -> Path:
        return self.directory / "client-ca.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.directory / "sa.pub"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name(attributes)


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    server: bool,
) -> KeyPair:
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def create_pki(directory: Path) -> Pki:
    """Write a fresh PKI into `directory` (created if needed) and return its paths."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)

    serving_ca_key, serving_ca = _make_ca("stretto-dev-serving-ca")
    serving = _issue(serving_ca_key, serving_ca, "kube-apiserver", server=True)
    client_ca_key, client_ca = _make_ca("stretto-dev-client-ca")
    admin = _issue(client_ca_key, client_ca, "stretto-admin", organizations=("system:masters",), server=False)
    sa_key = _new_key()

    files = {
        pki.serving_ca: serving_ca.public_bytes(serialization.Encoding.PEM),
        pki.serving_cert: serving.cert_pem,
        pki.serving_key: serving.key_pem,
        pki.client_ca: client_ca.public_bytes(serialization.Encoding.PEM),
        pki.client_ca_key: _key_pem(client_ca_key),
        pki.admin_cert: admin.cert_pem,
        pki.admin_key: admin.key_pem,
        pki.service_account_key: _key_pem(sa_key),
        pki.service_account_public_key: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, content in files.items():
        path.write_bytes(content)
        path.chmod(0o600)
    return pki


def issue_client_certificate(pki: Pki, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
    """A client certificate for another identity, e.g. to exercise RBAC as a service account."""
    ca_cert = x509.load_pem_x509_certificate(pki.client_ca.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.client_ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _issue(ca_key, ca_cert, user, organizations=groups, server=False)
