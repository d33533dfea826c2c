"""The sandbox cluster's TLS: a private CA and a serving certificate for 127.0.0.1.

kubectl (client-go) never sends a bearer token over plain HTTP, so the API server speaks
HTTPS like every real cluster. On first boot this module creates, in the state directory:

    ca.crt      the cluster CA (also embedded in the kubeconfig as certificate-authority-data)
    ca.key
    server.crt  the API server's certificate, signed by the CA: SANs 127.0.0.1, localhost and,
    server.key  once the `kubernetes` Service exists, its ClusterIP and the names
                kubernetes, kubernetes.default, kubernetes.default.svc(.cluster.local), so an
                in-cluster client reaching the API through the Service verifies it

They are kept across restarts so an existing kubeconfig stays valid; the serving certificate
is issued again (by the same CA) when a SAN it needs is missing. In-cluster components that
talk to the API directly verify it with `STATE_DIR/ca.crt`.
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


SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")


def _sans(ips: tuple[str, ...], names: tuple[str, ...]) -> list[x509.GeneralName]:
    """The serving certificate's subject alternative names, fixed ones first."""
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    out: list[x509.GeneralName] = [x509.DNSName("localhost"), loopback]
    out += [x509.DNSName(n) for n in names if n != "localhost"]
    out += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips if ip != "127.0.0.1"]
    return out


def _has_sans(path: Path, wanted: list[x509.GeneralName]) -> bool:
    """Whether the certificate at ``path`` already names every SAN in ``wanted``."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return all(name in present for name in wanted)


def ensure_certificates(state_dir: Path, *, ips: tuple[str, ...] = (),
                        names: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    """Create the CA and serving certificate once (the serving one again when it lacks a SAN
    among ``ips``/``names``); return (ca.crt, server.crt, server.key)."""
    ca_crt, server_crt, server_key = state_dir / "ca.crt", state_dir / "server.crt", state_dir / "server.key"
    ca_key_path = state_dir / "ca.key"
    wanted = _sans(ips, names)
    if ca_crt.exists() and server_crt.exists() and server_key.exists() and _has_sans(server_crt, wanted):
        return ca_crt, server_crt, server_key
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb-demo-sandbox-ca")])
    if ca_crt.exists() and ca_key_path.exists():
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
        ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        ca_name = ca.subject
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
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
            .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    state_dir.mkdir(parents=True, exist_ok=True)
    _write(ca_key_path, _key_pem(ca_key), private=True)
    _write(server_key, _key_pem(key), private=True)
    _write(server_crt, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(ca_crt, ca.public_bytes(serialization.Encoding.PEM), private=False)
    return ca_crt, server_crt, server_key


def server_ssl_context(state_dir: Path, *, ips: tuple[str, ...] = ()) -> ssl.SSLContext:
    """The API server's TLS context (serving for 127.0.0.1, localhost, the `kubernetes` Service's
    names and the extra ``ips``)."""
    _, cert, key = ensure_certificates(state_dir, ips=ips, names=SERVICE_NAMES if ips else ())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
