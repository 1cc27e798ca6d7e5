"""Keys and host keys from environment variables (``ssh.identity_env``, ``ssh.known_hosts_env``):
every format a CI secret may hold parses, and every mistake is one line naming the file,
the key and the variable, never the value."""

from __future__ import annotations

import base64

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from deployer import envkeys
from deployer.config import load
from deployer.errors import ConfigError

STAGE = {
    "application": "app",
    "deploy_to": "/srv/app",
    "artifact": {"path": "dist"},
    "hosts": [{"host": "h1", "user": "deploy"}],
    "ssh": {"identity_env": "DEPLOY_KEY", "known_hosts_env": "KNOWN"},
}
KNOWN_LINE = (
    "[127.0.0.1]:2222 ssh-ed25519 "
    + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))).decode()
)


def private_text(kind: str, fmt: str, passphrase: bytes | None = None) -> str:
    key = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }[kind]()
    formats = {
        "openssh": serialization.PrivateFormat.OpenSSH,
        "pem": serialization.PrivateFormat.TraditionalOpenSSL,
        "pkcs8": serialization.PrivateFormat.PKCS8,
    }
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, formats[fmt], encryption).decode()


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return private_text("rsa", "pem")


def project(tmp_path, **ssh) -> object:
    (tmp_path / "config").mkdir(exist_ok=True)
    stage = {**STAGE, "ssh": {**STAGE["ssh"], **ssh}}
    (tmp_path / "config" / "prod.yml").write_text(yaml.safe_dump(stage))
    return tmp_path


def loaded(tmp_path, monkeypatch, env: dict[str, str], **ssh):
    monkeypatch.delenv("DEPLOY_KEY", raising=False)
    monkeypatch.setenv("KNOWN", KNOWN_LINE + "\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load(project(tmp_path, **ssh), "prod")


@pytest.mark.parametrize(
    "kind, fmt",
    [
        ("ed25519", "openssh"),
        ("ecdsa", "openssh"),
        ("ecdsa", "pem"),
        ("rsa", "openssh"),
        ("ed25519", "pkcs8"),
    ],
)
def test_every_key_type_and_format_parses(tmp_path, monkeypatch, kind, fmt):
    config = loaded(tmp_path, monkeypatch, {"DEPLOY_KEY": private_text(kind, fmt)})
    key = envkeys.identity(config.ssh)
    assert isinstance(key, paramiko.PKey)
    assert key.get_name().startswith(
        {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2", "rsa": "ssh-rsa"}[kind]
    )


def test_an_rsa_pem_key_as_ci_variables_mangle_it(tmp_path, monkeypatch, rsa_pem):
    mangled = "  " + rsa_pem.strip().replace("\n", "\\n") + "  "  # one line, \n written out
    config = loaded(tmp_path, monkeypatch, {"DEPLOY_KEY": mangled})
    assert envkeys.identity(config.ssh).get_name() == "ssh-rsa"
    crlf = rsa_pem.replace("\n", "\r\n").rstrip()
    config = loaded(tmp_path, monkeypatch, {"DEPLOY_KEY": crlf})
    assert envkeys.identity(config.ssh).get_name() == "ssh-rsa"


def test_an_encrypted_key_with_its_passphrase(tmp_path, monkeypatch):
    text = private_text("ed25519", "openssh", b"s3cret phrase")
    env = {"DEPLOY_KEY": text, "KEY_PASS": "s3cret phrase"}
    config = loaded(tmp_path, monkeypatch, env, identity_passphrase_env="KEY_PASS")
    assert envkeys.identity(config.ssh).get_name() == "ssh-ed25519"
    pem = private_text("rsa", "pem", b"s3cret phrase")
    config = loaded(tmp_path, monkeypatch, {**env, "DEPLOY_KEY": pem}, identity_passphrase_env="KEY_PASS")
    assert envkeys.identity(config.ssh).get_name() == "ssh-rsa"


def errors(tmp_path, monkeypatch, env: dict[str, str], **ssh) -> str:
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, monkeypatch, env, **ssh)
    assert caught.value.exit_code == 2
    message = caught.value.message
    assert "\n" not in message
    for value in env.values():
        for line in value.splitlines():
            if len(line) > 12:
                assert line not in message  # never the value, only the variable's name
    return message


ENCRYPTED = private_text("ed25519", "openssh", b"right")


MISTAKES = [
    ("unset", {}, {}, "config/prod.yml: ssh.identity_env: the environment variable DEPLOY_KEY is not set"),
    ("blank", {"DEPLOY_KEY": "  \n"}, {}, "ssh.identity_env: the environment variable DEPLOY_KEY is empty"),
    (
        "garbage",
        {
            "DEPLOY_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----"
        },
        {},
        "config/prod.yml: ssh.identity_env: DEPLOY_KEY does not hold a private key in OpenSSH or PEM "
        "format (ed25519, ecdsa or rsa)",
    ),
    (
        "a public key",
        {"DEPLOY_KEY": KNOWN_LINE.split(" ", 1)[1]},
        {},
        "ssh.identity_env: DEPLOY_KEY does not hold a private key in OpenSSH or PEM format",
    ),
    (
        "encrypted, no passphrase variable",
        {"DEPLOY_KEY": ENCRYPTED},
        {},
        "config/prod.yml: ssh.identity_env: the key in DEPLOY_KEY is encrypted; set "
        "ssh.identity_passphrase_env to the name of a variable holding its passphrase",
    ),
    (
        "passphrase variable unset",
        {"DEPLOY_KEY": ENCRYPTED},
        {"identity_passphrase_env": "KEY_PASS"},
        "config/prod.yml: ssh.identity_passphrase_env: the environment variable KEY_PASS is not set",
    ),
    (
        "wrong passphrase",
        {"DEPLOY_KEY": ENCRYPTED, "KEY_PASS": "wrong"},
        {"identity_passphrase_env": "KEY_PASS"},
        "config/prod.yml: ssh.identity_passphrase_env: KEY_PASS is not the passphrase of the key in "
        "DEPLOY_KEY",
    ),
    (
        "known_hosts unset",
        {"DEPLOY_KEY": ENCRYPTED, "KEY_PASS": "right", "KNOWN": ""},
        {"identity_passphrase_env": "KEY_PASS"},
        "config/prod.yml: ssh.known_hosts_env: the environment variable KNOWN is empty",
    ),
    (
        "known_hosts not a line",
        {"DEPLOY_KEY": ENCRYPTED, "KEY_PASS": "right", "KNOWN": "# ok\n\nexample.com ssh-ed25519\n"},
        {"identity_passphrase_env": "KEY_PASS"},
        "config/prod.yml: ssh.known_hosts_env: line 3 of KNOWN is not a known_hosts line (host names, "
        "key type, base64 key)",
    ),
    (
        "known_hosts marker",
        {"DEPLOY_KEY": ENCRYPTED, "KEY_PASS": "right", "KNOWN": "@revoked " + KNOWN_LINE},
        {"identity_passphrase_env": "KEY_PASS"},
        "ssh.known_hosts_env: line 1 of KNOWN: @cert-authority and @revoked lines are not supported",
    ),
    (
        "accept-new cannot record into a variable",
        {"DEPLOY_KEY": ENCRYPTED, "KEY_PASS": "right"},
        {"identity_passphrase_env": "KEY_PASS", "host_key_policy": "accept-new"},
        "config/prod.yml: ssh.host_key_policy: accept-new cannot record keys into $KNOWN "
        "(ssh.known_hosts_env); use strict and put every host's and bastion's key in it",
    ),
    (
        "bad variable name",
        {},
        {"identity_env": "MY-KEY"},
        "ssh.identity_env: expected an environment variable name",
    ),
]


@pytest.mark.parametrize("label, env, ssh, message", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_every_mistake_is_one_line_naming_file_key_and_variable(
    tmp_path, monkeypatch, label, env, ssh, message
):
    assert message in errors(tmp_path, monkeypatch, env, **ssh)


def test_known_hosts_lines_become_the_only_host_keys(tmp_path, monkeypatch):
    hashed = paramiko.HostKeys.hash_host("[10.0.0.5]:22")
    second = KNOWN_LINE.replace("[127.0.0.1]:2222", f"{hashed},bastion.example.com")
    env = {"DEPLOY_KEY": private_text("ed25519", "openssh"), "KNOWN": f"# pinned\n{KNOWN_LINE}\n{second}\n"}
    config = loaded(tmp_path, monkeypatch, env)
    keys = envkeys.host_keys(config.ssh)
    assert keys.lookup("[127.0.0.1]:2222") is not None
    assert keys.lookup("bastion.example.com") is not None
    assert keys.lookup("[10.0.0.5]:22") is not None  # hashed names match too
    assert keys.lookup("other.example.com") is None


def test_secret_values_hold_the_key_its_lines_and_the_passphrase(monkeypatch):
    text = private_text("ed25519", "openssh", b"pw")
    monkeypatch.setenv("DEPLOY_KEY", text)
    monkeypatch.setenv("KEY_PASS", "pw")
    config_ssh = type("S", (), {"identity_env": "DEPLOY_KEY", "identity_passphrase_env": "KEY_PASS"})()
    values = envkeys.secret_values(config_ssh)
    assert text in values and "pw" in values
    body = text.splitlines()[1]
    assert body in values
