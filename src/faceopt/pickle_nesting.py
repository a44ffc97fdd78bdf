"""How deeply a pickle nests its tuples, found without unpickling it.

Hashing a tuple (or frozenset) recurses in C without a depth check, so a pickle that nests
tuples a hundred thousand deep and then uses one as a dict key or set element crashes the
interpreter (a segmentation fault, not an exception) inside ``pickle.load`` or
``torch.load(weights_only=True)``. :func:`first_deep_nesting` simulates the unpickler's stack
from the opcodes alone (nothing is imported or built) so that a reader can refuse such a file
with an error that names it. Lists and dicts are not counted: they are not hashable, and
Python frees and compares them without unbounded C recursion.
"""
from __future__ import annotations

import pickletools

__all__ = ["NESTING_OPCODES", "first_deep_nesting"]

NESTING_OPCODES = frozenset({"TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET"})
"""Opcodes that build a hashable container from what is on the stack."""


def first_deep_nesting(data: bytes, cap: int) -> tuple[int, int] | None:
    """``(depth, byte offset)`` of the first tuple/frozenset nested deeper than ``cap``, else ``None``.

    The simulation follows the memo (``PUT``/``GET``), marks and ``DUP``. A stream it cannot
    follow (a malformed opcode, a pop from an empty stack) stops it with ``None``: the
    unpickler then reports the damage itself. :class:`ValueError` from :mod:`pickletools` on
    an unknown opcode is raised as it is.
    """
    stack: list[int] = []
    marks: list[int] = []
    memo: dict[int, int] = {}
    for op, arg, pos in pickletools.genops(data):
        before = op.stack_before
        children: list[int] = []
        if pickletools.markobject in before:
            if not marks:
                return None
            cut = marks.pop()
            children, stack[cut:] = stack[cut:], []
            before = before[:before.index(pickletools.markobject)]
        if len(before) > len(stack):
            return None
        if before:
            children, stack[-len(before):] = stack[-len(before):] + children, []
        if op.name == "MARK":
            marks.append(len(stack))
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE") and stack:
            memo[len(memo) if op.name == "MEMOIZE" else int(arg or 0)] = stack[-1]
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(int(arg or 0), 0))
        elif op.name == "DUP":
            stack += children * 2
        else:
            depth = 1 + max(children, default=0) if op.name in NESTING_OPCODES else 0
            if depth > cap:
                return depth, int(pos or 0)
            stack += [depth] * len(op.stack_after)
    return None
