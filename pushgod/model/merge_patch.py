"""JSON merge-patch (RFC 7396): how attrs and external_ids change."""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """The result of applying `patch` to `target`; neither argument is modified.

    An object patch merges key by key and a null value deletes the key; any other
    patch value replaces the target entirely (RFC 7396 section 2).
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
