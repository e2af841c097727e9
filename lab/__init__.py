"""The enforcer lab: simulated CMTSes and a headend controller speaking real SNMP and SSH."""
