"""benchmarks/discovery.py: which strength each method is measured at."""

from __future__ import annotations

import torch

from benchmarks import discovery as bd
from editor.methods import discovery as dc


def _direction(deltas: dict[str, torch.Tensor]) -> dc.Direction:
    return dc.Direction(torch.ones(4) / 2, 0.1, 0, False, [dc.Label("smile", 0.9)],
                        [dc.Label("frown", -0.8)], deltas=deltas)


def test_each_transfer_is_measured_at_its_own_default_unless_one_strength_is_given():
    d = torch.arange(3.0)
    discovery = dc.Discovery([_direction({"w": d, "style": d + 1, "focused": d + 2})], [0.1])
    groups = {f"ours ({m})": bd.ours(discovery, m) for m in dc.METHODS}
    groups["ganspace"] = [bd.Candidate("ganspace", "a ↔ b", [], d, "w")]
    groups["empty"] = []
    assert [c.transfer for m in dc.METHODS for c in groups[f"ours ({m})"]] == list(dc.METHODS)
    torch.testing.assert_close(groups["ours (focused)"][0].delta, d + 2)
    strengths = bd.group_strengths(groups, None)
    assert strengths == {"ours (w)": dc.DEFAULT_STRENGTHS["w"],
                         "ours (style)": dc.DEFAULT_STRENGTHS["style"],
                         "ours (focused)": dc.DEFAULT_STRENGTHS["focused"],
                         "ganspace": dc.DEFAULT_STRENGTHS["w"], "empty": dc.DEFAULT_STRENGTHS["w"]}
    assert set(bd.group_strengths(groups, 2.5).values()) == {2.5}
