"""The HTML report of an analyzer: what the recording shows, findings first, figures a neuroscientist reads at a
glance, and the parameters actually used.

``write_report(analyzer, folder)`` writes ``folder/index.html``, its PNG figures and ``summary.json``:

    index.html            findings, figures with captions, diagnostics, appendix of parameters
    decoding.png          window labels decoded from embeddings, firing rates, raw connectivity, both (with labels)
    state_similarity.png  window x window similarity of the network's state
    embedding_states.png  every unit in every window in one 2-D projection, coloured by window label or time
    role_change.png       the units that change role most, window by window
    attention.png         temporal attention of each window over earlier windows
    connectivity.png      connectivity matrices of up to six windows
    window_summary.png    edge density and mean |connectivity| per window
    loss.png              training loss
    link_scores.png       link detection / prediction scores (when computed with ``score_links=True``)
    summary.json          every number of the page

Submodules by job: :mod:`.summary` (numbers), :mod:`.findings` (analyses and sentences), :mod:`.figures`,
:mod:`.page` (HTML) and :mod:`.writer`.
"""

from __future__ import annotations

from .findings import Findings, compute_findings
from .summary import report_summary
from .writer import write_report

__all__ = ["write_report", "report_summary", "compute_findings", "Findings"]
