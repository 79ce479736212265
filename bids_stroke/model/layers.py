"""Keras layers of the attention CNN.

:class:`PCAttention` is the parametrised-compatibility ("pc") attention of Jetley et al.,
"Learn to Pay Attention" (ICLR 2018), in 3D: local features ``l`` of shape
``(batch, X, Y, Z, C_l)`` and a global feature ``g`` of shape ``(batch, C_g)`` give

* ``l' = l W`` (a 1×1×1 convolution without bias, only where ``C_l != C_g``),
* the compatibility ``c_i = <u, l'_i + g>`` with ``u`` learned (one per layer, so one per
  scale),
* the attention ``a = softmax(c)`` over all ``X·Y·Z`` voxels of the scale,
* the attended feature ``g_s = Σ_i a_i l'_i`` of shape ``(batch, C_g)``.

:class:`EnsembleStack` stacks the outputs of several models along a new axis and adds
their mean; it is what makes the fused ensemble (:mod:`bids_stroke.model.ensemble`) one
Keras graph.

Every layer uses ``keras.ops`` only, so the model runs on the TensorFlow and the JAX
backends, and is registered for safe-mode loading under the package ``bids_stroke``.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["EnsembleStack", "PCAttention"]


@keras.saving.register_keras_serializable(package="bids_stroke")
class PCAttention(keras.layers.Layer):
    """Parametrised-compatibility attention over the voxels of one scale.

    Parameters
    ----------
    kernel_initializer : str or keras.initializers.Initializer, default="glorot_uniform"
        Initialiser of the projection ``W`` (shape ``(C_l, C_g)``), when there is one.
    u_initializer : str or keras.initializers.Initializer, default="glorot_uniform"
        Initialiser of the compatibility vector ``u`` (shape ``(C_g,)``).
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ``dtype``, ...).

    Call arguments
    --------------
    inputs : list of two tensors
        ``[l, g]``: local features ``(batch, X, Y, Z, C_l)`` and global feature
        ``(batch, C_g)``.

    Returns
    -------
    g_s : tensor of shape (batch, C_g)
        Attention-weighted sum of the (projected) local features.
    a : tensor of shape (batch, X, Y, Z)
        Attention map: non-negative, summing to 1 over the scale's voxels.

    Notes
    -----
    ``<u, g>`` is the same at every voxel, so it cancels in the softmax: the attention
    depends on ``g`` only through its width (the layer is written as the published
    formula all the same).

    Examples
    --------
    >>> layer = PCAttention()
    >>> g_s, a = layer([keras.ops.ones((2, 4, 4, 2, 8)), keras.ops.ones((2, 16))])
    >>> tuple(g_s.shape), tuple(a.shape)
    ((2, 16), (2, 4, 4, 2))
    """

    def __init__(self, kernel_initializer="glorot_uniform", u_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.u_initializer = keras.initializers.get(u_initializer)

    def build(self, input_shape):
        local_shape, global_shape = input_shape
        if len(local_shape) != 5 or len(global_shape) != 2:
            raise ValueError(
                "'input_shape' of PCAttention must be [(batch, X, Y, Z, C_l), (batch, C_g)]. "
                f"Got {input_shape} instead."
            )
        local_width, global_width = int(local_shape[-1]), int(global_shape[-1])
        self.projection = None
        if local_width != global_width:
            self.projection = self.add_weight(
                name="projection",
                shape=(local_width, global_width),
                initializer=self.kernel_initializer,
            )
        self.u = self.add_weight(name="u", shape=(global_width,), initializer=self.u_initializer)
        self.built = True

    def call(self, inputs):
        local, global_ = inputs
        # <u, l W + g> = <l, W u> + <u, g> and sum_i a_i (l_i W) = (sum_i a_i l_i) W: the
        # projection is applied to one vector per image instead of to every voxel.
        direction = self.u if self.projection is None else ops.matmul(self.projection, self.u)
        compat = ops.matmul(local, direction) + ops.matmul(global_, self.u)[:, None, None, None]
        spatial = ops.shape(compat)[1:]
        flat = ops.reshape(compat, (-1, spatial[0] * spatial[1] * spatial[2]))
        attention = ops.reshape(ops.softmax(flat, axis=-1), ops.shape(compat))
        attended = ops.einsum("bxyz,bxyzc->bc", attention, local)
        if self.projection is not None:
            attended = ops.matmul(attended, self.projection)
        return attended, attention

    def compute_output_shape(self, input_shape):
        local_shape, global_shape = input_shape
        return (local_shape[0], global_shape[-1]), tuple(local_shape[:4])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "u_initializer": keras.initializers.serialize(self.u_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bids_stroke")
class EnsembleStack(keras.layers.Layer):
    """Stack same-shaped tensors along axis 1 and return the stack and its mean.

    Parameters
    ----------
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Call arguments
    --------------
    inputs : list of M tensors of shape (batch, ...)

    Returns
    -------
    stacked : tensor of shape (batch, M, ...)
    mean : tensor of shape (batch, ...)
        Mean over the M inputs.

    Examples
    --------
    >>> stacked, mean = EnsembleStack()([keras.ops.zeros((2, 3)), keras.ops.ones((2, 3))])
    >>> tuple(stacked.shape), float(mean[0, 0])
    ((2, 2, 3), 0.5)
    """

    def call(self, inputs):
        stacked = ops.stack(list(inputs), axis=1)
        return stacked, ops.mean(stacked, axis=1)

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (first[0], len(input_shape)) + first[1:], first
