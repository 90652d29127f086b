"""The vision-language methods, one class per paper: :class:`CLIP` (CLIP-style ITC), :class:`ALBEF`
(momentum distillation, ITM, MLM) and :class:`TCL` (ALBEF + intra-modal and local-MI contrast). The
recipe names the class through its task (``vl.clip``, ``vl.albef``, ``vl.tcl``)."""

from multissl.vl.albef import ALBEF
from multissl.vl.clip import CLIP
from multissl.vl.common import TwoTowers, global_local_infonce, sample_hard_negatives
from multissl.vl.tcl import TCL

METHODS = {"clip": CLIP, "albef": ALBEF, "tcl": TCL}

__all__ = ["ALBEF", "CLIP", "METHODS", "TCL", "TwoTowers", "global_local_infonce", "sample_hard_negatives"]
