"""The transport layer takes plain arguments (enforcer/transport/params.py), never the
inventory's or a profile's models: no module under enforcer/transport imports
``enforcer.inventory``, directly, by ``from enforcer import inventory``, or lazily inside
a function. The conversion lives at one place, enforcer/drivers/transport_args.py."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import SecretStr

from enforcer.drivers.transport_args import snmp_auth, ssh_login, ssh_terminal
from enforcer.inventory.model import SnmpCredentials, SshCredentials
from enforcer.inventory.profiles import SshTransportSpec

TRANSPORT = Path(__file__).resolve().parents[2] / "enforcer" / "transport"
FORBIDDEN = "enforcer.inventory"


def _imports(source: str) -> list[str]:
    """Every module name an import statement anywhere in ``source`` names."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.level:  # relative: resolve against the transport package
                out.append(f"enforcer.transport.{node.module}")
            else:
                out.append(node.module)
                out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _forbidden(source: str) -> list[str]:
    return [m for m in _imports(source) if m == FORBIDDEN or m.startswith(FORBIDDEN + ".")]


def test_no_transport_module_imports_the_inventory() -> None:
    files = sorted(TRANSPORT.rglob("*.py"))
    assert len(files) >= 10  # the scan sees the package
    found = {str(f.relative_to(TRANSPORT)): bad for f in files
             if (bad := _forbidden(f.read_text()))}
    assert found == {}, "convert at the boundary (enforcer/drivers/transport_args.py)"


def test_the_scan_sees_every_form_of_the_import() -> None:
    assert _forbidden("from enforcer.inventory.model import SnmpCredentials")
    assert _forbidden("import enforcer.inventory.profiles as p")
    assert _forbidden("from enforcer import inventory")
    assert _forbidden("def f():\n    from enforcer.inventory import model\n")
    assert not _forbidden("from enforcer.transport.params import SnmpAuth")
    assert not _forbidden("from enforcer.inventory_like import x")


def test_the_boundary_carries_every_field_and_keeps_secrets_out_of_reprs() -> None:
    snmp = SnmpCredentials(user="poller", auth_protocol="SHA-256",
                           auth_password=SecretStr("auth-secret-1"), priv_protocol="AES-256",
                           priv_password=SecretStr("priv-secret-1"))
    auth = snmp_auth(snmp)
    assert (auth.version, auth.user, auth.auth_protocol, auth.priv_protocol) == (
        "3", "poller", "SHA-256", "AES-256")
    assert auth.auth_password is not None and auth.priv_password is not None
    assert (auth.auth_password.reveal(), auth.priv_password.reveal()) == (
        "auth-secret-1", "priv-secret-1")
    assert "secret-1" not in repr(auth) and "secret-1" not in f"{auth.auth_password}"
    v2c = snmp_auth(SnmpCredentials(version="2c", community=SecretStr("ro-c"),
                                    allow_v2c=True, allow_v2c_writes=True))
    assert (v2c.version, v2c.allow_v2c, v2c.allow_v2c_writes) == ("2c", True, True)
    assert v2c.community is not None and v2c.community.reveal() == "ro-c"
    assert "ro-c" not in repr(v2c)

    login = ssh_login(SshCredentials(username="ops", password=SecretStr("pw-1"),
                                     key_file=Path("/k"), enable_secret=SecretStr("en-1")))
    assert (login.username, login.key_file) == ("ops", Path("/k"))
    assert login.password is not None and login.password.reveal() == "pw-1"
    assert login.enable_secret is not None and login.enable_secret.reveal() == "en-1"
    assert "pw-1" not in repr(login) and "en-1" not in repr(login)

    spec = SshTransportSpec(device_type="cisco_ios", conn_args={"conn_timeout": 7},
                            enable=False, save_after_config=True,
                            error_patterns=["^% Invalid", "^% Incomplete"])
    term = ssh_terminal(spec)
    assert (term.device_type, dict(term.conn_args), term.enable, term.save_after_config,
            term.error_patterns) == ("cisco_ios", {"conn_timeout": 7}, False, True,
                                     ("^% Invalid", "^% Incomplete"))
    text = "show x\n           ^\n% Invalid input detected at '^' marker.\n"
    assert term.refusal(text) == spec.refusal(text) == \
        "% Invalid input detected at '^' marker."
