"""Throwaway TLS material for tests that talk to the loopback OTLP receiver.

Why this exists: TLS and mutual-TLS code paths of an OTLP exporter can only be
checked against a server that really performs a handshake, and that needs a
certificate authority, a server certificate valid for the loopback names and a
client certificate. Generating them per test session (instead of committing
PEM files) means nothing ever expires and no private key lives in the repo.

Keys are ECDSA P-256: generation takes milliseconds (RSA-2048 takes far longer)
and both gRPC (BoringSSL) and Python's ``ssl`` module accept them.

Usage::

    files = generate_tls_files(tmp_path)
    receiver = OtlpReceiver(**files.receiver_kwargs(mutual=True))
    exporter = OTLPLogExporter(
        endpoint=receiver.grpc_endpoint,
        credentials=files.grpc_credentials(client_cert=True),
    )
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    import grpc

__all__ = ["TlsFiles", "generate_tls_files"]

# Long enough for any test run, short enough that a leaked file is useless.
_VALIDITY = datetime.timedelta(days=7)
# Backdate so that small clock differences never make a fresh cert "not yet valid".
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class TlsFiles:
    """Paths (as ``str``, ready for exporter arguments) of generated PEM files.

    Attributes:
        ca_cert: the test CA; trust it to verify ``server_cert``; the receiver
            trusts it to verify ``client_cert`` under mutual TLS.
        server_cert: server certificate signed by ``ca_cert``; SAN is
            ``DNS:localhost``, ``IP:127.0.0.1`` and ``IP:::1``.
        server_key: private key of ``server_cert`` (PKCS#8, unencrypted).
        client_cert: client certificate signed by ``ca_cert`` (clientAuth EKU).
        client_key: private key of ``client_cert``.
        wrong_ca: an unrelated CA certificate. A client that trusts only this
            one must fail to verify the receiver.
        untrusted_client_cert: a client certificate signed by ``wrong_ca``; a
            receiver requiring client certs from ``ca_cert`` must reject it.
        untrusted_client_key: private key of ``untrusted_client_cert``.
    """

    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    wrong_ca: str
    untrusted_client_cert: str
    untrusted_client_key: str

    def receiver_kwargs(self, *, mutual: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``OtlpReceiver`` to serve TLS with these files.

        With ``mutual=True`` the receiver also requires a client certificate
        issued by ``ca_cert``.
        """
        kwargs: dict[str, Any] = {
            "tls_cert_file": self.server_cert,
            "tls_key_file": self.server_key,
        }
        if mutual:
            kwargs["client_ca_file"] = self.ca_cert
            kwargs["require_client_cert"] = True
        return kwargs

    def grpc_credentials(
        self,
        *,
        ca: str | None = None,
        client_cert: bool = False,
        untrusted_client_cert: bool = False,
    ) -> grpc.ChannelCredentials:
        """``grpc.ChannelCredentials`` for the gRPC exporter's ``credentials=``.

        Args:
            ca: CA file to trust instead of ``ca_cert`` (e.g. ``wrong_ca``).
            client_cert: present ``client_cert`` (for mutual TLS).
            untrusted_client_cert: present ``untrusted_client_cert`` instead.
        """
        import grpc  # local import: keep this module importable without grpc

        cert_file = key_file = None
        if client_cert:
            cert_file, key_file = self.client_cert, self.client_key
        elif untrusted_client_cert:
            cert_file, key_file = self.untrusted_client_cert, self.untrusted_client_key
        return grpc.ssl_channel_credentials(
            root_certificates=Path(ca or self.ca_cert).read_bytes(),
            private_key=Path(key_file).read_bytes() if key_file else None,
            certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "torch-otel tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if server:
        # Modern TLS clients ignore the CN and match only the SAN, so the names
        # the tests connect to must all be here.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.IPAddress(ipaddress.IPv6Address("::1")),
                ]
            ),
            critical=False,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("otlp-test-client")]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _write_cert(path: Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return str(path)


def generate_tls_files(directory: str | Path) -> TlsFiles:
    """Create a CA, server and client certs (plus an unrelated CA) in ``directory``.

    The directory is created if missing; existing files of the same names are
    overwritten. Returns the paths as a :class:`TlsFiles`.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    ca_cert, ca_key = _make_ca("torch-otel test CA")
    server_cert, server_key = _make_leaf("localhost", ca_cert, ca_key, server=True)
    client_cert, client_key = _make_leaf("otlp-test-client", ca_cert, ca_key, server=False)
    wrong_ca_cert, wrong_ca_key = _make_ca("unrelated test CA")
    bad_client_cert, bad_client_key = _make_leaf(
        "untrusted-client", wrong_ca_cert, wrong_ca_key, server=False
    )

    return TlsFiles(
        ca_cert=_write_cert(out / "ca.pem", ca_cert),
        server_cert=_write_cert(out / "server.pem", server_cert),
        server_key=_write_key(out / "server-key.pem", server_key),
        client_cert=_write_cert(out / "client.pem", client_cert),
        client_key=_write_key(out / "client-key.pem", client_key),
        wrong_ca=_write_cert(out / "wrong-ca.pem", wrong_ca_cert),
        untrusted_client_cert=_write_cert(out / "untrusted-client.pem", bad_client_cert),
        untrusted_client_key=_write_key(out / "untrusted-client-key.pem", bad_client_key),
    )
