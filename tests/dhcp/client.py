"""A lab modem's DHCP client, run inside a test namespace:

    ip netns exec NS python -m tests.dhcp.client --interface IF --mac MAC [--giaddr A
        --remote-id HEX] [--timeout S]

Sends one DISCOVER (enforcer.dhcp.probe) and prints one JSON line: {"offer": {...}} or
{"offer": null}. Never run it outside a namespace the test created.
"""

from __future__ import annotations

import argparse
import json

from enforcer.dhcp.probe import probe_discover


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interface", required=True)
    ap.add_argument("--mac", required=True)
    ap.add_argument("--giaddr")
    ap.add_argument("--remote-id")
    ap.add_argument("--server")
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args(argv)
    offer = probe_discover(a.interface, a.mac, server=a.server, timeout=a.timeout,
                           giaddr=a.giaddr,
                           remote_id=bytes.fromhex(a.remote_id) if a.remote_id else None)
    print(json.dumps({"offer": offer.as_dict() if offer else None}), flush=True)


if __name__ == "__main__":
    main()
