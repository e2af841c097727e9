"""The enforcer: MAC-based bans on CMTS and headend equipment, verified and kept in force."""

__version__ = "0.1.0"
