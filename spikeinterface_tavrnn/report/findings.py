"""What the recording shows, in numbers and plain sentences: the network's state over time, the units that change
role most, decoding of the window labels against simpler descriptions, and how the model used its history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evaluation.decoding import decode_against_baselines
from ..evaluation.dynamics import role_change, window_similarity
from ..extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION

__all__ = ["Findings", "compute_findings"]

#: Fewest windows per label for the decoding comparison (5-fold cross-validation needs a few of each).
MIN_WINDOWS_PER_LABEL = 4
#: Mean normalised entropy of the attention rows above which attention is called near-uniform.
NEAR_UNIFORM_ENTROPY = 0.9


@dataclass
class Findings:
    """The report's findings.

    Attributes
    ----------
    numbers : dict
        JSON-ready numbers (``summary.json`` section ``findings``).
    sentences : list of str
        The findings in plain words, most important first.
    decoding : BaselineDecoding or None
        The decoding comparison, when the windows carry labels.
    """

    numbers: dict = field(default_factory=dict)
    sentences: list = field(default_factory=list)
    decoding: Any = None


def _fmt_p(p: float) -> str:
    return f"p = {p:.2g}"


def _state_numbers(similarity: np.ndarray, labels: np.ndarray | None, order: np.ndarray) -> dict:
    n = similarity.shape[0]
    off = ~np.eye(n, dtype=bool)
    numbers: dict[str, Any] = {}
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    lag = np.abs(rank[:, None] - rank[None, :])
    if n >= 3:
        numbers["neighbour_similarity"] = float(similarity[lag == 1].mean())
        far = lag >= max(2, n // 2)
        numbers["distant_similarity"] = float(similarity[far].mean()) if far.any() else None
    if labels is not None:
        same = (labels[:, None] == labels[None, :]) & off
        different = labels[:, None] != labels[None, :]
        if same.any() and different.any():
            numbers["same_label_similarity"] = float(similarity[same].mean())
            numbers["different_label_similarity"] = float(similarity[different].mean())
    return numbers


def _attention_numbers(attention: np.ndarray) -> dict | None:
    """Mean normalised entropy of the attention rows that spread over two or more windows (1: uniform)."""
    entropies = []
    for row in np.asarray(attention, dtype=np.float64):
        weights = row[np.isfinite(row) & (row > 0)]
        if weights.size < 2:
            continue
        weights = weights / weights.sum()
        entropies.append(float(-(weights * np.log(weights)).sum() / np.log(weights.size)))
    if not entropies:
        return None
    mean = float(np.mean(entropies))
    return {"mean_normalised_entropy": mean, "near_uniform": mean >= NEAR_UNIFORM_ENTROPY}


def compute_findings(analyzer, n_permutations: int = 19, seed: int = 0, verbose: bool = False) -> Findings:
    """The findings of the report for an analyzer with both extensions (only the overview without embeddings).

    Parameters
    ----------
    analyzer : SortingAnalyzer
    n_permutations : int, default: 19
        Label permutations and time shifts of the decoding comparison (19 gives p >= 0.05).
    seed : int, default: 0
    verbose : bool, default: False

    Returns
    -------
    Findings
    """
    connectivity = analyzer.get_extension(CONNECTIVITY_EXTENSION)
    windows = connectivity.get_windows()
    durations = np.asarray(windows.stops) - np.asarray(windows.starts)
    rates = connectivity.get_firing_rates()
    matrices = connectivity.get_matrices()
    n_windows, n_units = matrices.shape[:2]
    labels = None if windows.labels is None else np.asarray(windows.labels).astype(str)
    out = Findings()
    # Time-weighted mean rate per unit (short windows count less), then the mean over units.
    weights = durations / durations.sum() if n_windows and durations.sum() > 0 else None
    mean_rate = float(np.mean(np.average(rates, axis=0, weights=weights))) if rates.size else float("nan")
    span_s = float(np.max(windows.stops) - np.min(windows.starts)) if n_windows else 0.0
    label_text = ""
    if labels is not None:
        names, counts = np.unique(labels, return_counts=True)
        label_text = f", labelled {', '.join(f'{n} ({c})' for n, c in zip(names, counts))}"
    out.sentences.append(
        f"{n_units} units in {n_windows} windows of {np.median(durations):.3g} s (median; {durations.min():.3g} to "
        f"{durations.max():.3g} s) over {span_s:.0f} s{label_text}. Mean firing rate "
        f"{mean_rate:.2g} Hz per unit; functional connectivity by {connectivity.params['method']}, mean edge density "
        f"{np.nanmean(connectivity.get_edge_density()):.2f}."
    )
    out.numbers["overview"] = {
        "n_units": int(n_units),
        "n_windows": int(n_windows),
        "window_duration_median_s": float(np.median(durations)) if n_windows else None,
        "span_s": span_s,
        "mean_rate_hz": mean_rate,
    }
    if not analyzer.has_extension(EMBEDDINGS_EXTENSION):
        out.sentences.append("No TAVRNN embeddings: compute them to see how the network changes over time.")
        return out
    ext = analyzer.get_extension(EMBEDDINGS_EXTENSION)
    embeddings = ext.get_embeddings()
    order = np.argsort(np.asarray(windows.starts), kind="stable")

    # -- decoding first: the scientist's question when windows carry labels
    decodable = labels is not None and np.unique(labels).size >= 2
    if decodable and np.min(np.unique(labels, return_counts=True)[1]) >= MIN_WINDOWS_PER_LABEL:
        try:
            decoding = decode_against_baselines(
                embeddings, rates, matrices, labels, windows=windows, n_permutations=n_permutations, seed=seed,
                verbose=verbose,
            )
        except ValueError as error:  # too few windows for the splits, one class in a training fold...
            out.numbers["decoding"] = {"skipped": str(error)}
        else:
            out.decoding = decoding
            scores = {name: r.balanced_accuracy for name, r in decoding.results.items()}
            out.numbers["decoding"] = {
                "balanced_accuracy": scores,
                "p_values": {name: r.p_value for name, r in decoding.results.items()},
                "chance": decoding.chance,
                "gain_over_rates": decoding.gain,
                "gain_p_value": decoding.gain_p_value,
                "paired_p_value": decoding.paired_p_value,
                "adds_information": decoding.adds_information,
            }
            verdict = "adds" if decoding.adds_information else "does not add"
            out.sentences.insert(
                0,
                f"The graph {verdict} information beyond firing rates here: window labels are decoded with balanced "
                f"accuracy {scores['embeddings+rates']:.2f} from embeddings + rates vs {scores['firing_rates']:.2f} "
                f"from rates alone ({decoding.gain:+.2f}; {_fmt_p(decoding.gain_p_value)} with the embeddings' "
                f"windows permuted, {_fmt_p(decoding.paired_p_value)} window by window against rates alone, "
                f"McNemar). Embeddings alone {scores['embeddings']:.2f} "
                f"({_fmt_p(decoding.results['embeddings'].p_value)}), raw connectivity {scores['connectivity']:.2f}, "
                f"chance {decoding.chance:.2f}.",
            )
    elif decodable:
        out.numbers["decoding"] = {"skipped": f"fewer than {MIN_WINDOWS_PER_LABEL} windows for some label"}

    # -- the network's state over time
    similarity = window_similarity(embeddings)
    state = _state_numbers(similarity, labels, order)
    out.numbers["state"] = state
    if "same_label_similarity" in state:
        same, different = state["same_label_similarity"], state["different_label_similarity"]
        tie = "more" if same > different + 0.02 else "not more"
        out.sentences.append(
            f"Network states recur with the label: windows with the same label are {tie} similar to each other "
            f"(mean similarity {same:.2f}) than windows with different labels ({different:.2f})."
            if tie == "more"
            else f"Network states do not follow the label: same-label windows are no more similar ({same:.2f}) "
            f"than different-label windows ({different:.2f})."
        )
    elif state.get("distant_similarity") is not None:
        out.sentences.append(
            f"The network drifts over time: neighbouring windows are similar (similarity {state['neighbour_similarity']:.2f}) "
            f"and windows far apart less so (similarity {state['distant_similarity']:.2f})."
            if state["neighbour_similarity"] > state["distant_similarity"] + 0.05
            else f"The network state does not drift: neighbouring windows (similarity {state['neighbour_similarity']:.2f}) "
            f"are about as similar as distant ones (similarity {state['distant_similarity']:.2f})."
        )

    # -- units that change role most
    change = role_change(embeddings)
    unit_ids = np.asarray(analyzer.unit_ids)
    top = change.order[: min(5, n_units)]
    out.numbers["role_change"] = {
        "top_units": [str(unit_ids[i]) for i in top],
        "top_scores": [float(change.score[i]) for i in top],
        "max_over_median": float(change.score.max()) if n_units else None,
    }
    if top.size:
        listed = ", ".join(f"{unit_ids[i]} ({change.score[i]:.1f}x)" for i in top[:3])
        out.sentences.append(
            f"Units that change role most (how far each moves in the embedding across windows, relative to a "
            f"typical unit): {listed}."
        )

    # -- attention and link scores
    attention = _attention_numbers(ext.get_attention_weights())
    out.numbers["attention"] = attention
    if attention is not None:
        out.sentences.append(
            f"Attention is near-uniform (normalised entropy {attention['mean_normalised_entropy']:.2f}; 1 = equal "
            "weights): each window draws on its past as an average, not on specific earlier windows."
            if attention["near_uniform"]
            else f"Attention is selective (normalised entropy {attention['mean_normalised_entropy']:.2f}; 1 = equal "
            "weights): windows draw on specific earlier windows."
        )
    link_scores = ext.get_link_scores()
    if link_scores and "detection_auc" in link_scores:
        out.sentences.append(
            f"Held-out connections are recovered with AUC {link_scores['detection_auc']:.2f} (0.5 = random)"
            + (
                f" and next-window connections predicted with AUC {link_scores['prediction_auc']:.2f}."
                if "prediction_auc" in link_scores
                else "."
            )
        )
    return out
