"""Guards for every test folder (tests/, tests_ecosystem/): no test reaches the network (Hub offline; sockets
only to the loopback)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from huggingface_hub import constants as hf_constants

_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(f"tests may not reach the network (connect to {host!r} refused by tests/conftest.py)")
    return _connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
