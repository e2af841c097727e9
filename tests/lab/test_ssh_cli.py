"""The lab's SSH CLIs driven by real clients: netmiko's own device drivers and OpenSSH."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest
from netmiko import BaseConnection, ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from lab.model import Phase
from lab.ssh import SshDevice
from lab.ssh.dialects import arris, casa
from lab.ssh.dialects.common import dotted
from tests.lab.conftest_ssh import SshLab, mac, ssh_lab

__all__ = ["ssh_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.slow]

CISCO_ROW = re.compile(
    r"^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\S+) +(?P<iface>C\S+) +"
    r"(?P<state>\S+) +(?P<sid>\d+) +(?P<rxpwr>-?\d+\.\d+)? +(?P<timing>\d+) +"
    r"(?P<cpe>\d+) +(?P<dip>[YN])$", re.M)
ARRIS_ROW = re.compile(
    r"^(?P<iface>\d+/\d+/\d+-\d+/\d+/\d+) +(?P<macdom>\d+) +(?P<bonded>\d+x\d+) +"
    r"(?P<state>\S+) +(?P<docsis>\S+) +(?P<qos>\d+) +(?P<cpe>\d+) +"
    r"(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\S+)$", re.M)
ARRIS_DENY_ROW = re.compile(r"^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<n>\d+)$",
                            re.M)
CASA_ROW = re.compile(
    r"^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\d+\.\d+\.\d+\.\d+ +)?"
    r"(?P<us>\d+/\d+\.\d+/\d+[*#]?) +(?P<ds>\d+/\d+/\d+[*#]?) +(?P<state>\S+) +"
    r"(?P<sid>\d+) +(?P<rxpwr>\S+) +(?P<timing>\d+) +"
    r"(?P<cpe>\d+) +(?P<bpi>yes|no)$", re.M)
CASA_SUMMARY = re.compile(r"^online cm (\d+) ; offline cm (\d+) ; ranging cm (\d+)$", re.M)
WAIT = 1.0  # comfortably past a reset + registration with the test timings


def send(conn: BaseConnection, command: str) -> str:
    out = conn.send_command(command)
    assert isinstance(out, str)
    return out


def test_cisco_row_matches_golden_format() -> None:
    golden = ("d4b9.2f6e.f2b0 101.113.1.15    C2/0/0/UB     w-online(pt)      1     15.00  "
              "1407   0   N")
    assert CISCO_ROW.match(golden)
    fields = dict(mac="d4b9.2f6e.f2b0", ip="101.113.1.15", ifn="C2/0/0/UB",
                  state="w-online(pt)", sid=1, rx="15.00", t=1407, cpe=0, dip="N")
    built = (f"{fields['mac']:<14} {fields['ip']:<15} {fields['ifn']:<13} "
             f"{fields['state']:<17} {fields['sid']:<5} {fields['rx']:>5}{fields['t']:>6}"
             f"{fields['cpe']:>4}{fields['dip']:>4}")
    assert built == golden  # the layout cisco.row uses


def test_cisco_netmiko_show_hotlist_reset(ssh_lab: SshLab) -> None:
    c = ssh_lab.fleet.cmtses["cbr8-1"]
    target, plain = mac(1), mac(4)
    with ConnectHandler(**ssh_lab.netmiko("cbr8-1")) as conn:
        assert conn.find_prompt() == "cbr8-1>"
        conn.enable()
        assert conn.find_prompt() == "cbr8-1#"
        out = send(conn, "show cable modem")
        rows = {m["mac"]: m for m in CISCO_ROW.finditer(out)}
        assert set(rows) == {dotted(mac(i)) for i in range(1, 5)}
        assert rows[dotted(target)]["state"] == "w-online(pt)"
        assert rows[dotted(plain)]["state"] == "w-online"
        one = send(conn, "sh cab mod " + target.hex(":").upper())
        assert [m["mac"] for m in CISCO_ROW.finditer(one)] == [dotted(target)]
        conn.send_config_set([f"cable privacy hotlist cm {dotted(target)}"])
        assert target in c.hotlist and c.hotlist[target].cert is None
        assert dotted(target) in send(conn, "show running-config")
        assert dotted(target) in send(conn, "show cable privacy hotlist")
        before = c.entries[plain]
        send(conn, f"clear cable modem {dotted(target)} reset")
        send(conn, f"clear cable modem {dotted(plain)} reset")
        ssh_lab.settle(WAIT)
        assert c.entries[target].phase is Phase.REJECTED  # hotlisted: refused at BPI+ auth
        assert c.entries[plain].online and c.entries[plain] is not before  # re-registered
        state = CISCO_ROW.search(send(conn, f"show cable modem {dotted(target)}"))
        assert state and state["state"] == "w-reject(pk)"  # bonded and refused at BPI+ auth
        conn.send_config_set([f"no cable privacy hotlist cm {dotted(target)}"])
        assert target not in c.hotlist
        ssh_lab.settle(WAIT)  # the rejected modem retries and now registers
        assert c.entries[target].online
        assert send(conn, "write memory").strip().endswith("[OK]")
        bad = send(conn, "show cabel modem")
        assert "% Invalid input detected at '^' marker." in bad


def test_cisco_enable_secret_is_checked(ssh_lab: SshLab) -> None:
    # IOS asks "Password: " again after a wrong secret, so netmiko never sees "#".
    params = ssh_lab.netmiko("cbr8-1", secret="wrong", read_timeout_override=2)
    with ConnectHandler(**params) as conn:
        with pytest.raises((ValueError, ReadTimeout)):
            conn.enable()
        conn.write_channel("wrong\nwrong\n")  # three tries in all, then "% Bad secrets"
        assert "% Bad secrets" in conn.read_until_pattern(r"cbr8-1>")


def test_arris_netmiko_deny_and_detail(ssh_lab: SshLab) -> None:
    c = ssh_lab.fleet.cmtses["e6k-1"]
    first, second, other, plain = mac(17), mac(18), mac(19), mac(20)
    with ConnectHandler(**ssh_lab.netmiko("e6k-1")) as conn:
        assert conn.find_prompt() == "e6k-1>"
        conn.enable()
        out = send(conn, "show cable modem")
        assert {m["mac"] for m in ARRIS_ROW.finditer(out)} == {dotted(mac(i))
                                                               for i in range(17, 21)}
        conn.send_config_set([f"cable modem deny {dotted(first)}"])
        send(conn, f"configure cable modem deny {second.hex()}")  # C4 one-liner
        assert set(c.deny) == {first, second}
        send(conn, f"clear cable modem {dotted(first)} reset")
        send(conn, f"clear cable modem delete {dotted(second)}")
        ssh_lab.settle(WAIT)
        listed = {m["mac"] for m in ARRIS_ROW.finditer(send(conn, "show cable modem"))}
        assert dotted(first) not in listed and dotted(second) not in listed  # denied
        denied = {m["mac"]: int(m["n"]) for m in
                  ARRIS_DENY_ROW.finditer(send(conn, "show cable modem deny"))}
        assert denied[dotted(first)] >= 1 and denied[dotted(second)] >= 1
        assert send(conn, f"show cable modem {dotted(first)} detail").strip() == ""
        detail = send(conn, f"show cable modem {dotted(other)} detail")
        assert "State=Operational" in detail and "Privacy=Ready  Ver=BPI Plus" in detail
        assert "Privacy=Disabled" in send(conn, f"show cable modem {dotted(plain)} "
                                                       "detail")
        send(conn, f"configure no cable modem deny {dotted(first)}")
        send(conn, f"conf no cab mod deny {dotted(second)}")  # abbreviated
        assert not c.deny
        ssh_lab.settle(WAIT)
        assert c.entries[first].online and c.entries[second].online
        assert "saved" in conn.save_config()


def test_arris_deny_list_full(ssh_lab: SshLab) -> None:
    c = ssh_lab.fleet.cmtses["e6k-full"]
    with ConnectHandler(**ssh_lab.netmiko("e6k-full")) as conn:
        conn.enable()
        assert send(conn, "configure cable modem deny 0011.2200.0091").strip() == ""
        out = send(conn, "configure cable modem deny 0011.2200.0092")
        assert out.strip() == arris.DENY_FULL.format(capacity=1)
        assert len(c.deny) == 1
        send(conn, "configure no cable modem deny 0011.2200.0091")


def test_casa_netmiko_show_reset_config(ssh_lab: SshLab) -> None:
    c = ssh_lab.fleet.cmtses["CASA-C10G"]
    target = mac(33)
    with ConnectHandler(**ssh_lab.netmiko("CASA-C10G")) as conn:
        assert conn.find_prompt() == "CASA-C10G#"
        out = send(conn, "show cable modem")
        assert casa.HEADER in out
        assert {m["mac"] for m in CASA_ROW.finditer(out)} == {dotted(mac(i))
                                                              for i in range(33, 37)}
        summary = CASA_SUMMARY.search(out)
        assert summary and summary.groups() == ("4", "0", "0")
        send(conn, f"clear cable modem {dotted(target)} reset")
        down = CASA_SUMMARY.search(send(conn, "show cable modem"))
        assert down and down.groups() == ("3", "1", "0")
        # No deny CLI on Casa (facts): config mode, error, Ctrl-Z back out.
        cfg = conn.send_config_set([f"cable modem deny {dotted(target)}"])
        assert "% Invalid input" in cfg and not c.deny
        assert not conn.check_config_mode()
        ssh_lab.settle(WAIT)
        assert c.entries[target].online


def test_dncs_netmiko_service_disconnect(ssh_lab: SshLab) -> None:
    h = ssh_lab.fleet.headends["dncs-1"]
    box = "00:02:DE:4A:11:01"
    with ConnectHandler(**ssh_lab.netmiko("dncs-1")) as conn:
        assert conn.find_prompt() == "dncs@dncs-1:~$"
        out = send(conn, f"modDhctCfg -pSDA {box}")
        assert out.strip().startswith("modDhctCfg: transaction ")
        assert "package SDA removed" in out
        assert send(conn, "echo $?").strip() == "0"
        ssh_lab.settle(h.check_s * 2.5)
        status = dict(line.split(": ", 1) for line in
                      send(conn, "showDhct 0002DE4A1101").strip().splitlines())
        assert status["MAC"] == box and status["ServiceDisconnect"] == "yes"
        assert status["eCM MAC"] == mac(0xA1).hex(":").upper()
        assert "SDA" not in status["Packages"].split(",")
        send(conn, f"modDhctCfg +pSDA {box.replace(':', '')}")
        assert "ServiceDisconnect: no" in send(conn, f"showDhct {box}")
        err = send(conn, "modDhctCfg -pSDA 00:02:DE:00:00:99")
        assert "ERROR DHCT 00:02:DE:00:00:99 not found" in err
        assert send(conn, "echo $?").strip() == "1"
        assert "command not found" in send(conn, "rm -rf /")


def test_openssh_exec_with_key(ssh_lab: SshLab) -> None:
    r = ssh_lab.openssh("cbr8-1", "show cable modem")
    assert r.returncode == 0, r.stderr
    assert len(CISCO_ROW.findall(r.stdout)) == 4
    r = ssh_lab.openssh("dncs-1", "showDhct 00:02:DE:4A:11:99")
    assert r.returncode == 1 and "not found" in r.stdout


def test_host_key_rotation_is_refused(ssh_lab: SshLab) -> None:
    dev = ssh_lab.devices["cbr8-rot"]
    pinned = ssh_lab.known_hosts("cbr8-rot")
    old_fp = dev.host_key_fingerprint()
    keygen = subprocess.run(["ssh-keygen", "-lf", "-"], input=dev.host_key_public(),
                            capture_output=True, text=True, check=True).stdout
    assert old_fp in keygen
    assert ssh_lab.openssh("cbr8-rot", "show version", known_hosts=pinned).returncode == 0
    params = ssh_lab.netmiko("cbr8-rot")
    port = dev.port
    ssh_lab.loop.run(dev.rotate_host_key())
    assert dev.port == port and dev.host_key_fingerprint() != old_fp
    r = ssh_lab.openssh("cbr8-rot", "show version", known_hosts=pinned)
    assert r.returncode != 0 and "Host key verification failed" in r.stderr
    with pytest.raises(NetmikoTimeoutException):
        ConnectHandler(**params)
    # The key lives in host_key_path: a device built on the same file presents it again.
    again = SshDevice("cbr8-rot", "cisco-cbr8", backend=dev.backend, users={},
                      host_key_path=dev.host_key_path)
    assert again.host_key_public() == dev.host_key_public()


def test_command_error_and_slow_faults(ssh_lab: SshLab) -> None:
    dev = ssh_lab.devices["cbr8-1"]
    assert ssh_lab.openssh("cbr8-1", "show version").returncode == 0
    dev.faults.command_error = r"^show cable modem"
    try:
        out = ssh_lab.openssh("cbr8-1", "show cable modem").stdout
        assert "% Invalid input detected at '^' marker." in out
        assert "Cisco IOS XE" in ssh_lab.openssh("cbr8-1", "show version").stdout
    finally:
        dev.faults.command_error = None
    dev.faults.slow_s = 1.0
    try:
        t0 = time.monotonic()
        assert ssh_lab.openssh("cbr8-1", "show version").returncode == 0
        # The knob holds the answer back for slow_s: a lower bound, which load can only
        # lengthen (comparing with an earlier, unslowed call flaked on a loaded machine).
        assert time.monotonic() - t0 >= 0.99
    finally:
        dev.faults.slow_s = 0.0


def test_auth_and_unreachable_faults(ssh_lab: SshLab) -> None:
    dev = ssh_lab.devices["CASA-C10G"]
    with pytest.raises(NetmikoAuthenticationException):
        ConnectHandler(**ssh_lab.netmiko("CASA-C10G", password="nope"))
    dev.faults.auth_fail = True
    try:
        assert ssh_lab.openssh("CASA-C10G", "show version").returncode == 255
    finally:
        dev.faults.auth_fail = False
    dev.faults.unreachable = True
    try:
        r = ssh_lab.openssh("CASA-C10G", "show version")
        # closed or reset, depending on whether the client's banner was already sent
        assert r.returncode == 255 and re.search(r"closed|reset", r.stderr), r.stderr
    finally:
        dev.faults.unreachable = False
    ssh_lab.loop.run(dev.set_unreachable(True, refuse=True))
    try:
        r = ssh_lab.openssh("CASA-C10G", "show version")
        assert r.returncode == 255 and "refused" in r.stderr.lower()
    finally:
        ssh_lab.loop.run(dev.set_unreachable(False))
    assert ssh_lab.openssh("CASA-C10G", "show version").returncode == 0


def test_concurrent_sessions_are_tracked(ssh_lab: SshLab) -> None:
    dev = ssh_lab.devices["e6k-1"]
    base = len(dev.sessions)
    both_open = threading.Barrier(2, timeout=60)
    seen: list[int] = []

    def session() -> None:
        with ConnectHandler(**ssh_lab.netmiko("e6k-1")) as conn:
            send(conn, "show version")
            both_open.wait()
            seen.append(dev.active_sessions)
            both_open.wait()

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert seen == [2, 2] and dev.max_concurrent_sessions >= 2
    deadline = time.monotonic() + 5
    while dev.active_sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dev.active_sessions == 0
    recs = list(dev.sessions)[base:]
    assert len(recs) == 2 and all(r.end is not None and r.username == "lab" for r in recs)
    assert all(r.commands >= 2 for r in recs)  # terminal length 0, show version, ...
    a, b = recs
    assert a.start < (b.end or 0) and b.start < (a.end or 0)  # the two overlapped


def test_line_editing_over_a_raw_channel(ssh_lab: SshLab) -> None:
    """Backspace, bare CR, Ctrl-C, abbreviations and IOS errors, typed raw."""
    with ConnectHandler(**ssh_lab.netmiko("cbr8-1")) as conn:
        conn.enable()
        conn.write_channel("shw\x7f\x7fhow ver\r")
        out = conn.read_until_pattern(r"cbr8-1#")
        assert "shw\b \b\b \bhow ver\n" in out and "Cisco IOS XE Software" in out
        conn.write_channel("garbage\x03")
        assert "^C" in conn.read_until_pattern(r"cbr8-1#")
        conn.write_channel("c cable modem\r\n")
        assert '% Ambiguous command:  "c cable modem"' in conn.read_until_pattern(r"cbr8-1#")
        conn.write_channel("show cable\n")
        assert "% Incomplete command." in conn.read_until_pattern(r"cbr8-1#")
        conn.write_channel("show cable modem 0011.2233\n")
        out = conn.read_until_pattern(r"marker\.\s+cbr8-1#")
        assert "\n" + " " * len("cbr8-1#show cable modem ") + "^" in out.replace("\r", "")
