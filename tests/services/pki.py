"""The test world's PKI: one throwaway CA per launch, and the certificates it signs.

Every stand-in speaks TLS with a certificate from this CA, so keyshift and the oracle
(PyMongo + pymongocrypt) verify servers exactly as they would in production, only
against a CA file instead of the system roots.

    ca = CA.create(run_dir)                                     # ca.pem, ca.key
    ca.issue("mongod", kind="server")                           # mongod.pem (+ .key)
    ca.issue("kmip", kind="server", key_type="ecdsa")           # ECDSA P-256 (see below)
    ca.issue("kmip-client", kind="client")                      # clientAuth EKU

Why ECDSA for KMIP: PyKMIP's TLS 1.2 suite offers only CBC ciphers for an RSA
certificate and rustls implements no CBC suite; with an ECDSA P-256 certificate it
negotiates ECDHE-ECDSA-AES-GCM, which rustls speaks.

Each issued name yields NAME.pem (certificate), NAME.key (private key, PKCS#8, mode
0600) and NAME-bundle.pem (key + certificate, the form PyMongo's tlsCertificateKeyFile
and libmongocrypt's KMIP client certificate expect).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


def _new_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r} (rsa or ecdsa)")


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass
class Issued:
    """Paths of one issued certificate."""

    cert: Path
    key: Path
    bundle: Path


@dataclass
class CA:
    """A throwaway certificate authority living in `directory`."""

    directory: Path
    cert: x509.Certificate
    key: object

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path | str, name: str = "keyshift test CA") -> "CA":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key("ecdsa")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, cert, key)
        ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(directory / "ca.key", _key_pem(key))
        return ca

    @classmethod
    def load(cls, directory: Path | str) -> "CA":
        directory = Path(directory)
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        return cls(directory, cert, key)

    def issue(
        self,
        name: str,
        *,
        kind: str = "server",
        key_type: str = "rsa",
        dns_names: tuple[str, ...] = _LOOPBACK_NAMES,
        ip_addresses: tuple[str, ...] = _LOOPBACK_IPS,
        expired: bool = False,
    ) -> Issued:
        """Issue a server (serverAuth) or client (clientAuth) certificate; `expired`
        gives one whose validity ended yesterday (for the certificate-failure tests)."""
        if kind not in ("server", "client"):
            raise ValueError(f"unknown certificate kind {kind!r} (server or client)")
        key = _new_key(key_type)
        now = datetime.datetime.now(datetime.timezone.utc)
        eku = ExtendedKeyUsageOID.SERVER_AUTH if kind == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - (datetime.timedelta(days=30) if expired else datetime.timedelta(minutes=5)))
            .not_valid_after(now - datetime.timedelta(days=1) if expired else now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _key_pem(key)
        issued = Issued(
            cert=self.directory / f"{name}.pem",
            key=self.directory / f"{name}.key",
            bundle=self.directory / f"{name}-bundle.pem",
        )
        issued.cert.write_bytes(cert_pem)
        _write_private(issued.key, key_pem)
        _write_private(issued.bundle, key_pem + cert_pem)
        return issued
