"""Domain types: MAC addresses, orders, targets, states and policy rules. No I/O here."""
