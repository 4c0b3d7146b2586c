"""Vertical discretisation: soil layers with edges in cm below the mineral-soil surface (spec Sect. 1, A10)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class DepthGrid:
    """Soil layers as contiguous depth intervals.

    Args:
        edges_cm: layer edges, strictly increasing, starting at 0 (cm below the mineral-soil surface).
            ``n_layers + 1`` values; layer ``j`` spans ``edges_cm[j]`` to ``edges_cm[j + 1]``.

    Raises:
        ValueError: edges not finite, not starting at 0, fewer than two, or not strictly increasing
            (zero-thickness or overlapping layers).
    """

    edges_cm: np.ndarray = field()

    def __post_init__(self) -> None:
        e = np.asarray(self.edges_cm, dtype=float).copy()
        if e.ndim != 1 or e.size < 2:
            raise ValueError(f"edges_cm must be a 1-D sequence of at least 2 depths, got shape {e.shape}")
        if not np.all(np.isfinite(e)):
            raise ValueError(f"edges_cm must be finite, got {e.tolist()}")
        if e[0] != 0.0:
            raise ValueError(f"edges_cm must start at 0 cm (the mineral-soil surface), got {e[0]!r}")
        d = np.diff(e)
        bad = np.flatnonzero(d <= 0.0)
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"edges_cm must be strictly increasing: layer {j} spans {e[j]!r} to {e[j + 1]!r} cm "
                "(zero-thickness or overlapping layers)"
            )
        e.flags.writeable = False
        object.__setattr__(self, "edges_cm", e)

    @classmethod
    def uniform(cls, n_layers: int = 20, thickness_cm: float = 5.0) -> DepthGrid:
        """Equal layers (the paper's default is 20 × 5 cm, P §2.2).

        Args:
            n_layers: number of layers (count, ≥ 1).
            thickness_cm: thickness of every layer (cm, > 0).
        """
        if int(n_layers) != n_layers or n_layers < 1:
            raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
        if not np.isfinite(thickness_cm) or thickness_cm <= 0:
            raise ValueError(f"thickness_cm must be positive and finite, got {thickness_cm!r}")
        return cls(np.arange(int(n_layers) + 1, dtype=float) * float(thickness_cm))

    @classmethod
    def from_thicknesses(cls, thickness_cm) -> DepthGrid:
        """Layers of the given thicknesses, stacked from the surface (cm each, > 0)."""
        t = np.asarray(thickness_cm, dtype=float)
        if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise ValueError(f"thickness_cm must be positive finite values, got {np.asarray(thickness_cm).tolist()}")
        return cls(np.concatenate([[0.0], np.cumsum(t)]))

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return self.edges_cm.size - 1

    @property
    def thickness_cm(self) -> np.ndarray:
        """Layer thicknesses Δz_j (cm), shape (n_layers,)."""
        return np.diff(self.edges_cm)

    @property
    def mid_cm(self) -> np.ndarray:
        """Layer mid-points z̄_j (cm), shape (n_layers,)."""
        return 0.5 * (self.edges_cm[:-1] + self.edges_cm[1:])

    @property
    def depth_cm(self) -> float:
        """Total depth h (cm)."""
        return float(self.edges_cm[-1])

    def extended_to(self, depth_cm: float) -> DepthGrid:
        """A grid deep enough to reach ``depth_cm`` (cm), adding layers as thick as the deepest one."""
        if depth_cm <= self.depth_cm:
            return self
        t = self.thickness_cm[-1]
        n_extra = int(np.ceil((depth_cm - self.depth_cm) / t - 1e-9))
        return DepthGrid(np.concatenate([self.edges_cm, self.depth_cm + t * np.arange(1, n_extra + 1)]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DepthGrid) and np.array_equal(self.edges_cm, other.edges_cm)

    def __hash__(self) -> int:
        return hash(self.edges_cm.tobytes())

    def __repr__(self) -> str:
        t = self.thickness_cm
        if np.allclose(t, t[0]):
            return f"DepthGrid.uniform(n_layers={self.n_layers}, thickness_cm={t[0]:g})"
        return f"DepthGrid(edges_cm={self.edges_cm.tolist()})"
