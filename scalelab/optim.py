"""The trainer's two optimizers: SGD with (Nesterov) momentum and AdamW, the same updates as
``torch.optim.SGD`` and ``torch.optim.AdamW`` with their default arguments.

Why not torch.optim: every ``torch.optim.Optimizer`` imports ``torch._dynamo`` when it is first built
(its methods are wrapped to keep the compiler out), which costs each process that trains about 1.7 s
on a 2-core machine, as much as importing torch itself: a tax on every study worker, every
subprocess and every short trial. These few lines of foreach arithmetic never import it.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _Optimizer:
    """Parameter groups (each a dict with ``params``, ``lr`` and ``weight_decay``) and their state."""

    def __init__(self, groups: list[dict], lr: float) -> None:
        self.param_groups = [{"lr": lr, "weight_decay": 0.0, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def state_dict(self) -> dict:
        """The per-parameter state, by position in the groups, and each group's settings."""
        params = [p for g in self.param_groups for p in g["params"]]
        return {"state": {i: dict(self.state[p]) for i, p in enumerate(params) if p in self.state},
                "groups": [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]}

    def load_state_dict(self, saved: dict) -> None:
        """Restore :meth:`state_dict` onto an optimizer built over the same parameters."""
        params = [p for g in self.param_groups for p in g["params"]]
        if len(saved["groups"]) != len(self.param_groups) or max(saved["state"], default=-1) >= len(params):
            raise ValueError("the saved optimizer state is for other parameters")
        for group, settings in zip(self.param_groups, saved["groups"]):
            group.update(settings)
        self.state = {params[i]: {k: v.to(params[i].device, copy=True) if isinstance(v, Tensor) else v
                                  for k, v in s.items()} for i, s in saved["state"].items()}

    def _with_grads(self, group: dict) -> tuple[list[Tensor], list[Tensor]]:
        params = [p for p in group["params"] if p.grad is not None]
        return params, [p.grad for p in params]


class SGD(_Optimizer):
    """p -= lr * (g + momentum * buf) with Nesterov, else lr * buf; buf = momentum * buf + g, where
    g = grad + weight_decay * p (coupled L2, as torch.optim.SGD)."""

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(groups, lr)
        self.momentum, self.nesterov = momentum, nesterov

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            if group["weight_decay"]:  # the gradients are scratch space: the next step sets new ones
                torch._foreach_add_(grads, params, alpha=group["weight_decay"])
            if self.momentum:
                for p in params:  # a zero buffer makes the first step's buffer the gradient, as in torch
                    if p not in self.state:
                        self.state[p] = {"momentum": torch.zeros_like(p)}
                bufs = [self.state[p]["momentum"] for p in params]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
                if self.nesterov:
                    torch._foreach_add_(grads, bufs, alpha=self.momentum)
                else:
                    grads = bufs
            torch._foreach_add_(params, grads, alpha=-group["lr"])


class AdamW(_Optimizer):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam step), betas
    (0.9, 0.999) and eps 1e-8, bias-corrected; with weight_decay 0 it is plain Adam."""

    betas = (0.9, 0.999)
    eps = 1e-8

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            for p in params:
                if p not in self.state:
                    self.state[p] = {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            states = [self.state[p] for p in params]
            for s in states:
                s["step"] += 1
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            avg = [s["exp_avg"] for s in states]
            avg_sq = [s["exp_avg_sq"] for s in states]
            torch._foreach_lerp_(avg, grads, 1 - beta1)
            torch._foreach_mul_(avg_sq, beta2)
            torch._foreach_addcmul_(avg_sq, grads, grads, 1 - beta2)
            # Parameters of one group may have taken different numbers of steps (a parameter without a
            # gradient is skipped), so the bias corrections are per parameter.
            steps = [s["step"] for s in states]
            denom = torch._foreach_sqrt(avg_sq)
            torch._foreach_div_(denom, [(1 - beta2**t) ** 0.5 for t in steps])
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, avg, denom, [-group["lr"] / (1 - beta1**t) for t in steps])
