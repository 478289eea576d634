"""Which addresses ML Commons' batch status and cancel calls may reach (local/emulators/node_facing.py)."""

from __future__ import annotations

import ipaddress

import pytest

from local.emulators.node_facing import is_local, node_facing_host, private_to_ml_commons, url_host


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),  # all of 127/8 is loopback
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.1", True),
        ("192.168.1.10", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fec0::1", True),  # Java's IPv6 site-local
        ("172.32.0.1", False),
        ("192.0.2.2", False),  # TEST-NET: private to Python, not to ML Commons
        ("100.64.0.1", False),
        ("fd00::2", False),  # an IPv6 unique-local address: Java does not call it site-local
    ],
)
def test_the_rule_is_ml_commons_own(address: str, private: bool) -> None:
    assert private_to_ml_commons(ipaddress.ip_address(address)) is private


def test_an_explicit_host_wins_and_ipv6_is_bracketed_in_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSBATCH_NODE_FACING_HOST", "fd00::9")
    assert node_facing_host() == "fd00::9"
    assert (url_host("fd00::9"), url_host("192.0.2.2")) == ("[fd00::9]", "192.0.2.2")


def test_the_node_facing_listener_serves_this_machine_only() -> None:
    # Given the peers a connection may come from: loopback is this machine, a public resolver is not
    assert is_local("127.0.0.1") and is_local("::1")
    assert not is_local("8.8.8.8") and not is_local("not an address")
