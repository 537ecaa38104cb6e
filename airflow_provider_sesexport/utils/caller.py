"""The class whose ``execute`` made an AWS hook's client: the ``Caller/`` part of the Amazon provider's user agent."""

from __future__ import annotations

import sys
from types import FrameType
from typing import TypeVar

_Hook = TypeVar("_Hook")

# Internal: nothing here is public API.
__all__ = []


def find_operator_class_name(target_function_name: str) -> str | None:
    """
    The class of ``self`` in the innermost frame running a function named ``target_function_name``, or None.

    What ``AwsBaseHook._find_operator_class_name`` answers, found by walking the frames: the provider's
    ``inspect.stack()`` reads every frame's source and, on its first call in a process, maps every loaded module to
    its file (about 0.1 s with Airflow loaded), a third of what copying a small export costs. Set on the hooks in
    place of the provider's (whose errors ``_get_caller`` turns into ``Unknown``, as it does these).

    :param target_function_name: the function to look for (``execute``, or ``poke`` for a sensor).
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == target_function_name:
            return type(frame.f_locals["self"]).__name__
        frame = frame.f_back
    return None


def with_frame_walk(hook: _Hook) -> _Hook:
    """
    ``hook`` (an Amazon provider AWS hook built here, such as an ``S3Hook``) with its user agent's ``Caller/``
    found by :func:`find_operator_class_name`.

    :param hook: the hook; returned itself.
    """
    hook._find_operator_class_name = find_operator_class_name  # type: ignore[attr-defined]
    return hook
