"""`astra`: our policy. FGD's fragmentation gradient without its rounding, then best fit.

FGD squeezes the fragmentation decrease through a sigmoid and truncates it to an integer in 0–100, so most
candidates tie and a random node order decides. `astra` ranks by the exact decrease and breaks the remaining
ties by the best-fit leftover (the fullest node wins), which keeps large free blocks intact."""

from __future__ import annotations

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.bestfit import leftover_fraction
from astrago.scheduler.placement.fgd import FragmentationAwarePolicy

# The best-fit term lies in [0, 1] milli-GPU: it orders candidates whose fragmentation change is equal
# but never outweighs a real difference in fragmentation (the smallest is a few milli).
TIE_BREAK_WEIGHT = 1.0


class AstraPolicy(FragmentationAwarePolicy):
    name = "astra"
    description = "exact fragmentation decrease, ties to the fullest node (ours; beats FGD)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        decrease = self.fragmentation_decrease(cluster, candidates)
        result: FloatArray = decrease - TIE_BREAK_WEIGHT * leftover_fraction(cluster, candidates)
        return result
