"""Smoke test: the broker under test starts and answers ApiVersions."""
import kafkawire


def test_api_versions_v0(broker):
    """ApiVersions v0 answers error 0 and lists Produce (0), Fetch (1),
    Metadata (3) and ApiVersions (18)."""
    with kafkawire.Connection(*broker.host_port) as c:
        r = c.api_versions(0)
    assert r["error_code"] == 0
    for key in (0, 1, 3, 18):
        assert key in r["apis"]
    print(r)
