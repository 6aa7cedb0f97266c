"""Settings every service shares: the hosts a gRPC target names (a replica list or a DNS name)."""

from __future__ import annotations

import pytest

from dyag_runtime.settings import PlatformSettings, target_hosts


@pytest.mark.parametrize(
    ("target", "hosts"),
    [
        ("127.0.0.1:50054", ["127.0.0.1"]),
        ("ipv4:127.0.0.1:50054,10.0.0.2:50054", ["127.0.0.1", "10.0.0.2"]),
        ("ipv6:[::1]:50054", ["[::1]"]),
        ("dns:///trainer-headless.dyag.svc.cluster.local:50054", ["trainer-headless.dyag.svc.cluster.local"]),
        ("dns://10.96.0.10/trainer:50054", ["trainer"]),
        ("trainer:50054", ["trainer"]),
    ],
)
def test_target_hosts(target, hosts):
    assert target_hosts(target) == hosts


def test_a_services_address_may_list_its_replicas():
    settings = PlatformSettings(service_addrs={"validator": "ipv4:127.0.0.1:1,127.0.0.1:2"})
    assert settings.address_of("validator") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert settings.address_of("evaluator") == "127.0.0.1:50057"


def test_nats_replicas_are_bounded():
    with pytest.raises(ValueError, match="nats_replicas"):
        PlatformSettings(nats_replicas=0)
