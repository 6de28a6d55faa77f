"""Loopback stand-ins (git over https, a package index, command shims) for the end-to-end rehearsal."""
