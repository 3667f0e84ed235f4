"""Run a compiled (numba) kernel on PyTorch's own OpenMP threads, as one team whose threads meet at barriers.

Why not threads of our own: after each parallel PyTorch operation its OpenMP workers busy-wait for more work
(about 8 ms with GNU OpenMP's default spin count). A thread of ours started then shares a core with a spinning
worker and runs at half speed, and a kernel whose threads meet at barriers runs at the pace of its slowest thread.
Handed to those workers instead (``GOMP_parallel`` of the runtime PyTorch loaded), the kernel runs on threads that
are awake and would otherwise only spin.

How a kernel is run:

* its arguments are packed into an int64 table, arrays as their address and shape (:func:`pack`, which checks
  each argument against the kernel's declared layout, so a wrong dtype or rank cannot reach compiled code);
* every thread of the team calls the kernel's entry point, a numba ``cfunc``, with the table. The entry reads its
  position in the team (:func:`team_position`), rebuilds the arrays (:func:`f32`, :func:`i32`, :func:`i64`) and
  calls the kernel, which splits its rows by that position and calls :func:`barrier` between stages;
* the addresses of the OpenMP functions travel in the table, so the compiled code holds no process-specific
  constant and stays in numba's on-disk cache.

Where PyTorch's OpenMP runtime cannot be found, or fails the first trial run, :func:`team_size` is 1 and
:func:`run` calls the entry point on the calling thread alone (with :func:`barrier` a no-op).

A kernel run this way must not raise (numba's numpy error model, no bounds checks, shapes checked before the run):
a thread that left early would leave the others waiting at a barrier.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

__all__ = [
    "Layout", "barrier", "f32", "f64", "i32", "i64", "pack", "run", "table", "team_position", "team_size", "value",
]  # fmt: skip

# Table slots before the arguments: table length, omp_get_thread_num, omp_get_num_threads, GOMP_barrier. These two
# constants are compiled into every entry point that reads a table; numba's cache of a module follows that module's
# own source file only, so after changing them, clear the caches of the modules that use this one.
_HEADER = 4
_SLOT = 5  # per argument: address (or value) and up to four dimensions


# ------------------------------------------------------------------ compiled side
@intrinsic
def _call_i32(typingctx, address):
    """Call the C function ``int f(void)`` at ``address``."""

    def codegen(context, builder, signature, args):
        function = builder.inttoptr(args[0], ir.FunctionType(ir.IntType(32), []).as_pointer())
        return builder.call(function, [])

    return types.int32(types.int64), codegen


@intrinsic
def _call_void(typingctx, address):
    """Call the C function ``void f(void)`` at ``address``."""

    def codegen(context, builder, signature, args):
        function = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), []).as_pointer())
        builder.call(function, [])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


def _pointer_intrinsic(numba_type, llvm_type):
    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], llvm_type.as_pointer())

        return types.CPointer(numba_type)(types.int64), codegen

    return as_pointer


_f32_pointer = _pointer_intrinsic(types.float32, ir.FloatType())
_f64_pointer = _pointer_intrinsic(types.float64, ir.DoubleType())
_i32_pointer = _pointer_intrinsic(types.int32, ir.IntType(32))
_i64_pointer = _pointer_intrinsic(types.int64, ir.IntType(64))


@intrinsic
def _void_as_i64_pointer(typingctx, pointer):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64).as_pointer())

    return types.CPointer(types.int64)(types.voidptr), codegen


@njit(cache=True, inline="always")
def table(data):
    """The int64 table behind an entry point's ``void *`` argument."""
    length = carray(_void_as_i64_pointer(data), (1,))[0]
    return carray(_void_as_i64_pointer(data), (length,))


@njit(cache=True, inline="always")
def team_position(tb):
    """``(thread, n_threads, barrier_address)`` of the calling thread; ``(0, 1, 0)`` outside a team."""
    if tb[3] == 0:
        return 0, 1, np.int64(0)
    return np.int64(_call_i32(tb[1])), np.int64(_call_i32(tb[2])), tb[3]


@njit(cache=True, inline="always")
def barrier(address):
    """Wait for every thread of the team (``address`` from :func:`team_position`; 0: alone, no wait)."""
    if address != 0:
        _call_void(address)


@njit(cache=True, inline="always")
def value(tb, i):
    """Argument ``i`` as an integer (a bool or int packed by :func:`pack`)."""
    return tb[_HEADER + _SLOT * i]


@njit(cache=True, inline="always")
def _shape(tb, i, ndim):
    base = _HEADER + _SLOT * i + 1
    if ndim == 1:
        return (tb[base],)
    if ndim == 2:
        return (tb[base], tb[base + 1])
    if ndim == 3:
        return (tb[base], tb[base + 1], tb[base + 2])
    return (tb[base], tb[base + 1], tb[base + 2], tb[base + 3])


@njit(cache=True, inline="always")
def f32(tb, i, ndim):
    """Argument ``i``, a C-contiguous float32 array of ``ndim`` (1-4) dimensions."""
    return carray(_f32_pointer(tb[_HEADER + _SLOT * i]), _shape(tb, i, ndim))


@njit(cache=True, inline="always")
def f64(tb, i, ndim):
    """Argument ``i``, a C-contiguous float64 array."""
    return carray(_f64_pointer(tb[_HEADER + _SLOT * i]), _shape(tb, i, ndim))


@njit(cache=True, inline="always")
def i32(tb, i, ndim):
    """Argument ``i``, a C-contiguous int32 array."""
    return carray(_i32_pointer(tb[_HEADER + _SLOT * i]), _shape(tb, i, ndim))


@njit(cache=True, inline="always")
def i64(tb, i, ndim):
    """Argument ``i``, a C-contiguous int64 array."""
    return carray(_i64_pointer(tb[_HEADER + _SLOT * i]), _shape(tb, i, ndim))


# ------------------------------------------------------------------ Python side
class Layout:
    """The arguments an entry point reads, in order: ``"f4:2"`` a float32 array of 2 dimensions (``"f8"``,
    ``"i4"``, ``"i8"`` likewise, 1 to 4 dimensions), ``"int"`` an integer, ``"bool"`` a bool."""

    def __init__(self, codes: Sequence[str]):
        self.codes = tuple(codes)
        specs = []
        for code in self.codes:
            array = len(code) == 4 and code[:3] in ("f4:", "f8:", "i4:", "i8:") and code[3] in "1234"
            if code not in ("int", "bool") and not array:
                raise ValueError(f"unknown argument code {code!r}")
            specs.append((np.dtype(code[:2]), int(code[3])) if array else (None, 0))
        self.specs = tuple(specs)


def pack(layout: Layout, args: Sequence) -> np.ndarray:
    """The int64 table of ``args`` for an entry point reading ``layout``.

    The arrays must stay alive (and unmoved) until the run ends: the table holds their addresses only.
    """
    if len(args) != len(layout.specs):
        raise ValueError(f"expected {len(layout.specs)} arguments, got {len(args)}")
    slots = [0] * (_HEADER + _SLOT * len(args))
    slots[0] = len(slots)
    for i, ((dtype, ndim), arg) in enumerate(zip(layout.specs, args)):
        slot = _HEADER + _SLOT * i
        if dtype is None:
            if isinstance(arg, np.ndarray) or not isinstance(arg, (int, np.integer, np.bool_)):
                raise TypeError(f"argument {i} must be an {layout.codes[i]}, got {type(arg).__name__}")
            slots[slot] = int(arg)
            continue
        if not isinstance(arg, np.ndarray) or arg.dtype != dtype or arg.ndim != ndim:
            got = f"{arg.dtype} array of {arg.ndim} dimensions" if isinstance(arg, np.ndarray) else type(arg).__name__
            raise TypeError(f"argument {i} must be a {dtype} array of {ndim} dimensions, got {got}")
        if not arg.flags.c_contiguous:
            raise ValueError(f"argument {i} must be C-contiguous")
        slots[slot] = arg.__array_interface__["data"][0]
        slots[slot + 1 : slot + 1 + ndim] = arg.shape
    return np.array(slots, dtype=np.int64)


class _Runtime:
    """PyTorch's OpenMP entry points (found through ``libtorch_cpu``, so they are the runtime PyTorch's own
    threads belong to)."""

    def __init__(self, library: ctypes.CDLL):
        self.parallel = library.GOMP_parallel
        self.parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self.parallel.restype = None
        self.addresses = tuple(
            ctypes.cast(getattr(library, name), ctypes.c_void_p).value
            for name in ("omp_get_thread_num", "omp_get_num_threads", "GOMP_barrier")
        )


_RUNTIME: list = []  # [] before the first look, then [runtime or None]
_LOCK = threading.Lock()


def _find_runtime() -> _Runtime | None:
    import torch

    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    if not os.path.exists(path) or not hasattr(os, "RTLD_NOLOAD"):
        return None
    try:
        # already loaded by torch: NOLOAD gives its handle, and symbol look-ups follow its own dependencies
        runtime = _Runtime(ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LOCAL))
    except (OSError, AttributeError):
        return None
    return runtime if _trial(runtime) else None


@cfunc(types.void(types.voidptr), cache=True)
def _trial_entry(data):
    tb = table(data)
    thread, n_threads, address = team_position(tb)
    seen = i64(tb, 0, 1)
    seen[thread] = n_threads
    barrier(address)
    seen[2 + thread] = seen[1 - thread]


def _trial(runtime: _Runtime) -> bool:
    """Whether a team of two runs, each thread in its place, and its barrier holds."""
    seen = np.zeros(4, dtype=np.int64)
    tb = pack(Layout(["i8:1"]), [seen])
    tb[1 : 1 + 3] = runtime.addresses
    runtime.parallel(_trial_entry.address, tb.ctypes.data, 2, 0)
    return seen.tolist() == [2, 2, 2, 2]


def _runtime() -> _Runtime | None:
    with _LOCK:
        if not _RUNTIME:
            _RUNTIME.append(_find_runtime())
    return _RUNTIME[0]


def team_size(limit: int | None = None) -> int:
    """Threads a team would have: PyTorch's intra-op thread count (at most ``limit``), or 1 where no runtime was
    found."""
    import torch

    n = torch.get_num_threads()
    if limit is not None:
        n = min(n, int(limit))
    if n <= 1 or _runtime() is None:
        return 1
    return n


def run(entry, tb: np.ndarray, n_threads: int) -> None:
    """Call the numba ``cfunc`` ``entry`` with the table ``tb`` (from :func:`pack`) on a team of ``n_threads``
    threads, the calling thread among them; on the calling thread alone when ``n_threads`` is 1 or no runtime
    was found. The GIL is released meanwhile."""
    runtime = _runtime() if n_threads > 1 else None
    if runtime is None:
        tb[1:_HEADER] = 0
        entry.ctypes(tb.ctypes.data)
        return
    tb[1:_HEADER] = runtime.addresses
    runtime.parallel(entry.address, tb.ctypes.data, int(n_threads), 0)
