"""Actor calls that run on Ray or in this process: the one seam between the two modes.

The driver and the actors talk through ``handle.method.remote(...)``, ``get``, ``wait`` and
``put``. On Ray those are Ray's own. In the single-process mode (``inline=True``) an actor is
the plain object in this process and a call runs at once, returning a ``Done`` that ``get``
and ``wait`` accept like an object ref. So both modes run the same driver loop, the same
actors and the same checkpoint code; only where a call executes differs.

Why not two loops: they drift (the evaluation seeds, the DPS hand-off and the checkpoint
layout did, before this seam existed); why not Ray's removed ``local_mode``: it is gone from
Ray 2.x, and a call here needs no serialisation at all.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray


@dataclass(eq=False)  # hashed and compared by identity, like object refs
class Done:
    """An in-process call's outcome, standing in for a Ray ``ObjectRef``."""

    value: Any = None
    error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


_LOOP: asyncio.AbstractEventLoop | None = None


def _run(value: Any) -> Any:
    """Async actor methods (the search server's) run to completion on one private loop."""
    global _LOOP
    if not inspect.isawaitable(value):
        return value
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(value)


def _resolved(args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    # Ray passes an object ref given as a top-level argument as its value; so do we.
    def value(item: Any) -> Any:
        return item.result() if isinstance(item, Done) else item

    return tuple(value(a) for a in args), {k: value(v) for k, v in kwargs.items()}


class _Method:
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def remote(self, *args: Any, **kwargs: Any) -> Done:
        try:
            args, kwargs = _resolved(args, kwargs)
            return Done(_run(self.bound(*args, **kwargs)))
        except Exception as error:  # surfaces at get(), as Ray's errors do
            return Done(error=error)


class InlineActor:
    """A plain object behind the actor-handle interface (``actor.method.remote(...)``)."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance

    def __getattr__(self, name: str) -> _Method:
        return _Method(getattr(self.instance, name))


class _InlineClass:
    def __init__(self, cls: type) -> None:
        self.cls = cls

    def remote(self, *args: Any, **kwargs: Any) -> InlineActor:
        args, kwargs = _resolved(args, kwargs)
        return InlineActor(self.cls(*args, **kwargs))


# An actor gone for good: not restartable (the learner), out of restarts, or its node lost.
ActorDied = ray.exceptions.ActorDiedError
RemoteError = ray.exceptions.RayTaskError  # a call that raised in its actor (or its inputs did)


def actor_class(cls: type, inline: bool, **options: Any) -> Any:
    """``cls`` as something with ``.remote(*args)`` that starts an actor: a Ray actor class
    with ``options`` (resources, restarts) or, inline, the class itself in this process."""
    if inline:
        return _InlineClass(cls)
    return ray.remote(cls).options(**options)


def get(refs: Any) -> Any:
    """Like ``ray.get``: one ref or a list (Ray's refs fetched together in one call)."""
    if isinstance(refs, Done):
        return refs.result()
    if isinstance(refs, list):
        if refs and not any(isinstance(ref, Done) for ref in refs):
            return ray.get(refs)  # an empty list never reaches Ray: it would start one
        return [get(ref) for ref in refs]
    return ray.get(refs)


def wait(refs: Sequence[Any], num_returns: int = 1, timeout: float | None = None) -> tuple:
    """Like ``ray.wait``. In-process calls are all finished: all are handed back, so none
    waits behind the others (the driver handles every ready ref in order)."""
    refs = list(refs)
    if all(isinstance(ref, Done) for ref in refs):
        return refs, []
    return ray.wait(refs, num_returns=num_returns, timeout=timeout)


def is_ready(ref: Any) -> bool:
    return isinstance(ref, Done) or bool(ray.wait([ref], timeout=0)[0])


def put(value: Any, inline: bool) -> Any:
    return Done(value) if inline else ray.put(value)


def kill(actor: Any) -> None:
    if not isinstance(actor, InlineActor):
        ray.kill(actor, no_restart=True)


def resolve(actor: Any) -> Any:
    """An actor handle from what a constructor was given: a Ray actor's name, or the object
    itself in this process. Ray actors are given names, not handles: a handle as a constructor
    argument is an object-store reference, which Ray cannot promise to the actor's restart
    (ray-project/ray#53727)."""
    return ray.get_actor(actor) if isinstance(actor, str) else actor


def died(actor: Any, timeout: float = 30.0) -> Exception | None:
    """The error saying ``actor`` is gone, or None while it answers (or is too busy to)."""
    if isinstance(actor, InlineActor):
        return None
    try:
        ray.get(actor.__ray_call__.remote(lambda _: None), timeout=timeout)
    except ActorDied as error:
        return error
    except ray.exceptions.GetTimeoutError:
        return None
    return None


def in_ray_actor() -> bool:
    """True inside a Ray actor process (where an actor may pin torch's threads)."""
    return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
