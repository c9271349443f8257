"""HTTPS in front of the local stack, for the minimal-root proof: on Lambda every AWS call goes
over TLS, verified against the CA bundle at Amazon Linux's path, through the package's own
libssl/libcrypto. The stack itself speaks plain HTTP; this terminates TLS on loopback with a
certificate for 127.0.0.1 from a throwaway CA, and passes the bytes through unchanged (so the Host
header the function signed reaches moto as signed)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import select
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True,
                              crl_sign=True, encipher_only=False, decipher_only=False)
        return builder.add_extension(usage, critical=True).sign(issuer_key, hashes.SHA256())
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    return (builder.add_extension(loopback, critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(issuer_key, hashes.SHA256()))


class TLSFront:
    """Listens on 127.0.0.1 (port known at once); forwards to `upstream_port`, set once known."""

    def __init__(self, workdir: Path):
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = _cert("rotator test CA", ca_key, "rotator test CA", ca_key, ca=True)
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        chain, key_file = workdir / "front.pem", workdir / "front.key"
        chain.write_bytes(_cert("127.0.0.1", key, "rotator test CA", ca_key, ca=False)
                          .public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(chain, key_file)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.upstream_port = 0
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        self.handshakes += 1
        # One thread per connection, both directions: an SSL object must not be read and written
        # from two threads at once.
        with tls, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            other = {tls: upstream, upstream: tls}
            try:
                while True:
                    ready = [tls] if tls.pending() else select.select(list(other), [], [])[0]
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        other[s].sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()

