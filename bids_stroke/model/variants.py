"""The eight light-weight variants of the 3D attention CNN.

Backbone
--------
A VGG-like 3D CNN on a 96 × 96 × 24 × 1 input (in-plane, in-plane, slices, channel), in
five levels. Each level is ``n`` 3×3×3 convolutions ("same" padding, ReLU, He-uniform
initial weights); levels 1–4 end in a max-pooling of (2, 2, 2), (2, 2, 2), (2, 2, 2) and
(2, 2, 1), so the 24 slices are pooled to 12, 6, 3 and never below 3. Levels 1 and 2 have
one convolution each, levels 3–5 two (the full-resolution levels cost most per channel).
With the bottleneck (``-bn``), each of levels 2–5 starts with a 1×1×1 convolution + ReLU
that halves the incoming width before the 3×3×3 convolutions.

Attention (Jetley et al. 2018, "pc" form, :class:`~bids_stroke.model.layers.PCAttention`)
-------------------------------------------------------------------------------------
* local features: the outputs of levels 3, 4 and 5 (before pooling), i.e. scales 3, 4
  and 5 of the network, on grids of 24×24×6 (``a1``), 12×12×3 (``a2``) and 6×6×3
  (``a3``) voxels for the 96×96×24 input;
* global feature ``g``: the output of level 5 averaged over its 6×6×3 voxels (a
  full-extent pooling; width = the width of level 5). ``g`` enters the compatibility
  ``c = <u, l + g>`` only through a term that is constant over the voxels and cancels in
  the softmax, so a learned dense layer there would receive no gradient: it is left out;
* ``l1`` and ``l2`` are projected to ``g``'s width by a 1×1×1 convolution without bias;
  ``l3`` already has it;
* ``concat(g_1, g_2, g_3)`` → dropout (rate 0.3) → Dense(1, sigmoid) = P(poor outcome).

Size branch (``size_branch="mean"``, an opt-in deviation from the paper)
------------------------------------------------------------------------
Each attended feature ``g_s = Σ_i a_i l_i`` is a convex (softmax-weighted) average of
local features: a small and a large lesion of the same appearance give the same ``g_s``,
so the paper's head can only learn lesion extent through what one voxel's receptive field
sees. With ``size_branch="mean"`` the output unit also sees ``g`` itself, the deepest
level's features averaged over the whole volume, which grows with the fraction of the
volume the lesion occupies: ``concat(g_1, g_2, g_3, g)``. The attention maps are computed
exactly as before.

The variants (a 2×2×2 factorial)
--------------------------------
``F0`` (initial feature maps) 8 or 16; growth ×1.5 or ×2 per level (widths
``F0·growth^k``, rounded to a multiple of 4); bottleneck on (``-bn``) or off. Parameter
counts and FLOPs (2 × multiply-adds of every convolution, projection, attention and
dense layer) per 96×96×24 image, from :func:`model_flops` and ``count_params``:

=============  ======================  ===========  ============  ==========
variant        widths (levels 1–5)     bottleneck   parameters    GFLOP/image
=============  ======================  ===========  ============  ==========
f8-g1.5        8, 12, 20, 28, 40       no           132,173       0.406
f8-g1.5-bn     8, 12, 20, 28, 40       yes          105,687       0.305
f8-g2          8, 16, 32, 64, 128      no           888,113       0.861
f8-g2-bn       8, 16, 32, 64, 128      yes          744,013       0.673
f16-g1.5       16, 24, 36, 56, 80      no           510,209       1.352
f16-g1.5-bn    16, 24, 36, 56, 80      yes          408,363       0.958
f16-g2         16, 32, 64, 128, 256    no           3,549,537     3.250
f16-g2-bn      16, 32, 64, 128, 256    yes          2,973,017     2.500
=============  ======================  ===========  ============  ==========

All eight: 10.304 GFLOP per image (the bottleneck widths are half the incoming width:
4, 6, 10, 14 for ``f8-g1.5-bn``).

Mixed precision
---------------
``precision="bfloat16"`` builds the convolutions and poolings of levels 2–5
(:data:`BFLOAT16_FROM_LEVEL`) with Keras' ``mixed_bfloat16`` policy: they compute in
bfloat16 while their weights stay float32; level 1, the attention, the dropout and the
output unit compute in float32. Level 1 stays float32 because its convolution has one
input channel: it is limited by memory traffic, not arithmetic, and measured slower in
bfloat16 (the cast costs more than the narrower arithmetic saves). The weights of both
precisions have the same names, shapes and dtype, so a model trained in bfloat16 is saved
and used for inference as a float32 model (:func:`build_variant` + ``set_weights``).

Input shapes other than 96×96×24 work when the in-plane sizes are multiples of 16 and
the slice count a multiple of 8 (the tests use 32×32×8 and 32×32×16 volumes to stay fast).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras

from bids_stroke.config import SIZE_BRANCHES, TRAIN_PRECISIONS, VARIANT_NAMES
from bids_stroke.model.spec import INPUT_SHAPE

from .layers import PCAttention

__all__ = [
    "BFLOAT16_FROM_LEVEL",
    "POOL_SIZES",
    "PRECISIONS",
    "VARIANTS",
    "VariantSpec",
    "build_variant",
    "check_input_shape",
    "model_flops",
    "variant_table",
]

#: Max-pooling after levels 1–4.
POOL_SIZES = ((2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 1))

#: Compute precisions of :func:`build_variant`.
PRECISIONS = TRAIN_PRECISIONS[1:]

#: First level computing in bfloat16 when ``precision="bfloat16"``.
BFLOAT16_FROM_LEVEL = 2

#: Levels whose outputs are the local features of a1, a2, a3 (1-based).
ATTENTION_LEVELS = (3, 4, 5)


@dataclass(frozen=True)
class VariantSpec:
    """Hyper-parameters of one variant.

    Attributes
    ----------
    name : str
        One of :data:`bids_stroke.config.VARIANT_NAMES`.
    initial_filters : int
        ``F0``, feature maps of level 1.
    growth : float
        Multiplicity of feature maps per level.
    bottleneck : bool
        Whether levels 2–5 start with a 1×1×1 convolution halving the incoming width.
    widths : tuple of 5 int
        Feature maps of levels 1–5 (``F0·growth^k`` rounded to a multiple of 4).
    convs_per_level : tuple of 5 int
        3×3×3 convolutions per level.
    dropout : float
        Dropout rate before the output unit.
    """

    name: str
    initial_filters: int
    growth: float
    bottleneck: bool
    widths: tuple[int, ...]
    convs_per_level: tuple[int, ...] = (1, 1, 2, 2, 2)
    dropout: float = 0.3

    def bottleneck_width(self, level: int) -> int | None:
        """Width of the bottleneck starting ``level`` (1-based), or None."""
        if not self.bottleneck or level == 1:
            return None
        return max(1, self.widths[level - 2] // 2)

    def to_dict(self) -> dict:
        """The hyper-parameters as JSON-ready values."""
        out = asdict(self)
        out["widths"] = list(self.widths)
        out["convs_per_level"] = list(self.convs_per_level)
        return out


def _widths(initial: int, growth: float) -> tuple[int, ...]:
    return tuple(max(4, 4 * math.floor(initial * growth**k / 4 + 0.5)) for k in range(5))


def _spec(name: str) -> VariantSpec:
    head, _, rest = name.partition("-g")
    growth_text, _, tail = rest.partition("-")
    initial, growth = int(head[1:]), float(growth_text)
    return VariantSpec(name, initial, growth, tail == "bn", _widths(initial, growth))


#: Every variant by name, in :data:`VARIANT_NAMES` order.
VARIANTS: dict[str, VariantSpec] = {name: _spec(name) for name in VARIANT_NAMES}


def check_input_shape(input_shape) -> tuple[int, int, int, int]:
    """Return ``input_shape`` as 4 ints if the backbone accepts it, else raise ValueError."""
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 4 or shape[3] != 1 or shape[0] % 16 or shape[1] % 16 or shape[2] % 8:
        raise ValueError(
            "'input_shape' must be (X, Y, Z, 1) with X and Y multiples of 16 and Z a "
            f"multiple of 8, e.g. {INPUT_SHAPE}. Got {input_shape} instead."
        )
    return shape


def _get_spec(name: str) -> VariantSpec:
    if name not in VARIANTS:
        raise ValueError(f"'name' must be one of {', '.join(VARIANT_NAMES)}. Got {name!r} instead.")
    return VARIANTS[name]


def build_variant(name: str, input_shape=INPUT_SHAPE, *, seed: int = 0,
                  precision: str = "float32", size_branch: str = "none") -> keras.Model:
    """Build one variant of the attention CNN with seeded initial weights.

    Parameters
    ----------
    name : str
        One of :data:`bids_stroke.config.VARIANT_NAMES`, e.g. ``"f8-g1.5-bn"``.
    input_shape : tuple of 4 int, default=(96, 96, 24, 1)
        Model input (in-plane, in-plane, slices, channel); see :func:`check_input_shape`.
    seed : int, default=0
        Seed of the initial weights and of the dropout.
    precision : {"float32", "bfloat16"}, default="float32"
        Compute precision of levels 2–5 (see "Mixed precision" above); the weights, the
        inputs and the outputs are float32 either way.
    size_branch : {"none", "mean"}, default="none"
        ``"mean"`` adds the whole-volume mean of the deepest features to the output unit's
        inputs (see "Size branch" above); ``"none"`` is the paper's head.

    Returns
    -------
    keras.Model
        Named ``name``; input ``(batch,) + input_shape``; outputs a dict:
        ``probability`` (batch, 1) = P(poor outcome), and the attention maps ``a1``
        (batch, X/4, Y/4, Z/4), ``a2`` (batch, X/8, Y/8, Z/8), ``a3``
        (batch, X/16, Y/16, Z/8), each summing to 1 over its voxels.

    Examples
    --------
    >>> model = build_variant("f8-g1.5", (32, 32, 8, 1), seed=1)
    >>> {key: tuple(t.shape) for key, t in sorted(model.output.items())}
    {'a1': (None, 8, 8, 2), 'a2': (None, 4, 4, 1), 'a3': (None, 2, 2, 1), 'probability': (None, 1)}
    """
    spec = _get_spec(name)
    shape = check_input_shape(input_shape)
    if precision not in PRECISIONS:
        raise ValueError(f"'precision' must be one of {', '.join(PRECISIONS)}. Got {precision!r} instead.")
    if size_branch not in SIZE_BRANCHES:
        raise ValueError(f"'size_branch' must be one of {', '.join(SIZE_BRANCHES)}. Got {size_branch!r} instead.")
    counter = iter(range(1_000_000))

    # one seed per initializer, below 2**31 - 1 (JAX takes 32-bit seeds)
    def init():
        return keras.initializers.HeUniform(seed=(seed * 1009 + next(counter)) % (2**31 - 1))

    def glorot():
        return keras.initializers.GlorotUniform(seed=(seed * 1009 + next(counter)) % (2**31 - 1))

    inputs = keras.Input(shape=shape, name="dwi")
    x = inputs
    local = []
    for level in range(1, 6):
        low = precision == "bfloat16" and level >= BFLOAT16_FROM_LEVEL
        dtype = "mixed_bfloat16" if low else "float32"
        bottleneck = spec.bottleneck_width(level)
        if bottleneck:
            x = keras.layers.Conv3D(bottleneck, 1, activation="relu", kernel_initializer=init(),
                                    name=f"level{level}_bottleneck", dtype=dtype)(x)
        for index in range(1, spec.convs_per_level[level - 1] + 1):
            x = keras.layers.Conv3D(spec.widths[level - 1], 3, padding="same", activation="relu",
                                    kernel_initializer=init(), name=f"level{level}_conv{index}",
                                    dtype=dtype)(x)
        if level in ATTENTION_LEVELS:
            local.append(x)
        if level <= len(POOL_SIZES):
            x = keras.layers.MaxPooling3D(POOL_SIZES[level - 1], name=f"level{level}_pool", dtype=dtype)(x)
    global_feature = keras.layers.GlobalAveragePooling3D(name="global_feature", dtype="float32")(local[-1])

    attended, maps = [], {}
    for scale, features in enumerate(local, start=1):
        g_s, a = PCAttention(kernel_initializer=glorot(), u_initializer=glorot(),
                             name=f"attention{scale}", dtype="float32")([features, global_feature])
        attended.append(g_s)
        maps[f"a{scale}"] = keras.layers.Identity(name=f"a{scale}", dtype="float32")(a)
    if size_branch == "mean":
        attended.append(global_feature)
    x = keras.layers.Concatenate(name="attended_features", dtype="float32")(attended)
    x = keras.layers.Dropout(spec.dropout, seed=seed, name="dropout", dtype="float32")(x)
    probability = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=glorot(),
                                     name="probability", dtype="float32")(x)
    return keras.Model(inputs, {"probability": probability, **maps}, name=name)


def model_flops(model: keras.Model) -> int:
    """Floating-point operations of one forward pass of one image (2 × multiply-adds).

    Counts every convolution, the attention projections, compatibilities and weighted
    sums, and dense layers; activations, pooling and softmax (a few operations per
    voxel) are left out.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_variant`.

    Returns
    -------
    int
    """
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            out = layer.output.shape
            voxels = math.prod(out[1:4])
            k = math.prod(layer.kernel_size)
            flops += 2 * voxels * k * layer.kernel.shape[-2] * layer.filters
        elif isinstance(layer, PCAttention):
            local_shape = layer.input[0].shape
            voxels, local_width = math.prod(local_shape[1:4]), local_shape[-1]
            width = layer.u.shape[0]
            flops += 2 * voxels * local_width * 2  # <l_i, W u> and sum_i a_i l_i
            if layer.projection is not None:
                flops += 2 * local_width * width * 2  # W u and (sum_i a_i l_i) W
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(flops)


def variant_table(input_shape=INPUT_SHAPE) -> list[dict]:
    """Hyper-parameters, parameter count and FLOPs per image of every variant.

    Returns
    -------
    list of dict
        One per variant in :data:`VARIANT_NAMES` order: the :class:`VariantSpec` fields,
        ``parameters`` and ``flops``.
    """
    rows = []
    for name in VARIANT_NAMES:
        model = build_variant(name, input_shape)
        rows.append({**VARIANTS[name].to_dict(), "parameters": int(model.count_params()),
                     "flops": model_flops(model)})
    return rows
