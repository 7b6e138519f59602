"""A tiny training script for the documentation's examples (copied as ``train.py``).

It compiles a step twice with a different constant, so there is a guard failure, a
recompile and inductor output code; it runs alike alone and under torchrun.
"""

import torch


def main() -> None:
    model = torch.nn.Linear(8, 4)

    @torch.compile
    def step(inputs: torch.Tensor, scale: float) -> torch.Tensor:
        return (model(inputs) * scale).relu().sum()

    for scale in (1.0, 2.0):
        step(torch.randn(4, 8), scale).backward()


if __name__ == "__main__":
    main()
