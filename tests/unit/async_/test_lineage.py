"""Lineage in the X-Ray trace header: parsing, counting hops per function, the 16-hop limit."""

from __future__ import annotations

from hearth.events import lineage

F = "arn:aws:lambda:us-east-1:000000000000:function:loop"
G = "arn:aws:lambda:us-east-1:000000000000:function:other"


def test_no_header_starts_a_chain_at_one() -> None:
    header = lineage.next_hop(None, F)
    parsed = lineage.TraceHeader.parse(header)
    assert parsed.root is not None and parsed.root.startswith("1-")
    assert parsed.lineage == {lineage.function_hash(F): 1}
    assert f"Lineage={lineage.function_hash(F)}:1" in header
    assert lineage.hops(header, F) == 1


def test_next_hop_keeps_root_and_other_fields_and_counts_per_function() -> None:
    start = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Foo=bar"
    one = lineage.next_hop(start, F)
    two = lineage.next_hop(one, G)
    three = lineage.next_hop(two, F)
    parsed = lineage.TraceHeader.parse(three)
    assert parsed.root == "1-5759e988-bd862e3fe1be46a994272793"
    assert parsed.parent == "53995c3f42cd8ad8"  # the caller's span stays the parent (no span of our own)
    assert parsed.sampled == "1"
    assert ("Foo", "bar") in parsed.extra
    assert lineage.hops(three, F) == 2
    assert lineage.hops(three, G) == 1


def test_qualified_arns_count_as_the_same_function() -> None:
    assert lineage.function_hash(F + ":$LATEST") == lineage.function_hash(F) == lineage.function_hash(F + ":prod")


def test_loop_is_detected_after_sixteen_runs() -> None:
    header: str | None = None
    for _ in range(lineage.MAX_HOPS):
        assert not lineage.is_loop(header, F)
        header = lineage.next_hop(header, F)
    assert lineage.hops(header, F) == 16
    assert lineage.is_loop(header, F)
    assert not lineage.is_loop(header, G)


def test_malformed_lineage_is_ignored_and_three_part_form_is_read() -> None:
    digest = lineage.function_hash(F)
    assert lineage.hops(f"Root=1-a-b;Lineage=zz:1|{digest}:x", F) == 0
    assert lineage.hops("garbage without equals", F) == 0
    assert lineage.hops(f"Root=1-a-b;Lineage=1:{digest}:7", F) == 7
    assert lineage.hops(f"Root=1-a-b;Lineage={digest}:3|{digest.upper()}:5", F) == 5


def test_self_field_is_dropped_and_sampled_defaults_to_zero() -> None:
    out = lineage.next_hop("Root=1-a-b;Self=1-x-y", F)
    assert "Self=" not in out
    assert "Sampled=0" in out


def test_percent_encoded_header_from_botocore_is_read() -> None:
    digest = lineage.function_hash(F)
    other = lineage.function_hash(G)
    assert lineage.hops(f"Root=1-a-b;Lineage={other}:1%7C{digest}:4", F) == 4


def test_active_tracing_samples_only_undecided_traces() -> None:
    assert "Sampled=1" in lineage.next_hop(None, F, active=True)
    assert "Sampled=1" in lineage.next_hop("Root=1-a-b;Sampled=?", F, active=True)
    assert "Sampled=0" in lineage.next_hop("Root=1-a-b;Sampled=0", F, active=True)  # the caller decided
    assert "Sampled=0" in lineage.next_hop(None, F)  # PassThrough never decides
