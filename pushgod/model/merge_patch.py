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


def compose(first: Any, second: Any) -> Any:
    """One patch that does what `first` then `second` do: merge_patch(merge_patch(t,
    first), second) == merge_patch(t, compose(first, second)) for every t.

    Except where `second` patches with an object what `first` set to a non-object or
    deleted (a key, or the whole): no single patch can say "replace with this object",
    and the result keeps `second`'s object, which merges into what was there before.
    """
    if not isinstance(first, dict) or not isinstance(second, dict):
        return second
    result = dict(first)
    for key, value in second.items():
        earlier = result.get(key)
        result[key] = compose(earlier, value) if isinstance(earlier, dict) else value
    return result
