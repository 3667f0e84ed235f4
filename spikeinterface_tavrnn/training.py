"""The training loop of :class:`~spikeinterface_tavrnn.estimator.TAVRNN`: a :class:`Trainer` that returns what it
learned (module, feature scaler, losses) instead of writing onto the estimator.

The estimator turns its parameters into a validated configuration (``cfg``, a dict of the constructor's parameters
after the preset); everything here reads that configuration only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .edge_dropout import EdgeDropout
from .errors import TavrnnInputError
from .graphs import GraphSequence
from .model.features import PreparedSequence, prepare_sequence, resolve_feature_kind
from .model.losses import NegativeSampler, kl_normal, reconstruction_loss
from .model.tavrnn import ModelOutput, TAVRNNModule

__all__ = [
    "StructuralScaler",
    "Trainer",
    "TrainingResult",
    "build_module",
    "elbo_loss",
    "fit_structural_scaler",
    "prepare",
    "resolve_device",
    "train",
    "wired_history_node",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; other values as :class:`torch.device` reads them."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def wired_history_node(cfg: dict) -> bool:
    """Whether the configuration wires a history node into the graphs (published attention with a history node)."""
    return bool(cfg["attention"] and cfg["history_node"] and cfg["attention_mode"] == "published")


def prepare(graphs: GraphSequence, cfg: dict, kind: str, array: Any, device: torch.device) -> PreparedSequence:
    """The model's inputs of one sequence for the configuration ``cfg`` (see :func:`.model.features.prepare_sequence`)."""
    return prepare_sequence(
        graphs,
        kind,
        feature_array=array,
        wired_history_node=wired_history_node(cfg),
        use_edge_weight=cfg["use_edge_weight"],
        device=device,
    )


def build_module(cfg: dict, n_features: int, kind: str) -> TAVRNNModule:
    """A fresh module of the configuration ``cfg`` for ``n_features`` input features of kind ``kind``."""
    return TAVRNNModule(
        n_features,
        kind,
        h_dim=int(cfg["h_dim"]),
        z_dim=int(cfg["z_dim"]),
        n_layers=int(cfg["n_layers"]),
        attention=bool(cfg["attention"]),
        attention_mode=cfg["attention_mode"],
        attention_window=cfg["attention_window"],
        history_node=bool(cfg["history_node"]),
        wired_index=-1 if wired_history_node(cfg) else None,  # the wired node is appended last, whatever N
        decoder=cfg["decoder"],
    )


def elbo_loss(
    module: TAVRNNModule, out: ModelOutput, prep: PreparedSequence, mode: str, negatives, kl_weight: float
) -> torch.Tensor:
    """Negative ELBO summed over windows: reconstruction under ``module``'s decoder (``mode`` "dense" or "sampled")
    plus ``kl_weight`` x KL."""
    rec = reconstruction_loss(
        out.z, prep, mode=mode, negatives=negatives, decoder=module.decoder, offset=module.decoder_offset
    )
    kl = kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)
    return (rec + kl_weight * kl).sum()


@dataclass(frozen=True)
class StructuralScaler:
    """Standardisation of structural node features learned on the training recordings.

    Attributes
    ----------
    names : tuple of str
        Feature names, in column order.
    mean, scale : numpy.ndarray (F,)
        Subtracted, then divided by (float32).
    """

    names: tuple
    mean: np.ndarray
    scale: np.ndarray

    def transform(self, graphs: GraphSequence) -> np.ndarray:
        """Standardised structural features of ``graphs`` (T, N, F); their names must be the fitted ones."""
        from .structural import structural_node_features

        raw, names = structural_node_features(graphs)
        if tuple(names) != tuple(self.names):
            missing = sorted(set(self.names) - set(names))
            hint = (
                " (the training graphs carried firing rates: build these graphs with ConnectivitySequence.to_graphs, "
                "or set firing_rates_hz)"
                if "log_rate" in missing
                else ""
            )
            raise TavrnnInputError(
                f"the model was fitted on structural features {list(self.names)}, these graphs give "
                f"{list(names)}{hint}."
            )
        return (raw - self.mean) / self.scale


def fit_structural_scaler(recordings: list[GraphSequence]) -> tuple[StructuralScaler, list[np.ndarray]]:
    """Learn the standardisation of the structural features on ``recordings``; return it and their features."""
    from .structural import structural_node_features

    raws, names = [], None
    for index, graphs in enumerate(recordings):
        raw, these = structural_node_features(graphs)
        if names is not None and tuple(these) != tuple(names):
            raise TavrnnInputError(
                f"recording {index} gives structural features {list(these)} but recording 0 gives {list(names)}: "
                "either every sequence carries firing_rates_hz or none does."
            )
        names = these
        raws.append(raw)
    flat = np.concatenate([r.reshape(-1, r.shape[2]) for r in raws]).astype(np.float64)
    std = flat.std(axis=0)
    scaler = StructuralScaler(
        tuple(names), flat.mean(axis=0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
    )
    return scaler, [(r - scaler.mean) / scaler.scale for r in raws]


def resolve_kind(node_features: Any, recordings: list[GraphSequence], as_list: bool) -> str:
    """The feature kind of a fit (see :func:`.model.features.resolve_feature_kind`); lists need inductive kinds."""
    if not as_list:
        return resolve_feature_kind(node_features, recordings[0])
    if isinstance(node_features, str) and node_features == "auto":
        return "structural"
    kinds = {resolve_feature_kind(node_features, g) for g in recordings}
    kind = kinds.pop()
    if kind in ("identity", "adjacency", "array"):
        raise TavrnnInputError(
            f"node_features={kind!r} ties a model to one node set, so it cannot be trained on a list of "
            "recordings; use node_features='structural' (or 'auto'), or fit one model per recording."
        )
    return kind


@dataclass
class TrainingResult:
    """What a training run learned and measured.

    Attributes
    ----------
    module : TAVRNNModule
        The trained module, in eval mode.
    loss_history : numpy.ndarray
        Loss per epoch (float64).
    kind : str
        Feature kind.
    array : numpy.ndarray or None
        Array features (``kind == "array"``).
    scaler : StructuralScaler or None
        Standardisation of structural features (``kind == "structural"``).
    prepared : list of PreparedSequence
        The prepared training recordings.
    modes : list of str
        Reconstruction mode of each recording.
    """

    module: TAVRNNModule
    loss_history: np.ndarray
    kind: str
    array: np.ndarray | None
    scaler: StructuralScaler | None
    prepared: list
    modes: list


class Trainer:
    """One training run: the prepared recordings, module, optimiser and samplers; :meth:`step` is one epoch.

    Each recording is cut into chunks of ``bptt_windows`` windows (one chunk without truncation); the recurrent state
    is carried across chunks, detached, and the gradients of all chunks of the recordings of one mini-batch are
    accumulated before the optimiser step. Must be created inside the caller's ``torch.random.fork_rng`` block (it
    seeds the global generator for the module's initialisation).

    Parameters
    ----------
    recordings : GraphSequence or list of GraphSequence
        Training data.
    cfg : dict
        Validated configuration (the estimator's parameters after its preset).
    device : torch.device
        Where to train.
    seed : int
        Seeds the initialisation, the reparameterisation noise, the negative samples and the recordings' order.
    as_list : bool, default: False
        Whether the recordings were given as a list (then node features must be inductive).
    """

    def __init__(
        self,
        recordings: list[GraphSequence] | GraphSequence,
        cfg: dict,
        device: torch.device,
        seed: int,
        as_list: bool = False,
    ):
        if isinstance(recordings, GraphSequence):
            recordings = [recordings]
        self.cfg = cfg
        self.kind = resolve_kind(cfg["node_features"], recordings, as_list)
        self.array = np.asarray(cfg["node_features"], dtype=np.float32) if self.kind == "array" else None
        arrays = [self.array] * len(recordings)
        self.scaler = None
        if self.kind == "structural":
            self.scaler, arrays = fit_structural_scaler(recordings)
        self.prepared = [prepare(graphs, cfg, self.kind, array, device) for graphs, array in zip(recordings, arrays)]
        widths = {p.n_features for p in self.prepared}
        if len(widths) > 1:
            raise TavrnnInputError(
                f"the recordings give node features of different widths {sorted(widths)}; one model needs one width "
                "(use node_features='structural')."
            )
        self.modes = []
        for prepared in self.prepared:
            mode = cfg["reconstruction"]
            if mode == "auto":
                mode = "dense" if prepared.n_total <= int(cfg["dense_max_nodes"]) else "sampled"
            self.modes.append(mode)
        torch.manual_seed(seed)
        self.module = build_module(cfg, self.prepared[0].n_features, self.kind).to(device)
        self.module.train()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        length = cfg["bptt_windows"]
        self.chunks, self.samplers, self.dropouts = [], [], []
        edge_dropout = float(cfg["edge_dropout"])
        wired = wired_history_node(cfg)  # the wired node is appended last; edge dropout never drops its edges
        for r, prepared in enumerate(self.prepared):
            step = int(length) if length is not None else prepared.n_windows
            chunks = [prepared.chunk(a, min(a + step, prepared.n_windows)) for a in range(0, prepared.n_windows, step)]
            self.chunks.append(chunks)
            samplers, dropouts = [], []
            for c, chunk in enumerate(chunks):
                # the first chunk of the first recording keeps the run's seed (a single untruncated fit is unchanged)
                sub_seed = seed if r == c == 0 else int(np.random.SeedSequence([seed, r, c]).generate_state(1)[0])
                hub = chunk.n_total - 1 if wired else None
                dropouts.append(EdgeDropout(chunk.adjacency, edge_dropout, sub_seed, hub) if edge_dropout > 0 else None)
                if self.modes[r] != "sampled":
                    samplers.append(None)
                    continue
                samplers.append(
                    NegativeSampler(chunk.edge_index_with_loops, chunk.n_total, cfg["negative_ratio"], sub_seed)
                )
            self.samplers.append(samplers)
            self.dropouts.append(dropouts)
        self.order_rng = np.random.default_rng(seed)
        self.per_step = int(cfg["recordings_per_step"])
        # the fused implementation updates every parameter in one kernel (CPU and CUDA)
        fused = device.type in ("cpu", "cuda")
        if not cfg["train_recurrence"]:
            self.module.rnn.requires_grad_(False)  # fixed at its random initialisation (the published codes' GRU)
        trained = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trained, lr=float(cfg["learning_rate"]), fused=fused)
        self.clip = float(cfg["clip_grad_norm"]) if cfg["clip_grad_norm"] else None
        self.kl_weight = float(cfg["kl_weight"])
        self.epoch = 0
        self.losses: list[float] = []

    def _accumulate(self, r: int, weight: float = 1.0) -> float:
        """Forward and backward (of ``weight`` x the loss) over every chunk of recording ``r``; returns its loss
        (summed over windows)."""
        state, total = None, 0.0
        chunks = self.chunks[r]
        for c, chunk in enumerate(chunks):
            dropout = self.dropouts[r][c]
            if dropout is not None:  # the target (positives) stays whole; only the propagated graph is thinned
                chunk = replace(chunk, adjacency=dropout.sample())
            out = self.module(chunk, sample=True, generator=self.generator, state=state)
            sampler = self.samplers[r][c]
            negatives = sampler.sample() if sampler is not None else None
            loss = elbo_loss(self.module, out, chunk, self.modes[r], negatives, self.kl_weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {self.epoch}; lower learning_rate or check the "
                    "input features' scale."
                )
            (loss * weight if weight != 1.0 else loss).backward()
            total += float(loss.detach())
            if c + 1 < len(chunks):
                state = out.state.detach()
        return total

    def step(self) -> float:
        """One epoch: every recording once (forward, backward, clipping and an optimiser step per mini-batch of
        recordings). Returns the loss, averaged over recordings."""
        n = len(self.prepared)
        order = self.order_rng.permutation(n) if n > 1 else np.zeros(1, dtype=np.int64)
        losses = np.zeros(n)
        for first in range(0, n, self.per_step):
            self.optimizer.zero_grad(set_to_none=True)
            batch = order[first : first + self.per_step]
            for r in batch:  # the gradient of the mini-batch's mean loss
                losses[r] = self._accumulate(int(r), 1.0 / len(batch))
            if self.clip is not None:
                nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
            self.optimizer.step()
        self.epoch += 1
        value = float(losses.mean())
        self.losses.append(value)
        return value

    def run(self, epochs: int, early_stopping: int | None = None, verbose: bool = False) -> TrainingResult:
        """Train for at most ``epochs`` epochs, stopping when the loss has not improved by more than 1e-4
        (relative) for ``early_stopping`` epochs (None or 0: never); show a tqdm bar when ``verbose``."""
        from tqdm.auto import tqdm

        patience = int(early_stopping or 0)
        best, since_best = math.inf, 0
        label = "training TAVRNN" if self.cfg["attention"] else "training VGRNN (no attention)"
        bar = tqdm(range(int(epochs)), desc=label, unit="epoch", disable=not verbose, leave=False)
        for _ in bar:
            value = self.step()
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            if patience:
                # The first epoch always counts as an improvement (inf - inf would be NaN).
                if not math.isfinite(best) or value < best - 1e-4 * abs(best):
                    best, since_best = value, 0
                else:
                    since_best += 1
                    if since_best >= patience:
                        break
        bar.close()
        return TrainingResult(
            module=self.module.eval(),
            loss_history=np.asarray(self.losses, dtype=np.float64),
            kind=self.kind,
            array=self.array,
            scaler=self.scaler,
            prepared=self.prepared,
            modes=list(self.modes),
        )


def train(
    recordings: list[GraphSequence], cfg: dict, device: torch.device, seed: int, as_list: bool = False
) -> TrainingResult:
    """Train a module of configuration ``cfg`` on ``recordings`` (``cfg["epochs"]``, ``cfg["early_stopping"]``,
    ``cfg["verbose"]``) without touching the global random state; return what it learned."""
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        trainer = Trainer(recordings, cfg, device, seed, as_list)
        return trainer.run(int(cfg["epochs"]), cfg["early_stopping"], bool(cfg["verbose"]))
