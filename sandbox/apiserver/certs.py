"""The sandbox cluster's TLS: a private CA and a serving certificate for 127.0.0.1.

kubectl (client-go) never sends a bearer token over plain HTTP, so the API server speaks
HTTPS like every real cluster. On first boot this module creates, in the state directory:

    ca.crt      the cluster CA (also embedded in the kubeconfig as certificate-authority-data)
    ca.key
    server.crt  the API server's certificate (SANs 127.0.0.1, localhost), signed by the CA
    server.key

They are kept across restarts so an existing kubeconfig stays valid. In-cluster components
that talk to the API directly verify it with `STATE_DIR/ca.crt`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write a PEM file atomically (0600 for keys)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _key_usage(*, key_cert_sign: bool, crl_sign: bool) -> x509.KeyUsage:
    """Key usage: digital signature, plus certificate/CRL signing for the CA."""
    return x509.KeyUsage(digital_signature=True, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, encipher_only=False, decipher_only=False)


def ensure_certificates(state_dir: Path) -> tuple[Path, Path, Path]:
    """Create the CA and serving certificate once; return (ca.crt, server.crt, server.key)."""
    ca_crt, server_crt, server_key = state_dir / "ca.crt", state_dir / "server.crt", state_dir / "server.key"
    if ca_crt.exists() and server_crt.exists() and server_key.exists():
        return ca_crt, server_crt, server_key
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb-demo-sandbox-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=False, crl_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    state_dir.mkdir(parents=True, exist_ok=True)
    _write(state_dir / "ca.key", _key_pem(ca_key), private=True)
    _write(server_key, _key_pem(key), private=True)
    _write(server_crt, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(ca_crt, ca.public_bytes(serialization.Encoding.PEM), private=False)
    return ca_crt, server_crt, server_key


def server_ssl_context(state_dir: Path) -> ssl.SSLContext:
    """The API server's TLS context."""
    _, cert, key = ensure_certificates(state_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
