"""Where the package's defaults are read from: the signatures that own them, never a second copy.

Every default lives in one signature: the model's in :class:`~spikeinterface_tavrnn.TAVRNN`, the connectivity
method's in :func:`~spikeinterface_tavrnn.compute_connectivity`, the segment's in
:meth:`~spikeinterface_tavrnn.SpikeTrains.from_sorting`, the windows and the graph rule in the
``functional_connectivity`` extension. The extensions, :class:`~spikeinterface_tavrnn.pipeline.PipelineOptions`
and the ``tavrnn`` command read them from there with the functions of this module.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

__all__ = ["signature_defaults", "model_defaults", "MODEL_EXCLUDED", "ParamsWithSignature"]

#: Parameters of ``TAVRNN`` that are not model settings of an analysis (progress, threads, multi-recording fits).
MODEL_EXCLUDED = ("verbose", "num_threads", "recordings_per_step")


def signature_defaults(function: Callable) -> dict[str, Any]:
    """The parameters of ``function`` that have defaults, with those defaults, in signature order."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name != "self"
    }


def model_defaults() -> dict[str, Any]:
    """The defaults of the ``TAVRNN`` model settings (its constructor's signature less :data:`MODEL_EXCLUDED`)."""
    from .estimator import TAVRNN

    return {key: value for key, value in signature_defaults(TAVRNN).items() if key not in MODEL_EXCLUDED}


class ParamsWithSignature:
    """A method whose signature (keyword parameters and defaults) is built on first use by ``make_parameters``.

    Used for an extension's ``_set_params`` whose defaults belong to another object (the model's constructor):
    ``inspect.signature`` (and so SpikeInterface's ``get_default_analyzer_extension_params``) reports the real
    defaults, and the owner is imported only when they are asked for.

    Parameters
    ----------
    function : callable
        ``function(self, **params)``; it receives the given parameters only (merge the defaults inside).
    make_parameters : callable
        Returns the list of ``inspect.Parameter`` (keyword-only, with defaults).
    """

    def __init__(self, function: Callable, make_parameters: Callable[[], list[inspect.Parameter]]):
        self._function = function
        self._make_parameters = make_parameters
        self._signature: inspect.Signature | None = None
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return types.MethodType(self._function, instance)

    @property
    def __signature__(self) -> inspect.Signature:  # read by inspect.signature
        if self._signature is None:
            self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
            self._signature = inspect.Signature([self_parameter, *self._make_parameters()])
        return self._signature

    def defaults(self) -> dict[str, Any]:
        """The parameter defaults of the signature."""
        return signature_defaults(self)
