"""The SSH key and the host keys from environment variables, as CI systems hand out secrets.

``ssh.identity_env`` names a variable holding the private key itself (OpenSSH or PEM;
ed25519, ecdsa or rsa; ``ssh.identity_passphrase_env`` its passphrase), and
``ssh.known_hosts_env`` one holding known_hosts lines. Both are read and checked when the
stage is loaded, so a missing variable, a key that does not parse or a wrong passphrase
is one line (exit 2) before any host is contacted; every hop then uses the same key and
host keys (:mod:`deployer.handshake`). Nothing read here is ever written to disk, and no
message quotes a value: they name the variable.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from typing import Any

from .config import SshOptions
from .errors import ConfigError

Blame = Callable[[str, str], ConfigError]  # (key, problem) -> the error naming file and key
_KEYS: dict[tuple[str, str], Any] = {}  # parsed once per process: (variable, digest) -> PKey


def _plain(key: str, problem: str) -> ConfigError:
    return ConfigError(f"{key}: {problem}")


def read(name: str, key: str, blame: Blame = _plain) -> str:
    """The value of ``$name``, which ``key`` names; unset or blank is an error."""
    value = os.environ.get(name)
    if value is None:
        raise blame(key, f"the environment variable {name} is not set")
    if not value.strip():
        raise blame(key, f"the environment variable {name} is empty")
    return value


def normalised_key(text: str) -> str:
    """A key as CI variables mangle it, made whole: CRLF line ends, ``\\n`` written as two
    characters (GitLab's single-line variables), surrounding blanks, no final newline."""
    text = text.strip().replace("\r\n", "\n")
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text + "\n"


def check(opts: SshOptions, blame: Blame = _plain) -> None:
    """Read and parse every variable the options name (the stage loader calls this)."""
    if opts.identity_env:
        identity(opts, blame)
    if opts.known_hosts_env:
        if opts.host_key_policy != "strict":
            raise blame(
                "ssh.host_key_policy",
                f"accept-new cannot record keys into ${opts.known_hosts_env} (ssh.known_hosts_env); "
                "use strict and put every host's and bastion's key in it",
            )
        host_keys(opts, blame)


def identity(opts: SshOptions, blame: Blame = _plain):
    """The private key of ``ssh.identity_env`` as a paramiko key (parsed once per process)."""
    assert opts.identity_env
    text = normalised_key(read(opts.identity_env, "ssh.identity_env", blame))
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = _KEYS.get((opts.identity_env, digest))
    if cached is None:
        cached = _KEYS[(opts.identity_env, digest)] = _parse_key(opts, text, blame)
    return cached


def _parse_key(opts: SshOptions, text: str, blame: Blame):
    """Like ``paramiko.PKey.from_path``, from a string: cryptography reads the key (and
    judges the passphrase), paramiko makes an SSH key of it."""
    import paramiko
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    name = opts.identity_env
    data = text.encode()
    password = None
    try:
        loaded = _load(serialization, data, None)
    except TypeError:  # encrypted: it needs the passphrase
        if not opts.identity_passphrase_env:
            raise blame(
                "ssh.identity_env",
                f"the key in {name} is encrypted; set ssh.identity_passphrase_env to the name of a "
                "variable holding its passphrase",
            ) from None
        password = read(opts.identity_passphrase_env, "ssh.identity_passphrase_env", blame).encode()
        try:
            loaded = _load(serialization, data, password)
        except (TypeError, ValueError):
            raise blame(
                "ssh.identity_passphrase_env",
                f"{opts.identity_passphrase_env} is not the passphrase of the key in {name}",
            ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise blame(
            "ssh.identity_env",
            f"{name} does not hold a private key in OpenSSH or PEM format (ed25519, ecdsa or rsa)",
        ) from None
    kinds = ((rsa.RSAPrivateKey, paramiko.RSAKey), (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key))
    kinds += ((ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),)
    cls = next((k for base, k in kinds if isinstance(loaded, base)), None)
    if cls is None:
        raise blame("ssh.identity_env", f"the key in {name} is of a type SSH cannot use here")
    # Handed to paramiko in OpenSSH's format, decrypted, in memory: paramiko reads no PKCS#8
    # ed25519 key, and cryptography has already judged the passphrase.
    plain = loaded.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    try:
        return cls.from_private_key(io.StringIO(plain.decode()))
    except (paramiko.SSHException, ValueError) as exc:
        raise blame("ssh.identity_env", f"the key in {name} cannot be used ({type(exc).__name__})") from None


def _load(serialization, data: bytes, password: bytes | None):
    """OpenSSH's own format first, as OpenSSH does, then PEM (PKCS#1, PKCS#8, SEC1)."""
    try:
        return serialization.load_ssh_private_key(data, password=password)
    except ValueError:
        if b"OPENSSH PRIVATE KEY" in data:
            raise
        return serialization.load_pem_private_key(data, password=password)


def host_keys(opts: SshOptions, blame: Blame = _plain):
    """The known_hosts lines of ``ssh.known_hosts_env`` as paramiko ``HostKeys``."""
    import paramiko
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

    assert opts.known_hosts_env
    name = opts.known_hosts_env
    keys = paramiko.HostKeys()
    for number, line in enumerate(read(name, "ssh.known_hosts_env", blame).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise blame("ssh.known_hosts_env", f"line {number} of {name}: @cert-authority and @revoked "
                        "lines are not supported; list the host keys themselves")  # fmt: skip
        try:
            entry = HostKeyEntry.from_line(line, number)
        except (InvalidHostKey, ValueError, IndexError):
            entry = None
        if entry is None or entry.key is None:
            raise blame(
                "ssh.known_hosts_env",
                f"line {number} of {name} is not a known_hosts line (host names, key type, base64 key)",
            )
        for host in entry.hostnames:
            keys.add(host, entry.key.get_name(), entry.key)
    if not keys.keys():
        raise blame("ssh.known_hosts_env", f"{name} holds no host key")
    return keys


def secret_values(opts: SshOptions) -> list[str]:
    """What output must never show: the key (whole, and each of its lines, so a fragment
    quoted by some library is masked too) and its passphrase."""
    values = []
    for name in (opts.identity_env, opts.identity_passphrase_env):
        value = os.environ.get(name) if name else None
        if value and value.strip():
            values.append(value)
            values += [line.strip() for line in normalised_key(value).splitlines() if len(line.strip()) >= 8]
    return values
